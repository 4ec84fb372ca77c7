"""Memory per connection, measured with ``tracemalloc`` (Python allocations of the server's
side: session, engine, buffers; the kernel's socket buffers are not counted; RSS is not
used: inside a test process the allocator reuses freed memory, so it hardly moves).

Three moments, ``N`` connections at once: connected and idle; after one small exchange
(the receive buffer has been allocated for a read); with half a frame buffered. The figures
are printed and documented in ``docs/reliability.md`` with the worst case the options allow
(receive buffer up to ``max_frame_size`` + one read, pending output up to ``high_water`` +
one message).
"""

from __future__ import annotations

import gc
import socket
import tracemalloc
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Processor, Server, Session
from transport._core import INITIAL_READ_SIZE

from .conftest import BYTES32, LOCAL, frame, report, wait_until

pytestmark = pytest.mark.anyio

N = 100
HALF = 30_000  # bytes of a 60,000-byte frame left buffered


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


async def per_connection(**engine: Any) -> dict[str, float]:
    codec = Codec(BYTES32, max_frame_size=1 << 20)
    figures: dict[str, float] = {}
    async with Server(codec, Echo(), host=LOCAL, port=0, **engine) as server:
        clients = [socket.socket() for _ in range(N)]  # (allocated before the baseline)
        gc.collect()
        tracemalloc.start()
        try:
            traced0 = tracemalloc.get_traced_memory()[0]

            def note(name: str) -> None:
                figures[name] = (tracemalloc.get_traced_memory()[0] - traced0) / N

            for sock in clients:
                sock.setblocking(False)
                try:
                    sock.connect((LOCAL, server.port))
                except BlockingIOError:
                    pass
            await wait_until(lambda: len(server.sessions) == N)
            note("idle")
            for sock in clients:
                sock.send(frame(b"x" * 16))
            await wait_until(lambda: all(s.statistics().bytes_sent >= 20 for s in server.sessions))
            note("after_exchange")
            for sock in clients:
                sock.send(frame(b"y" * 2 * HALF)[:HALF])
            await wait_until(
                lambda: all(s.statistics().buffered_read_bytes >= HALF for s in server.sessions)
            )
            note("half_frame")
        finally:
            tracemalloc.stop()
            for sock in clients:
                sock.close()
    return figures


async def test_memory_per_connection(engine: dict[str, Any]) -> None:
    with anyio.fail_after(60):
        f = await per_connection(**engine)
    report(
        f"memory per connection, bytes ({engine['engine']})",
        **{k: round(v) for k, v in f.items()},
    )
    # the bounds docs/reliability.md states: an idle session costs at most one initial
    # read's buffer (64 KiB) plus 32 KiB of objects; half a frame adds that half frame
    assert f["idle"] <= INITIAL_READ_SIZE + 32 * 1024
    assert f["after_exchange"] <= INITIAL_READ_SIZE + 32 * 1024
    assert f["half_frame"] - f["after_exchange"] <= HALF + 16 * 1024
