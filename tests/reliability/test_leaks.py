"""Leaks: connect/exchange/close cycles leave nothing behind, without the cyclic GC.

The cycles run with ``gc.disable()``: what a long-running server frees must be freed by
reference counting alone (a reference cycle between a session and its engine would keep
every closed session, its buffers and its socket objects alive until a collection).
Measured before and after: open file descriptors (``/proc/self/fd``), live tasks, the
server's sessions, ``Session`` objects alive, and ``tracemalloc``'s traced memory.
``bench/soak.py cycles`` runs 10,000 cycles.
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Client, Processor, Server, Session

from .conftest import LOCAL, open_fds, report, wait_until

pytestmark = pytest.mark.anyio

CYCLES = 500
WARMUP = 50


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


def live_sessions() -> int:
    return sum(isinstance(o, Session) for o in gc.get_objects())


def snapshot(server: Server[bytes]) -> dict[str, int]:
    return {
        "fds": open_fds(),
        "tasks": len(anyio.get_running_tasks()),
        "server_sessions": len(server.sessions),
        "live_sessions": live_sessions(),
        "traced_bytes": tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else 0,
    }


async def cycles(codec: Codec[bytes], n: int, **engine: Any) -> dict[str, Any]:
    """``n`` cycles against one server with the cyclic GC off; the snapshots around them."""
    async with Server(codec, Echo(), host=LOCAL, port=0, **engine) as server:

        async def one(i: int) -> None:
            async with Client(codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send(b"%d" % i)
                assert await session.receive() == b"%d" % i

        for i in range(WARMUP):  # first-use caches, lazily created objects
            await one(i)
        await wait_until(lambda: not server.sessions)
        gc.collect()
        gc.disable()
        tracemalloc.start()
        try:
            before = snapshot(server)
            started = time.monotonic()
            for i in range(n):
                await one(i)
            await wait_until(lambda: not server.sessions)
            elapsed = time.monotonic() - started
            after = snapshot(server)
        finally:
            tracemalloc.stop()
            gc.enable()
        collected = gc.collect()
        after_gc = live_sessions()
    return {
        "before": before,
        "after": after,
        "seconds": elapsed,
        "collected_by_gc": collected,
        "live_sessions_after_gc": after_gc,
    }


async def test_connect_exchange_close_cycles_leak_nothing(
    codec32: Codec[bytes], engine: dict[str, Any]
) -> None:
    with anyio.fail_after(120):
        result = await cycles(codec32, CYCLES, **engine)
    before, after = result["before"], result["after"]
    growth = after["traced_bytes"] - before["traced_bytes"]
    report(
        f"{CYCLES} cycles, gc disabled ({engine['engine']})",
        fds=f"{before['fds']}->{after['fds']}",
        tasks=f"{before['tasks']}->{after['tasks']}",
        live_sessions=f"{before['live_sessions']}->{after['live_sessions']}",
        traced_growth_bytes=growth,
        bytes_per_cycle=growth / CYCLES,
        objects_freed_by_gc_after=result["collected_by_gc"],
        seconds=result["seconds"],
    )
    assert after["fds"] == before["fds"]
    assert after["tasks"] == before["tasks"]
    assert after["server_sessions"] == 0
    # every Session of the cycles (two a cycle: the client's and the server's) is freed by
    # reference counting: none waits for the cyclic garbage collector
    assert after["live_sessions"] <= before["live_sessions"] + 2, (
        f"{after['live_sessions'] - before['live_sessions']} sessions of {2 * CYCLES} still "
        f"alive with the cyclic GC off ({result['live_sessions_after_gc']} after gc.collect())"
    )
    assert growth < 64 * 1024, f"{growth} bytes still allocated after {CYCLES} cycles"
