#!/usr/bin/env python3
"""Soak: the long versions of ``tests/reliability`` and the scale-out echo, loopback only.

Every run is bounded in count and time and prints its figures (``docs/reliability.md``
shows them with these commands)::

    python bench/soak.py connections --n 5000            # concurrent connections, one process
    python bench/soak.py cycles --n 10000                # connect/exchange/close, gc disabled
    python bench/soak.py slowloris --tricklers 500 --seconds 60
    python bench/soak.py workers --workers 1,2           # echo through `wirekit serve`
    python bench/soak.py all                             # each of the above, defaults

``--backend asyncio|uvloop|trio`` (default: asyncio; ``all`` runs asyncio and trio). The
workloads are the test suite's own functions (``tests/reliability``), run longer.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run(main: Any, backend: str, *args: Any) -> Any:
    import anyio

    if backend == "trio":
        return anyio.run(main, *args, backend="trio")
    return anyio.run(main, *args, backend_options={"use_uvloop": backend == "uvloop"})


def show(name: str, **figures: Any) -> None:
    items = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"[soak] {name}: {items}", flush=True)


def bytes_codec() -> Any:
    """The suite's codec: 4-byte big-endian length + body, frames up to 64 KiB."""
    import construct as cs

    from codec import Codec

    return Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=64 * 1024)


# -- connections -------------------------------------------------------------------------
def connections(n: int, backend: str) -> None:
    from tests.reliability.conftest import raise_fd_limit
    from tests.reliability.test_many_connections import hold_many

    before, soft, hard = raise_fd_limit(2 * n + 1000)
    if soft < 2 * n + 200:
        print(f"[soak] connections: RLIMIT_NOFILE {soft}/{hard} is too low for {n}")
        return

    async def main() -> dict[str, float]:
        return await hold_many(bytes_codec(), n)

    figures = run(main, backend)
    show(
        f"{n} connections ({backend})",
        rlimit_nofile=f"soft {before} -> {soft}, hard {hard}",
        **figures,
    )


# -- cycles --------------------------------------------------------------------------------
def cycles(n: int, backend: str, engine: str) -> None:
    from tests.reliability.test_leaks import cycles as run_cycles

    async def main() -> dict[str, Any]:
        return await run_cycles(bytes_codec(), n, engine=engine)

    r = run(main, backend)
    before, after, after_gc = r["before"], r["after"], r["after_gc"]
    show(
        f"{n} cycles, gc disabled ({backend}, {engine} engine)",
        fds=f"{before['fds']}->{after['fds']}",
        tasks=f"{before['tasks']}->{after['tasks']}",
        server_sessions=after["server_sessions"],
        live_sessions=f"{before['live_sessions']}->{after['live_sessions']}",
        traced_growth_MiB_without_gc=(after["traced_bytes"] - before["traced_bytes"]) / 2**20,
        bytes_per_cycle_after_gc=(after_gc["traced_bytes"] - before["traced_bytes"]) / n,
        cyclic_garbage=r["garbage_types"],
        seconds=r["seconds"],
    )


# -- slowloris -----------------------------------------------------------------------------
def slowloris(tricklers: int, seconds: float, backend: str) -> None:
    import anyio

    from tests.reliability.conftest import LOCAL, percentile, raise_fd_limit, wait_until
    from tests.reliability.test_slowloris import (
        NEVER_ENDING,
        Echo,
        open_tricklers,
        ping_pong,
        trickle,
    )
    from transport import Server

    raise_fd_limit(4 * tricklers + 1000)

    async def clients_for(port: int, duration: float, latencies: list[float]) -> None:
        """10 ping-pong clients, again and again, for ``duration`` seconds."""
        started = time.monotonic()
        while time.monotonic() - started < duration:
            async with anyio.create_task_group() as clients:
                for _ in range(10):
                    clients.start_soon(ping_pong, port, latencies)

    async def main() -> None:
        async with Server(bytes_codec(), Echo(), host=LOCAL, port=0) as server:
            # calm windows before and after the trickled one (a quarter of its length each),
            # pooled: the machine's noise then weighs on both conditions
            calm: list[float] = []
            await clients_for(server.port, seconds / 4, calm)
            await wait_until(lambda: not server.sessions)
            socks = open_tricklers(server.port, tricklers)
            await wait_until(lambda: len(server.sessions) >= tricklers)
            for sock in socks:
                sock.send(NEVER_ENDING)
            sent = [0]
            stormy: list[float] = []
            async with anyio.create_task_group() as tg:
                tg.start_soon(trickle, socks, sent)
                await clients_for(server.port, seconds, stormy)
                tg.cancel_scope.cancel()
            await wait_until(lambda: len(server.sessions) <= tricklers)
            still_open = len(server.sessions)
            for sock in socks:
                sock.close()
            await wait_until(lambda: not server.sessions)
            await clients_for(server.port, seconds / 4, calm)
        show(
            f"slowloris {tricklers} tricklers x {seconds:.0f} s ({backend})",
            trickled_bytes=sent[0],
            round_trips_with=len(stormy),
            round_trips_without=len(calm),
            p99_ms_without=percentile(calm, 0.99) * 1e3,
            p99_ms_with=percentile(stormy, 0.99) * 1e3,
            ratio=percentile(stormy, 0.99) / percentile(calm, 0.99),
            trickler_sessions_open_at_end=still_open,
        )

    run(main, backend)


