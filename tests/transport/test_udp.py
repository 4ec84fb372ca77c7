"""UDP: the same codec per datagram, one session per remote address."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio
import pytest
from anyio.abc import ConnectedUDPSocket

from codec import Codec, IncompleteFrame
from transport import Plugin, Processor, Session, StateEvent, UdpClient, UdpServer

from .conftest import Recorder, Tracked, without_cycle_collector
from .test_seam import HOOKS
from .test_seam import Raising as StreamRaising

pytestmark = pytest.mark.anyio
E = StateEvent
LOCAL = "127.0.0.1"


def frame(s: str) -> bytes:
    return bytes([len(s)]) + s.encode()


async def test_udp_round_trip(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    recorder = Recorder()
    with anyio.fail_after(10):
        async with UdpServer(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with UdpClient(string_codec, host=LOCAL, port=server.port, **engine) as session:
                for word in ("smart", "socket"):
                    await session.send(word)
                assert [await session.receive() for _ in range(2)] == ["smart", "socket"]
                assert len(server.sessions) == 1
        s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.SESSION_CLOSED]
    assert recorder.messages[s] == ["smart", "socket"]


async def test_udp_several_messages_per_datagram(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    words = ["a", "bb", "ccc"]
    with anyio.fail_after(10):
        async with (
            UdpServer(string_codec, Recorder(), host=LOCAL, port=0, **engine) as server,
            await anyio.create_connected_udp_socket(LOCAL, server.port) as sock,
        ):
            await sock.send(b"".join(frame(w) for w in words))
            # the three replies of one datagram come back together, in one datagram
            assert await sock.receive() == b"".join(frame(w) for w in words)


async def test_udp_partial_message_is_a_decode_error(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    recorder = Recorder()
    with anyio.fail_after(10):
        async with (
            UdpServer(string_codec, recorder, host=LOCAL, port=0, **engine) as server,
            await anyio.create_connected_udp_socket(LOCAL, server.port) as sock,
        ):
            await sock.send(frame("ok") + b"\x05ab")  # a whole message, then 3 of 6 bytes
            assert await sock.receive() == frame("ok")  # answered before the session closed
            first = await recorder.next_closed()
            await sock.send(frame("again"))  # a new session for the same address
            assert await sock.receive() == frame("again")
        second = await recorder.next_closed()
    assert recorder.events[first] == [
        E.NEW_SESSION,
        E.DECODE_EXCEPTION,
        E.SESSION_CLOSING,
        E.SESSION_CLOSED,
    ]
    assert isinstance(recorder.errors[first][1], IncompleteFrame)
    assert recorder.events[second] == [E.NEW_SESSION, E.SESSION_CLOSED]


async def test_udp_client_reads_nothing_after_its_session_ended(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A client has one session, the one ``__aenter__`` returned: once a decode error ended
    it, the server's later datagrams are dropped, not given to a new session the user
    never sees (a pull-style client's inbox nobody reads)."""
    recorder = Recorder(echo=False)
    with anyio.fail_after(10):
        async with await anyio.create_udp_socket(local_host=LOCAL) as server:
            port = server.extra(anyio.abc.SocketAttribute.local_port)
            async with UdpClient(
                string_codec, recorder, host=LOCAL, port=port, **engine
            ) as session:
                await session.send("hello")
                _, client = await server.receive()  # (the client's address)
                await server.sendto(frame("ok") + b"\x05ab", *client)  # a message, then 3 of 6
                assert await recorder.next_closed() is session
                await server.sendto(frame("late"), *client)
                await anyio.wait_all_tasks_blocked()  # (the datagram was read and dropped)
                assert list(recorder.events) == [session]
    assert recorder.messages == {session: ["ok"]}
    assert recorder.events[session] == [E.NEW_SESSION, E.DECODE_EXCEPTION, E.SESSION_CLOSED]


# -- the shared session lifecycle (transport/_lifecycle.py), as the stream engines run it ----


@contextlib.asynccontextmanager
async def udp_peer(
    protocol: Codec[str],
    processor: Processor[str],
    engine: dict[str, Any],
    plugins: Sequence[Plugin[str]] = (),
    **options: Any,
) -> AsyncIterator[tuple[UdpServer[str], ConnectedUDPSocket]]:
    """A UDP server on loopback and a peer's socket connected to it."""
    async with (
        UdpServer(
            protocol, processor, host=LOCAL, port=0, plugins=plugins, **engine, **options
        ) as server,
        await anyio.create_connected_udp_socket(LOCAL, server.port) as sock,
    ):
        yield server, sock


