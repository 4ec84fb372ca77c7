"""The generated builders: which schemas they compile, the errors they raise, and the
per-field fallback to construct (its context, its stream positions, its whole-schema limits).

The differential tests (``test_differential.py``) compare bytes with construct over the
catalog; this module pins what those cannot see: that the compiled path is really the one
taken (a silent regression to ``schema.build`` would pass every byte comparison), and that an
error names the field construct names.
"""

from __future__ import annotations

import zlib
from typing import Any

import construct as cs
import pytest
from construct import this

from codec import Codec, EncodeError, FixedLength, LengthField
from codec._errors import as_encode_error

from . import catalog

#: catalog schemas the builder must compile, and how many nodes construct builds in each
COMPILED = {
    "bitstruct_if": 0,
    "bitstruct_ipv4_header": 0,
    "bitstruct_mqtt_fixed_header": 0,
    "bitstruct_signed_flags_nested": 0,
    "enums_flags_fixed": 0,
    "flags_enum_forms": 0,
    "switch_body": 0,
    "switch_many_cases": 0,
    "switch_on_type": 1,  # the Hex case
    "padded_string_float": 0,
    "padded_strings_all_units": 0,
    "prefixed_int24_bytesinteger": 0,
    "checksum_trailer": 1,  # the Checksum
    "struct_with_exotic_fields": 3,  # Mapping, Checksum, Hex
    "prefixed_exotic_array_items": 2,  # the Mapping of each item, the RepeatUntil
}
CASES = {c.name: c for c in catalog.CASES}


def source_of(codec: Codec[Any]) -> str:
    assert codec._builder is not None, "encoded by schema.build, not by a generated builder"
    src: str = codec._builder.__wirekit_source__  # type: ignore[attr-defined]
    return src


@pytest.mark.parametrize(("name", "fallbacks"), sorted(COMPILED.items()))
def test_catalog_schemas_are_compiled(name: str, fallbacks: int) -> None:
    """The generated builder is used, and construct builds only the nodes it must."""
    src = source_of(Codec(CASES[name].schema))
    assert src.count("_fallback(") == fallbacks, src
    if not fallbacks:
        assert "SCHEMA.build" not in src  # not even the start-over path


def test_every_catalog_schema_compiles_but_a_bare_repeat() -> None:
    """Only a schema whose root the generator does not cover is built whole by construct."""
    whole = [c.name for c in catalog.CASES if Codec(c.schema, framing=c.explicit)._builder is None]
    assert whole == ["repeat_until"]


def built(codec: Codec[Any], value: Any) -> bytes:
    """``schema.build(value)``, framed as the codec frames it."""
    data: bytes = codec.schema.build(value)
    return codec.framing.frame(data, codec.max_frame_size) if codec.explicit else data


def build_error(schema: cs.Construct, value: Any) -> EncodeError:
    """What the codec raises for ``value``: checked against construct's own failure."""
    with pytest.raises(EncodeError) as info:
        Codec(schema, framing=FixedLength(1 << 16)).encode(value)
    with pytest.raises(Exception) as ref:  # noqa: PT011 - whatever construct raises
        schema.build(value)
    err = info.value
    assert type(err.__cause__) is type(ref.value)
    want = as_encode_error(ref.value)
    assert err.reason == want.reason
    if want.path is not None:
        assert err.path == want.path
    return err


HEADER = cs.Struct(
    "header"
    / cs.BitStruct(
        "version" / cs.Const(2, cs.BitsInteger(2)),
        "kind" / cs.Enum(cs.BitsInteger(2), a=0, b=1),
        "qos" / cs.BitsInteger(2),
        "delta" / cs.BitsInteger(2, signed=True),
    ),
    "perms" / catalog.PERMS,
)
GOOD: dict[str, Any] = {"header": {"version": 2, "kind": "a", "qos": 1, "delta": -1}, "perms": 3}


