#!/usr/bin/env python3
"""Echo benchmark: wirekit's transport against raw echo servers, loopback only.

The server under test runs in its own process pinned to one core; this process is the one
fixed load generator (non-blocking sockets and ``selectors``, no event loop library), pinned
to another core. Frames are a 4-byte big-endian length + body (16 B and 4 KiB). Loads:

* ``pipelined``: 1 connection keeping 100 frames in flight;
* ``10x10``: 10 connections with 10 frames in flight each (the server is CPU-bound);
* ``pingpong``: 1 connection, one frame at a time (latency p50/p99).

Servers: wirekit on asyncio and uvloop with each engine (``-native-``: the
``BufferedProtocol`` engine, the default there; ``-anyio-``: the anyio-streams engine) and on
trio (anyio engine), with the schema compiled by ``codec.Codec`` (``wirekit-*``) and with a
hand-written length-prefix ``codec.Protocol`` (``wirekit-hand-*``: the transport's own cost
without construct's parse/build); raw echo
servers with hand framing and one write per read: ``asyncio.BufferedProtocol`` and
``asyncio.Protocol`` on the default loop and on uvloop, and a raw trio socket server; and
``floor-*`` on each loop, the least a server of wirekit's shape can cost (one task per
connection, an awaited ``process`` and ``send`` per message, one write per read, and
nothing else: see ``Floor`` in ``serve_raw_asyncio``), whose ratio to raw is the ceiling
of that shape (``vs floor``: wirekit against it). Each
run is bounded in time; the servers are interleaved within each repeat; figures are medians
over the repeats. Server CPU per frame comes from the server process's utime+stime
(``/proc/PID/stat``).

    python bench/echo_bench.py            # 3 repeats x 1.0 s per measurement
    python bench/echo_bench.py --quick    # 1 repeat x 0.3 s (a smoke run)
"""

from __future__ import annotations

import argparse
import collections
import os
import selectors
import socket
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVERS = [
    "wirekit-sync-native-asyncio",
    "wirekit-native-asyncio",
    "wirekit-anyio-asyncio",
    "wirekit-hand-native-asyncio",
    "wirekit-hand-anyio-asyncio",
    "raw-buffered-asyncio",
    "raw-protocol-asyncio",
    "floor-asyncio",
    "streams-asyncio",
    "wirekit-sync-native-uvloop",
    "wirekit-native-uvloop",
    "wirekit-anyio-uvloop",
    "wirekit-hand-native-uvloop",
    "wirekit-hand-anyio-uvloop",
    "raw-buffered-uvloop",
    "raw-protocol-uvloop",
    "floor-uvloop",
    "streams-uvloop",
    "wirekit-sync-trio",
    "wirekit-trio",
    "wirekit-hand-trio",
    "raw-trio",
    "floor-trio",
    "twisted",
]


#: ``base:<server>``: the same server run from another checkout (``--base``), for A/B runs
BASE = "base:"


def baseline(kind: str) -> str | None:
    """The raw server on the same loop as a wirekit or floor server (None for the raw ones)."""
    kind = kind.removeprefix(BASE)
    if kind == "twisted":
        return "raw-buffered-asyncio"
    if not kind.startswith(("wirekit", "floor", "streams")):
        return None
    loop = kind.rsplit("-", 1)[1]
    return "raw-trio" if loop == "trio" else f"raw-buffered-{loop}"


def design_floor(kind: str) -> str | None:
    """The floor server on the same loop as a wirekit server."""
    kind = kind.removeprefix(BASE)
    if not kind.startswith("wirekit"):
        return None
    return "floor-" + kind.rsplit("-", 1)[1]


LOADS = {"pipelined": (1, 100), "10x10": (10, 10), "pingpong": (1, 1)}
BODIES = {"16B": 16, "4KiB": 4096}


# -- servers (run in the child process) ----------------------------------------------------
def split_frames(buf: bytearray | memoryview, start: int, end: int) -> int:
    """End of the last complete frame in ``buf[start:end]`` (hand framing)."""
    while end - start >= 4:
        size = 4 + int.from_bytes(buf[start : start + 4], "big")
        if end - start < size:
            break
        start += size
    return start


_HEADER = struct.Struct(">I")
_pack = _HEADER.pack


