"""The seed chapter's two demos (§3.1), as tests: half packet and sticky packet."""

from __future__ import annotations

import construct as cs

from codec import Buffer, Codec

STRING8 = cs.PascalString(cs.Int8ub, "utf8")
BODY = b"smart-socket"
FRAME = bytes([len(BODY)]) + BODY


def test_half_packet_expected_12_with_11_remaining_returns_none() -> None:
    c = Codec(STRING8)
    # the seed's buffer holds msgBody.length (12) bytes: the 1-byte head and 11 body bytes
    buf = Buffer(FRAME[:12])
    assert FRAME[0] == 12
    assert len(buf) - 1 == 11
    assert c.decode(buf) is None
    assert len(buf) == 12  # nothing consumed
    assert bytes(buf) == FRAME[:12]


def test_sticky_packet_gives_two_messages_one_per_call() -> None:
    c = Codec(STRING8)
    buf = Buffer(FRAME * 2)
    assert c.decode(buf) == "smart-socket"
    assert len(buf) == len(FRAME)
    assert c.decode(buf) == "smart-socket"
    assert len(buf) == 0
    assert c.decode(buf) is None


def test_design_walkthrough() -> None:
    c = Codec(STRING8, max_frame_size=65536)
    assert c.encode("smart-socket") == b"\x0csmart-socket"
    buf = Buffer()
    buf.extend(b"\x0csmart")
    assert c.decode(buf) is None
    assert len(buf) == 6
    buf.extend(b"-socket\x0csmart-socket")
    assert c.decode(buf) == "smart-socket"
    assert c.decode(buf) == "smart-socket"
    assert c.decode(buf) is None
