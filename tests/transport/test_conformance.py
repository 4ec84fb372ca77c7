"""The session conformance suite: every engine on every backend, over real sockets."""

from __future__ import annotations

import socket
import struct
import sys
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute

from codec import Codec, DecodeError, EncodeError
from transport import (
    Client,
    Plugin,
    Processor,
    Server,
    Session,
    SessionStatistics,
    StateEvent,
)

from .conftest import RECORDERS, Recorder, SyncRecorder, Tracked, without_cycle_collector

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


def with_process(shape: str, process: Any) -> Recorder:
    """A recorder of ``shape`` ("sync" or "mixed": a plain ``process``) using ``process``."""
    return type(f"{shape}-recorder", (RECORDERS[shape],), {"process": process})()  # type: ignore[no-any-return]


def frame(s: str) -> bytes:
    body = s.encode()
    return bytes([len(body)]) + body


async def test_echo_pull_style(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with (
            Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server,
            Client(string_codec, host=LOCAL, port=server.port, **engine) as session,
        ):
            await session.send("smart-socket")
            assert await session.receive() == "smart-socket"
            assert session.remote_address[1] == server.port
            assert session.local_address[0] == LOCAL
            stats = session.statistics()
            assert stats.messages_sent == 1
            assert stats.messages_received == 1
            assert stats.bytes_sent == stats.bytes_received == 13


async def test_push_style_client(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    got = anyio.Event()
    received: list[str] = []

    class Collect(Processor[str]):
        async def process(self, session: Session[str], msg: str) -> None:
            received.append(msg)
            if len(received) == 3:
                got.set()

    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, Collect(), host=LOCAL, port=server.port) as session:
                for word in ("a", "b", "c"):
                    await session.send(word)
                await got.wait()
                with pytest.raises(RuntimeError):
                    await session.receive()
    assert received == ["a", "b", "c"]


async def test_many_pipelined_clients(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    clients, per_client = 20, 200

    async def one(port: int, k: int) -> None:
        async with Client(string_codec, host=LOCAL, port=port, **engine) as session:
            expected = [f"c{k}-m{i}" for i in range(per_client)]
            for msg in expected:  # all in flight before reading any reply
                await session.send(msg)
            got = [await session.receive() for _ in expected]
            assert got == expected

    with anyio.fail_after(60):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with anyio.create_task_group() as tg:
                for k in range(clients):
                    tg.start_soon(one, server.port, k)


async def test_half_packets_byte_by_byte(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    recorder.echo = False
    data = frame("smart") + frame("-socket") + frame("")
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(len(data)):  # every split point, each its own segment
                    await stream.send(data[i : i + 1])
            session = await recorder.next_closed()
    assert recorder.messages[session] == ["smart", "-socket", ""]
    assert recorder.events[session] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_sticky_packets_one_write(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    words = [f"w{i}" for i in range(50)]
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(b"".join(frame(w) for w in words))
                expected = b"".join(frame(w) for w in words)
                got = b""
                while len(got) < len(expected):
                    got += await stream.receive()
                assert got == expected


# -- the state-event order, cause by cause -------------------------------------------------
async def test_order_eof(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send("hi")
                assert await session.receive() == "hi"
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_order_process_exception_goes_on(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send("boom")
                await session.send("after")
                assert await session.receive() == "after"
            s = await recorder.next_closed()
    assert recorder.events[s] == [
        E.NEW_SESSION,
        E.PROCESS_EXCEPTION,
        E.INPUT_SHUTDOWN,
        E.SESSION_CLOSED,
    ]
    exc = recorder.errors[s][1]
    assert isinstance(exc, RuntimeError)


async def test_order_decode_exception_closes_that_session_only(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as good:
                await good.send("one")
                assert await good.receive() == "one"
                async with await anyio.connect_tcp(LOCAL, server.port) as bad:
                    await bad.send(frame("ok"))
                    assert await bad.receive() == frame("ok")
                    await bad.send(b"\x02\xff\xfe")  # bad UTF-8
                    with pytest.raises(anyio.EndOfStream):
                        await bad.receive()
                s = await recorder.next_closed()
                assert recorder.events[s] == [
                    E.NEW_SESSION,
                    E.DECODE_EXCEPTION,
                    E.SESSION_CLOSED,
                ]
                assert isinstance(recorder.errors[s][1], DecodeError)
                await good.send("two")  # the other session is untouched
                assert await good.receive() == "two"


async def test_order_close_with_pending_writes(
    string_codec: Codec[str], shape: str, engine: dict[str, Any]
) -> None:
    class ReplyAndClose(Recorder):
        async def process(self, session: Session[Any], msg: Any) -> None:
            await session.send("bye " + msg)
            await session.close()  # inside process: requests the close, returns

    def reply_and_close(self: Recorder, session: Session[Any], msg: Any) -> None:
        session.write("bye " + msg)
        session.close_nowait()

    proc = ReplyAndClose() if shape == "async" else with_process(shape, reply_and_close)
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as c:
                await c.send("x")
                assert [m async for m in c] == ["bye x"]  # then EOF ends the iteration
            s = await proc.next_closed()
    assert proc.events[s] == [E.NEW_SESSION, E.SESSION_CLOSING, E.SESSION_CLOSED]


async def test_nothing_is_processed_after_close_in_a_batch(
    string_codec: Codec[str], shape: str, engine: dict[str, Any]
) -> None:
    """Sticky packets decoded together: a ``close()`` from ``process`` stops the batch at
    once; the messages after it are neither processed nor counted."""

    stats: list[SessionStatistics] = []  # the session's, when "two" was processed

    class CloseOnSecond(Recorder):
        async def process(self, session: Session[Any], msg: Any) -> None:
            await super().process(session, msg)
            if msg == "two":
                stats.append(session.statistics())
                await session.close()

    def close_on_second(self: SyncRecorder, session: Session[Any], msg: Any) -> None:
        SyncRecorder.process(self, session, msg)
        if msg == "two":
            stats.append(session.statistics())
            session.close_nowait()

    proc = CloseOnSecond() if shape == "async" else with_process(shape, close_on_second)
    with anyio.fail_after(10):
        async with Server(string_codec, proc, host=LOCAL, port=0, **engine) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(b"".join(frame(m) for m in ["one", "two", "three", "four"]))
                expected = frame("one") + frame("two")
                got = b""
                with pytest.raises(anyio.EndOfStream):  # the replies, then the server's EOF
                    while True:
                        got += await stream.receive()
                assert got == expected
            s = await proc.next_closed()
    assert proc.messages[s] == ["one", "two"]
    assert stats[-1].messages_received == 2
    assert proc.events[s][-1] == E.SESSION_CLOSED


async def test_order_input_exception(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    recorder.echo = False
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            stream = await anyio.connect_tcp(LOCAL, server.port)
            await stream.send(frame("x"))
            sock = stream.extra(SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            await stream.aclose()  # RST instead of FIN
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_EXCEPTION, E.SESSION_CLOSED]


async def test_order_output_exception_when_flush_times_out(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    """A graceful close whose peer never reads: SESSION_CLOSING, then the flush times out."""

    class Flood(Recorder):
        async def process(self, session: Session[Any], msg: Any) -> None:
            for _ in range(16):  # 1 MiB pending, beyond the kernel buffers
                await session.send(bytes(65536))
            await session.close()

    proc = Flood()
    small = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)]
    with anyio.fail_after(20):
        async with (
            Server(
                bytes_codec,
                proc,
                host=LOCAL,
                port=0,
                close_timeout=0.5,
                socket_options=small,
                high_water=2 << 20,
                **engine,
            ) as server,
            await anyio.connect_tcp(LOCAL, server.port) as stream,
        ):
            sock = stream.extra(SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
            await stream.send(bytes_codec.encode(b"go"))
            s = await proc.next_closed()  # never read a byte
    assert proc.events[s] == [
        E.NEW_SESSION,
        E.SESSION_CLOSING,
        E.OUTPUT_EXCEPTION,
        E.SESSION_CLOSED,
    ]
    assert isinstance(proc.errors[s][2], TimeoutError)


class Reject(Plugin[Any]):
    def accept(self, session: Session[Any]) -> bool:
        return False


class Explode(Plugin[Any]):
    def accept(self, session: Session[Any]) -> bool:
        raise RuntimeError("plugin bug")


@pytest.mark.parametrize(
    ("plugin", "event"), [(Reject(), E.REJECT_ACCEPT), (Explode(), E.INTERNAL_EXCEPTION)]
)
async def test_order_rejected_connections(
    string_codec: Codec[str],
    recorder: Recorder,
    engine: dict[str, Any],
    plugin: Plugin[Any],
    event: StateEvent,
) -> None:
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[plugin], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            s = await recorder.next_closed()
            assert server.statistics().active == 0
    assert recorder.events[s] == [event]


async def test_immediate_close_drops_pending(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(10):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with Client(string_codec, host=LOCAL, port=server.port, **engine) as session:
                await session.send("x")
                assert await session.receive() == "x"
                server_session = server.sessions[0]
                await server_session.close(immediate=True)
                assert server_session.closed
                with pytest.raises(anyio.ClosedResourceError):
                    await server_session.send("late")
                assert [m async for m in session] == []
            await recorder.next_closed()
    assert recorder.events[server_session] == [E.NEW_SESSION, E.SESSION_CLOSED]


# -- backpressure, graceful close and shutdown -------------------------------------------
async def test_backpressure_bounds_memory_and_serves_others(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    high = 64 * 1024
    chunk = b"\0" * 1024
    total = 8192  # 8 MiB: far beyond what the kernel buffers with the small buffers below
    progress = {"sent": 0, "max_pending": 0}

    class Flood(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            if msg != b"flood":
                await session.send(msg)
                return
            for _ in range(total):
                await session.send(chunk)
                progress["sent"] += 1
                pending = session.statistics().pending_write_bytes
                progress["max_pending"] = max(progress["max_pending"], pending)

    small = [(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)]
    with anyio.fail_after(60):
        async with (
            Server(
                bytes_codec,
                Flood(),
                host=LOCAL,
                port=0,
                high_water=high,
                low_water=high // 4,
                socket_options=small,
                shutdown_timeout=1,
                **engine,
            ) as server,
            await anyio.connect_tcp(LOCAL, server.port) as sink,
        ):
            sock = sink.extra(SocketAttribute.raw_socket)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
            await sink.send(bytes_codec.encode(b"flood"))  # and never read
            async with Client(bytes_codec, host=LOCAL, port=server.port, **engine) as other:
                for i in range(50):  # another session keeps being served meanwhile
                    await other.send(b"ping %d" % i)
                    assert await other.receive() == b"ping %d" % i
            assert progress["sent"] < total  # the flood is stuck on backpressure
            assert progress["max_pending"] <= high + len(chunk) + 4
            flood_session = next(s for s in server.sessions if s.statistics().pending_write_bytes)
            assert flood_session.statistics().pending_write_bytes <= high + len(chunk) + 4


class HalfWritingProtocol:
    """A hand-written protocol whose ``encode_into`` appends part of a frame, then fails,
    on the message ``"bad"``."""

    def __init__(self, codec: Codec[str]) -> None:
        self.codec = codec

    def decode(self, buf: Any) -> str | None:
        return self.codec.decode(buf)

    def encode(self, msg: str) -> bytes:
        return self.codec.encode(msg)

    def encode_into(self, msg: str, out: bytearray) -> None:
        out += b"\x05ba"
        if msg == "bad":
            raise ValueError("cannot encode 'bad'")
        del out[-3:]
        out += self.codec.encode(msg)


@pytest.mark.parametrize("hand_written", [False, True], ids=["codec", "hand-written"])
async def test_a_failed_encode_queues_nothing(
    string_codec: Codec[str], shape: str, engine: dict[str, Any], hand_written: bool
) -> None:
    """``send`` raises the encoder's error and queues nothing, not even part of a frame:
    the next message still arrives whole and framed."""
    protocol: Any = HalfWritingProtocol(string_codec) if hand_written else string_codec
    bad: Any = "bad" if hand_written else 42  # (not a str: the codec refuses it)
    errors: list[BaseException] = []

    class Checked(Processor[str]):
        async def process(self, session: Session[str], msg: str) -> None:
            try:
                await session.send(bad)
            except Exception as exc:
                errors.append(exc)
            await session.send(msg)

    class SyncChecked(Processor[str]):
        def process(self, session: Session[str], msg: str) -> None:
            try:
                session.write(bad)
            except Exception as exc:
                errors.append(exc)
            session.write(msg)

    proc = Checked() if shape == "async" else SyncChecked()
    with anyio.fail_after(10):
        async with (
            Server(protocol, proc, host=LOCAL, port=0, **engine) as server,
            Client(string_codec, host=LOCAL, port=server.port, **engine) as session,
        ):
            for word in ("smart", "socket"):
                await session.send(word)
                assert await session.receive() == word
            assert session.statistics().bytes_received == len(frame("smart") + frame("socket"))
    assert len(errors) == 2
    expected = ValueError if hand_written else EncodeError
    assert all(isinstance(exc, expected) for exc in errors), errors


#: a peer in a process of its own that writes tiny frames as fast as the kernel takes them
#: (faster than any session can decode them), for at most 60 s
FLOODER = """
import socket, sys, time
frame = (5).to_bytes(4, "big") + b"flood"
chunk = frame * 4096
deadline = time.monotonic() + 60
with socket.create_connection(("127.0.0.1", int(sys.argv[1]))) as sock:
    for writes in range(1, 1 << 30):
        if time.monotonic() > deadline:
            break
        try:
            sock.sendall(chunk)
        except OSError:
            break
        if writes == 64:
            print("under way", flush=True)
"""


async def test_a_peer_that_never_stops_sending_does_not_starve_others(
    bytes_codec: Codec[bytes], shape: str, engine: dict[str, Any]
) -> None:
    """A peer whose data is always there to read must not keep the other sessions from
    being served: every read yields to the loop once, even when it did not have to wait."""

    class Quiet(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            if msg != b"flood":
                await session.send(msg)

    class SyncQuiet(Processor[bytes]):
        def process(self, session: Session[bytes], msg: bytes) -> None:
            if msg != b"flood":
                session.write(msg)

    proc = Quiet() if shape == "async" else SyncQuiet()
    with anyio.fail_after(90):
        async with Server(bytes_codec, proc, host=LOCAL, port=0, **engine) as server:
            command = [sys.executable, "-c", FLOODER, str(server.port)]
            async with await anyio.open_process(command) as flooder:
                try:
                    assert flooder.stdout is not None
                    assert b"under way" in await flooder.stdout.receive()
                    # served promptly: 10 round trips take a few seconds at most under the
                    # flood (a loop that reads the flooder 32 times an iteration: ~25 s)
                    with anyio.fail_after(15):
                        async with Client(
                            bytes_codec, host=LOCAL, port=server.port, **engine
                        ) as other:
                            for i in range(10):
                                await other.send(b"ping %d" % i)
                                assert await other.receive() == b"ping %d" % i
                    # served while the peer was still flooding, not after it gave up
                    assert flooder.returncode is None
                finally:
                    flooder.kill()


async def test_replies_over_the_high_water_mark_in_one_batch_arrive_in_order(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    """One message whose replies are many times the high-water mark: the batch's sends
    write as they pass the mark and wait for the peer; everything arrives, in order."""
    high = 16 * 1024
    count = 400  # 400 x 2 KiB: 50 times the high-water mark

    class Fan(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            for i in range(count):
                await session.send(i.to_bytes(4, "big") + msg * 2046)

    with anyio.fail_after(30):
        async with (
            Server(
                bytes_codec,
                Fan(),
                host=LOCAL,
                port=0,
                high_water=high,
                low_water=high // 4,
                **engine,
            ) as server,
            Client(bytes_codec, host=LOCAL, port=server.port, **engine) as client,
        ):
            await client.send(b"x")
            for i in range(count):
                reply = await client.receive()
                assert reply == i.to_bytes(4, "big") + b"x" * 2046


async def test_graceful_shutdown_delivers_everything(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    count, size = 2000, 1000  # 2 MB: more than the kernel buffers hold
    started = anyio.Event()
    got: list[int] = []

    class Burst(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            started.set()
            for i in range(count):
                await session.send(i.to_bytes(4, "big") + bytes(size - 4))

    async def read_all(port: int, *, task_status: anyio.abc.TaskStatus[None]) -> None:
        async with Client(bytes_codec, host=LOCAL, port=port, **engine) as session:
            await session.send(b"go")
            task_status.started()
            async for msg in session:  # ends at the server's EOF
                got.append(int.from_bytes(msg[:4], "big"))

    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            async with Server(bytes_codec, Burst(), host=LOCAL, port=0, **engine) as server:
                await tg.start(read_all, server.port)
                await started.wait()
            # the server block is left while most replies are still pending
    assert got == list(range(count))


async def test_graceful_shutdown_under_load_loses_no_processed_reply(
    bytes_codec: Codec[bytes], shape: str, engine: dict[str, Any]
) -> None:
    """8 clients pipeline 1 KiB frames; 4 of them read nothing until the shutdown began.
    Every message the server processed has its reply delivered (the close half-closes
    and drains the peer's input before closing: a plain close with input unread makes the
    kernel reset the connection, destroying the replies still unread)."""
    clients, per_client, size = 8, 400, 1024
    processed: dict[int, int] = {}
    enough = anyio.Event()
    shutdown_began = anyio.Event()

    def count(msg: bytes) -> None:
        processed[msg[0]] = processed.get(msg[0], 0) + 1
        if sum(processed.values()) >= clients * per_client // 4:
            enough.set()

    class AsyncEcho(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            count(msg)
            await session.send(msg)

    class SyncEcho(Processor[bytes]):
        def process(self, session: Session[bytes], msg: bytes) -> None:
            count(msg)
            session.write(msg)

    received = dict.fromkeys(range(clients), 0)

    async def client(port: int, k: int) -> None:
        body = bytes([k]) + bytes(size - 1)
        blob = (len(body).to_bytes(4, "big") + body) * per_client
        async with await anyio.connect_tcp(LOCAL, port) as stream:

            async def send_all() -> None:
                try:
                    for i in range(0, len(blob), 65536):
                        await stream.send(blob[i : i + 65536])
                except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                    pass  # the server stopped reading and closed: the rest is not sent

            async with anyio.create_task_group() as tg:
                tg.start_soon(send_all)
                if k % 2:
                    await shutdown_began.wait()  # a lazy reader
                nbytes = 0
                try:
                    while True:
                        nbytes += len(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                    pass
                received[k] = nbytes // (size + 4)
                assert nbytes % (size + 4) == 0
                tg.cancel_scope.cancel()

    proc = AsyncEcho() if shape == "async" else SyncEcho()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            async with Server(
                bytes_codec, proc, host=LOCAL, port=0, shutdown_timeout=30, **engine
            ) as server:
                for k in range(clients):
                    tg.start_soon(client, server.port, k)
                await enough.wait()
                shutdown_began.set()
            # the block is left: a graceful shutdown while replies are pending
    assert sum(processed.values()) >= clients * per_client // 4
    assert received == {k: processed.get(k, 0) for k in range(clients)}


async def test_closed_sessions_are_freed_without_the_cyclic_collector(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A closed session and its engine must not keep each other (and the receive buffer)
    alive until the cyclic garbage collector runs: with it disabled, every session of a
    finished server is gone."""
    tracked = Tracked()
    with without_cycle_collector():
        with anyio.fail_after(20):
            async with Server(string_codec, tracked, host=LOCAL, port=0, **engine) as server:
                for i in range(30):
                    async with Client(
                        string_codec, host=LOCAL, port=server.port, **engine
                    ) as client:
                        await client.send(f"m{i}")
                        assert await client.receive() == f"m{i}"
                    del client
        alive = tracked.alive()
    assert len(tracked.refs) == 30
    assert alive == []
