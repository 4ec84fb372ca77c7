#!/usr/bin/env python3
"""What plugins cost on the hot path: the echo server with ``IdleTimeout(both=60)`` +
``MonitorPlugin`` installed against the same server with none, in one run.

The servers and the load generator are ``echo_bench.py``'s (a child process pinned to one
core serves; this process, pinned to another, keeps frames in flight over loopback and
reads the server's CPU time from ``/proc``). Each repeat runs every server kind twice,
without and with the plugins, in alternating order; figures are medians over the repeats.
Two ratios: frames per second with the plugins over without (what a client sees, but only
when the server is the bottleneck: on a busy machine the load generator may be), and the
server's CPU time per frame without over with (what the plugins cost the server, robust
to that). 1.00x: free.

    python bench/plugin_cost.py            # 5 repeats x 1.0 s
    python bench/plugin_cost.py --quick    # 1 repeat x 0.3 s (a smoke run)
"""

from __future__ import annotations

import argparse
import collections
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import echo_bench  # noqa: E402  (the sibling script: its load generator)

#: ``<shape>-<engine>-<loop>``: the processor shape (``sync``: a plain ``def process``
#: replying with ``Session.write``, the seed's; ``async``: ``await session.send``)
KINDS = [
    "sync-native-asyncio",
    "async-native-asyncio",
    "sync-native-uvloop",
    "sync-anyio-trio",
    "async-anyio-trio",
]
PLUGINS = ["none", "idle+monitor"]
LOADS = {"10x10": (10, 10), "pipelined": (1, 100)}
BODY = 16


def make_plugins(name: str) -> list[Any]:
    from transport.plugins import IdleTimeout, MonitorPlugin

    if name == "none":
        return []
    if name == "idle+monitor":
        return [IdleTimeout(both=60), MonitorPlugin()]
    raise ValueError(name)


def serve(kind: str, plugins: str) -> None:
    """Run one echo server (in the child process) and print its port."""
    import anyio
    import construct as cs

    from codec import Codec
    from transport import Processor, Server, Session

    class Echo(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            await session.send(msg)

    class SyncEcho(Processor[bytes]):
        def process(self, session: Session[bytes], msg: bytes) -> None:
            session.write(msg)

    shape, engine, loop = kind.split("-")
    codec = Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=1 << 20)
    processor: Processor[bytes] = SyncEcho() if shape == "sync" else Echo()

    async def main() -> None:
        async with Server(
            codec,
            processor,
            host="127.0.0.1",
            port=0,
            engine=engine,
            plugins=make_plugins(plugins),
        ) as server:
            print(server.port, flush=True)
            await server.serve_forever()

    backend = "trio" if loop == "trio" else "asyncio"
    options = {"use_uvloop": True} if loop == "uvloop" else {}
    anyio.run(main, backend=backend, backend_options=options)


def start(kind: str, plugins: str, core: int | None) -> tuple[subprocess.Popen[str], int]:
    """Start one server in a child process (pinned to ``core`` if given); it and its port."""
    pin = ["--core", str(core)] if core is not None else []
    return echo_bench.spawn_server(
        [__file__, "--serve", kind, "--plugins", plugins, *pin], f"{kind} ({plugins})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1 repeat of 0.3 s per measurement")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--kinds", default=",".join(KINDS))
    ap.add_argument("--loads", default=",".join(LOADS))
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--plugins", default="none", help=argparse.SUPPRESS)
    ap.add_argument("--core", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.serve:
        if args.core is not None:
            os.sched_setaffinity(0, {args.core})
        serve(args.serve, args.plugins)
        return 0
    repeats = args.repeats or (1 if args.quick else 5)
    duration = args.duration or (0.3 if args.quick else 1.0)
    kinds = args.kinds.split(",")
    loads = {name: LOADS[name] for name in args.loads.split(",")}
    for kind in kinds:
        if kind not in KINDS:
            ap.error(f"unknown kind {kind} (known: {', '.join(KINDS)})")
    server_core, client_core = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {client_core})
    print(
        f"# python {sys.version.split()[0]}, server on cpu {server_core}, load on cpu "
        f"{client_core}, {repeats} repeat(s) x {duration} s, {BODY} B frames, medians"
    )
    results: dict[tuple[str, str, str], list[dict[str, float]]] = collections.defaultdict(list)
    for r in range(repeats):
        for kind in kinds:
            order = PLUGINS if r % 2 == 0 else PLUGINS[::-1]
            for plugins in order:
                proc, port = start(kind, plugins, server_core)
                try:
                    for load, (conns, inflight) in loads.items():
                        res = echo_bench.run_load(port, proc.pid, conns, inflight, BODY, duration)
                        results[(kind, plugins, load)].append(res)
                finally:
                    proc.kill()
                    proc.wait()
        print(f"# repeat {r + 1} done", file=sys.stderr, flush=True)

    def med(kind: str, plugins: str, load: str, key: str) -> float:
        return statistics.median(x[key] for x in results[(kind, plugins, load)])

    print()
    print(
        "| load | server | plugins | frames/s | server CPU us/frame | with/none (frames/s) "
        "| none/with (CPU per frame) |"
    )
    print("|---|---|---|---:|---:|---:|---:|")
    for load in loads:
        for kind in kinds:
            for plugins in PLUGINS:
                fps = med(kind, plugins, load, "fps")
                cpu = med(kind, plugins, load, "cpu_us")
                ratio = fps / med(kind, "none", load, "fps")
                cpu_ratio = med(kind, "none", load, "cpu_us") / cpu
                print(
                    f"| {load} | {kind} | {plugins} | {fps:,.0f} | {cpu:.2f} | {ratio:.2f}x "
                    f"| {cpu_ratio:.2f}x |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
