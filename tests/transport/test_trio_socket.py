"""``TrioSocketIO``: the anyio engine's reads and writes on a plain socket under trio."""

from __future__ import annotations

import socket
from typing import Any

import anyio
import pytest

from codec import Buffer
from transport._trio_socket import TrioSocketIO, trio_socket_of

trio = pytest.importorskip("trio")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.parametrize(
        "anyio_backend", [pytest.param(("trio", {}), id="trio")], indirect=True
    ),
]


def socket_pair() -> tuple[socket.socket, socket.socket]:
    a, b = socket.socketpair()
    a.setblocking(False)
    b.setblocking(False)
    return a, b


async def test_reads_land_in_the_buffer_and_eof_reads_zero(anyio_backend: Any) -> None:
    a, b = socket_pair()
    with a, b:
        io = TrioSocketIO(a)
        buf = Buffer()
        buf.extend(b"kept")
        buf.reserve(4096).release()  # plenty of room: the size asked for is the limit
        b.send(b"hello")
        with anyio.fail_after(10):
            assert await io.receive_into(buf, 4) == 4  # at most the size asked for
            assert await io.receive_into(buf, 64) == 1
            assert buf.take(len(buf)) == b"kepthello"
            b.shutdown(socket.SHUT_WR)
            assert await io.receive_into(buf, 64) == 0
            assert len(buf) == 0


async def test_a_read_with_nothing_there_waits_for_data(anyio_backend: Any) -> None:
    a, b = socket_pair()
    with a, b:
        io = TrioSocketIO(a)
        buf = Buffer()
        got: list[int] = []

        async def reader() -> None:
            got.append(await io.receive_into(buf, 64))

        with anyio.fail_after(10):
            async with anyio.create_task_group() as tg:
                tg.start_soon(reader)
                await anyio.wait_all_tasks_blocked()
                assert got == []  # nothing to read: it waits, it does not spin
                b.send(b"late")
        assert got == [4]
        assert buf.take(4) == b"late"


async def test_cancelling_a_waiting_read_leaves_the_buffer_as_it_was(anyio_backend: Any) -> None:
    a, b = socket_pair()
    with a, b:
        io = TrioSocketIO(a)
        buf = Buffer()
        buf.extend(b"half")
        async with anyio.create_task_group() as tg:
            tg.start_soon(io.receive_into, buf, 64)
            await anyio.wait_all_tasks_blocked()  # it waits: nothing to read
            tg.cancel_scope.cancel()
        assert buf.take(len(buf)) == b"half"
        b.send(b"more")  # the socket still works after the cancelled wait
        with anyio.fail_after(10):
            assert await io.receive_into(buf, 64) == 4
        assert buf.take(4) == b"more"


async def test_a_reset_connection_is_a_broken_resource(anyio_backend: Any) -> None:
    a, b = socket_pair()
    with a:
        b.close()
        io = TrioSocketIO(a)
        with anyio.fail_after(10):
            with pytest.raises(anyio.BrokenResourceError) as info:
                for _ in range(100):  # (the first sends may still be buffered)
                    await io.send(b"x" * 65536)
        assert isinstance(info.value.__cause__, OSError)


async def test_send_waits_for_room_and_delivers_everything(anyio_backend: Any) -> None:
    a, b = socket_pair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    payload = bytes(range(256)) * 4096  # 1 MiB: far more than the kernel buffers
    received = bytearray()
    with a, b:
        io = TrioSocketIO(a)

        async def drain() -> None:
            while len(received) < len(payload):
                await trio.lowlevel.wait_readable(b)
                try:
                    received.extend(b.recv(65536))
                except BlockingIOError:
                    pass

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                tg.start_soon(drain)
                await io.send(bytearray(payload))
    assert received == payload


async def test_only_plain_socket_streams_on_trio_are_read_directly(anyio_backend: Any) -> None:
    async def serve(stream: Any) -> None:
        await stream.aclose()

    async with await anyio.create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(anyio.abc.SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, serve)
            async with await anyio.connect_tcp("127.0.0.1", port) as stream:
                assert trio_socket_of(stream) is stream.extra(anyio.abc.SocketAttribute.raw_socket)
            tg.cancel_scope.cancel()
    assert trio_socket_of(object()) is None
