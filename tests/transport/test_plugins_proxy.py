"""ProxyProtocol: PROXY v1/v2 headers give session.remote_address the real client's; bad,
missing and untrusted headers reject that connection only; on every engine and shape."""

from __future__ import annotations

import ipaddress
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from codec import Codec
from schemas.proxy import SIGNATURE, ProxyHeader, crc32c, parse_header
from transport import Plugin, Server, Session, StateEvent
from transport.plugins import ProxyProtocol, ProxyProtocolError

from .conftest import Recorder
from .test_seam import frame, read_exactly

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


def v1(src: str, dst: str, sport: int, dport: int) -> bytes:
    family = "TCP6" if ":" in src else "TCP4"
    return f"PROXY {family} {src} {dst} {sport} {dport}\r\n".encode()


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + len(value).to_bytes(2, "big") + value


def v2(
    src: str | None = None,
    dst: str | None = None,
    sport: int = 0,
    dport: int = 0,
    tlvs: bytes = b"",
    *,
    command: int = 1,
    version: int = 2,
    crc: bool = False,
) -> bytes:
    """A version 2 header (section 2.2); ``crc`` appends a correct CRC32c TLV."""
    if src is None or dst is None:
        family, addresses = 0x00, b""
    else:
        a, b = ipaddress.ip_address(src), ipaddress.ip_address(dst)
        family = 0x11 if a.version == 4 else 0x21
        addresses = a.packed + b.packed + sport.to_bytes(2, "big") + dport.to_bytes(2, "big")
    body = addresses + tlvs + (tlv(0x03, b"\0\0\0\0") if crc else b"")
    head = SIGNATURE + bytes([version << 4 | command, family]) + len(body).to_bytes(2, "big")
    wire = head + body
    if crc:
        wire = wire[:-4] + crc32c(wire).to_bytes(4, "big")
    return wire


class Addresses(Recorder):
    """Records each message with the session's remote address when it was processed."""

    async def process(self, session: Session[Any], msg: Any) -> None:
        self.messages.setdefault(session, []).append((msg, session.remote_address))
        await session.send(msg)


class SeenAt(Plugin[Any]):
    """Records each message with the remote address just before it is processed."""

    def __init__(self) -> None:
        self.addresses: list[tuple[Any, Any]] = []

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        self.addresses.append((msg, session.remote_address))
        return True


# -- the test's own headers, read back by schemas.proxy --------------------------------
def test_the_headers_built_here_are_valid() -> None:
    h, n = parse_header(v1("192.0.2.1", "198.51.100.2", 56324, 443) + b"rest")
    assert h == ProxyHeader(
        1, "PROXY", "INET", "STREAM", ("192.0.2.1", 56324), ("198.51.100.2", 443)
    )
    assert n == len(v1("192.0.2.1", "198.51.100.2", 56324, 443))
    tlvs = tlv(0x01, b"h2") + tlv(0x05, b"id")
    wire = v2("2001:db8::1", "2001:db8::2", 1000, 443, tlvs, crc=True)
    h, n = parse_header(wire + b"app")
    assert h is not None
    assert n == len(wire)
    assert h.source == ("2001:db8::1", 1000)
    assert h.tlvs[:2] == ((0x01, b"h2"), (0x05, b"id"))
    assert parse_header(v2(command=0))[0] == ProxyHeader(2, "LOCAL", "UNSPEC", "UNSPEC", None, None)


