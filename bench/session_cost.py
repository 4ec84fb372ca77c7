#!/usr/bin/env python3
"""The transport's own CPU cost per message and per read, without sockets or a peer.

Each engine is driven in-process: the native engine through its ``BufferedProtocol``
callbacks with a fake transport, the anyio engine through an in-memory byte stream. Every
read carries ``--frames`` frames (4-byte length + 16-byte body); the processor echoes each
one. What is timed is the engine, the session, the processor call and the protocol (a
hand-written length-prefix ``codec.Protocol``, or ``codec.Codec`` with ``--codec``), not the
kernel. Run it under ``cProfile`` to see where the time goes:

    python bench/session_cost.py                       # both engines, 1 and 10 frames/read
    python bench/session_cost.py --codec --loop uvloop
    python bench/session_cost.py --codec --loop trio      # the anyio engine on trio
    python -m cProfile -s tottime bench/session_cost.py --engine native --frames 10
    python bench/session_cost.py --codec --plugins     # with IdleTimeout + MonitorPlugin
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import anyio  # noqa: E402
import construct as cs  # noqa: E402
from anyio.abc import ByteStream  # noqa: E402

from codec import Buffer, Codec  # noqa: E402
from transport import Plugin, Processor, Session  # noqa: E402
from transport._anyio_engine import StreamEngine  # noqa: E402
from transport._native_engine import NativeEngine  # noqa: E402
from transport._timers import TimerQueue  # noqa: E402
from transport.plugins import IdleTimeout, MonitorPlugin  # noqa: E402

#: ``--plugins``: what ``plugin_cost.py`` installs (a fresh set per session)
WITH_PLUGINS = False


def new_session(protocol: Any) -> Session[bytes]:
    """The session under test, with the plugins ``--plugins`` asks for. (An idle timeout of
    60 s arms one timer per session; the queue is never run here, as nothing falls due.)"""
    plugins: list[Plugin[Any]] = [IdleTimeout(both=60), MonitorPlugin()] if WITH_PLUGINS else []
    return Session(protocol, PROCESSOR(), plugins, timers=TimerQueue())


class LengthPrefixed:
    """A hand-written ``codec.Protocol``: 4-byte big-endian length + body."""

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


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


class SyncEcho(Processor[bytes]):
    """The seed's shape: a plain ``def process`` replying with ``Session.write``."""

    def process(self, session: Session[bytes], msg: bytes) -> None:
        session.write(msg)


#: the processor every run uses (``--sync`` swaps in :class:`SyncEcho`)
PROCESSOR: type[Processor[bytes]] = Echo


class FakeTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.written = 0

    def write(self, data: Any) -> None:
        self.written += len(data)

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return default

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass


class MemoryByteStream(ByteStream):
    """Reads come from a queue of chunks; writes are counted."""

    def __init__(self) -> None:
        self.send_chunks, self.recv_chunks = anyio.create_memory_object_stream[bytes](1)
        self.written = 0

    async def receive(self, max_bytes: int = 65536) -> bytes:
        try:
            return await self.recv_chunks.receive()
        except anyio.EndOfStream:
            raise anyio.EndOfStream from None

    async def send(self, item: bytes) -> None:
        self.written += len(item)

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.recv_chunks.close()


async def run_native(protocol: Any, chunk: bytes, reads: int) -> float:
    session = new_session(protocol)
    engine: NativeEngine[bytes] = NativeEngine(session)
    transport = FakeTransport()
    engine.connection_made(transport)
    task = asyncio.create_task(engine.run())
    await asyncio.sleep(0)
    elapsed = await feed_from_callbacks(engine, chunk, reads)
    assert transport.written == reads * len(chunk), (transport.written, reads * len(chunk))
    engine.connection_lost(None)
    await task
    return elapsed


