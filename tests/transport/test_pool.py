"""ClientPool: many requests over few connections, broken ones replaced and never handed
out, a bounded wait, idle connections closed; on every engine."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from codec import Codec
from transport import ClientPool, Server, Session
from transport import StateEvent as E

from .conftest import Recorder

pytestmark = pytest.mark.anyio
LOCAL = "127.0.0.1"


async def test_many_requests_over_few_connections(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(20):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with ClientPool(
                string_codec, host=LOCAL, port=server.port, max_size=3, **engine
            ) as pool:
                seen: set[Session[Any]] = set()

                async def request(i: int) -> None:
                    async with pool.acquire() as session:
                        seen.add(session)
                        await session.send(f"r{i}")
                        assert await session.receive() == f"r{i}"
                        # (send returns nothing: the test pins it)
                        assert await session.send(f"again{i}") is None  # type: ignore[func-returns-value]
                        assert await session.receive() == f"again{i}"
                        stats = pool.statistics()
                        assert stats.size <= 3
                        assert stats.in_use >= 1

                async with anyio.create_task_group() as tg:
                    for i in range(60):
                        tg.start_soon(request, i)
                stats = pool.statistics()
                assert 1 <= len(seen) <= 3
                assert stats.size == stats.idle == len(seen)
                assert stats.opened == len(seen)
                assert stats.discarded == 0
                assert len(server.sessions) == len(seen)
                for _ in range(10):  # sequential requests reuse the same connection
                    async with pool.acquire() as session:
                        await session.send("seq")
                        assert await session.receive() == "seq"
                assert pool.statistics().opened == len(seen)
            closed = [await recorder.next_closed() for _ in seen]  # leaving closed them all
    assert sum(len(recorder.messages[s]) for s in closed) == 130
    assert all(recorder.events[s][-2:] == [E.INPUT_SHUTDOWN, E.SESSION_CLOSED] for s in closed)


async def test_a_broken_connection_is_never_handed_out(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(20):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with ClientPool(string_codec, host=LOCAL, port=server.port, **engine) as pool:
                async with pool.acquire() as first:
                    await first.send("one")
                    assert await first.receive() == "one"
                (server_side,) = server.sessions
                await server_side.close()  # the server drops the idle connection
                await first.wait_closed()
                async with pool.acquire() as second:
                    assert second is not first
                    assert not second.closed
                    await second.send("two")
                    assert await second.receive() == "two"
                stats = pool.statistics()
                assert (stats.size, stats.opened, stats.discarded) == (1, 2, 1)


async def test_a_failed_request_or_an_unread_reply_discards_the_connection(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(20):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with ClientPool(string_codec, host=LOCAL, port=server.port, **engine) as pool:
                with pytest.raises(LookupError):
                    async with pool.acquire() as failed:
                        raise LookupError("the body's own error, unchanged")
                await failed.wait_closed()
                async with pool.acquire() as unread:
                    assert unread is not failed
                    await unread.send("never read")
                    async with pool.acquire(timeout=5) as other:  # (another connection)
                        await other.send("x")
                        assert await other.receive() == "x"
                    # until the reply has arrived, unread (a counter without an event)
                    while unread.statistics().messages_received == 0:  # noqa: ASYNC110
                        await anyio.sleep(0.005)
                async with pool.acquire() as fresh:
                    assert fresh is not unread  # someone else's reply must not be read here
                    await fresh.send("mine")
                    assert await fresh.receive() == "mine"


async def test_waiting_for_a_connection_is_bounded(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(20):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with ClientPool(
                string_codec,
                host=LOCAL,
                port=server.port,
                max_size=1,
                acquire_timeout=0.2,
                **engine,
            ) as pool:
                async with pool.acquire() as held:
                    start = anyio.current_time()
                    with pytest.raises(TimeoutError, match="max_size=1"):
                        async with pool.acquire():
                            pytest.fail("the only connection is in use")
                    assert anyio.current_time() - start >= 0.19
                    with pytest.raises(TimeoutError):
                        async with pool.acquire(timeout=0.05):
                            pass
                    assert pool.statistics().waiting == 0
                async with pool.acquire(timeout=0.05) as again:  # free again: at once
                    assert again is held


async def test_idle_connections_are_closed(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    with anyio.fail_after(20):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            async with ClientPool(
                string_codec, host=LOCAL, port=server.port, idle_timeout=0.2, **engine
            ) as pool:
                async with pool.acquire() as session:
                    await session.send("hi")
                    assert await session.receive() == "hi"
                    released = anyio.current_time()
                s = await recorder.next_closed()  # closed by the pool, idle too long
                assert anyio.current_time() - released >= 0.19
                await session.wait_closed()
                assert pool.statistics().size == 0
                async with pool.acquire() as new:
                    assert new is not session
    assert recorder.events[s][-2:] == [E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_the_pool_must_be_entered(string_codec: Codec[str]) -> None:
    pool = ClientPool(string_codec, host=LOCAL, port=1)
    with pytest.raises(RuntimeError, match="not open"):
        async with pool.acquire():
            pass
    with pytest.raises(ValueError, match="pull style"):
        ClientPool(string_codec, host=LOCAL, port=1, processor=Recorder())


async def test_a_failed_connect_frees_its_slot(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    import socket

    with socket.socket() as s:
        s.bind((LOCAL, 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    with anyio.fail_after(20):
        async with ClientPool(string_codec, host=LOCAL, port=port, max_size=1, **engine) as pool:
            for _ in range(3):  # the one slot is given back every time
                with pytest.raises(OSError, match=r"(?i)connect"):
                    async with pool.acquire(timeout=5):
                        pytest.fail("nothing listens")
            stats = pool.statistics()
            assert (stats.size, stats.waiting, stats.opened) == (0, 0, 0)
