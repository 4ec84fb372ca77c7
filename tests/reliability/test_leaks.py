"""Leaks: connect/exchange/close cycles leave nothing behind, without the cyclic GC.

The cycles run with ``gc.disable()``: what a long-running server frees must be freed by
reference counting alone (a reference cycle between a session and its engine would keep
every closed session, its buffers and its socket objects alive until a collection).
Measured before and after: open file descriptors (``/proc/self/fd``), live tasks, the
server's sessions, ``Session`` objects alive, and ``tracemalloc``'s traced memory, twice:
before a collection (what reference counting freed) and after one (what nothing frees: a
true leak). The objects only the collection frees are then examined: none may be
wirekit's. On CPython < 3.12 asyncio's own socket transport is such a cycle (its
``_read_ready_cb`` is a bound method of itself: python/cpython#100348, fixed in 3.12), so
on plain asyncio part of every connection waits for the collector whatever wirekit does;
the test reports it and bounds everything else. ``bench/soak.py cycles`` runs 10,000.
"""

from __future__ import annotations

import collections
import gc
import sys
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


#: connect deadline of the cycles' clients: asyncio keeps a cancelled timer (and the cancel
#: scope it belongs to) until its time comes, so the measure waits that long after the cycles
CONNECT_TIMEOUT = 0.5
#: where the objects of a known reference cycle of the standard library come from
STDLIB_CYCLE_MODULES = ("asyncio.selector_events", "asyncio.trsock", "socket", "builtins")


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


def cyclic_garbage() -> tuple[int, dict[str, int], dict[str, int]]:
    """Collect, counting what only the cyclic collector could free: how many objects, by
    module (a bound method counts as its object's) and by type; then free them."""
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        gc.collect()
        garbage = list(gc.garbage)
    finally:
        gc.garbage.clear()
        gc.set_debug(0)
    modules = collections.Counter(module_of(o) for o in garbage)
    types = collections.Counter(type(o).__qualname__ for o in garbage)
    count = len(garbage)
    del garbage
    gc.collect()  # (DEBUG_SAVEALL kept them: free them now)
    return count, dict(modules), dict(types)


def module_of(obj: Any) -> str:
    """The module an object of the garbage belongs to (a bound method: its object's)."""
    target = getattr(obj, "__self__", obj) if type(obj).__name__ == "method" else obj
    return str(type(target).__module__)


async def cycles(codec: Codec[bytes], n: int, **engine: Any) -> dict[str, Any]:
    """``n`` cycles against one server with the cyclic GC off; the snapshots around them."""
    async with Server(codec, Echo(), host=LOCAL, port=0, **engine) as server:

        async def one(i: int) -> None:
            async with Client(
                codec, host=LOCAL, port=server.port, connect_timeout=CONNECT_TIMEOUT, **engine
            ) as session:
                await session.send(b"%d" % i)
                assert await session.receive() == b"%d" % i

        for i in range(WARMUP):  # first-use caches, lazily created objects
            await one(i)
        await wait_until(lambda: not server.sessions)
        await anyio.sleep(CONNECT_TIMEOUT)  # (the warm-up's connect timers fire)
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
            await anyio.sleep(CONNECT_TIMEOUT)  # (the cycles' connect timers fire)
            after = snapshot(server)
            count, modules, types = cyclic_garbage()
            after_gc = snapshot(server)
        finally:
            tracemalloc.stop()
            gc.enable()
    return {
        "before": before,
        "after": after,
        "after_gc": after_gc,
        "seconds": elapsed,
        "garbage": count,
        "garbage_modules": modules,
        "garbage_types": types,
    }


async def test_connect_exchange_close_cycles_leak_nothing(
    codec32: Codec[bytes], engine: dict[str, Any], anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    with anyio.fail_after(120):
        result = await cycles(codec32, CYCLES, **engine)
    before, after, after_gc = result["before"], result["after"], result["after_gc"]
    growth = after["traced_bytes"] - before["traced_bytes"]
    leaked = after_gc["traced_bytes"] - before["traced_bytes"]
    report(
        f"{CYCLES} cycles, gc disabled ({anyio_backend[0]}, {engine['engine']})",
        fds=f"{before['fds']}->{after['fds']}",
        tasks=f"{before['tasks']}->{after['tasks']}",
        live_sessions=f"{before['live_sessions']}->{after['live_sessions']}",
        bytes_per_cycle_without_gc=growth / CYCLES,
        bytes_per_cycle_after_gc=leaked / CYCLES,
        cyclic_garbage_objects=result["garbage"],
        garbage_types=result["garbage_types"],
        seconds=result["seconds"],
    )
    assert after["fds"] == before["fds"]
    assert after["tasks"] == before["tasks"]
    assert after["server_sessions"] == 0
    # every Session of the cycles (two a cycle: the client's and the server's) is freed by
    # reference counting: none waits for the cyclic garbage collector
    assert after["live_sessions"] <= before["live_sessions"] + 2, (
        f"{after['live_sessions'] - before['live_sessions']} sessions of {2 * CYCLES} still "
        f"alive with the cyclic GC off"
    )
    # nothing at all is kept for good
    assert leaked < 64 * 1024, f"{leaked} bytes still allocated after a full collection"
    # and what waited for the collector is not wirekit's: only the standard library's own
    # socket transport cycle of CPython < 3.12's asyncio, if that
    known = (
        sys.version_info < (3, 12)
        and anyio_backend[0] == "asyncio"
        and not anyio_backend[1].get("use_uvloop")
    )
    foreign = {m: k for m, k in result["garbage_modules"].items() if m not in STDLIB_CYCLE_MODULES}
    assert not foreign, f"objects only the cyclic GC frees: {result['garbage_types']}"
    if not known:
        assert result["garbage"] == 0, result["garbage_types"]
        assert growth < 64 * 1024, f"{growth} bytes waited for the cyclic GC"
