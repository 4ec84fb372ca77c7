"""Many connections: 5,000 concurrent connections on one process, every one served.

Both ends live in this process (10,000 sockets), so the soft ``RLIMIT_NOFILE`` is raised as
far as the hard limit allows; the test says what it was and skips (saying why) when the
hard limit is too low. ``bench/soak.py connections`` runs the same with more.
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream

from codec import Codec
from transport import Processor, Server, Session

from .conftest import LOCAL, frame, open_fds, raise_fd_limit, report, wait_until

pytestmark = pytest.mark.anyio

CONNECTIONS = 5000
CONNECT_AT_ONCE = 256  # connects per batch (well under the listen backlog, 1024)


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


async def hold_many(codec: Codec[bytes], n: int, **server_options: Any) -> dict[str, float]:
    """Open ``n`` connections, exchange one frame on every one while all are open, check
    the server holds ``n`` sessions, close them all; the figures."""
    streams: list[SocketStream] = []
    async with Server(codec, Echo(), host=LOCAL, port=0, **server_options) as server:
        started = time.monotonic()

        async def connect() -> None:
            streams.append(await anyio.connect_tcp(LOCAL, server.port))

        # A connect returns once the kernel completed the handshake, before the server
        # accepts: connecting in batches, each accepted before the next, keeps the listen
        # queue under its backlog (an overflowing queue drops the handshake's last ACK and
        # leaves a client "connected" to nothing).
        for first in range(0, n, CONNECT_AT_ONCE):
            async with anyio.create_task_group() as tg:
                for _ in range(min(CONNECT_AT_ONCE, n - first)):
                    tg.start_soon(connect)
            await wait_until(lambda: server.statistics().accepted == len(streams))
        connected = time.monotonic()
        await wait_until(lambda: len(server.sessions) == n)

        async def exchange(stream: SocketStream, i: int) -> None:
            request = frame(b"%d" % i)
            await stream.send(request)
            got = b""
            while len(got) < len(request):
                got += await stream.receive()
            assert got == request

        async with anyio.create_task_group() as tg:
            for i, stream in enumerate(streams):
                tg.start_soon(exchange, stream, i)
        exchanged = time.monotonic()
        assert len(server.sessions) == n  # all still open, all served
        assert server.statistics().accepted == n
        fds = open_fds()
        for stream in streams:
            await stream.aclose()
        await wait_until(lambda: not server.sessions)
        closed = time.monotonic()
    return {
        "connect_s": connected - started,
        "exchange_s": exchanged - connected,
        "close_s": closed - exchanged,
        "open_fds_at_peak": fds,
    }


async def test_5000_concurrent_connections(
    codec32: Codec[bytes], anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    before, soft, hard = raise_fd_limit(2 * CONNECTIONS + 1000)
    if soft < 2 * CONNECTIONS + 200:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {2 * CONNECTIONS + 200}")
    with anyio.fail_after(120):
        figures = await hold_many(codec32, CONNECTIONS)
    report(
        f"{CONNECTIONS} connections ({anyio_backend[0]})",
        rlimit_nofile=f"soft {before} -> {soft}, hard {hard}",
        **figures,
    )
