"""Explicit framings with Netty's vocabulary, and their encoders."""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, SupportsIndex

import construct as cs
import pytest

from codec import Buffer, Codec, Delimiter, EncodeError, FixedLength, LengthField, VarIntLength

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

BODY = b"HELLO, WORLD"  # Netty's javadoc example payload (12 bytes)


@pytest.mark.parametrize(
    ("framing", "frame", "payload"),
    [
        # Netty LengthFieldBasedFrameDecoder javadoc examples, same bytes
        (LengthField(0, 2), b"\x00\x0c" + BODY, b"\x00\x0c" + BODY),
        (LengthField(0, 2, strip=2), b"\x00\x0c" + BODY, BODY),
        (LengthField(0, 2, adjustment=-2), b"\x00\x0e" + BODY, b"\x00\x0e" + BODY),
        (LengthField(2, 3), b"\xca\xfe\x00\x00\x0c" + BODY, b"\xca\xfe\x00\x00\x0c" + BODY),
        (
            LengthField(0, 3, adjustment=2),
            b"\x00\x00\x0c\xca\xfe" + BODY,
            b"\x00\x00\x0c\xca\xfe" + BODY,
        ),
        (LengthField(1, 2, adjustment=1, strip=3), b"\xca\x00\x0c\xfe" + BODY, b"\xfe" + BODY),
        (LengthField(1, 2, adjustment=-3, strip=3), b"\xca\x00\x10\xfe" + BODY, b"\xfe" + BODY),
        (LengthField(0, 4, byteorder="little", strip=4), b"\x0c\x00\x00\x00" + BODY, BODY),
        (FixedLength(12), BODY, BODY),
        (Delimiter(b"\r\n"), BODY + b"\r\n", BODY),
        (Delimiter(b"\r\n", strip=False), BODY + b"\r\n", BODY + b"\r\n"),
        (Delimiter(b"\n", b"\r\n"), BODY + b"\r\n", BODY),
        (VarIntLength(strip=1), b"\x0c" + BODY, BODY),
    ],
)
def test_netty_examples(framing: object, frame: bytes, payload: bytes) -> None:
    c = Codec(cs.GreedyBytes, framing=framing)  # type: ignore[arg-type]
    for n in range(len(frame)):
        assert c.decode(Buffer(frame[:n])) is None
    buf = Buffer(frame + frame)
    assert c.decode(buf) == payload
    assert c.decode(buf) == payload
    assert c.decode(buf) is None


@pytest.mark.parametrize(
    "framing",
    [
        LengthField(0, 2, strip=2),
        LengthField(0, 4, adjustment=-4, strip=4),
        Delimiter(b"\n"),
        VarIntLength(strip=1),
    ],
)
def test_explicit_framing_encode_round_trip(framing: object) -> None:
    c = Codec(cs.GreedyBytes, framing=framing)  # type: ignore[arg-type]
    frame = c.encode(b"payload")
    assert c.decode_all(frame * 3) == [b"payload"] * 3


def test_unencodable_framings_say_why() -> None:
    with pytest.raises(EncodeError, match="strip == length"):
        Codec(cs.GreedyBytes, framing=LengthField(2, 2, strip=4)).encode(b"x")
    with pytest.raises(EncodeError, match="contains the delimiter"):
        Codec(cs.GreedyBytes, framing=Delimiter(b"\n")).encode(b"a\nb")
    with pytest.raises(EncodeError, match="does not fit"):
        Codec(cs.GreedyBytes, framing=LengthField(0, 1, strip=1)).encode(b"x" * 300)
    with pytest.raises(EncodeError, match="FixedLength needs 4"):
        Codec(cs.GreedyBytes, framing=FixedLength(4)).encode(b"x")


def test_invalid_framing_arguments() -> None:
    with pytest.raises(ValueError, match="length"):
        LengthField(0, 9)
    with pytest.raises(ValueError, match="delimiters"):
        Delimiter()
    with pytest.raises(ValueError, match="positive"):
        FixedLength(0)
    with pytest.raises(ValueError, match="exceed"):
        Codec(cs.Bytes(100), max_frame_size=10)


def test_framing_reprs_say_what_was_inferred() -> None:
    assert repr(Codec(cs.PascalString(cs.Int16ul, "utf8")).framing) == (
        "LengthField(offset=0, length=2, byteorder='little') "
        "inferred from Prefixed(FormatField('<H'), includelength=False)"
    )
    assert repr(Codec(cs.Int32ub).framing) == "FixedLength(4) inferred from sizeof()"
    s = cs.Struct("n" / cs.Int8ub, "d" / cs.Bytes(cs.this.n))
    assert repr(Codec(s).framing) == "Measured(Struct[n: fixed 1, d: sized])"


def test_delimiter_search_resumes_instead_of_rescanning() -> None:
    """Fed one byte at a time, the search looks at each byte once (not O(n^2))."""
    d = Delimiter(b"\n")
    c = Codec(cs.GreedyBytes, framing=d, max_frame_size=1 << 20)
    scanned = 0
    real_find = bytearray.find

    class CountingBytearray(bytearray):
        def find(
            self,
            sub: ReadableBuffer | SupportsIndex,
            start: SupportsIndex | None = None,
            end: SupportsIndex | None = None,
            /,
        ) -> int:
            nonlocal scanned
            scanned += operator.index(end or len(self)) - operator.index(start or 0)
            return real_find(self, sub, start, end)

    buf = Buffer()
    buf.storage = CountingBytearray()
    for _ in range(2000):
        buf.extend(b"x")
        assert c.decode(buf) is None
    buf.extend(b"\n")
    assert c.decode(buf) == b"x" * 2000
    assert scanned < 3 * 2001
