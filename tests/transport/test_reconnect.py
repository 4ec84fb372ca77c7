"""Client(reconnect=Reconnect(...)): a push-style client survives a server restart on the
same port (a new session each time, state restored by on_reconnect), reports every attempt,
and gives up with ReconnectFailed from its block; on every engine and processor shape."""

from __future__ import annotations

import itertools
import socket
from typing import Any

import anyio
import pytest
from anyio.abc import TaskStatus

from codec import Codec
from transport import Client, Reconnect, ReconnectAttempt, ReconnectFailed, Server, Session
from transport import StateEvent as E

from .conftest import RECORDERS, Recorder

pytestmark = pytest.mark.anyio
LOCAL = "127.0.0.1"


def free_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


async def serve(
    codec: Codec[str],
    processor: Recorder,
    port: int,
    stop: anyio.Event,
    engine: dict[str, Any],
    *,
    task_status: TaskStatus[int],
) -> None:
    """A server in a task of its own: listening on ``port`` until ``stop`` is set."""
    async with Server(codec, processor, host=LOCAL, port=port, **engine) as server:
        task_status.started(server.port)
        await stop.wait()


class Subscriptions(Recorder):
    """The server: counts "subscribe" messages, per server instance."""

    def __init__(self) -> None:
        super().__init__(echo=False)
        self.subscribed = anyio.Event()

    async def process(self, session: Session[Any], msg: Any) -> None:
        await super().process(session, msg)
        if msg == "subscribe":
            self.subscribed.set()


async def test_reconnects_after_a_server_restart(
    string_codec: Codec[str], shape: str, engine: dict[str, Any]
) -> None:
    client_side = RECORDERS[shape](echo=False)
    attempts: list[ReconnectAttempt] = []
    failed_once = anyio.Event()
    restored: list[Session[Any]] = []

    def on_attempt(attempt: ReconnectAttempt) -> None:
        attempts.append(attempt)
        if isinstance(attempt.error, OSError) and not isinstance(
            attempt.error, ConnectionResetError
        ):
            failed_once.set()  # an attempt was refused: the server is down

    async def on_reconnect(session: Session[Any]) -> None:
        restored.append(session)
        await session.send("subscribe")

    policy = Reconnect(
        initial_delay=0.02, max_delay=0.1, on_attempt=on_attempt, on_reconnect=on_reconnect
    )
    first = Subscriptions()
    second = Subscriptions()
    stop_first = anyio.Event()
    with anyio.fail_after(20):
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve, string_codec, first, 0, stop_first, engine)
            client = Client(
                string_codec, client_side, host=LOCAL, port=port, reconnect=policy, **engine
            )
            async with client as session:
                assert client.session is session
                await first.subscribed.wait()
                stop_first.set()  # the server goes away...
                await session.wait_closed()
                await failed_once.wait()  # ...and the client keeps trying
                stop_second = anyio.Event()
                await tg.start(serve, string_codec, second, port, stop_second, engine)
                await second.subscribed.wait()  # back on the same port, subscribed again
                now = client.session
                assert now is not None
                assert now is not session
                assert now is restored[-1]
                stop_second.set()
            assert client.session is None
    assert restored[0] is session
    assert client_side.events[session][0] is E.NEW_SESSION
    assert client_side.events[session][-1] is E.SESSION_CLOSED
    assert client_side.events[now][0] is E.NEW_SESSION
    assert client_side.events[now][-1] is E.SESSION_CLOSED
    assert attempts[0] == ReconnectAttempt(1, 0.0, None)
    assert attempts[1].attempt == 1
    assert isinstance(attempts[1].error, ConnectionResetError)  # the first connection ended
    # consecutive failures count up; a connection made resets the count (the stopping
    # server's listener may still complete a connection in the kernel, then drop it)
    for before, after in itertools.pairwise(attempts[1:]):
        assert after.attempt in (1, before.attempt + 1)
    assert max(a.attempt for a in attempts) >= 2  # at least one refused attempt
    assert all(0 <= a.delay <= 0.1 for a in attempts)