@pytest.mark.parametrize(
    ("field", "bad", "error", "path"),
    [
        ("qos", 4, cs.IntegerError, "(building) -> header -> qos"),
        ("qos", -1, cs.IntegerError, "(building) -> header -> qos"),
        ("qos", 1.0, cs.IntegerError, "(building) -> header -> qos"),
        ("delta", -3, cs.IntegerError, "(building) -> header -> delta"),
        ("version", 3, cs.ConstError, "(building) -> header -> version"),
        ("kind", "c", cs.MappingError, "(building) -> header -> kind"),
    ],
)
def test_bitstruct_errors_are_constructs(field: str, bad: Any, error: type, path: str) -> None:
    value = {**GOOD, "header": {**GOOD["header"], field: bad}}
    err = build_error(HEADER, value)
    assert isinstance(err.__cause__, error)
    assert err.path == path


def test_bitstruct_missing_field_is_an_encode_error() -> None:
    err = build_error(HEADER, {**GOOD, "header": {"version": 2, "kind": "a", "qos": 1}})
    assert "KeyError" in err.reason


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        ("read|nope", cs.MappingError),
        ({"nope": True}, cs.MappingError),
        (1.5, cs.MappingError),
        (None, cs.MappingError),
        (0x10000, cs.FormatFieldError),  # an int goes as is, to the Int16ub
    ],
)
def test_flags_enum_errors_name_the_field(bad: Any, error: type) -> None:
    err = build_error(HEADER, {**GOOD, "perms": bad})
    assert isinstance(err.__cause__, error)
    assert err.path == "(building) -> perms"


def test_flags_enum_ignores_false_unknown_and_private_keys() -> None:
    codec = Codec(HEADER)
    for perms in ({"nope": False, "_flagsenum": True, "read": True}, "read | write", 5):
        value = {**GOOD, "perms": perms}
        assert codec.encode(value) == HEADER.build(value)


def test_switch_errors_name_the_field() -> None:
    schema = catalog.TYPED
    err = build_error(schema, {"type": "point", "body": {"x": 1 << 15, "y": 0}, "tail": 0})
    assert err.path == "(building) -> body -> x"
    err = build_error(schema, {"type": "name", "body": "123456789", "tail": 0})
    assert isinstance(err.__cause__, cs.PaddingError)
    assert err.path == "(building) -> body"
    err = build_error(schema, {"type": "hexed", "body": -1, "tail": 0})  # built by construct
    assert err.path == "(building) -> body"
    err = build_error(schema, {"type": [], "body": b"", "tail": 0})  # unhashable key
    assert isinstance(err.__cause__, TypeError)


def test_switch_key_evaluated_in_the_build_context() -> None:
    """The key sees the value given for a later field and the built value of an earlier
    one (a Rebuild), as construct's Struct context has them."""
    schema = cs.Struct(
        "n" / cs.Rebuild(cs.Int8ub, cs.len_(this.data)),
        "body" / cs.Switch(lambda ctx: (ctx.n, ctx.later), {(2, 1): cs.Int16ub}, cs.Int8ub),
        "data" / cs.Bytes(this.n),
        "later" / cs.Int8ub,
    )
    codec = Codec(schema)
    for value in ({"body": 7, "data": b"ab", "later": 1}, {"body": 7, "data": b"a", "later": 1}):
        assert codec.encode(value) == schema.build(value)
    assert "_fallback(" not in source_of(codec)


@pytest.mark.parametrize(
    ("encoding", "text", "error"),
    [
        ("ascii", "abcd", cs.PaddingError),  # 4 bytes for 3
        ("utf16", "a", None),  # BOM + 2 bytes: fits 4
        ("utf16", "ab", cs.PaddingError),
        ("utf32", "", None),  # the empty string is no bytes at all, not a BOM
        ("ascii", "é", cs.StringError),
        ("utf8", b"raw", cs.StringError),
    ],
)
def test_padded_string_matches_construct(encoding: str, text: Any, error: type | None) -> None:
    schema = cs.Struct("s" / cs.PaddedString(4 if encoding != "ascii" else 3, encoding))
    if error is None:
        assert Codec(schema).encode({"s": text}) == schema.build({"s": text})
        return
    err = build_error(schema, {"s": text})
    assert isinstance(err.__cause__, error)
    assert err.path == "(building) -> s"  # construct leaves it out for encoding errors