def cut_messages(buf: bytearray, start: int, end: int) -> tuple[list[bytes], int]:
    """Every complete frame's body in ``buf[start:end]`` as ``bytes``, and the end of the
    last one, as the fastest hand code gets them (the floor servers' decoder): small frames
    sliced from one ``bytes`` copy of the region, large ones each copied once out of the
    buffer (as ``codec``'s batch decoder does, see ``BLOB_DIRECT``)."""
    unpack_from = _HEADER.unpack_from
    msgs: list[bytes] = []
    if end - start < 4:
        return msgs, start
    if unpack_from(buf, start)[0] >= 256:
        with memoryview(buf) as view:
            while end - start >= 4:
                stop = start + 4 + unpack_from(buf, start)[0]
                if stop > end:
                    break
                msgs.append(view[start + 4 : stop].tobytes())
                start = stop
        return msgs, start
    with memoryview(buf) as view:
        data = view[start:end].tobytes()
    pos, size = 0, end - start
    while size - pos >= 4:
        stop = pos + 4 + unpack_from(data, pos)[0]
        if stop > size:
            break
        msgs.append(data[pos + 4 : stop])
        pos = stop
    return msgs, start + pos


class FloorSession:
    """The floor servers' session: wirekit's ``Session.send`` at its cheapest."""

    __slots__ = ("out",)

    def __init__(self) -> None:
        self.out = bytearray()

    async def send(self, msg: bytes) -> None:
        out = self.out
        out += _pack(len(msg))
        out += msg


async def floor_process(session: FloorSession, msg: bytes) -> None:
    """The floor servers' processor: an echo, as ``serve_wirekit``'s ``Echo.process``."""
    await session.send(msg)