async def test_udp_process_exception_and_the_session_goes_on(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with udp_peer(string_codec, recorder, engine) as (server, sock):
            await sock.send(frame("boom") + frame("ok"))  # the message after it is processed
            assert await sock.receive() == frame("ok")
            await sock.send(frame("again"))  # the same session
            assert await sock.receive() == frame("again")
            (session,) = server.sessions
        assert await recorder.next_closed() is session
    assert recorder.events[session] == [E.NEW_SESSION, E.PROCESS_EXCEPTION, E.SESSION_CLOSED]
    assert isinstance(recorder.errors[session][1], RuntimeError)
    assert recorder.messages[session] == ["boom", "ok", "again"]


class Raising(StreamRaising):
    """``test_seam``'s raising plugin, its victim chosen when the session begins (UDP has no
    ``accept``): the first remote address's first session."""

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is E.NEW_SESSION:
            self.accept(session)


@pytest.mark.parametrize("hook", HOOKS)
async def test_udp_a_raising_hook_fails_only_that_peers_session(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any], hook: str
) -> None:
    """The exception contract of every hook, as for streams: ``INTERNAL_EXCEPTION`` for
    that remote address's session (aborted, ``SESSION_CLOSED`` last); the endpoint and
    every other peer go on, and the address's next datagram starts a new session."""
    with anyio.fail_after(10):
        async with (
            UdpServer(
                string_codec, recorder, host=LOCAL, port=0, plugins=[Raising(hook)], **engine
            ) as server,
            await anyio.create_connected_udp_socket(LOCAL, server.port) as victim,
            await anyio.create_connected_udp_socket(LOCAL, server.port) as good,
        ):
            await victim.send(frame("x") + frame("y"))
            victim_session = await recorder.next_closed()
            for word in ("a", "b", "c"):  # another peer is untouched
                await good.send(frame(word))
                assert await good.receive() == frame(word)
            await victim.send(frame("z"))  # a new session for the victim's address
            while (reply := await victim.receive()) != frame("z"):
                assert reply in (frame("x"), frame("y"), frame("x") + frame("y"))
            assert len(server.sessions) == 2
    assert victim_session not in server.sessions
    events = recorder.events[victim_session]
    assert events == [E.NEW_SESSION, E.INTERNAL_EXCEPTION, E.SESSION_CLOSED]
    exc = recorder.errors[victim_session][1]
    assert isinstance(exc, RuntimeError)
    assert hook in str(exc)
    for s in recorder.events:
        if s is not victim_session:
            assert recorder.events[s] == [E.NEW_SESSION, E.SESSION_CLOSED]


class CloseOn(Plugin[Any]):
    """Closes the session when the message ``bye`` comes (and drops it)."""

    def __init__(self, immediate: bool) -> None:
        self.immediate = immediate

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        if msg == "bye":
            session.close_nowait(immediate=self.immediate)
            return False
        return True