def test_padded_string_computed_length() -> None:
    schema = cs.Struct("n" / cs.Int8ub, "s" / cs.PaddedString(this.n - 1, "utf8"))
    codec = Codec(schema)
    assert codec.encode({"n": 4, "s": "ab"}) == b"\x04ab\x00"
    err = build_error(schema, {"n": 0, "s": ""})
    assert isinstance(err.__cause__, cs.PaddingError)


# -- the per-field fallback ------------------------------------------------------------------
def test_fallback_field_sees_constructs_context() -> None:
    """A Checksum built by construct reads a built value (the Rebuild's), the value given
    for a field not built yet, and a parent's field through ``_``."""
    schema = cs.Struct(
        "tag" / cs.Int8ub,
        "body"
        / cs.Struct(
            "n" / cs.Rebuild(cs.Int8ub, cs.len_(this.data)),
            "data" / cs.Bytes(this.n),
            "crc"
            / cs.Checksum(
                cs.Int32ub,
                zlib.crc32,
                lambda ctx: bytes([ctx.n, ctx.later, ctx._.tag]) + ctx.data,
            ),
            "later" / cs.Int8ub,
        ),
    )
    codec = Codec(schema)
    value = {"tag": 9, "body": {"n": None, "data": b"xyz", "later": 5}}
    assert codec.encode(value) == schema.build(value)
    assert source_of(codec).count("_fallback(") == 1


def test_fallback_field_errors_name_the_field() -> None:
    value = {"id": 1, "color": "mauve", "data": b"", "key": b"abcd", "tail": 0}
    err = build_error(catalog.EXOTIC, value)
    assert isinstance(err.__cause__, cs.MappingError)
    assert err.path == "(building) -> color"
    out = bytearray(b"keep")
    with pytest.raises(EncodeError):
        Codec(catalog.EXOTIC).encode_into(value, out)
    assert out == b"keep"  # nothing appended, although fields before it were


def test_fallback_in_array_items_sees_the_index() -> None:
    schema = cs.Struct(
        "n" / cs.Int8ub,
        "xs" / cs.Array(this.n, cs.Struct("h" / cs.Hex(cs.Int8ub), "i" / cs.Computed(this._index))),
        "ix" / cs.Array(this.n, cs.ExprAdapter(cs.Int8ub, None, lambda obj, ctx: ctx._index)),
    )
    codec = Codec(schema)
    value = {"n": 3, "xs": [{"h": 1}, {"h": 2}, {"h": 3}], "ix": [None] * 3}
    assert codec.encode(value) == schema.build(value) == b"\x03\x01\x02\x03\x00\x01\x02"


def test_fallback_stream_positions_are_constructs() -> None:
    """``Tell`` built by construct says the position in construct's stream: from the start
    of the frame (even after bytes already in ``encode_into``'s buffer), from the start of a
    ``Prefixed`` body inside it (construct builds the body in a stream of its own)."""
    inner = cs.Struct("a" / cs.Int16ub, "p" / cs.Tell, "q" / cs.Rebuild(cs.Int8ub, this.p))
    schema = cs.Struct(
        "x" / cs.Int8ub,
        "p" / cs.Tell,
        "body" / cs.Prefixed(cs.Int8ub, inner),
        "q" / cs.Rebuild(cs.Int8ub, this.p),
    )
    codec = Codec(schema)
    value = {"x": 1, "body": {"a": 2}}
    want = schema.build(value)
    assert want == b"\x01\x03\x00\x02\x02\x01"  # Tell: 2 in the body, 1 in the frame
    assert codec.encode(value) == want
    out = bytearray(b"earlier frames")
    codec.encode_into(value, out)
    assert out == b"earlier frames" + want


class _PatchBack(cs.Construct):  # type: ignore[misc]
    """Writes a byte, then overwrites the byte before its own start (a "patch the length"
    pattern): only possible on construct's whole stream."""

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        pos = stream.tell()
        stream.write(bytes([obj]))
        stream.seek(pos - 1)
        stream.write(b"\xee")
        stream.seek(pos + 1)
        return obj


