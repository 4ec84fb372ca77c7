"""schemas.websocket: RFC 6455's own examples, every length encoding, bad frames, check_codec,
and frames made and read by wsproto (an implementation no one here wrote)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Event,
    Ping,
    Pong,
    Request,
    TextMessage,
)

from codec import Buffer, DecodeError, FrameTooLarge, IncompleteFrame
from codec.testing import check_codec
from schemas import websocket as ws

HELLO = b"Hello"
KEY = bytes.fromhex("37fa213d")

# RFC 6455 5.7, "Examples", byte for byte
RFC_EXAMPLES = [
    ("unmasked text", "810548656c6c6f", "TEXT", True, None, HELLO),
    ("masked text", "818537fa213d7f9f4d5158", "TEXT", True, KEY, HELLO),
    ("first fragment", "010348656c", "TEXT", False, None, b"Hel"),
    ("last fragment", "80026c6f", "CONTINUATION", True, None, b"lo"),
    ("unmasked ping", "890548656c6c6f", "PING", True, None, HELLO),
    ("masked pong", "8a8537fa213d7f9f4d5158", "PONG", True, KEY, HELLO),
    ("256 bytes binary", "827e0100" + "ab" * 256, "BINARY", True, None, b"\xab" * 256),
    ("64 KiB binary", "827f0000000000010000" + "cd" * 65536, "BINARY", True, None, None),
]


@pytest.mark.parametrize(
    ("wire", "opcode", "fin", "mask", "payload"),
    [e[1:] for e in RFC_EXAMPLES],
    ids=[e[0] for e in RFC_EXAMPLES],
)
def test_rfc_6455_examples(
    wire: str, opcode: str, fin: bool, mask: bytes | None, payload: bytes | None
) -> None:
    data = bytes.fromhex(wire)
    payload = payload if payload is not None else b"\xcd" * 65536
    buf = Buffer(data + data)  # sticky: one frame per call
    msg = ws.CODEC.decode(buf)
    assert msg is not None
    assert (msg.header.opcode, msg.header.fin, msg.mask, msg.payload) == (
        opcode,
        fin,
        mask,
        payload,
    )
    assert msg.length == len(payload)
    assert msg == ws.FRAME.parse(data)
    assert type(msg.payload) is bytes
    assert ws.CODEC.decode(buf) == msg
    assert len(buf) == 0
    assert ws.CODEC.encode(msg) == data
    assert ws.CODEC.encode(ws.frame(opcode, payload, fin=fin, mask=mask)) == data


def test_accept_key_of_section_1_3() -> None:
    assert ws.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize(
    ("size", "header"),
    [  # 5.2: 7 bits up to 125, 126 + 16 bits up to 65535, 127 + 64 bits beyond
        (0, "8200"),
        (125, "827d"),
        (126, "827e007e"),
        (65535, "827effff"),
        (65536, "827f0000000000010000"),
        (1 << 20, "827f0000000000100000"),
    ],
)
def test_every_length_encoding(size: int, header: str) -> None:
    c = ws.codec(max_payload=1 << 20)
    payload = os.urandom(size)
    wire = c.encode(ws.frame("BINARY", payload))
    assert wire == bytes.fromhex(header) + payload
    masked = c.encode(ws.frame("BINARY", payload, mask=KEY))
    assert masked[: len(header) // 2] == bytes([0x82, wire[1] | 0x80]) + wire[2 : len(header) // 2]
    buf = Buffer(masked[:-1])
    assert c.decode(buf) is None  # a half packet, nothing consumed
    assert len(buf) == len(masked) - 1
    buf.extend(masked[-1:])
    msg = c.decode(buf)
    assert msg is not None
    assert msg.payload == payload
    assert msg.length == size
    assert msg == ws.FRAME.parse(masked)


BAD_FRAMES = [
    # 5.2: "the minimal number of bytes MUST be used to encode the length"
    ("16-bit length below 126", "817e0005" + "00" * 5, DecodeError),
    ("64-bit length below 65536", "827f000000000000007e" + "00" * 126, DecodeError),
    # 5.2: "the most significant bit MUST be 0": over any max_frame_size, refused at once
    ("64-bit length with the top bit", "827f8000000000000001", FrameTooLarge),
    ("64-bit length below 2^63", "827f7fffffffffffffff", FrameTooLarge),
    # 5.5: control frames are at most 125 bytes and never fragmented
    ("long ping", "897e007e" + "00" * 126, DecodeError),
    ("fragmented ping", "0901ab", DecodeError),
    ("truncated header", "81", IncompleteFrame),
    ("truncated mask", "8185ec35", IncompleteFrame),
]


@pytest.mark.parametrize(
    ("wire", "error"), [b[1:] for b in BAD_FRAMES], ids=[b[0] for b in BAD_FRAMES]
)
def test_bad_frames_are_decode_errors(wire: str, error: type[DecodeError]) -> None:
    with pytest.raises(error) as info:
        ws.CODEC.decode_all(bytes.fromhex(wire))
    assert "stream offset 0" in str(info.value)


def test_reserved_opcodes_decode_as_numbers() -> None:
    """Extensions may define them: the schema decodes, the endpoint decides."""
    msg = ws.CODEC.decode(Buffer(b"\xc3\x01x"))  # RSV1 + opcode 3
    assert msg is not None
    assert (msg.header.rsv1, msg.header.opcode, msg.payload) == (True, 3, b"x")
    assert not ws.is_control(msg.header.opcode)
    ping = ws.CODEC.decode(Buffer(b"\x8b\x00"))
    assert ping is not None
    assert ws.is_control(ping.header.opcode)


def test_close_payload() -> None:
    payload = ws.close_payload(ws.CloseCode.GOING_AWAY, "bye ✓")
    assert payload == b"\x03\xe9" + "bye ✓".encode()
    assert ws.parse_close(payload) == (1001, "bye ✓")
    assert ws.parse_close(b"") == (None, "")
    assert ws.close_payload(None) == b""
    for bad in (b"\x03", b"\x03\xe8\xff"):
        with pytest.raises(DecodeError):
            ws.parse_close(bad)


def test_mask_is_its_own_inverse() -> None:
    data = os.urandom(1001)
    assert ws.mask_bytes(ws.mask_bytes(data, KEY), KEY) == data
    assert ws.mask_bytes(HELLO, KEY) == bytes.fromhex("7f9f4d5158")
    assert ws.mask_bytes(HELLO, None) == HELLO


def frames() -> st.SearchStrategy[cs.Container]:
    data_frames = st.builds(
        lambda op, fin, rsv, mask, payload: ws.frame(
            op, payload, fin=fin, mask=mask, rsv1=rsv[0], rsv2=rsv[1], rsv3=rsv[2]
        ),
        st.sampled_from(["CONTINUATION", "TEXT", "BINARY", 3, 7]),
        st.booleans(),
        st.tuples(st.booleans(), st.booleans(), st.booleans()),
        st.none() | st.binary(min_size=4, max_size=4),
        st.binary(max_size=300) | st.binary(min_size=65530, max_size=65540),
    )
    control = st.builds(
        lambda op, mask, payload: ws.frame(op, payload, mask=mask),
        st.sampled_from(["CLOSE", "PING", "PONG", 0xB]),
        st.none() | st.binary(min_size=4, max_size=4),
        st.binary(max_size=125),
    )
    return data_frames | control


def test_frames_pass_check_codec() -> None:
    check_codec(ws.codec(max_payload=70_000), frames(), max_examples=30)


def test_a_masked_megabyte_one_byte_at_a_time_is_not_reparsed() -> None:
    """Linear cost: the frame's header is measured once, then bytes are only counted."""
    payload = os.urandom(1 << 20)
    wire = ws.CODEC.encode(ws.frame("BINARY", payload, mask=KEY))
    d = ws.CODEC.decoder()
    got: list[Any] = []
    step = 4096
    for i in range(0, len(wire), step):
        got += d.feed(wire[i : i + step])
    assert [m.payload for m in got] == [payload]