async def test_gives_up_on_the_first_connect(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    attempts: list[ReconnectAttempt] = []
    policy = Reconnect(
        initial_delay=0.01, max_delay=0.02, max_attempts=3, on_attempt=attempts.append
    )
    port = free_port()
    with anyio.fail_after(10):
        with pytest.raises(ReconnectFailed, match="after 3 attempt") as info:
            async with Client(
                string_codec, Recorder(), host=LOCAL, port=port, reconnect=policy, **engine
            ):
                pytest.fail("never connected")
    assert info.value.attempts == 3
    assert isinstance(info.value.__cause__, OSError)
    assert info.value.last_error is info.value.__cause__
    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert attempts[0].delay == 0.0


async def test_gives_up_from_the_block_when_the_server_stays_away(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    policy = Reconnect(initial_delay=0.01, max_delay=0.02, max_attempts=2)
    reached_the_end = False
    stop = anyio.Event()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            port = await tg.start(serve, string_codec, Recorder(), 0, stop, engine)
            client = Client(
                string_codec, recorder, host=LOCAL, port=port, reconnect=policy, **engine
            )
            with pytest.raises(ReconnectFailed) as info:
                async with client:
                    stop.set()  # the server goes away for good
                    await anyio.sleep_forever()  # cancelled when the client gives up
                reached_the_end = True
    assert not reached_the_end
    assert info.value.attempts == 2
    assert isinstance(info.value.__cause__, OSError)


async def test_a_failing_on_reconnect_counts_as_a_failed_attempt(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    calls = 0

    def on_reconnect(session: Session[Any]) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("cannot resubscribe")

    policy = Reconnect(
        initial_delay=0.01, max_delay=0.02, max_attempts=2, on_reconnect=on_reconnect
    )
    server_side = Recorder()
    with anyio.fail_after(10):
        async with Server(string_codec, server_side, host=LOCAL, port=0, **engine) as server:
            with pytest.raises(ReconnectFailed) as info:
                async with Client(
                    string_codec,
                    Recorder(),
                    host=LOCAL,
                    port=server.port,
                    reconnect=policy,
                    **engine,
                ):
                    pytest.fail("on_reconnect failed every time")
            for _ in range(2):  # both connections were made, and closed
                await server_side.next_closed()
    assert calls == 2
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_leaving_the_block_stops_reconnecting(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    attempts: list[ReconnectAttempt] = []
    policy = Reconnect(initial_delay=0.01, max_delay=0.02, on_attempt=attempts.append)
    server_side = Recorder()
    with anyio.fail_after(10):
        async with Server(string_codec, server_side, host=LOCAL, port=0, **engine) as server:
            client = Client(
                string_codec, Recorder(), host=LOCAL, port=server.port, reconnect=policy, **engine
            )
            async with client as session:
                await session.send("hi")
            assert session.closed
            s = await server_side.next_closed()
            assert server_side.messages[s] == ["hi"]  # flushed on the graceful close
            assert server.sessions == []
    assert len(attempts) == 1


async def test_a_failing_on_attempt_is_logged_and_ignored(
    string_codec: Codec[str], engine: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    def on_attempt(attempt: ReconnectAttempt) -> None:
        raise RuntimeError("observer bug")

    policy = Reconnect(initial_delay=0.01, max_delay=0.02, on_attempt=on_attempt)
    server_side = Recorder()
    with anyio.fail_after(10):
        async with Server(string_codec, server_side, host=LOCAL, port=0, **engine) as server:
            async with Client(
                string_codec, Recorder(), host=LOCAL, port=server.port, reconnect=policy, **engine
            ) as session:
                await session.send("still connects")
            s = await server_side.next_closed()
    assert server_side.messages[s] == ["still connects"]
    assert any("on_attempt failed" in r.getMessage() for r in caplog.records)


def test_reconnect_needs_a_processor(string_codec: Codec[str]) -> None:
    with pytest.raises(ValueError, match="push-style"):
        Client(string_codec, host=LOCAL, port=1, reconnect=Reconnect())
    with pytest.raises(ValueError, match="max_attempts"):
        Reconnect(max_attempts=0)
    policy = Reconnect(initial_delay=0.5, max_delay=4.0, jitter=False)
    assert [policy.backoff(n) for n in (1, 2, 3, 4, 5, 100)] == [0.5, 1, 2, 4, 4, 4]
    jittered = Reconnect(initial_delay=0.5, max_delay=4.0)
    assert all(0 <= jittered.backoff(3) <= 2 for _ in range(100))