class _Elsewhere(cs.Construct):  # type: ignore[misc]
    """Leaves the stream position before the end of what it wrote."""

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        stream.write(b"\x01\x02")
        stream.seek(-1, 1)
        return obj


@pytest.mark.parametrize("node", [_PatchBack(), _Elsewhere()], ids=["patch_back", "elsewhere"])
def test_fallback_that_needs_the_whole_stream_starts_over(node: cs.Construct) -> None:
    schema = cs.Struct("a" / cs.Int8ub, "p" / node, "b" / cs.Int8ub)
    codec = Codec(schema, framing=FixedLength(3))
    value = {"a": 1, "p": 5, "b": 2}
    want = built(codec, value)
    assert codec.encode(value) == want
    out = bytearray(b"prefix")
    codec.encode_into(value, out)
    assert out == b"prefix" + want
    assert source_of(codec).count("_fallback(") == 1


@pytest.mark.parametrize(
    "schema",
    [
        cs.Struct("a" / cs.Int8ub, "p" / cs.Pointer(0, cs.Int8ub), "b" / cs.Int8ub),
        cs.Struct("a" / cs.Int8ub, cs.Seek(0), "b" / cs.Int8ub),
        cs.Struct("a" / cs.Int8ub, cs.StopIf(this.a == 0), "b" / cs.Int8ub),
        cs.RepeatUntil(lambda x, lst, ctx: x == 0, cs.Int8ub),
    ],
    ids=["pointer", "seek", "stopif", "uncompiled_root"],
)
def test_whole_schema_fallback(schema: cs.Construct) -> None:
    """What no per-field call can build is left to ``schema.build``, whole."""
    codec = Codec(schema, framing=LengthField(0, 2, strip=2))
    assert codec._builder is None
    for value in ([1, 0],) if isinstance(schema, cs.RepeatUntil) else ({"a": 1, "p": 7, "b": 2},):
        assert codec.encode(value) == built(codec, value)


def test_bitstruct_with_an_uncovered_field_builds_only_that_field_with_construct() -> None:
    """A field of a BitStruct the generator does not cover is built by construct on a bit
    stream, the rest of the BitStruct (and of the message) stays generated."""
    bits = cs.BitStruct(
        "a" / cs.Nibble,
        "m" / cs.Mapping(cs.Nibble, {"x": 1, "y": 9}),
        "b" / cs.Bytewise(cs.Int8ub),
        "c" / cs.Nibble,
        cs.Padding(4),
    )
    schema = cs.Struct("h" / bits, "n" / cs.Int8ub)
    codec = Codec(schema)
    src = source_of(codec)
    assert src.count("_fallback(") == 1
    assert src.count("_bits_fallback(") == 1
    assert ".to_bytes(3, 'big')" in src  # the region is still one integer
    for m in ("x", "y"):
        value = {"h": {"a": 1, "m": m, "b": 2, "c": 3}, "n": 4}
        assert codec.encode(value) == schema.build(value)
    err = build_error(schema, {"h": {"a": 1, "m": "z", "b": 2, "c": 3}, "n": 4})
    assert err.path == "(building) -> h -> m"


@pytest.mark.parametrize(
    ("schema", "value"),
    [
        (cs.Bitwise(cs.BitsInteger(24)), 0xABCDEF),
        (cs.BitStruct("a" / cs.Nibble, cs.Padding(4, b"\x01")), {"a": 5}),
        (
            cs.BitStruct("o" / cs.Octet, "f" / cs.Flag, "r" / cs.BitsInteger(7)),
            {"o": 1, "f": 7, "r": 2},
        ),
    ],
    ids=["bitwise_integer", "ones_padding", "truthy_flag"],
)
def test_bitwise_roots_compile(schema: cs.Construct, value: Any) -> None:
    codec = Codec(schema)
    assert "_fallback(" not in source_of(codec)
    assert codec.encode(value) == schema.build(value)


