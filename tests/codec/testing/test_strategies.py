"""from_schema: values that build, parse back to themselves, and respect ``this`` fields."""

from __future__ import annotations

import hashlib
from typing import Any

import construct as cs
import pytest
from construct import len_, this
from hypothesis import given, settings
from hypothesis import strategies as st

from codec.testing import UnsupportedConstruct, from_schema, value_difference

SCHEMAS: dict[str, Any] = {
    "FormatField": cs.Struct(
        "a" / cs.Int8ub, "b" / cs.Int16sl, "c" / cs.Int32un, "d" / cs.Int64sb, "e" / cs.Byte
    ),
    "BytesInteger": cs.Struct("a" / cs.Int24ub, "b" / cs.BytesInteger(5, signed=True)),
    "BitsInteger": cs.Bitwise(cs.Struct("a" / cs.BitsInteger(3), "b" / cs.BitsInteger(13, True))),
    "VarInt": cs.VarInt,
    "ZigZag": cs.ZigZag,
    "Flag": cs.Flag,
    "floats": cs.Struct("h" / cs.Float16b, "s" / cs.Float32l, "d" / cs.Float64b),
    "Bytes": cs.Bytes(5),
    "Bytes(this.len)": cs.Struct("len" / cs.Int16ub, "data" / cs.Bytes(this.len)),
    "Bytes(expression)": cs.Struct("len" / cs.Int8ub, "data" / cs.Bytes(this.len - 2)),
    "Bytes(lambda)": cs.Struct("n" / cs.Int32ub, "data" / cs.Bytes(lambda ctx: ctx.n)),
    "GreedyBytes": cs.GreedyBytes,
    "PascalString": cs.PascalString(cs.Int8ub, "utf8"),
    "PascalString-utf16": cs.PascalString(cs.VarInt, "utf16"),
    "CString": cs.CString("utf8"),
    "CString-utf16": cs.CString("utf_16_le"),
    "PaddedString": cs.PaddedString(6, "utf8"),
    "PaddedString-ascii": cs.PaddedString(4, "ascii"),
    "PaddedString(this.n)": cs.Struct("n" / cs.Int8ub, "s" / cs.PaddedString(this.n, "utf32")),
    "GreedyString": cs.GreedyString("utf8"),
    "Struct-nested": cs.Struct("h" / cs.Struct("len" / cs.Int16ub), "body" / cs.Bytes(this.h.len)),
    "Struct-parent": cs.Struct("n" / cs.Int8ub, "inner" / cs.Struct("data" / cs.Bytes(this._.n))),
    "Sequence": cs.Sequence(cs.Int8ub, cs.Const(b"AB"), cs.PascalString(cs.Int8ub, "ascii")),
    "FocusedSeq": cs.FocusedSeq("x", cs.Const(b"\x01"), "x" / cs.Int16ub),
    "Array": cs.Array(3, cs.Int16ub),
    "Array(this.count)": cs.Struct("count" / cs.Int8ub, "items" / cs.Array(this.count, cs.Byte)),
    "PrefixedArray": cs.PrefixedArray(cs.Int8ub, cs.PascalString(cs.Int8ub, "utf8")),
    "GreedyRange": cs.GreedyRange(cs.Int16ub),
    "Enum": cs.Enum(cs.Int8ub, a=1, b=2, c=255),
    "FlagsEnum": cs.FlagsEnum(cs.Int8ub, x=1, y=2, xy=3, z=8),
    "Mapping": cs.Mapping(cs.Byte, {"x": 1, "y": 2}),
    "Const": cs.Struct("magic" / cs.Const(b"WK"), "v" / cs.Int8ub),
    "Computed": cs.Struct("a" / cs.Int8ub, "twice" / cs.Computed(this.a * 2)),
    "Rebuild": cs.Struct(
        "len" / cs.Rebuild(cs.Int8ub, len_(this.data)), "data" / cs.Bytes(this.len)
    ),
    "Default": cs.Struct("d" / cs.Default(cs.Int16ub, 7)),
    "Switch": cs.Struct(
        "kind" / cs.Int8ub,
        "body" / cs.Switch(this.kind, {1: cs.Int32ub, 2: cs.CString("utf8")}, default=cs.Bytes(2)),
    ),
    "Switch-enum": cs.Struct(
        "kind" / cs.Enum(cs.Int8ub, A=1, B=2),
        "body" / cs.Switch(this.kind, {"A": cs.Int32ub, "B": cs.Int8ub}),
    ),
    "If": cs.Struct("flag" / cs.Flag, "x" / cs.If(this.flag, cs.Int16ub)),
    "IfThenElse": cs.Struct(
        "flag" / cs.Flag, "y" / cs.IfThenElse(this.flag, cs.Int8ub, cs.CString("ascii"))
    ),
    "Optional": cs.Optional(cs.Int32ub),
    "BitStruct": cs.BitStruct("a" / cs.Flag, "b" / cs.Nibble, "c" / cs.BitsInteger(3)),
    "Bitwise-Bytewise": cs.Bitwise(
        cs.Struct("x" / cs.BitsInteger(4), "y" / cs.Bytewise(cs.Int8ub), "z" / cs.Nibble)
    ),
    "Prefixed": cs.Prefixed(cs.Int16ub, cs.Struct("a" / cs.Int8ub, "b" / cs.GreedyBytes)),
    "Prefixed-includelength": cs.Prefixed(cs.Int8ub, cs.GreedyBytes, includelength=True),
    "Padding": cs.Struct("a" / cs.Int8ub, cs.Padding(3), "b" / cs.Padded(4, cs.Int16ub)),
    "Aligned": cs.Aligned(4, cs.Int8ub),
    "FixedSized": cs.Struct(
        "a" / cs.FixedSized(4, cs.GreedyBytes), "b" / cs.FixedSized(6, cs.Int16ub)
    ),
    "NullTerminated": cs.NullTerminated(cs.GreedyBytes),
    "Checksum": cs.Struct(
        "fields" / cs.RawCopy(cs.Struct("a" / cs.Int8ub, "b" / cs.Bytes(3))),
        "sum" / cs.Checksum(cs.Bytes(32), lambda d: hashlib.sha256(d).digest(), this.fields.data),
    ),
    "Renamed-docs": cs.Struct("x" / cs.Int8ub * "a documented field"),
    "Hex": cs.Hex(cs.Int32ub),
}