# -- the connection as a stream: HTTP head, then frames ---------------------------------------
def test_upgrade_stream_splits_the_head_from_the_frames() -> None:
    head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    first = ws.CODEC.encode(ws.frame("TEXT", HELLO, mask=KEY))
    wire = head + first + first
    for cut in range(len(wire) + 1):  # every split point
        buf = Buffer(wire[:cut])
        got: list[Any] = []
        while (msg := ws.STREAM.decode(buf)) is not None:
            got.append(msg)
        buf.extend(wire[cut:])
        while (msg := ws.STREAM.decode(buf)) is not None:
            got.append(msg)
        assert got[0] == ws.HttpHead(head)
        assert [m.payload for m in got[1:]] == [HELLO, HELLO]
    assert str(ws.HttpHead(head)).startswith("GET / HTTP/1.1")
    assert ws.STREAM.encode(ws.HttpHead(head)) == head
    assert ws.STREAM.encode(ws.frame("TEXT", HELLO, mask=KEY)) == first


def test_upgrade_stream_caps_the_head() -> None:
    with pytest.raises(FrameTooLarge):
        ws.STREAM.decode(Buffer(b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * 5000))


# -- wsproto ----------------------------------------------------------------------------------
def wsproto_pair() -> tuple[WSConnection, WSConnection]:
    """A wsproto client and server that completed the opening handshake in memory."""
    client = WSConnection(ConnectionType.CLIENT)
    server = WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="example.test", target="/chat")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client, server