# -- the plugin ----------------------------------------------------------------------------
async def test_v1_header_gives_the_real_client_byte_by_byte(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    recorder.echo = False
    seen = SeenAt()
    data = v1("203.0.113.7", "198.51.100.1", 51234, 8080) + frame("one") + frame("two")
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[ProxyProtocol(), seen], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(len(data)):  # every split point of the header too
                    await stream.send(data[i : i + 1])
            s = await recorder.next_closed()
    real = ("203.0.113.7", 51234)
    assert recorder.messages[s] == ["one", "two"]
    assert seen.addresses == [("one", real), ("two", real)]  # as process saw it
    assert s.remote_address == real
    header = s.attributes["proxy_header"]
    assert header.version == 1
    assert header.destination == ("198.51.100.1", 8080)
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_v2_header_with_tlvs_and_local(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    recorder = Addresses()
    tlvs = tlv(0x01, b"h2") + tlv(0x05, b"req-42")
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[ProxyProtocol()], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                wire = v2("2001:db8::7", "2001:db8::1", 40000, 443, tlvs, crc=True)
                await stream.send(wire + frame("hi"))
                assert await read_exactly(stream, 3) == frame("hi")
            s = await recorder.next_closed()
            async with await anyio.connect_tcp(LOCAL, server.port) as check:
                me = check.extra(anyio.abc.SocketAttribute.local_address)
                await check.send(v2(command=0) + frame("health"))  # a LOCAL health check
                assert await read_exactly(check, 7) == frame("health")
            local = await recorder.next_closed()
    assert recorder.messages[s] == [(("hi", ("2001:db8::7", 40000)))]
    header = s.attributes["proxy_header"]
    assert header.tlvs[:2] == ((0x01, b"h2"), (0x05, b"req-42"))
    assert header.tlv(0x03) is not None  # the CRC32c TLV, checked and kept
    assert local.attributes["proxy_header"].is_local
    assert recorder.messages[local] == [("health", me[:2])]  # the connection's own address


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (
            b"PROXY TCP4 999.0.0.1 10.0.0.1 1 2\r\n",
            "malformed PROXY header: ValidationError: PROXY v1 (2.1)",
        ),
        (v2("192.0.2.1", "192.0.2.2", 1, 2, tlv(0x03, b"\0\0\0\1")), "CRC32c"),
        (frame("hello"), "missing PROXY header"),
    ],
    ids=["bad-v1", "bad-crc", "missing"],
)
async def test_a_bad_header_rejects_that_connection_only(
    string_codec: Codec[str],
    recorder: Recorder,
    engine: dict[str, Any],
    data: bytes,
    reason: str,
) -> None:
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[ProxyProtocol()], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as good:
                await good.send(v1("192.0.2.9", "192.0.2.1", 1234, 80))
                async with await anyio.connect_tcp(LOCAL, server.port) as bad:
                    await bad.send(data + frame("never processed"))
                    try:
                        await bad.receive()
                        pytest.fail("the bad connection was answered")
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
                b = await recorder.next_closed()
                await good.send(frame("still fine"))  # the other connection goes on
                assert await read_exactly(good, 11) == frame("still fine")
            await recorder.next_closed()
    assert recorder.events[b] == [E.NEW_SESSION, E.INPUT_EXCEPTION, E.SESSION_CLOSED]
    exc = recorder.errors[b][1]
    assert isinstance(exc, ProxyProtocolError)
    assert reason in str(exc)
    assert recorder.messages.get(b) is None


async def test_untrusted_peers(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    recorder = Addresses()
    required = ProxyProtocol(trusted=["10.0.0.0/8"])
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[required], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(v1("192.0.2.9", "192.0.2.1", 1234, 80) + frame("x"))
                with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                    await stream.receive()
            refused = await recorder.next_closed()
    assert recorder.events[refused] == [E.REJECT_ACCEPT]
    assert "not a trusted proxy" in refused.attributes["reject_reason"]
    assert not required._awaited


async def test_optional_header(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    """required=False: direct clients are served as they are; a trusted balancer's header
    is used; a header from anyone else is refused (a client cannot pick its address)."""
    recorder = Addresses()
    trusting = ProxyProtocol(required=False)
    distrusting = ProxyProtocol(trusted=["10.0.0.0/8"], required=False)
    for plugin, with_header, outcome in [
        (trusting, False, "direct"),
        (trusting, True, "proxied"),
        (distrusting, False, "direct"),
        (distrusting, True, "refused"),
    ]:
        with anyio.fail_after(10):
            async with Server(
                string_codec, recorder, host=LOCAL, port=0, plugins=[plugin], **engine
            ) as server:
                async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                    me = stream.extra(anyio.abc.SocketAttribute.local_address)[:2]
                    header = v1("192.0.2.9", "192.0.2.1", 1234, 80) if with_header else b""
                    await stream.send(header + frame("x"))
                    try:
                        assert await read_exactly(stream, 2) == frame("x")
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
                s = await recorder.next_closed()
        if outcome == "refused":
            assert isinstance(recorder.errors[s][1], ProxyProtocolError)
            assert "not a trusted proxy" in str(recorder.errors[s][1])
            assert recorder.messages.get(s) is None
        else:
            expected = ("192.0.2.9", 1234) if outcome == "proxied" else me
            assert recorder.messages[s] == [("x", expected)]


async def test_a_unix_socket_peer_is_a_trusted_proxy(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    recorder = Addresses()
    with tempfile.TemporaryDirectory() as tmp:  # (a short path: AF_UNIX allows ~100 bytes)
        path = str(Path(tmp) / "lb.sock")
        with anyio.fail_after(10):
            async with Server(
                string_codec, recorder, path=path, plugins=[ProxyProtocol()], **engine
            ) as server:
                assert server.addresses
                async with await anyio.connect_unix(path) as stream:
                    await stream.send(v1("192.0.2.44", "192.0.2.1", 4444, 80) + frame("hi"))
                    assert await read_exactly(stream, 3) == frame("hi")
                s = await recorder.next_closed()
    assert recorder.messages[s] == [("hi", ("192.0.2.44", 4444))]
