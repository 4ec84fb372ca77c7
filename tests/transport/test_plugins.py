"""Plugin hooks, proven with the sample MonitorPlugin and a recording plugin."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Client, Plugin, Server, Session, StateEvent
from transport.plugins import MonitorPlugin

from .conftest import Recorder

pytestmark = pytest.mark.anyio
E = StateEvent
LOCAL = "127.0.0.1"


class Trace(Plugin[Any]):
    """Records every hook call; drops messages equal to "drop"."""

    def __init__(self, recorder: Recorder) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.recorder = recorder

    def accept(self, session: Session[Any]) -> bool:
        self.calls.append(("accept", None))
        return True

    def after_read(self, session: Session[Any], nbytes: int) -> None:
        self.calls.append(("after_read", nbytes))

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        self.calls.append(("before_process", msg))
        return bool(msg != "drop")

    def after_write(self, session: Session[Any], nbytes: int) -> None:
        self.calls.append(("after_write", nbytes))

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        # plugins see each event before the processor does
        seen = self.recorder.events.get(session, [])
        self.calls.append(("state_event", (event, len(seen))))


async def test_hooks_in_order(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    recorder = Recorder()
    trace = Trace(recorder)
    monitor = MonitorPlugin()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[trace, monitor], **engine
        ) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send("drop")
                await session.send("keep")
                assert await session.receive() == "keep"
            s = await recorder.next_closed()
    assert recorder.messages[s] == ["keep"]  # "drop" never reached the processor
    names = [name for name, _ in trace.calls]
    assert names[:2] == ["accept", "state_event"]
    assert trace.calls[1] == ("state_event", (E.NEW_SESSION, 0))
    assert ("before_process", "drop") in trace.calls
    assert ("after_write", 5) in trace.calls  # the echo of "keep": 1 + 4 bytes
    assert sum(n for name, n in trace.calls if name == "after_read") == 10
    assert trace.calls[-1] == ("state_event", (E.SESSION_CLOSED, 2))
    snap = monitor.snapshot(reset=True)
    assert snap.accepted == 1
    assert snap.active == 0
    assert snap.bytes_read == 10
    assert snap.bytes_written == 5
    assert snap.messages_processed == 1  # "drop" was dropped by the plugin before it
    assert snap.events == {E.NEW_SESSION: 1, E.INPUT_SHUTDOWN: 1, E.SESSION_CLOSED: 1}
    assert monitor.snapshot().accepted == 0


async def test_monitor_counts_many_sessions(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    monitor = MonitorPlugin()
    recorder = Recorder()
    with anyio.fail_after(20):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[monitor], **engine
        ) as server:
            async with anyio.create_task_group() as tg:
                for _ in range(10):

                    async def one() -> None:
                        async with Client(string_codec, host=LOCAL, port=server.port) as s:
                            await s.send("x")
                            assert await s.receive() == "x"

                    tg.start_soon(one)
            for _ in range(10):
                await recorder.next_closed()
    snap = monitor.snapshot()
    assert snap.accepted == 10
    assert snap.active == 0
    assert snap.messages_processed == 10
    assert snap.events[E.SESSION_CLOSED] == 10


async def test_monitor_reads_live_sessions_and_skips_dropped(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """Counters are current while a session is open (they are the sessions' own), and a
    message a plugin drops is not "processed" even when that plugin stands after the monitor."""
    recorder = Recorder()
    trace = Trace(recorder)
    monitor = MonitorPlugin()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[monitor, trace], **engine
        ) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send("drop")
                await session.send("keep")
                assert await session.receive() == "keep"
                live = monitor.snapshot()
                (served,) = recorder.messages
                stats = served.statistics()
            await recorder.next_closed()
    assert (live.active, live.bytes_read, live.bytes_written) == (1, 10, 5)
    assert live.messages_processed == 1
    assert (stats.messages_received, stats.messages_dropped) == (2, 1)
    after = monitor.snapshot()
    assert (after.active, after.bytes_read, after.bytes_written) == (0, 10, 5)
    assert after.messages_processed == 1
    assert monitor.totals() == after  # no period was started


async def test_monitor_totals_never_decrease_under_load(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A scrape from another thread while sessions come and go sees counters that only grow
    (a closing session is never counted twice nor lost for a moment) and ends exact."""
    monitor = MonitorPlugin()
    recorder = Recorder()
    seen: list[tuple[int, int, int]] = []
    stop = threading.Event()

    def scrape() -> None:
        for _ in range(1_000_000):  # bounded; ends at ``stop`` long before
            t = monitor.totals()
            seen.append((t.bytes_read, t.bytes_written, t.messages_processed))
            if stop.wait(0.0005):
                return

    clients, per_client = 8, 20
    scraper = threading.Thread(target=scrape)
    scraper.start()
    try:
        with anyio.fail_after(20):
            async with Server(
                string_codec, recorder, host=LOCAL, port=0, plugins=[monitor], **engine
            ) as server:

                async def one() -> None:
                    async with Client(string_codec, host=LOCAL, port=server.port) as s:
                        for i in range(per_client):
                            await s.send(f"m{i:02d}")
                            assert await s.receive() == f"m{i:02d}"

                async with anyio.create_task_group() as tg:
                    for _ in range(clients):
                        tg.start_soon(one)
                for _ in range(clients):
                    await recorder.next_closed()
    finally:
        stop.set()
        scraper.join(10)
    final = monitor.totals()
    frames = clients * per_client * 4  # 1-byte prefix + 3 bytes each way
    assert (final.bytes_read, final.bytes_written) == (frames, frames)
    assert final.messages_processed == clients * per_client
    assert final.active == 0
    for earlier, later in itertools.pairwise(seen):
        assert all(a <= b for a, b in zip(earlier, later, strict=True)), (earlier, later)
    assert seen[-1] <= (frames, frames, clients * per_client)


def test_plugins_all_matches_exports() -> None:
    import types

    import transport.plugins as plugins

    names = {
        n
        for n, v in vars(plugins).items()
        if n.isidentifier() and not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    assert set(plugins.__all__) == names - {"annotations"}
