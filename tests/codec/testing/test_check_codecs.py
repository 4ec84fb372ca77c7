"""check_codec passes on wirekit's own Codecs, across framings and construct classes."""

from __future__ import annotations

import zlib

import construct as cs
import pytest
from construct import len_, this

from codec import Buffer, Codec, Delimiter, FixedLength, LengthField, SchemaError
from codec.testing import check_codec, from_schema

#: a bounded number of examples per property: this matrix runs every property on each
EXAMPLES = 15

KIND = cs.Enum(cs.Int8ub, PING=1, TEXT=2, BLOB=3)

CODECS: dict[str, Codec[object]] = {
    "pascal-string": Codec(cs.PascalString(cs.Int8ub, "utf8")),
    "varint-string": Codec(cs.PascalString(cs.VarInt, "utf8"), max_frame_size=4096),
    "prefixed-struct": Codec(
        cs.Prefixed(cs.Int16ub, cs.Struct("kind" / cs.Int8ub, "body" / cs.GreedyBytes))
    ),
    "prefixed-includelength": Codec(cs.Prefixed(cs.Int32ul, cs.GreedyBytes, includelength=True)),
    "fixed-numbers": Codec(
        cs.Struct(
            "a" / cs.Int8ub,
            "b" / cs.Int16sl,
            "c" / cs.Float32b,
            "d" / cs.Float64l,
            "e" / cs.Flag,
            "f" / cs.Int24ub,
        )
    ),
    "cstring": Codec(cs.CString("utf8")),
    "bytes-this-len": Codec(cs.Struct("len" / cs.Int16ub, "data" / cs.Bytes(this.len))),
    "rebuild-len": Codec(
        cs.Struct(
            "magic" / cs.Const(b"WK"),
            "len" / cs.Rebuild(cs.Int8ub, len_(this.data)),
            "data" / cs.Bytes(this.len),
        )
    ),
    "enum-switch": Codec(
        cs.Struct(
            "kind" / KIND,
            "body"
            / cs.Switch(
                this.kind,
                {
                    "PING": cs.Pass,
                    "TEXT": cs.PascalString(cs.Int8ub, "utf8"),
                    "BLOB": cs.Prefixed(cs.Int16ub, cs.GreedyBytes),
                },
                default=cs.Int32ub,
            ),
        )
    ),
    "flags-enum": Codec(
        cs.Struct("f" / cs.FlagsEnum(cs.Int8ub, syn=1, ack=2, fin=4), "seq" / cs.Int32ub)
    ),
    "bitstruct": Codec(
        cs.BitStruct(
            "version" / cs.BitsInteger(2),
            "padding" / cs.Flag,
            "ext" / cs.Flag,
            "cc" / cs.Nibble,
            "marker" / cs.Flag,
            "pt" / cs.BitsInteger(7),
        )
    ),
    "prefixed-array": Codec(cs.PrefixedArray(cs.Int8ub, cs.Int16ub)),
    "array-this-count": Codec(
        cs.Struct(
            "count" / cs.Int8ub,
            "items" / cs.Array(this.count, cs.PascalString(cs.Int8ub, "ascii")),
        )
    ),
    "if": Codec(cs.Struct("has" / cs.Flag, "x" / cs.If(this.has, cs.Int32ub), "tail" / cs.Int8ub)),
    "if-then-else": Codec(
        cs.Struct("wide" / cs.Flag, "n" / cs.IfThenElse(this.wide, cs.Int32ub, cs.Int8ub))
    ),
    "checksum": Codec(
        cs.Struct(
            "fields" / cs.RawCopy(cs.Struct("len" / cs.Int8ub, "data" / cs.Bytes(this.len))),
            "crc" / cs.Checksum(cs.Int32ub, zlib.crc32, this.fields.data),
        )
    ),
    "padded-string": Codec(
        cs.Struct("name" / cs.PaddedString(8, "ascii"), cs.Padding(2), "v" / cs.Int16ub)
    ),
    "varint-zigzag": Codec(cs.Struct("a" / cs.VarInt, "b" / cs.ZigZag), max_frame_size=4096),
    "sequence": Codec(cs.Sequence(cs.Int8ub, cs.PascalString(cs.Int8ub, "utf8"))),
    "focused-seq": Codec(
        cs.FocusedSeq("payload", cs.Const(b"\xaa"), "payload" / cs.PascalString(cs.Int8ub, "utf8"))
    ),
    "nested-len": Codec(
        cs.Struct(
            "h" / cs.Struct("kind" / cs.Int8ub, "len" / cs.Int16ub), "body" / cs.Bytes(this.h.len)
        )
    ),
    "computed-default": Codec(
        cs.Struct(
            "a" / cs.Int8ub,
            "twice" / cs.Computed(this.a * 2),
            "d" / cs.Default(cs.Int8ub, 7),
        )
    ),
    "explicit-length-field": Codec(cs.GreedyString("utf8"), framing=LengthField(0, 4, strip=4)),
    "explicit-fixed": Codec(cs.Struct("a" / cs.Int32ub), framing=FixedLength(4)),
    "small-limit": Codec(cs.PascalString(cs.Int16ub, "utf8"), max_frame_size=20),
}


@pytest.mark.parametrize("name", list(CODECS))
def test_check_codec_passes_on_codec(name: str) -> None:
    check_codec(CODECS[name], max_examples=EXAMPLES)


def test_explicit_delimiter_with_values_that_avoid_it() -> None:
    c = Codec(cs.GreedyBytes, framing=Delimiter(b"\n"))
    values = from_schema(cs.GreedyBytes).map(lambda b: b.replace(b"\n", b""))
    check_codec(c, values, max_examples=EXAMPLES)


def test_values_can_be_sample_messages() -> None:
    check_codec(Codec(cs.PascalString(cs.Int8ub, "utf8")), ["", "smart-socket", "é" * 127])


def test_unknown_property_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown properties"):
        check_codec(CODECS["pascal-string"], properties=["speed"])


def test_hand_protocol_needs_values() -> None:
    class Hand:
        def decode(self, buf: Buffer) -> bytes | None:
            return None

        def encode(self, msg: bytes) -> bytes:
            return msg

    with pytest.raises(TypeError, match="values="):
        check_codec(Hand())


def test_not_a_protocol_is_refused() -> None:
    with pytest.raises(TypeError, match="not a Protocol"):
        check_codec(42)  # type: ignore[arg-type]


def test_optional_tail_is_refused_with_a_clear_error() -> None:
    """Found by check_codec: a frame ending in Optional cannot be delimited in a stream (the
    next byte may be the Optional's or the next frame's), so Codec refuses it up front."""
    with pytest.raises(SchemaError, match="ends with an Optional/Select"):
        Codec(cs.Struct("a" / cs.Int8ub, "b" / cs.Optional(cs.Int8ub)))
    # with a length prefix around it, the same schema is fine
    c = Codec(cs.Prefixed(cs.Int8ub, cs.Struct("a" / cs.Int8ub, "b" / cs.Optional(cs.Int8ub))))
    check_codec(c, max_examples=EXAMPLES, properties=["round-trip"])
