"""IdleTimeout and Heartbeat: idle, half-open, slowloris and silent peers, on every engine
and processor shape; one timer per session, not a task."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Server, Session, StateEvent
from transport.plugins import Heartbeat, HeartbeatTimeout, IdleTimeout, IdleTimeoutError

from .conftest import Recorder
from .test_seam import frame, read_exactly

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


async def until_eof(stream: Any) -> bytes:
    """Everything the server sends until it closes the connection."""
    got = bytearray()
    try:
        while True:
            got += await stream.receive()
    except (anyio.EndOfStream, anyio.BrokenResourceError):
        return bytes(got)


def idle_error(recorder: Recorder, session: Session[Any]) -> BaseException | None:
    events = recorder.events[session]
    assert events[0] is E.NEW_SESSION
    assert events[-1] is E.SESSION_CLOSED
    assert E.INPUT_EXCEPTION in events, events
    return recorder.errors[session][events.index(E.INPUT_EXCEPTION)]


@pytest.mark.parametrize("kind", ["read", "both", "message"])
async def test_a_silent_peer_is_closed(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any], kind: str
) -> None:
    idle = IdleTimeout(**{kind: 0.2})
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[idle], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hi"))
                assert await read_exactly(stream, 3) == frame("hi")
                quiet_since = anyio.current_time()
                assert await until_eof(stream) == b""  # the server closed, gracefully
                waited = anyio.current_time() - quiet_since
            s = await recorder.next_closed()
    exc = idle_error(recorder, s)
    assert isinstance(exc, IdleTimeoutError)
    assert isinstance(exc, TimeoutError)
    # "both" may be the write side: the echo left a little after the read
    assert exc.kind == kind
    assert exc.seconds == 0.2
    assert str(exc).endswith(f"for 0.2 s ({kind} idle timeout)")
    assert 0.15 <= waited < 5
    assert idle.idle_sessions() == 0  # forgotten at SESSION_CLOSED


async def test_slowloris_is_idle_by_message(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    """A byte every 50 ms of a frame never finished: read= would never fire, message= does."""
    idle = IdleTimeout(read=0.5, message=0.3)
    sent = 0
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[idle], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                start = anyio.current_time()
                async with anyio.create_task_group() as tg:

                    async def trickle() -> None:
                        nonlocal sent
                        await stream.send(b"\xc8")  # a 200-byte string that never ends
                        while True:
                            await anyio.sleep(0.05)
                            await stream.send(b"x")
                            sent += 1

                    tg.start_soon(trickle)
                    assert await until_eof(stream) == b""
                    tg.cancel_scope.cancel()
                elapsed = anyio.current_time() - start
            s = await recorder.next_closed()
    exc = idle_error(recorder, s)
    assert isinstance(exc, IdleTimeoutError)
    assert exc.kind == "message"
    assert recorder.messages.get(s) is None
    assert 0.25 <= elapsed < 5
    assert sent >= 3  # bytes kept coming: the read timeout alone would have waited forever


async def test_write_idle_fires_when_nothing_is_written(
    string_codec: Codec[str], shape: str, engine: dict[str, Any]
) -> None:
    from .conftest import RECORDERS

    recorder = RECORDERS[shape](echo=False)  # reads keep coming, nothing is written
    with anyio.fail_after(10):
        async with Server(
            string_codec,
            recorder,
            host=LOCAL,
            port=0,
            plugins=[IdleTimeout(read=5, write=0.3)],
            **engine,
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                closed = False
                while not closed:  # a message every 50 ms until the server closes
                    try:
                        await stream.send(frame("tick"))
                    except (anyio.BrokenResourceError, OSError):
                        break
                    with anyio.move_on_after(0.05):
                        closed = await until_eof(stream) == b""
            s = await recorder.next_closed()
    exc = idle_error(recorder, s)
    assert isinstance(exc, IdleTimeoutError)
    assert exc.kind == "write"
    assert len(recorder.messages[s]) >= 3


async def test_an_active_peer_is_never_idle(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    idle = IdleTimeout(read=0.15, write=0.15, both=0.15, message=0.15)
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[idle], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(12):  # 0.6 s: four times the limit
                    await stream.send(frame(f"m{i}"))
                    assert await read_exactly(stream, len(frame(f"m{i}"))) == frame(f"m{i}")
                    await anyio.sleep(0.05)
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]
    assert len(recorder.messages[s]) == 12


async def test_one_timer_per_session_and_no_task_per_session(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """Twenty idle-watched sessions cost the server one timer each and one task in all."""

    async def tasks_with(plugins: list[Any]) -> tuple[int, int]:
        recorder = Recorder()
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=plugins, **engine
        ) as server:
            streams = [await anyio.connect_tcp(LOCAL, server.port) for _ in range(20)]
            for stream in streams:
                await stream.send(frame("x"))
                assert await read_exactly(stream, 2) == frame("x")
            tasks = len(anyio.get_running_tasks())
            timers = len(server._options.timers)
            for stream in streams:
                await stream.aclose()
            for _ in streams:
                await recorder.next_closed()
        return tasks, timers

    with anyio.fail_after(20):
        bare, no_timers = await tasks_with([])
        watched, timers = await tasks_with([IdleTimeout(both=60, message=60)])
    assert no_timers == 0
    assert timers == 20
    assert watched - bare == 1  # the server's timer queue, whatever the number of sessions


# -- Heartbeat -----------------------------------------------------------------------------
def is_pong(msg: str) -> bool:
    return msg == "pong"


async def test_heartbeat_keeps_a_quiet_peer_and_hides_replies(
    string_codec: Codec[str], shape: str, engine: dict[str, Any]
) -> None:
    from .conftest import RECORDERS

    recorder = RECORDERS[shape](echo=False)
    beat = Heartbeat(0.1, "ping", is_pong, max_missed=2)
    pings = 0
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[beat], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hello"))
                while pings < 5:  # 5 heartbeats, each answered: 2 missed would close
                    assert await read_exactly(stream, 5) == frame("ping")
                    pings += 1
                    await stream.send(frame("pong"))
                await stream.send(frame("bye"))
            s = await recorder.next_closed()
    assert recorder.messages[s] == ["hello", "bye"]  # the replies never reached process
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_heartbeat_closes_after_max_missed(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    beat = Heartbeat(0.1, "ping", is_pong, max_missed=3)
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[beat], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                start = anyio.current_time()
                got = await until_eof(stream)  # never answers
                elapsed = anyio.current_time() - start
            s = await recorder.next_closed()
    assert got == frame("ping") * 3
    exc = idle_error(recorder, s)
    assert isinstance(exc, HeartbeatTimeout)
    assert exc.missed == 3
    assert 0.35 <= elapsed < 5  # pings at 0.1, 0.2, 0.3; closed at 0.4


async def test_a_raising_is_reply_aborts_only_its_session(
    string_codec: Codec[str],
    recorder: Recorder,
    engine: dict[str, Any],
) -> None:
    def is_reply(msg: str) -> bool:
        if msg == "bad":
            raise ValueError("cannot tell")
        return msg == "pong"

    beat = Heartbeat(30, "ping", is_reply)
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[beat], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as victim:
                await victim.send(frame("bad"))
                assert await until_eof(victim) == b""
                v = await recorder.next_closed()
            async with await anyio.connect_tcp(LOCAL, server.port) as good:
                await good.send(frame("ok") + frame("pong") + frame("ok2"))
                assert await read_exactly(good, 7) == frame("ok") + frame("ok2")
            g = await recorder.next_closed()
    events = recorder.events[v]
    assert E.INTERNAL_EXCEPTION in events
    assert isinstance(recorder.errors[v][events.index(E.INTERNAL_EXCEPTION)], ValueError)
    assert recorder.messages[g] == ["ok", "ok2"]


async def test_a_heartbeat_the_protocol_cannot_encode_aborts_its_session(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    beat = Heartbeat(0.05, 12345, is_pong)  # type: ignore[arg-type]  # not a str
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[beat], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                assert await until_eof(stream) == b""
            s = await recorder.next_closed()
    events = recorder.events[s]
    assert events[0] is E.NEW_SESSION
    assert events[-1] is E.SESSION_CLOSED
    assert E.INTERNAL_EXCEPTION in events  # the hook contract: that session, aborted


def test_idle_and_heartbeat_arguments() -> None:
    with pytest.raises(ValueError, match="at least one"):
        IdleTimeout()
    with pytest.raises(ValueError, match="positive"):
        IdleTimeout(read=0)
    with pytest.raises(ValueError, match="interval"):
        Heartbeat(0, "ping", is_pong)
    with pytest.raises(ValueError, match="max_missed"):
        Heartbeat(1, "ping", is_pong, max_missed=0)
    assert repr(IdleTimeout(read=1, message=2.5)) == "IdleTimeout(read=1, message=2.5)"
    err = IdleTimeoutError("write", 3)
    assert (err.kind, err.seconds) == ("write", 3)
    import pickle

    assert pickle.loads(pickle.dumps(err)).kind == "write"


async def test_on_a_client_heartbeat_then_idle_timeout(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """Plugins serve clients too: a client pings a server that went quiet (its processor
    answers nothing), and its read timeout ends the session."""
    from transport import Client

    server_side = Recorder(echo=False)  # receives the pings, never answers
    client_side = Recorder(echo=False)
    plugins: list[Any] = [Heartbeat(0.05, "ping", is_pong, max_missed=100), IdleTimeout(read=0.3)]
    with anyio.fail_after(10):
        async with Server(string_codec, server_side, host=LOCAL, port=0, **engine) as server:
            async with Client(
                string_codec, client_side, host=LOCAL, port=server.port, plugins=plugins, **engine
            ) as session:
                await session.wait_closed()
            s = await server_side.next_closed()
    exc = idle_error(client_side, session)
    assert isinstance(exc, IdleTimeoutError)
    assert exc.kind == "read"
    assert server_side.messages[s][:3] == ["ping", "ping", "ping"]