# -- workers: the echo through `wirekit serve --workers N` -----------------------------------
def make_echo(host: str, port: int) -> Any:
    """``wirekit serve bench/soak.py:make_echo``: the echo_bench wire format (4-byte length
    + body), echoed."""
    from transport import Processor, Server, Session

    class Echo(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            await session.send(msg)

    return Server(bytes_codec(), Echo(), host=host, port=port)


def workers(counts: list[int], backend: str, duration: float, repeats: int) -> None:
    from echo_bench import cpu_seconds, run_load  # type: ignore[import-not-found]

    loads = {"10x10 16B": (10, 10, 16), "32x10 16B": (32, 10, 16), "32x10 4KiB": (32, 10, 4096)}
    print(
        f"# wirekit serve bench/soak.py:make_echo --backend {backend}; load generator: "
        f"echo_bench.run_load (one process); {os.cpu_count()} cpus, {repeats} x {duration} s, "
        "medians; nothing pinned"
    )
    results: dict[tuple[int, str], list[tuple[float, float, float]]] = {}
    for r in range(repeats):
        for n in counts if r % 2 == 0 else counts[::-1]:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "codec.cli",
                    "serve",
                    str(ROOT / "bench" / "soak.py") + ":make_echo",
                    "--workers",
                    str(n),
                    "--backend",
                    backend,
                ],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            try:
                assert proc.stdout is not None
                assert proc.stderr is not None
                port = int(proc.stdout.readline().rsplit(":", 1)[1])
                pids = []
                while len(pids) < n:
                    m = re.search(r"worker (\d+) listening", proc.stderr.readline())
                    if m:
                        pids.append(int(m.group(1)))
                for name, (conns, inflight, body) in loads.items():
                    cpu0 = sum(cpu_seconds(p) for p in pids)
                    res = run_load(port, pids[0], conns, inflight, body, duration)
                    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
                    frames = res["fps"] * duration
                    results.setdefault((n, name), []).append(
                        (res["fps"], cpu / frames * 1e6 if frames else 0.0, res["p99_us"])
                    )
            finally:
                proc.send_signal(signal.SIGTERM)
                proc.wait(60)
    print("| load | workers | frames/s | workers' CPU us/frame | p99 us |")
    print("|---|---:|---:|---:|---:|")
    for name in loads:
        for n in counts:
            rows = results[(n, name)]
            fps = statistics.median(x[0] for x in rows)
            cpu = statistics.median(x[1] for x in rows)
            p99 = statistics.median(x[2] for x in rows)
            print(f"| {name} | {n} | {fps:,.0f} | {cpu:.1f} | {p99:,.0f} |")


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("what", choices=("connections", "cycles", "slowloris", "workers", "all"))
    ap.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), default=None)
    ap.add_argument("--engine", choices=("auto", "native", "anyio"), default="auto")
    ap.add_argument("--n", type=int, default=None, help="connections or cycles")
    ap.add_argument("--tricklers", type=int, default=500)
    ap.add_argument("--seconds", type=float, default=60.0, help="slowloris duration")
    ap.add_argument("--workers", default="1,2", help="worker counts to compare")
    ap.add_argument("--duration", type=float, default=2.0, help="seconds per echo load")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "bench"))
    backends = [args.backend] if args.backend else ["asyncio", "trio"]
    if args.what != "all" and args.backend is None:
        backends = ["asyncio"]
    for backend in backends:
        if args.what in ("connections", "all"):
            connections(args.n or 5000, backend)
        if args.what in ("cycles", "all"):
            cycles(args.n or 10_000, backend, args.engine)
        if args.what in ("slowloris", "all"):
            slowloris(args.tricklers, args.seconds, backend)
        if args.what in ("workers", "all"):
            workers([int(x) for x in args.workers.split(",")], backend, args.duration, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