BIG = bytes(range(256)) * 4096  # 1 MiB


@pytest.mark.parametrize(
    ("event", "opcode", "payload"),
    [
        (TextMessage(data="hé ✓"), "TEXT", "hé ✓".encode()),
        (BytesMessage(data=b""), "BINARY", b""),
        (BytesMessage(data=b"\x00" * 126), "BINARY", b"\x00" * 126),
        (BytesMessage(data=b"\x01" * 65536), "BINARY", b"\x01" * 65536),
        (BytesMessage(data=BIG), "BINARY", BIG),
        (Ping(payload=b"are you there"), "PING", b"are you there"),
        (Pong(payload=b"yes"), "PONG", b"yes"),
        (CloseConnection(code=1001, reason="going"), "CLOSE", b"\x03\xe9going"),
    ],
    ids=["text", "empty", "126", "65536", "1MiB", "ping", "pong", "close"],
)
def test_wsproto_client_frames_decode(event: Event, opcode: str, payload: bytes) -> None:
    client, _ = wsproto_pair()
    wire = client.send(event)
    (msg,) = ws.CODEC.decode_all(wire)
    assert msg.header.opcode == opcode
    assert msg.header.masked  # 5.3: a client masks every frame
    assert msg.payload == payload
    assert msg == ws.FRAME.parse(wire)


def test_wsproto_fragments_decode() -> None:
    client, _ = wsproto_pair()
    wire = client.send(TextMessage(data="frag", message_finished=False))
    wire += client.send(TextMessage(data="ment", message_finished=True))
    first, last = ws.CODEC.decode_all(wire)
    assert (first.header.opcode, first.header.fin, first.payload) == ("TEXT", False, b"frag")
    assert (last.header.opcode, last.header.fin, last.payload) == ("CONTINUATION", True, b"ment")


@pytest.mark.parametrize("size", [0, 125, 126, 65535, 65536, 1 << 20])
def test_our_frames_are_accepted_by_wsproto(size: int) -> None:
    client, _ = wsproto_pair()
    text = ("é" * size)[: size // 2]
    data = os.urandom(size)
    wire = b"".join(
        ws.CODEC.encode(f)
        for f in (
            ws.frame("TEXT", text.encode()),
            ws.frame("BINARY", data[:7], fin=False),
            ws.frame("PING", b"p"),  # a control frame between fragments (5.4)
            ws.frame("CONTINUATION", data[7:]),
            ws.frame("PONG", b"q"),
            ws.frame("CLOSE", ws.close_payload(ws.CloseCode.NORMAL, "done")),
        )
    )
    client.receive_data(wire)
    events = list(client.events())
    texts = "".join(e.data for e in events if isinstance(e, TextMessage))
    binary = b"".join(e.data for e in events if isinstance(e, BytesMessage))
    assert texts == text
    assert binary == data
    assert [e.payload for e in events if isinstance(e, Ping)] == [b"p"]
    assert [e.payload for e in events if isinstance(e, Pong)] == [b"q"]
    (close,) = (e for e in events if isinstance(e, CloseConnection))
    assert (close.code, close.reason) == (1000, "done")


def test_wsproto_refuses_what_the_schema_refuses() -> None:
    """The same frame the schema rejects (a ping of 126 bytes) fails wsproto too."""
    bad = bytes.fromhex("897e007e") + b"\0" * 126
    with pytest.raises(DecodeError):
        ws.CODEC.decode_all(bad)
    client, _ = wsproto_pair()
    client.receive_data(bad)
    (event,) = client.events()
    assert isinstance(event, CloseConnection)
    assert event.code == ws.CloseCode.PROTOCOL_ERROR


def test_the_docs_section_runs() -> None:
    """docs/schemas.md, "## WebSocket": every Python block runs as written, in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text("utf-8")
    section = text.split("## WebSocket\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/schemas.md", "exec"), namespace)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_upgrade_stream(data: bytes) -> None:
    buf = Buffer(data)
    try:
        while ws.STREAM.decode(buf) is not None:
            pass
    except DecodeError:
        pass