@pytest.mark.parametrize("name", list(SCHEMAS))
def test_values_build_and_parse_back(name: str) -> None:
    schema = SCHEMAS[name]

    @settings(max_examples=30)
    @given(from_schema(schema))
    def check(value: Any) -> None:
        data = schema.build(value)
        parsed = schema.parse(data)
        # the value drawn is what parsing gives back (construct may add computed fields)
        assert value_difference(value, parsed) is None, value_difference(value, parsed)
        assert schema.build(parsed) == data

    check()


@given(from_schema(cs.Struct("len" / cs.Int16ub, "data" / cs.Bytes(this.len))))
def test_length_field_matches_the_body(value: Any) -> None:
    assert value.len == len(value.data)


@given(from_schema(cs.Struct("count" / cs.Int8ub, "items" / cs.Array(this.count, cs.Int8ub))))
def test_count_field_matches_the_items(value: Any) -> None:
    assert value.count == len(value["items"])


def test_switch_keys_reach_the_cases() -> None:
    schema = cs.Struct(
        "kind" / cs.Int16ub, "body" / cs.Switch(this.kind, {7: cs.Int8ub, 300: cs.CString("utf8")})
    )
    seen = set()

    @settings(max_examples=60, derandomize=True)
    @given(from_schema(schema))
    def collect(value: Any) -> None:
        seen.add(value.kind)

    collect()
    assert {7, 300} <= seen


def test_override_by_name_and_by_path() -> None:
    schema = cs.Struct(
        "header" / cs.Struct("kind" / cs.Int8ub),
        "payload" / cs.PascalString(cs.Int8ub, "utf8"),
    )
    strategy = from_schema(
        schema, overrides={"payload": st.just("fixed"), "header.kind": st.just(9)}
    )

    @given(strategy)
    def check(value: Any) -> None:
        assert value.payload == "fixed"
        assert value.header.kind == 9

    check()


def test_override_serves_an_unsupported_field() -> None:
    odd = cs.ExprAdapter(cs.Int8ub, lambda obj, ctx: obj - 1, lambda obj, ctx: obj + 1)
    schema = cs.Struct("t" / odd, "n" / cs.Int8ub)
    with pytest.raises(UnsupportedConstruct, match=r"ExprAdapter at t\b.*overrides"):
        from_schema(schema)
    from_schema(schema, overrides={"t": st.just(0)})


def test_unsupported_error_names_class_and_path() -> None:
    schema = cs.Struct("body" / cs.Struct("x" / cs.ExprAdapter(cs.Byte, lambda o, c: o, None)))
    with pytest.raises(UnsupportedConstruct) as info:
        from_schema(schema)
    assert info.value.path == "body.x"
    assert "ExprAdapter" in str(info.value)
    assert "overrides={'body.x': <strategy>}" in str(info.value)


def test_override_matching_nothing_is_an_error() -> None:
    with pytest.raises(ValueError, match="payld"):
        from_schema(cs.Struct("payload" / cs.Int8ub), overrides={"payld": st.just(1)})
