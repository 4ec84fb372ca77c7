"""Engine selection, and what ``process`` may rely on whichever engine runs it."""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import anyio
import anyio.lowlevel
import construct as cs
import pytest

from codec import Codec
from transport import Client, Processor, Server, Session, StateEvent

from .conftest import Recorder, reads_the_socket_itself

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


class EngineName(Processor[str]):
    async def process(self, session: Session[str], msg: str) -> None:
        await session.send(type(session._engine).__name__)


async def test_auto_engine(string_codec: Codec[str], anyio_backend: tuple[str, Any]) -> None:
    expected = "NativeEngine" if anyio_backend[0] == "asyncio" else "StreamEngine"
    with anyio.fail_after(10):
        async with (
            Server(string_codec, EngineName(), host=LOCAL, port=0) as server,
            Client(string_codec, host=LOCAL, port=server.port) as session,
        ):
            await session.send("which?")
            assert await session.receive() == expected
            assert type(session._engine).__name__ == expected


async def test_anyio_engine_can_be_forced(string_codec: Codec[str]) -> None:
    with anyio.fail_after(10):
        async with (
            Server(string_codec, EngineName(), host=LOCAL, port=0, engine="anyio") as server,
            Client(string_codec, host=LOCAL, port=server.port, engine="anyio") as session,
        ):
            await session.send("which?")
            assert await session.receive() == "StreamEngine"
            assert type(session._engine).__name__ == "StreamEngine"


async def test_anyio_engine_reads_the_socket_itself_on_trio(
    string_codec: Codec[str], anyio_backend: tuple[str, Any]
) -> None:
    """On trio, the anyio engine reads and writes a plain socket without anyio's and trio's
    stream wrappers (one trip through the run loop per read instead of two); on asyncio,
    anyio's stream owns a transport that reads the socket, so the stream is used."""
    on_trio = anyio_backend[0] == "trio"
    served: list[bool] = []

    class Which(Processor[str]):
        async def process(self, session: Session[str], msg: str) -> None:
            served.append(reads_the_socket_itself(session))
            await session.send(msg)

    with anyio.fail_after(10):
        async with (
            Server(string_codec, Which(), host=LOCAL, port=0, engine="anyio") as server,
            Client(string_codec, host=LOCAL, port=server.port, engine="anyio") as session,
        ):
            for word in ("smart", "socket"):
                await session.send(word)
                assert await session.receive() == word
            assert reads_the_socket_itself(session) == on_trio
    assert served == [on_trio, on_trio]


async def test_engine_option_is_checked(
    string_codec: Codec[str], anyio_backend: tuple[str, Any]
) -> None:
    with pytest.raises(ValueError, match="engine"):
        Server(string_codec, Recorder(), engine="fast")
    with pytest.raises(ValueError, match="engine"):
        Client(string_codec, host=LOCAL, port=1, engine="fast")
    if anyio_backend[0] != "asyncio":
        with pytest.raises(RuntimeError, match="asyncio"):
            async with Server(string_codec, Recorder(), host=LOCAL, port=0, engine="native"):
                pass


async def test_process_has_task_semantics(
    string_codec: Codec[str], engine: dict[str, Any], anyio_backend: tuple[str, Any]
) -> None:
    """anyio calls, timeouts, locks and cancellation work inside ``process``."""
    lock = anyio.Lock()
    on_asyncio = anyio_backend[0] == "asyncio"

    class Checks(Processor[str]):
        async def process(self, session: Session[str], msg: str) -> None:
            results = []
            async with lock:
                with anyio.fail_after(5):
                    await anyio.lowlevel.checkpoint()
            with anyio.move_on_after(0.01) as scope:
                await anyio.sleep_forever()
            results.append(scope.cancelled_caught)
            results.append(session._engine.owns_current_task())  # type: ignore[union-attr]
            if on_asyncio:
                task = asyncio.current_task()
                results.append(task is not None and not task.done())
                if sys.version_info >= (3, 11):
                    async with asyncio.timeout(5):
                        await asyncio.sleep(0)
                else:  # (no asyncio.timeout before 3.11)
                    await asyncio.wait_for(asyncio.sleep(0), 5)
            await session.send(",".join(map(str, results)))

    expected = "True,True,True" if on_asyncio else "True,True"
    with anyio.fail_after(10):
        async with (
            Server(string_codec, Checks(), host=LOCAL, port=0, **engine) as server,
            Client(string_codec, host=LOCAL, port=server.port, **engine) as session,
        ):
            await session.send("go")
            assert await session.receive() == expected