async def feed_from_callbacks(engine: Any, chunk: bytes, reads: int) -> float:
    """Deliver ``reads`` reads the way the loop does: each from a callback of its own,
    outside any task (``engine=None``: the same callbacks doing nothing, the harness)."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    n = len(chunk)
    left = reads

    def read() -> None:
        nonlocal left
        if engine is not None:
            view = engine.get_buffer(-1)
            if n <= len(view):
                view[:n] = chunk
                engine.buffer_updated(n)
            else:  # a read larger than the buffer offers comes in pieces
                done_bytes = 0
                while True:
                    size = min(len(view), n - done_bytes)
                    view[:size] = chunk[done_bytes : done_bytes + size]
                    engine.buffer_updated(size)
                    done_bytes += size
                    if done_bytes == n:
                        break
                    view = engine.get_buffer(-1)
        left -= 1
        if left:
            loop.call_soon(read)
        else:
            done.set_result(time.process_time())

    t0 = time.process_time()
    loop.call_soon(read)
    return await done - t0


async def run_anyio(protocol: Any, chunk: bytes, reads: int) -> float:
    session = new_session(protocol)
    stream = MemoryByteStream()
    engine: StreamEngine[bytes] = StreamEngine(session, stream)
    async with anyio.create_task_group() as tg:
        await tg.start(engine.run)
        t0 = time.process_time()
        for _ in range(reads):
            await stream.send_chunks.send(chunk)  # waits until the engine took the last one
        await anyio.wait_all_tasks_blocked()
        elapsed = time.process_time() - t0
        assert stream.written == reads * len(chunk), (stream.written, reads * len(chunk))
        stream.send_chunks.close()
    return elapsed


async def baseline(chunk: bytes, reads: int) -> float:
    """The harness alone: the same loop callbacks with nothing read."""
    return await feed_from_callbacks(None, chunk, reads)


async def measure(runner: Any, protocol: Any, chunk: bytes, reads: int) -> float:
    spent: float = await runner(protocol, chunk, reads)
    if runner is run_native:
        spent -= await baseline(chunk, reads)  # the harness's own loop iterations
    return spent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["native", "anyio", "both"], default="both")
    ap.add_argument("--frames", type=int, nargs="*", default=[1, 10], help="frames per read")
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--codec", action="store_true", help="codec.Codec instead of by hand")
    ap.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    ap.add_argument("--body", type=int, default=16, help="frame body size in bytes")
    ap.add_argument("--sync", action="store_true", help="a plain def process (Session.write)")
    ap.add_argument("--plugins", action="store_true", help="IdleTimeout(both=60) + MonitorPlugin")
    args = ap.parse_args()
    global WITH_PLUGINS
    WITH_PLUGINS = args.plugins
    if args.sync:
        global PROCESSOR
        PROCESSOR = SyncEcho
    if args.codec:
        protocol: Any = Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=1 << 20)
    else:
        protocol = LengthPrefixed()
    frame = args.body.to_bytes(4, "big") + b"x" * args.body
    engines = ["native", "anyio"] if args.engine == "both" else [args.engine]
    if args.loop == "trio":
        if args.engine == "native":
            ap.error("the native engine runs on asyncio only")
        engines = ["anyio"]
    backend = "trio" if args.loop == "trio" else "asyncio"
    backend_options = {"use_uvloop": True} if args.loop == "uvloop" else {}
    what = "codec.Codec" if args.codec else "hand-written protocol"
    shape = "def process" if args.sync else "async def process"
    shape += ", IdleTimeout + MonitorPlugin" if args.plugins else ""
    print(
        f"# python {sys.version.split()[0]}, {args.loop}, {what}, {shape}, {args.body} B "
        "frames; CPU us"
    )
    print("| engine | frames/read | us/message | us/read |")
    print("|---|---:|---:|---:|")
    for frames in args.frames:
        chunk = frame * frames
        reads = max(1, args.messages // frames)
        for name in engines:
            runner = run_native if name == "native" else run_anyio

            spent = anyio.run(
                measure,
                runner,
                protocol,
                chunk,
                reads,
                backend=backend,
                backend_options=backend_options,
            )
            per_msg = spent / (reads * frames) * 1e6
            print(f"| {name} | {frames} | {per_msg:.2f} | {per_msg * frames:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