def test_bitstruct_not_whole_bytes_fails_as_constructs() -> None:
    schema = cs.Struct("h" / cs.BitStruct("a" / cs.BitsInteger(3)), "n" / cs.Int8ub)
    codec = Codec(schema, framing=FixedLength(2))
    assert "_fallback(" not in source_of(codec)
    err = build_error(schema, {"h": {"a": 1}, "n": 2})
    assert "multiple of 8" in err.reason
    # the fields are checked first, as construct builds them before it packs the bits
    err = build_error(schema, {"h": {"a": 8}, "n": 2})
    assert err.path == "(building) -> h -> a"


def test_encode_into_is_one_generated_function_unless_a_field_falls_back() -> None:
    """A builder with no construct fallback is inlined into ``encode_into`` (one call per
    message sent); one with a fallback keeps the wrapper around it. Both append nothing on
    a bad value."""
    plain = Codec(cs.Prefixed(cs.Int32ub, cs.Struct("id" / cs.Int16ub, "body" / cs.GreedyBytes)))
    assert "def encode_into(obj, out):" in plain.encode_into.__wirekit_source__  # type: ignore[attr-defined]
    wrapped = Codec(catalog.EXOTIC)
    assert not hasattr(wrapped.encode_into, "__wirekit_source__")
    for codec, bad in ((plain, {"id": 1, "body": "not bytes"}), (wrapped, {"id": 1})):
        out = bytearray(b"keep")
        with pytest.raises(EncodeError):
            codec.encode_into(bad, out)
        assert out == b"keep"
    out = bytearray(b"keep")
    plain.encode_into({"id": 7, "body": b"abc"}, out)
    assert out == b"keep\x00\x00\x00\x05\x00\x07abc"


@pytest.mark.parametrize(
    "prefix", [cs.Int8ub, cs.Int8sb, cs.Int16ul, cs.Int32ub, cs.Int64sl], ids=lambda p: str(p)
)
@pytest.mark.parametrize("max_frame_size", [64, 300, 1 << 20])
def test_a_bytes_body_under_an_integer_prefix_encodes_as_construct_builds_it(
    prefix: cs.Construct, max_frame_size: int
) -> None:
    """The shortcut for ``Prefixed(<int>, GreedyBytes)`` (bytes appended behind their
    length, no rollback mark) gives what the schema builds, and every value it does not
    take (not bytes, too long for the prefix or for ``max_frame_size``) raises the same
    ``EncodeError`` as the general encoder, appending nothing."""
    schema = cs.Prefixed(prefix, cs.GreedyBytes)
    codec = Codec(schema, max_frame_size=max_frame_size)
    assert not hasattr(codec.encode_into, "__wirekit_source__")  # the shortcut
    for size in (0, 1, 55, 56, 60, 61, 63, 64, 126, 127, 128, 255, 256, 300, 1000):
        for value in (b"x" * size, bytearray(b"y" * size)):
            out = bytearray(b"keep")
            try:
                built = schema.build(value)
            except cs.ConstructError:
                with pytest.raises(EncodeError, match="error during building"):
                    codec.encode_into(value, out)
                assert out == b"keep"
                continue
            if len(built) > max_frame_size:
                with pytest.raises(EncodeError, match=f"{len(built)} bytes exceeds"):
                    codec.encode_into(value, out)
                assert out == b"keep"
                continue
            codec.encode_into(value, out)
            assert out == b"keep" + built
            assert type(out) is bytearray
    for bad in ("text", 5, None, [1, 2]):
        out = bytearray(b"keep")
        with pytest.raises(EncodeError):
            codec.encode_into(bad, out)
        assert out == b"keep"


def test_a_prefix_that_counts_itself_is_not_the_shortcut() -> None:
    schema = cs.Prefixed(cs.Int16ub, cs.GreedyBytes, includelength=True)
    codec = Codec(schema)
    out = bytearray()
    codec.encode_into(b"abc", out)
    assert out == schema.build(b"abc") == b"\x00\x05abc"
