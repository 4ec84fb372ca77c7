"""The error tree, what errors say, and oversized frames refused after the header alone."""

from __future__ import annotations

import construct as cs
import pytest
from construct import this

from codec import (
    Buffer,
    Codec,
    DecodeError,
    Delimiter,
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    LengthField,
    SchemaError,
)

STRING8 = cs.PascalString(cs.Int8ub, "utf8")


def test_error_tree() -> None:
    assert issubclass(FrameTooLarge, DecodeError)
    assert issubclass(IncompleteFrame, DecodeError)
    assert not issubclass(EncodeError, DecodeError)
    assert not issubclass(DecodeError, EncodeError)


def test_decode_error_has_offset_hex_and_leaves_buffer() -> None:
    c = Codec(STRING8)
    good = c.encode("ok")
    buf = Buffer(good + b"\x02\xff\xfe" + good)
    assert c.decode(buf) == "ok"
    with pytest.raises(DecodeError) as info:
        c.decode(buf)
    err = info.value
    assert err.offset == len(good)
    assert err.data == b"\x02\xff\xfe"
    assert "stream offset 3" in str(err)
    assert "02 ff fe" in str(err)
    assert isinstance(err.__cause__, cs.ConstructError | UnicodeError)  # the original is kept
    # nothing lost: the bad frame is still there, its size known, and skipping it resumes
    assert len(buf) == 3 + len(good)
    assert err.frame_size == 3
    buf.consume(err.frame_size)
    assert c.decode(buf) == "ok"


def test_struct_error_never_escapes() -> None:
    c = Codec(cs.Struct("n" / cs.Int8ub, "xs" / cs.Array(this.n, cs.Int32ub)), max_frame_size=64)
    with pytest.raises(FrameTooLarge):
        c.decode(Buffer(b"\xff"))  # 1 + 255 * 4 > 64, known from the count alone


def test_error_names_the_field_path() -> None:
    c = Codec(cs.Struct("kind" / cs.Const(b"WK"), "n" / cs.Int8ub))
    with pytest.raises(DecodeError) as info:
        c.decode(Buffer(b"XX\x01"))
    assert info.value.path is not None
    assert "kind" in info.value.path


@pytest.mark.parametrize(
    ("schema", "header"),
    [
        (cs.PascalString(cs.Int32ub, "utf8"), b"\x7f\xff\xff\xff"),
        (cs.Prefixed(cs.VarInt, cs.GreedyBytes), b"\xff\xff\xff\x7f"),
        (
            cs.Struct("cmd" / cs.Int8ub, "len" / cs.Int32ub, "data" / cs.Bytes(this.len)),
            b"\x01\x7f\x00\x00\x00",
        ),
        (
            cs.Struct("t" / cs.Int8ub, "len" / cs.VarInt, "body" / cs.Bytes(this.len)),
            b"\x01\xff\xff\x7f",
        ),
        (cs.PrefixedArray(cs.Int32ub, cs.Int64ub), b"\x00\x10\x00\x00"),
    ],
    ids=["int32-prefix", "varint-prefix", "struct-length", "struct-varint", "array-count"],
)
def test_frame_too_large_after_the_header_alone(schema: cs.Construct, header: bytes) -> None:
    c = Codec(schema, max_frame_size=4096)
    buf = Buffer(header)  # only the header has arrived
    with pytest.raises(FrameTooLarge) as info:
        c.decode(buf)
    assert info.value.limit == 4096
    assert "max_frame_size=4096" in str(info.value)


def test_delimiter_search_past_max_frame_size_raises() -> None:
    c = Codec(cs.CString("utf8"), max_frame_size=100)
    buf = Buffer()
    for _ in range(9):
        buf.extend(b"a" * 10)
        assert c.decode(buf) is None
    buf.extend(b"a" * 10)
    with pytest.raises(FrameTooLarge):
        c.decode(buf)


def test_explicit_delimiter_too_long_raises() -> None:
    c = Codec(cs.GreedyBytes, framing=Delimiter(b"\n"), max_frame_size=8)
    assert c.decode(Buffer(b"1234567\n")) == b"1234567"
    with pytest.raises(FrameTooLarge):
        c.decode(Buffer(b"12345678"))