async def test_shutdown_cancels_a_stuck_process(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """A processor that never returns is cancelled after ``shutdown_timeout``; the session
    still ends with SESSION_CLOSED."""
    entered = anyio.Event()
    cancelled: list[bool] = []

    class Stuck(Recorder):
        async def process(self, session: Session[Any], msg: Any) -> None:
            entered.set()
            try:
                await anyio.sleep_forever()
            except anyio.get_cancelled_exc_class():
                cancelled.append(True)
                raise

    proc = Stuck()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            async with Server(
                string_codec, proc, host=LOCAL, port=0, shutdown_timeout=0.2, **engine
            ) as server:
                stream = await anyio.connect_tcp(LOCAL, server.port)
                tg.start_soon(stream.send, b"\x01x")
                await entered.wait()
            s = await proc.next_closed()
            await stream.aclose()
    assert cancelled == [True]
    assert proc.events[s] == [E.NEW_SESSION, E.SESSION_CLOSED]


async def test_slow_processor_bounds_input(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    """While ``process`` is busy, the session stops reading after about one read's worth of
    bytes: the peer is slowed down by TCP, the server's memory stays bounded."""
    read_size = 16384
    release = anyio.Event()
    blocked = anyio.Event()
    processed: list[int] = []
    frame = bytes_codec.encode(bytes(1000))
    count = 4000  # 4 MB: more than the kernel buffers hold
    done = anyio.Event()

    class Slow(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            if not processed:
                blocked.set()
                await release.wait()
            processed.append(len(msg))
            if len(processed) == count:
                done.set()

    with anyio.fail_after(30):
        async with (
            Server(
                bytes_codec, Slow(), host=LOCAL, port=0, read_buffer_size=read_size, **engine
            ) as server,
            await anyio.connect_tcp(LOCAL, server.port) as stream,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(stream.send, frame * count)
            await blocked.wait()
            session = server.sessions[0]
            for _ in range(20):  # an upper bound that must hold at every instant
                await anyio.sleep(0.01)
                assert session.statistics().buffered_read_bytes <= 4 * read_size + len(frame)
            release.set()
            await done.wait()
    assert processed == [1000] * count


async def test_reads_grow_for_bulk_input_and_shrink_when_it_calms(
    bytes_codec: Codec[bytes], engine: dict[str, Any]
) -> None:
    """Reads that fill their space grow to ``read_buffer_size``; small ones afterwards
    bring them back down, and the emptied receive buffer gives its memory back."""
    maximum = 256 * 1024
    release = anyio.Event()
    blocked = anyio.Event()
    seen = anyio.Event()
    processed: list[int] = []
    frame = bytes_codec.encode(bytes(1000))
    count = 4000  # 4 MB: the kernel's buffers are full when the processor comes back
    peak = 0

    class Bulk(Processor[bytes]):
        async def process(self, session: Session[bytes], msg: bytes) -> None:
            nonlocal peak
            if not processed:
                blocked.set()
                await release.wait()
            peak = max(peak, session._engine._sizer.size)  # type: ignore[union-attr]
            processed.append(len(msg))
            seen.set()

    with anyio.fail_after(30):
        async with (
            Server(
                bytes_codec, Bulk(), host=LOCAL, port=0, read_buffer_size=maximum, **engine
            ) as server,
            await anyio.connect_tcp(LOCAL, server.port) as stream,
            anyio.create_task_group() as tg,
        ):
            tg.start_soon(stream.send, frame * count)
            await blocked.wait()
            session = server.sessions[0]
            sizer = session._engine._sizer  # type: ignore[union-attr]
            release.set()
            while len(processed) < count:
                seen = anyio.Event()
                await seen.wait()
            assert peak == maximum
            small = bytes_codec.encode(b"tiny")
            for _ in range(20):  # one small frame per read
                seen = anyio.Event()
                await stream.send(small)
                await seen.wait()
            assert sizer.size == sizer.minimum == 4096
            assert len(session._core.buffer.storage) <= 4 * sizer.size + len(small)
    assert processed == [1000] * count + [4] * 20


async def test_udp_engine_choice(
    string_codec: Codec[str], engine: dict[str, Any], anyio_backend: tuple[str, Any]
) -> None:
    from transport import UdpClient, UdpServer

    native = engine["engine"] == "native"
    with anyio.fail_after(10):
        async with UdpServer(string_codec, Recorder(), host=LOCAL, port=0, **engine) as server:
            sock = server._endpoint.sock
            assert (type(sock).__name__ == "_NativeDatagramSocket") is native
            async with UdpClient(string_codec, host=LOCAL, port=server.port, **engine) as s:
                await s.send("udp")
                assert await s.receive() == "udp"


def test_native_read_resumes_the_session_task_at_once() -> None:
    """The native engine runs the session's task step inside the read callback (no
    ``call_soon`` round trip), with the task as ``current_task()``; called from inside a
    task it completes the waiter the ordinary way instead."""
    from transport._native_engine import NativeEngine

    async def main() -> None:
        session: Session[str] = Session(Codec(cs.PascalString(cs.Int8ub, "utf8")), Processor())
        engine: NativeEngine[str] = NativeEngine(session)
        loop = asyncio.get_running_loop()
        steps: list[object] = []

        async def waiter_task() -> None:
            for _ in range(2):
                waiter = loop.create_future()
                steps.append(waiter)
                await waiter
                steps.append(asyncio.current_task())

        task = asyncio.create_task(waiter_task())
        await asyncio.sleep(0)
        seen: list[int] = []

        def read_callback() -> None:  # like the transport's read handler: no task running
            engine._resume(steps[-1])  # type: ignore[arg-type]
            seen.append(len(steps))

        loop.call_soon(read_callback)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        assert seen == [3]  # the task ran its step before the callback returned
        assert steps[1] is task
        engine._resume(steps[-1])  # type: ignore[arg-type]  # from a task: scheduled
        assert len(steps) == 3
        await task
        assert len(steps) == 4
        assert steps[3] is task

    asyncio.run(main())