async def test_udp_close_with_output_pending(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    """A graceful close flushes what was written first: ``SESSION_CLOSING`` then
    ``SESSION_CLOSED``; the address's next datagram starts a new session."""
    plugins = [CloseOn(immediate=False)]
    with anyio.fail_after(10):
        async with udp_peer(string_codec, recorder, engine, plugins) as (server, sock):
            await sock.send(frame("a") + frame("bye") + frame("c"))
            assert await sock.receive() == frame("a")  # written before the close
            first = await recorder.next_closed()
            assert server.sessions == []
            await sock.send(frame("new"))
            assert await sock.receive() == frame("new")
            (second,) = server.sessions
        assert await recorder.next_closed() is second
    assert recorder.events[first] == [E.NEW_SESSION, E.SESSION_CLOSING, E.SESSION_CLOSED]
    assert recorder.messages[first] == ["a"]
    assert recorder.events[second] == [E.NEW_SESSION, E.SESSION_CLOSED]


async def test_udp_immediate_close_drops_pending_output(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    plugins = [CloseOn(immediate=True)]
    with anyio.fail_after(10):
        async with udp_peer(string_codec, recorder, engine, plugins) as (_, sock):
            await sock.send(frame("a") + frame("bye"))
            first = await recorder.next_closed()
            await sock.send(frame("next"))
            assert await sock.receive() == frame("next")  # "a" was never sent
        assert await recorder.next_closed() is not first
    assert recorder.events[first] == [E.NEW_SESSION, E.SESSION_CLOSED]
    assert recorder.messages[first] == ["a"]


async def test_udp_close_from_outside_waits_for_session_closed(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with udp_peer(string_codec, recorder, engine) as (server, sock):
            await sock.send(frame("hi"))
            assert await sock.receive() == frame("hi")
            (session,) = server.sessions
            session.write("bye")
            await session.close()
            assert session.closed
            assert server.sessions == []
            assert await sock.receive() == frame("bye")  # flushed before SESSION_CLOSED
            with pytest.raises(anyio.ClosedResourceError):
                session.write("late")
        assert await recorder.next_closed() is session
    # (SESSION_CLOSING when the writer found "bye" still queued at the close; the receive
    # task may have sent it with the reply to "hi" already)
    assert recorder.events[session] in (
        [E.NEW_SESSION, E.SESSION_CLOSED],
        [E.NEW_SESSION, E.SESSION_CLOSING, E.SESSION_CLOSED],
    )


async def test_udp_endpoint_exit_closes_every_session_and_flushes(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    """Leaving the endpoint's block closes every peer's session gracefully: what was
    written goes out, each session ends with ``SESSION_CLOSED`` (after ``SESSION_CLOSING``
    when its output was still queued)."""
    with anyio.fail_after(10):
        socks = []
        async with UdpServer(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            for i in range(3):
                sock = await anyio.create_connected_udp_socket(LOCAL, server.port)
                socks.append(sock)
                await sock.send(frame(f"m{i}"))
                assert await sock.receive() == frame(f"m{i}")
            sessions = server.sessions
            assert len(sessions) == 3
            for i, session in enumerate(sessions):
                session.write(f"last{i}")
        try:
            for i, sock in enumerate(socks):  # (sessions are in their peers' order)
                assert await sock.receive() == frame(f"last{i}")
        finally:
            for sock in socks:
                await sock.aclose()
        closed = {await recorder.next_closed() for _ in range(3)}
    assert closed == set(sessions)
    for session in sessions:
        assert recorder.events[session] in (
            [E.NEW_SESSION, E.SESSION_CLOSED],
            [E.NEW_SESSION, E.SESSION_CLOSING, E.SESSION_CLOSED],
        )


async def test_udp_closed_sessions_are_freed_without_the_cycle_collector(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A closed datagram session is detached from its engine, as a stream's is."""
    tracked = Tracked(close=True)  # a session per datagram: each closes after its reply
    with without_cycle_collector():
        with anyio.fail_after(10):
            async with udp_peer(string_codec, tracked, engine) as (_, sock):
                for i in range(20):
                    await sock.send(frame(f"m{i}"))
                    assert await sock.receive() == frame(f"m{i}")
        alive = tracked.alive()
    assert len(tracked.refs) == 20
    assert alive == []


async def test_udp_endpoint_exit_is_bounded_by_close_timeout(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A session whose close hangs (a ``state_event`` that never returns) is closed at once
    when the endpoint's exit runs out of ``close_timeout``: its pending output dropped with
    ``OUTPUT_EXCEPTION`` carrying a ``TimeoutError``, ``SESSION_CLOSED`` last."""
    busy = anyio.Event()

    class Stuck(Recorder):
        async def process(self, session: Session[Any], msg: Any) -> None:
            await session.send(msg)  # (queued: the batch's replies go out after it)
            busy.set()
            await anyio.sleep_forever()  # the endpoint's exit cancels it

        async def state_event(
            self, session: Session[Any], event: StateEvent, exc: BaseException | None
        ) -> None:
            self.record(session, event, exc)
            if event is E.SESSION_CLOSING:
                await anyio.sleep_forever()  # the deadline cuts it short

    recorder = Stuck()
    with anyio.fail_after(10):
        async with udp_peer(string_codec, recorder, engine, close_timeout=0.2) as (server, sock):
            await sock.send(frame("hi"))
            await busy.wait()
            (session,) = server.sessions
        assert session.closed
    assert recorder.events[session] == [
        E.NEW_SESSION,
        E.SESSION_CLOSING,
        E.OUTPUT_EXCEPTION,
        E.SESSION_CLOSED,
    ]
    assert isinstance(recorder.errors[session][2], TimeoutError)
