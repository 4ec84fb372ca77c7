"""UDP: the same codec per datagram, one session per remote address."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from codec import Codec, IncompleteFrame
from transport import StateEvent, UdpClient, UdpServer

from .conftest import Recorder

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