def test_incomplete_frame_on_close_and_decode_all() -> None:
    c = Codec(STRING8)
    d = c.decoder()
    assert list(d.feed(c.encode("a") + b"\x05ab")) == ["a"]
    with pytest.raises(IncompleteFrame, match="3 bytes buffered"):
        d.close()
    with pytest.raises(IncompleteFrame) as info:
        c.decode_all(c.encode("x") + b"\x05")
    assert info.value.messages == ["x"]
    assert info.value.offset == 2


def test_decode_all_keeps_messages_before_an_error() -> None:
    c = Codec(STRING8)
    with pytest.raises(DecodeError) as info:
        c.decode_all(c.encode("a") + c.encode("b") + b"\x01\xff")
    assert info.value.messages == ["a", "b"]


def test_decoder_yields_good_messages_before_the_bad_one() -> None:
    c = Codec(STRING8)
    d = c.decoder()
    it = d.feed(c.encode("a") + b"\x01\xff" + c.encode("b"))
    assert next(it) == "a"
    with pytest.raises(DecodeError):
        next(it)


def test_encode_error_names_the_field() -> None:
    c = Codec(cs.Struct("id" / cs.Int8ub, "name" / STRING8))
    with pytest.raises(EncodeError) as info:
        c.encode({"id": 300, "name": "x"})
    assert "id" in str(info.value)
    with pytest.raises(EncodeError):
        c.encode({"id": 1})  # missing field
    with pytest.raises(EncodeError):
        c.encode({"id": 1, "name": "é" * 200})  # 400 bytes do not fit Int8ub


def test_encode_refuses_frames_over_the_limit() -> None:
    c = Codec(cs.PascalString(cs.Int32ub, "utf8"), max_frame_size=16)
    with pytest.raises(EncodeError, match="exceeds"):
        c.encode("x" * 20)
    out = bytearray(b"keep")
    with pytest.raises(EncodeError, match="exceeds limit=16"):
        c.encode_into("x" * 20, out)
    assert out == b"keep"  # nothing appended
    c.encode_into("x" * 12, out)  # exactly the limit
    assert out == b"keep" + b"\x00\x00\x00\x0c" + b"x" * 12


def test_schemas_that_cannot_delimit_frames_are_refused_up_front() -> None:
    for schema in (
        cs.GreedyBytes,
        cs.GreedyRange(cs.Int8ub),
        cs.Struct("a" / cs.Int8ub, "b" / cs.GreedyBytes),
        cs.Computed(1),
    ):
        with pytest.raises(SchemaError):
            Codec(schema)
    with pytest.raises(TypeError):
        Codec(b"not a schema")


def test_length_field_shorter_than_header_is_a_decode_error() -> None:
    c = Codec(cs.GreedyBytes, framing=LengthField(0, 2, adjustment=-4))
    with pytest.raises(DecodeError, match="shorter than"):
        c.decode(Buffer(b"\x00\x01xx"))


@pytest.mark.parametrize(
    "schema",
    [
        cs.Struct("h" / cs.Int8ub, "body" / cs.Prefixed(cs.VarInt, cs.GreedyBytes)),
        cs.Struct("h" / cs.Int8ub, "n" / cs.VarInt, "data" / cs.Bytes(this.n)),
        cs.Struct("n" / cs.ZigZag, "b" / cs.Int8ub),
    ],
    ids=["prefixed", "field", "zigzag"],
)
def test_a_varint_longer_than_10_bytes_is_a_decode_error_however_it_arrives(
    schema: cs.Construct,
) -> None:
    """Continuation bytes without end must not read as a half packet: the frame's size
    would never be known, so neither would ``max_frame_size`` stop the buffering. Ten bytes
    hold any 64-bit value; the eleventh is an error, in one piece or byte by byte."""
    c = Codec(schema, max_frame_size=4096)
    data = b"\x01" + b"\xff" * 20 if schema.subcons[0].name == "h" else b"\xff" * 20
    with pytest.raises(DecodeError, match="VarInt longer than 10 bytes"):
        c.decode(Buffer(data))
    buf = Buffer()
    with pytest.raises(DecodeError, match="VarInt longer than 10 bytes"):
        for i in range(len(data)):
            buf.extend(data[i : i + 1])
            assert c.decode(buf) is None
    assert len(buf) <= 12  # refused as soon as the eleventh byte arrived
