"""The plugin seam: data hooks, the decode hook, pausing input, timers, and the one
exception contract every hook follows — on every engine, in both processor shapes."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from codec import Buffer, Codec
from transport import Plugin, Server, Session, StateEvent

from .conftest import Recorder

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


def frame(s: str) -> bytes:
    body = s.encode()
    return bytes([len(body)]) + body


async def read_exactly(stream: Any, n: int) -> bytes:
    got = bytearray()
    while len(got) < n:
        got += await stream.receive()
    return bytes(got)


class Tap(Plugin[Any]):
    """Records every byte read and written, per session."""

    def __init__(self) -> None:
        self.read: dict[Session[Any], bytearray] = {}
        self.written: dict[Session[Any], bytearray] = {}

    def data_read(self, session: Session[Any], data: memoryview) -> None:
        self.read.setdefault(session, bytearray()).extend(data)

    def data_written(self, session: Session[Any], data: memoryview) -> None:
        self.written.setdefault(session, bytearray()).extend(data)


async def test_data_hooks_see_every_byte_in_order(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    data = b"".join(frame(f"m{i}" * (i % 7)) for i in range(300))
    tap = Tap()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[tap], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(0, len(data), 97):  # pieces cut anywhere
                    await stream.send(data[i : i + 97])
                assert await read_exactly(stream, len(data)) == data
            s = await recorder.next_closed()
    assert bytes(tap.read[s]) == data
    assert bytes(tap.written[s]) == data


class StripMagic(Plugin[Any]):
    """Consumes a 4-byte ``HDR:`` preamble before the protocol sees the stream."""

    def before_decode(self, session: Session[Any], buffer: Buffer) -> bool:
        if session.attributes.get("preamble"):
            return True
        if len(buffer) < 4:
            return False
        session.attributes["preamble"] = buffer.take(4)
        return True


async def test_before_decode_consumes_a_preamble(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    recorder.echo = False
    data = b"HDR:" + frame("one") + frame("two")
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[StripMagic()], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(len(data)):  # every split point, the preamble's too
                    await stream.send(data[i : i + 1])
            s = await recorder.next_closed()
    assert s.attributes["preamble"] == b"HDR:"
    assert recorder.messages[s] == ["one", "two"]


class Throttle(Plugin[Any]):
    """Pauses the input after every message and resumes it from a timer."""

    def __init__(self) -> None:
        self.pauses = 0
        self.resumes = 0

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        session.pause_input()
        session.call_later(0.001, session.resume_input)
        return True

    def input_paused(self, session: Session[Any]) -> None:
        assert session.input_paused
        self.pauses += 1

    def input_resumed(self, session: Session[Any]) -> None:
        self.resumes += 1


async def test_pause_input_holds_buffered_messages_and_loses_none(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    words = [f"w{i}" for i in range(40)]
    data = b"".join(frame(w) for w in words)
    throttle = Throttle()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[throttle], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(data)  # one read holds them all
                assert await read_exactly(stream, len(data)) == data
            s = await recorder.next_closed()
    assert recorder.messages[s] == words
    # every message paused the input: the next one waited for the timer's resume
    assert throttle.pauses == throttle.resumes >= len(words) - 1


class SecondOwner(Plugin[Any]):
    """On "a": holds the input itself and for the application, then releases only its own
    hold from a timer."""

    def __init__(self) -> None:
        self.released = anyio.Event()
        self.session: Session[Any] | None = None

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        if msg == "a":
            self.session = session
            session.pause_input(self)
            session.pause_input()  # the application's own hold (owner None)

            def release() -> None:
                session.resume_input(self)
                session.resume_input(self)  # a second resume by the same owner: no-op
                self.released.set()

            session.call_later(0, release)
        return True


async def test_pause_input_holds_until_every_owner_resumes(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    owner = SecondOwner()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[owner], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("a") + frame("b"))
                assert await read_exactly(stream, 2) == frame("a")
                await owner.released.wait()
                await anyio.wait_all_tasks_blocked()  # "b" would be processed by now
                session = owner.session
                assert session is not None
                assert session.input_paused
                assert recorder.messages[session] == ["a"]
                session.resume_input()  # the application lets go: "b" goes on
                assert await read_exactly(stream, 2) == frame("b")
                # (read through the plugin: mypy keeps ``session.input_paused`` narrowed)
                assert owner.session is not None
                assert not owner.session.input_paused
            await recorder.next_closed()
    assert recorder.messages[session] == ["a", "b"]


async def test_timers_fire_and_cancel(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    fired: list[str] = []
    done = anyio.Event()
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hi"))
                assert await read_exactly(stream, 3) == frame("hi")
                (session,) = server.sessions
                cancelled = session.call_later(0.01, lambda: fired.append("cancelled"))
                session.call_later(0.05, lambda: fired.append("late"))
                session.call_later(0.02, lambda: fired.append("early"))
                session.call_later(0.06, done.set)
                cancelled.cancel()
                await done.wait()
            await recorder.next_closed()
    assert fired == ["early", "late"]


class Raising(Plugin[Any]):
    """Raises from one hook, for the first connection only."""

    def __init__(self, hook: str) -> None:
        self.hook = hook
        self.count = 0

    def _maybe(self, session: Session[Any], hook: str) -> None:
        if hook == self.hook and session.attributes.get("victim"):
            raise RuntimeError(f"{hook} failed")

    def accept(self, session: Session[Any]) -> bool:
        session.attributes["victim"] = self.count == 0
        self.count += 1
        return True

    def after_read(self, session: Session[Any], nbytes: int) -> None:
        self._maybe(session, "after_read")

    def data_read(self, session: Session[Any], data: memoryview) -> None:
        self._maybe(session, "data_read")

    def before_decode(self, session: Session[Any], buffer: Buffer) -> bool:
        self._maybe(session, "before_decode")
        return True

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        self._maybe(session, "before_process")
        if self.hook.startswith("input_") and session.attributes.get("victim"):
            session.pause_input()
            session.call_later(0, session.resume_input)
        if self.hook == "timer" and session.attributes.get("victim"):
            session.call_later(0, lambda: self._maybe(session, "timer"))
        return True

    def after_write(self, session: Session[Any], nbytes: int) -> None:
        self._maybe(session, "after_write")

    def data_written(self, session: Session[Any], data: memoryview) -> None:
        self._maybe(session, "data_written")

    def input_paused(self, session: Session[Any]) -> None:
        self._maybe(session, "input_paused")

    def input_resumed(self, session: Session[Any]) -> None:
        self._maybe(session, "input_resumed")


HOOKS = [
    "after_read",
    "data_read",
    "before_decode",
    "before_process",
    "after_write",
    "data_written",
    "input_paused",
    "input_resumed",
    "timer",
]


@pytest.mark.parametrize("hook", HOOKS)
async def test_a_raising_hook_aborts_only_its_session(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any], hook: str
) -> None:
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[Raising(hook)], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as victim:
                await victim.send(frame("x") + frame("y"))
                victim_session = await recorder.next_closed()
                async with await anyio.connect_tcp(LOCAL, server.port) as good:
                    for word in ("a", "b", "c"):  # the other session is untouched
                        await good.send(frame(word))
                        assert await read_exactly(good, 2) == frame(word)
    events = recorder.events[victim_session]
    assert events[0] == E.NEW_SESSION
    assert events[-1] == E.SESSION_CLOSED
    assert E.INTERNAL_EXCEPTION in events
    exc = recorder.errors[victim_session][events.index(E.INTERNAL_EXCEPTION)]
    assert isinstance(exc, RuntimeError)
    assert hook in str(exc)


async def test_fail_input_from_a_timer_ends_the_session_with_its_reason(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    reason = TimeoutError("no message for 0.01 s")
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hi"))
                assert await read_exactly(stream, 3) == frame("hi")
                (session,) = server.sessions
                session.call_later(0.01, lambda: session.fail_input(reason))
                with pytest.raises(anyio.EndOfStream):  # the server closes gracefully
                    await stream.receive()
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_EXCEPTION, E.SESSION_CLOSED]
    assert recorder.errors[s][1] is reason


class RaisingBeforeProcess(Plugin[Any]):
    """Overrides only ``before_process`` (so a plain-function processor's reads take the
    inline path), raising for the first connection."""

    def __init__(self) -> None:
        self.count = 0

    def accept(self, session: Session[Any]) -> bool:
        session.attributes["victim"] = self.count == 0
        self.count += 1
        return True

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        if session.attributes["victim"]:
            raise RuntimeError("before_process failed")
        return True


async def test_a_raising_before_process_on_the_inline_path(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with Server(
            string_codec,
            recorder,
            host=LOCAL,
            port=0,
            plugins=[RaisingBeforeProcess()],
            **engine,
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as victim:
                await victim.send(frame("x"))
                victim_session = await recorder.next_closed()
            async with await anyio.connect_tcp(LOCAL, server.port) as good:
                await good.send(frame("ok"))
                assert await read_exactly(good, 3) == frame("ok")
    events = recorder.events[victim_session]
    assert events[0] == E.NEW_SESSION
    assert E.INTERNAL_EXCEPTION in events
    assert E.INPUT_EXCEPTION not in events
    assert events[-1] == E.SESSION_CLOSED
