"""Flood: one client writes as fast as it can and never reads.

Its session must stop reading once its replies pile up (backpressure), so its memory on the
server stays within its water marks, and every other client keeps being served promptly:
their p99 round trip stays under 50 ms (measured here with and without the flooder).
"""

from __future__ import annotations

import time
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream

from codec import Codec
from transport import DEFAULT_HIGH_WATER, DEFAULT_READ_SIZE, Processor, Server, Session

from .conftest import ALL_BACKENDS, LOCAL, frame, percentile, report, wait_until

pytestmark = pytest.mark.anyio

CLIENTS = 10
ROUND_TRIPS = 200  # per well-behaved client
P99_LIMIT = 0.050


class PeakEcho(Processor[bytes]):
    """Echoes; records each session's peak pending output (the value right after queuing a
    reply, which is its largest) and peak undecoded input."""

    def __init__(self) -> None:
        self.peak_pending: dict[Any, int] = {}
        self.peak_buffered: dict[Any, int] = {}

    async def process(self, session: Session[bytes], msg: bytes) -> None:
        stats = session.statistics()
        port = session.remote_address[1]
        pending = stats.pending_write_bytes + 4 + len(msg)
        if pending > self.peak_pending.get(port, 0):
            self.peak_pending[port] = pending
        if stats.buffered_read_bytes > self.peak_buffered.get(port, 0):
            self.peak_buffered[port] = stats.buffered_read_bytes
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
            assert got == request


async def flood(stream: SocketStream, sent: list[int]) -> None:
    chunk = frame(b"f" * 1024) * 64  # 64 KiB a write
    try:
        while True:
            await stream.send(chunk)
            sent[0] += len(chunk)
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        pass


async def measure(codec: Codec[bytes], flooding: bool) -> tuple[list[float], PeakEcho, int]:
    proc = PeakEcho()
    latencies: list[float] = []
    sent = [0]
    async with Server(codec, proc, host=LOCAL, port=0) as server:
        async with anyio.create_task_group() as flood_tg:
            if flooding:
                flooder = await anyio.connect_tcp(LOCAL, server.port)
                flood_tg.start_soon(flood, flooder, sent)
                # the flooder is being served (and will be held back) before the others start
                await wait_until(lambda: bool(proc.peak_pending), 0.001)
            async with anyio.create_task_group() as tg:
                for _ in range(CLIENTS):
                    tg.start_soon(ping_pong, server.port, latencies)
            flood_tg.cancel_scope.cancel()
        if flooding:
            flooder_port = flooder.extra(anyio.abc.SocketAttribute.local_port)
            await flooder.aclose()
            return latencies, proc, flooder_port
    return latencies, proc, 0


@pytest.mark.parametrize("anyio_backend", ALL_BACKENDS, indirect=True)
async def test_flooder_does_not_hurt_others(
    codec32: Codec[bytes], anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    with anyio.fail_after(60):
        calm, _, _ = await measure(codec32, flooding=False)
        stormy, proc, flooder = await measure(codec32, flooding=True)
    assert len(calm) == len(stormy) == CLIENTS * ROUND_TRIPS
    peak = proc.peak_pending[flooder]
    bound = DEFAULT_HIGH_WATER + DEFAULT_READ_SIZE
    name = anyio_backend[0] + ("+uvloop" if anyio_backend[1] else "")
    report(
        f"flood ({name})",
        p99_ms_without=percentile(calm, 0.99) * 1e3,
        p99_ms_with=percentile(stormy, 0.99) * 1e3,
        p50_ms_with=percentile(stormy, 0.5) * 1e3,
        flooder_peak_pending_KiB=peak / 1024,
        flooder_peak_buffered_KiB=proc.peak_buffered[flooder] / 1024,
    )
    assert percentile(stormy, 0.99) < P99_LIMIT
    # the flooder's replies: at most the high-water mark plus one read batch's worth
    assert peak <= bound, (peak, bound)
    assert proc.peak_buffered[flooder] <= DEFAULT_READ_SIZE
