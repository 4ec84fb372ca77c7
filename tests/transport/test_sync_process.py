"""The seed's shape: a plain ``def process`` replying with ``Session.write``, on every engine.

What this shape promises beyond the conformance suite (which runs every case in both
shapes): the replies of one read batch leave together; output over the high-water mark
stops the batch and the reading of that connection until it drains (memory bounded,
nothing dropped); slow work goes to ``Session.start_soon``; failures are visible without
any logging set-up.
"""

from __future__ import annotations

import logging
import socket
from typing import Any, cast

import anyio
import pytest

from codec import Codec
from transport import Plugin, Processor, Server, Session, StateEvent

from .conftest import SyncRecorder

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


class IOCount(Plugin[Any]):
    """Counts the reads and writes of every session."""

    def __init__(self) -> None:
        self.reads = 0
        self.writes = 0

    def after_read(self, session: Session[Any], nbytes: int) -> None:
        self.reads += 1

    def after_write(self, session: Session[Any], nbytes: int) -> None:
        self.writes += 1


async def test_a_batch_of_replies_leaves_in_one_write(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    words = [f"w{i}" for i in range(200)]
    data = b"".join(frame(w) for w in words)
    io = IOCount()
    proc = SyncRecorder()
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, plugins=[io], **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(data)
                assert await read_exactly(stream, len(data)) == data
    # every read batch was answered by at most one write, however the kernel split the data
    assert 1 <= io.writes <= io.reads < len(words)


async def test_a_peer_that_stops_reading_bounds_memory_and_loses_nothing(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    """A thousand requests arrive while the peer reads nothing: the sync processor's
    replies stop at the high-water mark (the batch pauses, the connection is not read),
    and every reply arrives, in order, once the peer reads again."""
    high, low, reply_size, count = 64 * 1024, 16 * 1024, 8 * 1024, 1000
    peaks: list[int] = []
    near_the_mark = anyio.Event()

    class BigReplies(Processor[bytes]):
        def process(self, session: Session[bytes], msg: bytes) -> None:
            pending = session.statistics().pending_write_bytes
            peaks.append(pending)
            if pending >= high - reply_size:
                near_the_mark.set()
            session.write(msg * (reply_size // len(msg)))

    small_buffers = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)]
    requests = [i.to_bytes(4, "big") for i in range(count)]
    data = b"".join(len(r).to_bytes(4, "big") + r for r in requests)
    expected = b"".join(len(r * 2048).to_bytes(4, "big") + r * 2048 for r in requests)
    with anyio.fail_after(30):
        async with Server(
            bytes_codec,
            BigReplies(),
            host=LOCAL,
            port=0,
            high_water=high,
            low_water=low,
            socket_options=small_buffers,
            **engine,
        ) as server:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
                sock.connect((LOCAL, server.port))  # loopback: the kernel completes it
                sock.sendall(data)  # 8 KB: the kernel takes it all at once
                sock.setblocking(False)
                await near_the_mark.wait()  # the server queued replies the peer does not read
                got = bytearray()
                while len(got) < len(expected):
                    await anyio.wait_readable(sock)
                    try:
                        chunk = sock.recv(1 << 16)
                    except BlockingIOError:
                        continue
                    assert chunk, "the server closed early"
                    got += chunk
    assert bytes(got) == expected
    assert len(peaks) == count
    # pending output seen by process never passed the mark by more than one reply
    assert max(peaks) <= high + reply_size + 8, max(peaks)


async def test_start_soon_hands_slow_work_off(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A slow request goes to a task of the session's own: later requests are answered
    first; the graceful close (the peer's EOF) waits for the task's reply; an exception in
    the task is a PROCESS_EXCEPTION and the session goes on."""
    release = anyio.Event()

    class Handoff(SyncRecorder):
        # a plain def for Recorder's async one, as in SyncRecorder (conftest.py)
        def process(self, session: Session[Any], msg: Any) -> None:  # type: ignore[override]
            self.messages.setdefault(session, []).append(msg)
            if msg == "slow":
                session.start_soon(self.slow, session)
            elif msg == "bad":
                session.start_soon(self.bad)
            else:
                session.write(msg)
                if msg == "fast":
                    release.set()

        async def slow(self, session: Session[Any]) -> None:
            await release.wait()
            await session.send("slow-done")

        async def bad(self) -> None:
            raise ValueError("in a started task")

    proc = Handoff()
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("slow") + frame("bad") + frame("fast"))
                await stream.send_eof()
                expected = frame("fast") + frame("slow-done")
                assert await read_exactly(stream, len(expected)) == expected
                with pytest.raises(anyio.EndOfStream):
                    await stream.receive()
            s = await proc.next_closed()
    events = proc.events[s]
    # the started task fails before or after the EOF is seen; SESSION_CLOSING comes too
    # when the slow task's reply was still being written as the close began
    assert events[0] == E.NEW_SESSION
    assert events[-1] == E.SESSION_CLOSED
    assert sorted(events[1:-1], key=lambda e: e.value) == sorted(
        [E.INPUT_SHUTDOWN, E.PROCESS_EXCEPTION]
        + ([E.SESSION_CLOSING] if E.SESSION_CLOSING in events else []),
        key=lambda e: e.value,
    )
    assert isinstance(proc.errors[s][events.index(E.PROCESS_EXCEPTION)], ValueError)


async def test_close_nowait_from_a_sync_process(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    class ByeOnQuit(SyncRecorder):
        def process(self, session: Session[Any], msg: Any) -> None:  # type: ignore[override]
            self.messages.setdefault(session, []).append(msg)
            session.write("bye" if msg == "quit" else msg)
            if msg == "quit":
                session.close_nowait()

    proc = ByeOnQuit()
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("a") + frame("quit") + frame("never"))
                expected = frame("a") + frame("bye")
                assert await read_exactly(stream, len(expected)) == expected
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            s = await proc.next_closed()
    assert proc.messages[s] == ["a", "quit"]
    assert proc.events[s] in (
        [E.NEW_SESSION, E.SESSION_CLOSING, E.SESSION_CLOSED],
        [E.NEW_SESSION, E.SESSION_CLOSED],
    )


async def test_write_after_the_session_closed_is_refused(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    proc = SyncRecorder()
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("x"))
                assert await read_exactly(stream, 2) == frame("x")
            s = await proc.next_closed()
            with pytest.raises(anyio.ClosedResourceError):
                s.write("late")
            with pytest.raises(anyio.ClosedResourceError):
                s.start_soon(anyio.sleep, 0)
    assert s.statistics().messages_sent == 1


class Silent(Processor[str]):
    """Keeps the default ``state_event`` (called through ``super()``); raises on "boom"."""

    def __init__(self) -> None:
        self.closed = anyio.Event()

    def process(self, session: Session[str], msg: str) -> None:
        if msg == "boom":
            raise RuntimeError("boom")
        session.write(msg)

    def state_event(
        self, session: Session[str], event: StateEvent, exc: BaseException | None
    ) -> None:
        super().state_event(session, event, exc)
        if event is StateEvent.SESSION_CLOSED:
            self.closed.set()


async def test_failures_are_visible_by_default(
    string_codec: Codec[str], engine: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="transport")
    with anyio.fail_after(10):
        proc = Silent()
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("boom") + frame("ok"))
                assert await read_exactly(stream, 3) == frame("ok")
                await stream.send(b"\x02\xff\xfe")  # bad UTF-8: a decode error
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            await proc.closed.wait()
    records = [r for r in caplog.records if r.name == "transport"]
    process = [r for r in records if "PROCESS_EXCEPTION" in r.getMessage()]
    decode = [r for r in records if "DECODE_EXCEPTION" in r.getMessage()]
    assert len(process) == 1
    assert process[0].levelno == logging.ERROR
    assert process[0].exc_info is not None
    assert "boom" in str(process[0].exc_info[1])
    assert len(decode) == 1
    assert decode[0].levelno == logging.WARNING
    assert "DecodeError" in decode[0].getMessage()
    assert len(records) == 2


def test_a_silent_exception_is_logged_with_its_cause(caplog: pytest.LogCaptureFixture) -> None:
    """anyio's BrokenResourceError says nothing; the OSError behind it says what happened."""
    from transport._processor import log_event

    caplog.set_level(logging.WARNING, logger="transport")
    try:
        try:
            raise ConnectionResetError(104, "Connection reset by peer")
        except OSError as exc:
            raise anyio.BrokenResourceError from exc
    except anyio.BrokenResourceError as broken:
        log_event(cast(Any, "<session>"), StateEvent.INPUT_EXCEPTION, broken)
    log_event(cast(Any, "<session>"), StateEvent.DECODE_EXCEPTION, ValueError("bad byte"))
    (reset, bad) = [r.getMessage() for r in caplog.records if r.name == "transport"]
    assert reset == (
        "INPUT_EXCEPTION on '<session>': BrokenResourceError "
        "(ConnectionResetError: [Errno 104] Connection reset by peer)"
    )
    assert bad == "DECODE_EXCEPTION on '<session>': ValueError: bad byte"
