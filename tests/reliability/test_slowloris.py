"""Slowloris: 500 clients trickle a byte a second of frames that never complete.

Well-behaved clients' p99 round trip must stay within 2x what it is without the tricklers
(plus 2 ms: at a few milliseconds, one scheduler hiccup on a shared 2-core machine is
already a factor 2); rounds without and with them alternate, pooled per condition.
Reaping the tricklers is ``IdleTimeout(message=...)``'s job (the last test).
``bench/soak.py slowloris`` trickles for a minute.
"""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Processor, Server, Session, StateEvent
from transport.plugins import IdleTimeout

from .conftest import LOCAL, frame, percentile, raise_fd_limit, report, wait_until

pytestmark = pytest.mark.anyio

TRICKLERS = 500
CLIENTS = 10
ROUND_TRIPS = 100  # per client and round
ROUNDS = 5  # calm and trickled rounds alternate: a noisy moment hits both alike
#: a frame header announcing 60,000 bytes, then one byte a second of its body
NEVER_ENDING = struct.pack(">I", 60_000)


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


async def ping_pong(port: int, latencies: list[float]) -> None:
    async with await anyio.connect_tcp(LOCAL, port) as stream:
        request = frame(b"p" * 16)
        for _ in range(ROUND_TRIPS):
            started = time.perf_counter()
            await stream.send(request)
            got = b""
            while len(got) < len(request):
                got += await stream.receive()
            latencies.append(time.perf_counter() - started)


async def trickle(socks: list[socket.socket], sent: list[int]) -> None:
    """One byte a second on every socket, spread evenly over the second, paced on the
    clock. The tricklers live in the test's own event loop, beside the well-behaved clients
    whose latency is measured: so every send is followed by a checkpoint (a catch-up burst
    without one held the loop for up to 500 sends, milliseconds the server never saw), and
    a backlog of more than 0.1 s is dropped rather than caught up."""
    gap = 1.0 / len(socks)
    due = time.monotonic()
    while True:
        for sock in socks:
            due += gap
            now = time.monotonic()
            if due < now - 0.1:
                due = now  # (a stall of the whole loop: do not burst to catch up)
            await anyio.sleep(max(0.0, due - now))
            try:
                sock.send(b"x")
                sent[0] += 1
            except OSError:
                pass  # reaped: the server closed it


def open_tricklers(port: int, n: int) -> list[socket.socket]:
    socks = []
    for _ in range(n):
        sock = socket.socket()
        sock.setblocking(False)
        try:
            sock.connect((LOCAL, port))
        except BlockingIOError:
            pass
        socks.append(sock)
    return socks


async def latencies_with(server: Server[bytes], tricklers: int) -> list[float]:
    socks = open_tricklers(server.port, tricklers) if tricklers else []
    latencies: list[float] = []
    try:
        if socks:
            await wait_until(lambda: len(server.sessions) >= tricklers)
            for sock in socks:
                sock.send(NEVER_ENDING)
        async with anyio.create_task_group() as tg:
            if socks:
                tg.start_soon(trickle, socks, [0])
            async with anyio.create_task_group() as clients:
                for _ in range(CLIENTS):
                    clients.start_soon(ping_pong, server.port, latencies)
            tg.cancel_scope.cancel()
    finally:
        for sock in socks:
            sock.close()
    return latencies


async def test_tricklers_do_not_slow_others(
    codec32: Codec[bytes], anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    raise_fd_limit(4 * TRICKLERS)
    calm: list[float] = []
    stormy: list[float] = []
    with anyio.fail_after(90):
        async with Server(codec32, Echo(), host=LOCAL, port=0) as server:
            for _ in range(ROUNDS):
                calm += await latencies_with(server, 0)
                await wait_until(lambda: not server.sessions)
                stormy += await latencies_with(server, TRICKLERS)
                await wait_until(lambda: not server.sessions)
    base, loaded = percentile(calm, 0.99), percentile(stormy, 0.99)
    report(
        f"slowloris, {TRICKLERS} tricklers ({anyio_backend[0]})",
        p99_ms_without=base * 1e3,
        p99_ms_with=loaded * 1e3,
        ratio=loaded / base,
    )
    assert loaded <= 2 * base + 0.002


REAP_AFTER = 1.0


async def test_idle_timeout_reaps_tricklers(
    codec32: Codec[bytes], anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    """``IdleTimeout(message=...)`` closes every session whose frame stays unfinished that
    long, and leaves a session that completes messages alone."""
    closed: list[Session[bytes]] = []

    class Recorder(Echo):
        async def state_event(
            self, session: Session[bytes], event: StateEvent, exc: BaseException | None
        ) -> None:
            if event is StateEvent.SESSION_CLOSED:
                closed.append(session)

    n = 50
    with anyio.fail_after(30):
        async with Server(
            codec32,
            Recorder(),
            host=LOCAL,
            port=0,
            plugins=[IdleTimeout(message=REAP_AFTER)],
        ) as server:
            socks = open_tricklers(server.port, n)
            try:
                trickling = {sock.getsockname()[1] for sock in socks}
                await wait_until(lambda: len(server.sessions) >= n)
                for sock in socks:
                    sock.send(NEVER_ENDING)
                started = time.monotonic()
                async with anyio.create_task_group() as tg:
                    tg.start_soon(trickle, socks, [0])
                    latencies: list[float] = []
                    await ping_pong(server.port, latencies)  # completes messages: not reaped
                    await wait_until(lambda: len(reaped(closed, trickling)) >= n)
                    reaped_after = time.monotonic() - started
                    tg.cancel_scope.cancel()
            finally:  # (closed whatever happened: a leaked socket warns in a later test)
                for sock in socks:
                    sock.close()
    report(f"IdleTimeout(message={REAP_AFTER}) ({anyio_backend[0]})", reaped_s=reaped_after)
    # every trickler reaped; the ping-pong client (whose session may close as it leaves)
    # was never among them
    assert len(reaped(closed, trickling)) == n
    assert reaped_after < REAP_AFTER + 2.0


def reaped(closed: list[Session[bytes]], ports: set[int]) -> list[Session[bytes]]:
    """The closed sessions of the trickling clients (by their ports)."""
    return [s for s in closed if s.remote_address[1] in ports]