def serve_raw_asyncio(kind: str, ready: Callable[[int], None]) -> None:
    """The raw asyncio echoes (``raw-buffered-*``, ``raw-protocol-*``) and the floor
    (``floor-asyncio``, ``floor-uvloop``)."""
    import asyncio

    tasks = getattr(asyncio.tasks, "_current_tasks", None)
    current_task: Any = tasks.get if isinstance(tasks, dict) else asyncio.current_task

    class Buffered(asyncio.BufferedProtocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = bytearray(256 * 1024)
            self.view = memoryview(self.buf)
            self.start = self.end = 0

        def get_buffer(self, sizehint: int) -> memoryview:
            if self.start == self.end:
                self.start = self.end = 0
            elif len(self.buf) - self.end < 65536:
                n = self.end - self.start
                self.buf[:n] = self.buf[self.start : self.end]
                self.start, self.end = 0, n
            return self.view[self.end :]

        def buffer_updated(self, nbytes: int) -> None:
            self.end += nbytes
            done = split_frames(self.buf, self.start, self.end)
            if done > self.start:
                self.transport.write(self.buf[self.start : done])  # one write per read
                self.start = done

    class Plain(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buf = bytearray()

        def data_received(self, data: bytes) -> None:
            buf = self.buf
            buf += data
            done = split_frames(buf, 0, len(buf))
            if done:
                self.transport.write(bytes(buf[:done]))
                del buf[:done]

    class Floor(Buffered):
        """The least a server of wirekit's shape can cost on asyncio: the design's ceiling.

        What the transport issues ask of a session, and nothing else: one task per
        connection, woken eagerly on each read (the native engine's trick), every frame cut
        by hand into a ``bytes`` message and handed to ``async def process``, which awaits
        ``send``, which appends the encoded reply to a buffer written once per read. No
        counters, water marks, plugins, state events, error handling or close handshake,
        and a hand framer instead of a codec: wirekit can only be slower than this;
        raw/floor is what that shape (task semantics, one awaited call per message) costs
        by itself. It receives like ``Buffered``.
        """

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.waiter: asyncio.Future[None] | None = None
            self.gone = False
            self.loop = asyncio.get_running_loop()
            self.task = self.loop.create_task(self.run())

        def buffer_updated(self, nbytes: int) -> None:
            self.end += nbytes
            self.wake(eager=True)

        def eof_received(self) -> bool:
            self.gone = True
            self.wake(eager=False)
            return False

        def connection_lost(self, exc: Exception | None) -> None:
            self.gone = True
            self.wake(eager=False)

        def wake(self, eager: bool) -> None:
            waiter = self.waiter
            if waiter is None or waiter.done():
                return
            self.waiter = None
            callbacks = waiter._callbacks  # type: ignore[attr-defined]
            if eager and callbacks and len(callbacks) == 1 and current_task(self.loop) is None:
                callback, context = callbacks[0]  # run the task's next step right here
                waiter.remove_done_callback(callback)
                waiter.set_result(None)
                context.run(callback, waiter)
            else:
                waiter.set_result(None)

        async def run(self) -> None:
            session = FloorSession()
            create_future = self.loop.create_future
            while not self.gone or self.end > self.start:
                if self.end - self.start >= 4:
                    msgs, self.start = cut_messages(self.buf, self.start, self.end)
                    for msg in msgs:
                        await floor_process(session, msg)
                    if session.out:
                        self.transport.write(session.out)
                        session.out = bytearray()
                if self.gone:
                    break
                waiter = self.waiter = create_future()
                await waiter
            self.transport.close()

    async def main() -> None:
        loop = asyncio.get_running_loop()
        factory = Floor if "floor" in kind else Buffered if "buffered" in kind else Plain
        server = await loop.create_server(factory, "127.0.0.1", 0)
        ready(server.sockets[0].getsockname()[1])
        await asyncio.Event().wait()

    if "uvloop" in kind:
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_raw_trio(ready: Callable[[int], None], floor: bool = False) -> None:
    """The raw trio echo; ``floor``: the same connection loop in wirekit's shape (every
    frame a ``bytes`` message handed to ``async def process``, which awaits ``send``; one
    ``send_all`` per read), like ``Floor`` in ``serve_raw_asyncio``."""
    import trio

    async def handler(stream: Any) -> None:
        buf = bytearray()
        session = FloorSession()
        try:
            while data := await stream.receive_some(65536):
                buf += data
                done = split_frames(buf, 0, len(buf))
                if not done:
                    continue
                if not floor:
                    await stream.send_all(bytes(buf[:done]))
                    del buf[:done]
                    continue
                msgs, _ = cut_messages(buf, 0, done)
                del buf[:done]
                for msg in msgs:
                    await floor_process(session, msg)
                await stream.send_all(session.out)
                session.out = bytearray()
        except trio.BrokenResourceError:
            pass

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(trio.serve_tcp, handler, 0)
            ready(listeners[0].socket.getsockname()[1])

    trio.run(main)


def parse_options(text: str) -> dict[str, int]:
    """``--server-options``: ``name=value,...`` of integer ``Server`` options."""
    return {k: int(v) for k, v in (item.split("=", 1) for item in text.split(",") if item)}


def serve_wirekit(kind: str, ready: Callable[[int], None], options: dict[str, int]) -> None:
    import anyio
    import construct as cs

    from codec import Buffer, Codec
    from transport import Processor, Server, Session

    class LengthPrefixed:
        """The same wire format decoded by hand (the seed's "do it yourself")."""

        def decode(self, buf: Buffer) -> bytes | None:
            n = len(buf)
            if n < 4:
                return None
            size = int.from_bytes(buf.peek(4), "big")
            if n < 4 + size:
                return None
            buf.consume(4)
            return buf.take(size)

        def encode(self, msg: bytes) -> bytes:
            return len(msg).to_bytes(4, "big") + msg

    schema = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
    codec: Any = LengthPrefixed() if "-hand-" in kind else Codec(schema, max_frame_size=1 << 20)

    class Echo(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            await session.send(msg)

    class SyncEcho(Processor[bytes]):
        """The seed's shape: a plain ``def process`` replying with ``Session.write``."""

        def process(self, session: Session[bytes], msg: bytes) -> None:
            session.write(msg)

    processor: Processor[bytes] = SyncEcho() if "-sync-" in kind else Echo()

    async def main() -> None:
        engine = "native" if "-native-" in kind else "anyio"
        async with Server(
            codec, processor, host="127.0.0.1", port=0, engine=engine, **options
        ) as server:
            ready(server.port)
            await server.serve_forever()

    backend = "trio" if kind.endswith("trio") else "asyncio"
    loop_options = {"use_uvloop": True} if kind.endswith("uvloop") else {}
    anyio.run(main, backend=backend, backend_options=loop_options)


def serve_streams(kind: str, ready: Callable[[int], None]) -> None:
    """What users write instead with asyncio's streams: ``readexactly`` a header and a body,
    ``write`` the reply and ``drain``, one connection a task."""
    import asyncio

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(header, "big"))
                writer.write(header + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ready(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    if kind.endswith("uvloop"):
        import uvloop

        uvloop.run(main())
    else:
        asyncio.run(main())


def serve_twisted(ready: Callable[[int], None]) -> None:
    """What users write instead with Twisted: an ``Int32StringReceiver`` echo (the same
    4-byte big-endian length prefix), on Twisted's default reactor."""
    from twisted.internet import protocol, reactor
    from twisted.protocols.basic import Int32StringReceiver

    class Echo(Int32StringReceiver):
        MAX_LENGTH = 1 << 20

        def stringReceived(self, string: bytes) -> None:
            self.sendString(string)

    factory = protocol.Factory.forProtocol(Echo)
    port = reactor.listenTCP(0, factory, interface="127.0.0.1")  # type: ignore[attr-defined]
    ready(port.getHost().port)
    reactor.run()  # type: ignore[attr-defined]


def serve(kind: str, options: dict[str, int]) -> None:
    def ready(port: int) -> None:
        print(port, flush=True)

    if kind.startswith("wirekit"):
        serve_wirekit(kind, ready, options)
    elif kind.startswith("streams"):
        serve_streams(kind, ready)
    elif kind == "twisted":
        serve_twisted(ready)
    elif kind in ("raw-trio", "floor-trio"):
        serve_raw_trio(ready, floor=kind == "floor-trio")
    else:
        serve_raw_asyncio(kind, ready)


# -- load generator (this process) ---------------------------------------------------------
def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Conn:
    def __init__(self, port: int, frame: bytes, inflight: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.setblocking(False)
        self.frame = frame
        self.inflight = inflight
        self.out = bytearray()
        self.received = 0
        self.sent_frames = 0
        self.sent_at: collections.deque[float] = collections.deque()

    def top_up(self, now: float) -> None:
        done = self.received // len(self.frame)
        need = done + self.inflight - self.sent_frames
        if need > 0:
            self.out += self.frame * need
            self.sent_frames += need
            self.sent_at.extend([now] * need)


def run_load(
    port: int, pid: int, conns: int, inflight: int, body: int, duration: float
) -> dict[str, float]:
    frame = (body).to_bytes(4, "big") + b"x" * body
    flen = len(frame)
    sel = selectors.DefaultSelector()
    cs = [Conn(port, frame, inflight) for _ in range(conns)]
    now = time.perf_counter()
    for c in cs:
        c.top_up(now)
        sel.register(c.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    warmup_end = now + min(0.2, duration / 3)
    end = warmup_end + duration
    measuring = False
    frames = 0
    latencies: list[float] = []
    cpu0 = 0.0
    while True:
        now = time.perf_counter()
        if not measuring and now >= warmup_end:
            measuring = True
            cpu0 = cpu_seconds(pid)
            t0 = now
        if now >= end:
            break
        for key, events in sel.select(0.5):
            c = key.data
            if events & selectors.EVENT_READ:
                data = c.sock.recv(262144)
                if not data:
                    raise RuntimeError("server closed the connection")
                before = c.received // flen
                c.received += len(data)
                after = c.received // flen
                t = time.perf_counter()
                for _ in range(after - before):
                    sent = c.sent_at.popleft()
                    if measuring:
                        frames += 1
                        latencies.append(t - sent)
                c.top_up(t)
            if events & selectors.EVENT_WRITE and c.out:
                n = c.sock.send(c.out)
                del c.out[:n]
            want = selectors.EVENT_READ | (selectors.EVENT_WRITE if c.out else 0)
            if key.events != want:
                sel.modify(c.sock, want, c)
    elapsed = time.perf_counter() - t0
    cpu = cpu_seconds(pid) - cpu0
    for c in cs:
        sel.unregister(c.sock)
        c.sock.close()
    sel.close()
    latencies.sort()
    n = len(latencies)
    return {
        "fps": frames / elapsed,
        "cpu_us": cpu / frames * 1e6 if frames else float("nan"),
        "p50_us": latencies[n // 2] * 1e6 if n else float("nan"),
        "p99_us": latencies[min(n - 1, int(n * 0.99))] * 1e6 if n else float("nan"),
    }


def start_server(
    kind: str, core: int | None, options: str = "", base: Path | None = None
) -> tuple[subprocess.Popen[str], int]:
    """Start a server of ``kind`` in a child process (pinned to ``core`` if given); return it
    and the port it listens on."""
    script = __file__
    if kind.startswith(BASE):
        assert base is not None, "base: servers need --base"
        kind = kind.removeprefix(BASE)
        script = str(base / "bench" / "echo_bench.py")
    return spawn_server(
        [script, "--serve", kind]
        + (["--core", str(core)] if core is not None else [])
        + (["--server-options", options] if options else []),
        kind,
    )


def spawn_server(args: list[str], what: str) -> tuple[subprocess.Popen[str], int]:
    """Run ``python <args>``, a server that prints its port on its first line once it
    listens; return the process and that port (``what`` names it in an error)."""
    proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        proc.kill()
        raise RuntimeError(f"server {what} did not start")
    return proc, int(line)


def main() -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--quick", action="store_true", help="1 repeat of 0.3 s per measurement")
    ap.add_argument("--repeats", type=int, default=None)
    ap.add_argument("--duration", type=float, default=None)
    ap.add_argument("--servers", default=",".join(SERVERS))
    ap.add_argument("--loads", default=",".join(LOADS), help="comma-separated subset of loads")
    ap.add_argument("--bodies", default=",".join(BODIES), help="comma-separated frame bodies")
    ap.add_argument(
        "--server-options",
        default="",
        help="integer Server options for the wirekit servers, e.g. read_buffer_size=262144",
    )
    ap.add_argument(
        "--base",
        default=None,
        help="another checkout (a git worktree): also run its wirekit servers, as base:<name>, "
        "interleaved with this one's in the same run (an A/B comparison)",
    )
    ap.add_argument("--serve", help=argparse.SUPPRESS)
    ap.add_argument("--core", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    cpus = sorted(os.sched_getaffinity(0))
    if args.serve:
        if args.core is not None:
            os.sched_setaffinity(0, {args.core})
        serve(args.serve, parse_options(args.server_options))
        return 0
    repeats = args.repeats or (1 if args.quick else 3)
    duration = args.duration or (0.3 if args.quick else 1.0)
    servers = args.servers.split(",")
    base = Path(args.base).resolve() if args.base else None
    if base is not None:  # each wirekit server twice: this checkout's and the base's
        servers = [
            twin
            for kind in servers
            for twin in ([kind, BASE + kind] if kind.startswith("wirekit") else [kind])
        ]
    for option, given, known in (
        ("--servers", args.servers, SERVERS),
        ("--loads", args.loads, LOADS),
        ("--bodies", args.bodies, BODIES),
    ):
        unknown = [name for name in given.split(",") if name not in known]
        if unknown:
            ap.error(f"{option}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    loads = {name: LOADS[name] for name in args.loads.split(",")}
    bodies = {name: BODIES[name] for name in args.bodies.split(",")}
    server_core, client_core = cpus[0], cpus[-1]
    os.sched_setaffinity(0, {client_core})
    print(
        f"# python {sys.version.split()[0]}, server on cpu {server_core}, load on cpu "
        f"{client_core}, {repeats} repeat(s) x {duration} s, medians"
    )
    results: dict[tuple[str, str, str], list[dict[str, float]]] = collections.defaultdict(list)
    for r in range(repeats):
        order = servers if r % 2 == 0 else servers[::-1]  # interleaved, alternating order
        for kind in order:
            options = "" if kind.startswith(BASE) else args.server_options
            proc, port = start_server(kind, server_core, options, base)
            try:
                for load, (conns, inflight) in loads.items():
                    for bname, body in bodies.items():
                        res = run_load(port, proc.pid, conns, inflight, body, duration)
                        results[(kind, load, bname)].append(res)
            finally:
                proc.kill()
                proc.wait()
            print(f"# repeat {r + 1}: {kind} done", file=sys.stderr, flush=True)

    def med(kind: str, load: str, bname: str, key: str) -> float:
        return statistics.median(x[key] for x in results[(kind, load, bname)])

    print()
    print(
        "| load | frame | server | frames/s | server CPU us/frame | p50 us | p99 us | vs raw "
        "| vs floor |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|---:|")
    for load in loads:
        for bname in bodies:
            for kind in servers:
                fps = med(kind, load, bname, "fps")
                ratio = floor_ratio = ""
                base = baseline(kind)
                if base in servers:
                    ratio = f"{fps / med(base, load, bname, 'fps'):.2f}x"
                floor = design_floor(kind)
                if floor in servers:
                    floor_ratio = f"{fps / med(floor, load, bname, 'fps'):.2f}x"
                cpu = med(kind, load, bname, "cpu_us")
                p50 = med(kind, load, bname, "p50_us")
                p99 = med(kind, load, bname, "p99_us")
                print(
                    f"| {load} | {bname} | {kind} | {fps:,.0f} | {cpu:.1f} | {p50:.0f} | "
                    f"{p99:.0f} | {ratio} | {floor_ratio} |"
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
