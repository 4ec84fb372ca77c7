"""The generated encoder on BitStruct/Bitwise, FlagsEnum, Switch and PaddedString (issue
15), against ``schema.build``: hypothesis-drawn values give the same bytes; a value with one
fault fails exactly when construct fails, with construct's error class and field path, and
``encode_into`` then appends nothing; and none of these schemas is built by
``schema.build`` as a whole (the builder's source says what is generated)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import construct as cs
import pytest
from construct import this
from hypothesis import given
from hypothesis import strategies as st

from codec import Codec, EncodeError
from codec.testing import from_schema

from . import catalog

MQTT_TYPE = cs.Enum(cs.Nibble, CONNECT=1, CONNACK=2, PUBLISH=3, PUBACK=4, SUBSCRIBE=8, PINGREQ=12)

#: an MQTT-like fixed header (a BitStruct) and a body switched on its type
MQTT_LIKE = cs.Struct(
    "header"
    / cs.BitStruct(
        "type" / MQTT_TYPE, "dup" / cs.Flag, "qos" / cs.BitsInteger(2), "retain" / cs.Flag
    ),
    "body"
    / cs.Switch(
        this.header.type,
        {
            "CONNACK": cs.BitStruct(cs.Padding(7), "session_present" / cs.Flag, "code" / cs.Octet),
            "PUBLISH": cs.Struct("topic" / cs.PascalString(cs.Int16ub, "utf8"), "id" / cs.Int16ub),
            "PUBACK": cs.Int16ub,
            "SUBSCRIBE": cs.Struct(
                "id" / cs.Int16ub, "opts" / cs.FlagsEnum(cs.Int8ub, nl=4, rap=8)
            ),
        },
    ),
)

#: a WebSocket frame header: two BitStructs, the extended length switched on the 7-bit one
WS_HEADER = cs.Struct(
    "b0"
    / cs.BitStruct(
        "fin" / cs.Flag,
        "rsv" / cs.BitsInteger(3),
        "opcode" / cs.Enum(cs.Nibble, cont=0, text=1, binary=2, close=8, ping=9, pong=10),
    ),
    "b1" / cs.BitStruct("masked" / cs.Flag, "len7" / cs.BitsInteger(7)),
    "ext" / cs.Switch(this.b1.len7, {126: cs.Int16ub, 127: cs.Int64ub}),
    "key" / cs.If(this.b1.masked, cs.Bytes(4)),
)

#: a Switch inside the bits: construct's variable-size Bitwise (Restreamed)
BITS_SWITCH = cs.BitStruct(
    "k" / cs.Nibble,
    "v"
    / cs.Switch(
        this.k,
        {
            1: cs.Nibble,
            2: cs.BitsInteger(12),
            3: cs.Struct("a" / cs.Flag, "b" / cs.BitsInteger(11, signed=True)),
        },
        default=cs.BitsInteger(4),
    ),
)

#: bit widths given by an earlier field
BITS_COMPUTED = cs.Struct(
    "n" / cs.Int8ub,
    "b" / cs.BitStruct("x" / cs.BitsInteger(this._.n), "y" / cs.BitsInteger(16 - this._.n)),
)

#: arrays of bit fields, byte-swapped bit integers, a FlagsEnum over bits
BITS_ARRAYS = cs.BitStruct(
    "xs" / cs.Array(4, cs.BitsInteger(2)),
    "sw" / cs.BitsInteger(16, swapped=True),
    "ssw" / cs.BitsInteger(16, swapped=True, signed=True),
    "f" / cs.FlagsEnum(cs.BitsInteger(8), a=1, b=2, c=128),
)

#: bytes inside bits: a fixed Bytewise and a variable one
BITS_BYTEWISE = cs.BitStruct(
    "a" / cs.Nibble,
    "fixed" / cs.Bytewise(cs.Int16ul),
    "s" / cs.Bytewise(cs.PascalString(cs.Int8ub, "ascii")),
    "b" / cs.Nibble,
)

#: If inside bits, on a flag of the same BitStruct
BITS_IF = cs.BitStruct(
    "has" / cs.Flag,
    "x" / cs.If(this.has, cs.BitsInteger(7)),
    "p" / cs.If(lambda ctx: not ctx.has, cs.Padding(7)),
)

#: a field of a BitStruct only construct builds (a Mapping): that field alone
BITS_MAPPING = cs.Struct(
    "h"
    / cs.BitStruct("a" / cs.Nibble, "m" / cs.Mapping(cs.Nibble, {"x": 1, "y": 9}), "c" / cs.Octet),
    "n" / cs.Int8ub,
)

#: a BitStruct at the root (the whole message one integer)
BITS_ROOT = cs.BitStruct(
    "v" / cs.Const(2, cs.BitsInteger(2)),
    "kind" / cs.Enum(cs.BitsInteger(2), a=0, b=1, c=3),
    "opts" / cs.FlagsEnum(cs.BitsInteger(4), x=1, y=2, z=8),
    "d" / cs.Default(cs.BitsInteger(8, signed=True), -3),
)

#: Switch defaults: none (Pass), Computed, Error, and FlagsEnum / PaddedString cases
SWITCH_DEFAULTS = cs.Struct(
    "t" / cs.Int8ub,
    "pass" / cs.Switch(this.t, {1: cs.Int8ub, 2: cs.PaddedString(5, "utf16")}),
    "computed" / cs.Switch(this.t, {1: cs.Int16ub}, default=cs.Computed(this.t * 2)),
    "error"
    / cs.Switch(
        this.t % 4, {0: cs.Pass, 1: cs.Int8ub, 2: cs.Flag, 3: cs.Bytes(1)}, default=cs.Error
    ),
    "flags"
    / cs.Switch(this.t > 1, {True: cs.FlagsEnum(cs.Int16ul, a=1, b=0x100)}, default=cs.Pass),
)

#: PaddedString in every encoding construct pads (names as construct accepts them)
ENCODINGS = [*sorted(cs.possiblestringencodings), "UTF-16-LE", "utf-8"]
PADDED = cs.Struct(*(f"s{i}" / cs.PaddedString(12, enc) for i, enc in enumerate(ENCODINGS)))
#: and with its length computed from an earlier field
PADDED_COMPUTED = cs.Struct("n" / cs.Int8ub, "s" / cs.PaddedString(this.n, "utf_32_le"))


#: GreedyRange (MQTT's SUBSCRIBE topics, TLS's lists) and Terminated inside Prefixed bodies
GREEDY = cs.Struct(
    "id" / cs.Int16ub,
    "topics"
    / cs.Prefixed(
        cs.Int8ub,
        cs.GreedyRange(cs.Struct("t" / cs.PascalString(cs.Int8ub, "utf8"), "q" / cs.Int8ub)),
    ),
    "codes" / cs.Prefixed(cs.Int8ub, cs.Struct("xs" / cs.GreedyRange(cs.Int16ub), cs.Terminated)),
)


@dataclass(frozen=True)
class Case:
    name: str
    schema: cs.Construct
    #: how many nodes construct builds (calls out of the generated builder)
    fallbacks: int = 0
    values: Callable[[], st.SearchStrategy[Any]] | None = None

    def strategy(self) -> st.SearchStrategy[Any]:
        return self.values() if self.values is not None else from_schema(self.schema)


def _computed_values() -> st.SearchStrategy[Any]:
    return st.integers(1, 15).flatmap(
        lambda n: st.fixed_dictionaries(
            {
                "n": st.just(n),
                "b": st.fixed_dictionaries(
                    {"x": st.integers(0, 2**n - 1), "y": st.integers(0, 2 ** (16 - n) - 1)}
                ),
            }
        )
    )


def _text(encoding: str, size: int) -> st.SearchStrategy[str]:
    """Text whose encoding fits ``size`` bytes (PaddedString pads it with zero bytes): drawn
    up to ``size`` characters, then cut until it fits (no filter to reject most draws)."""
    chars = st.characters(
        max_codepoint=127 if encoding == "ascii" else None, exclude_categories=["Cs"]
    )

    def fit(text: str) -> str:
        while len(text.encode(encoding)) > size:
            text = text[:-1]
        return text

    return st.text(chars, max_size=size).map(fit)


def _padded_values() -> st.SearchStrategy[Any]:
    return st.fixed_dictionaries({f"s{i}": _text(enc, 12) for i, enc in enumerate(ENCODINGS)})


def _padded_computed_values() -> st.SearchStrategy[Any]:
    return st.integers(0, 24).flatmap(
        lambda n: st.fixed_dictionaries({"n": st.just(n), "s": _text("utf_32_le", n)})
    )


def _switch_defaults_values() -> st.SearchStrategy[Any]:
    def one(t: int) -> st.SearchStrategy[Any]:
        return st.fixed_dictionaries(
            {
                "t": st.just(t),
                "pass": (
                    st.integers(0, 255)
                    if t == 1
                    else _text("utf16", 5)
                    if t == 2
                    else st.none() | st.integers()
                ),
                "computed": st.integers(0, 0xFFFF) if t == 1 else st.none(),
                "error": [
                    st.none(),
                    st.integers(0, 255),
                    st.booleans(),
                    st.binary(min_size=1, max_size=1),
                ][t % 4],
                "flags": (
                    st.integers(0, 0xFFFF)
                    | st.sampled_from(["a", "b", "a|b", ""])
                    | st.fixed_dictionaries({"a": st.booleans(), "b": st.booleans()})
                    if t > 1
                    else st.none()
                ),
            }
        )

    return st.sampled_from([0, 1, 2, 3, 5, 6, 7]).flatmap(one)  # (t % 4 == 0 ... 3)


CASES = [
    Case("mqtt_like", MQTT_LIKE),
    Case("ws_header", WS_HEADER),
    Case("bits_switch", BITS_SWITCH),
    Case("bits_computed", BITS_COMPUTED, values=_computed_values),
    Case("bits_arrays", BITS_ARRAYS),
    Case("bits_bytewise", BITS_BYTEWISE),
    Case("bits_if", BITS_IF),
    Case("bits_mapping", BITS_MAPPING, fallbacks=1),
    Case("bits_root", BITS_ROOT),
    Case("switch_defaults", SWITCH_DEFAULTS, values=_switch_defaults_values),
    Case("padded", PADDED, values=_padded_values),
    Case("padded_computed", PADDED_COMPUTED, values=_padded_computed_values),
    Case("greedy_range", GREEDY),
]
IDS = [c.name for c in CASES]


def builder_source(codec: Codec[Any]) -> str:
    assert codec._builder is not None, "encoded by schema.build, not by a generated builder"
    src: str = codec._builder.__wirekit_source__  # type: ignore[attr-defined]
    return src


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_not_built_by_construct_as_a_whole(case: Case) -> None:
    """The generated builder is used; construct builds only the nodes it must, and a schema
    with none of those is inlined into ``encode_into`` (no wrapper, no start-over path)."""
    codec = Codec(case.schema)
    src = builder_source(codec)
    assert src.count("_fallback(") == case.fallbacks, src
    if not case.fallbacks:
        assert "SCHEMA.build" not in src
        assert hasattr(codec.encode_into, "__wirekit_source__")


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_same_bytes_as_build(case: Case) -> None:
    codec = Codec(case.schema)

    @given(case.strategy())
    def check(value: Any) -> None:
        want = case.schema.build(value)
        assert codec.encode(value) == want
        out = bytearray(b"head")
        codec.encode_into(value, out)
        assert out == b"head" + want

    check()


#: what a faulty value is replaced with: wrong types, out of every range, unknown labels
HOSTILE = [
    None,
    -1,
    -(2**70),
    16,
    256,
    2**16,
    2**64,
    1.5,
    True,
    "",
    "x",
    "nope",
    "a|nope",
    "é" * 7,
    "\U0001f600" * 4,
    b"",
    b"\x00" * 9,
    bytearray(b"ab"),
    [],
    [1, 2, 3],
    {},
    {"nope": True},
    {"a": True},
]


def _slots(value: Any, at: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a value: dict keys and list items, at any depth."""
    out = [at] if at else []
    if isinstance(value, dict):
        for k, v in value.items():
            out += _slots(v, (*at, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _slots(v, (*at, i))
    return out


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def _with_fault(value: Any, at: tuple[Any, ...], new: Any, delete: bool) -> Any:
    value = _copy(value)
    parent = value
    for step in at[:-1]:
        parent = parent[step]
    if delete and isinstance(parent, dict):
        del parent[at[-1]]
    else:
        parent[at[-1]] = new
    return value


@st.composite
def faulty(draw: st.DrawFn, case: Case) -> Any:
    value = draw(case.strategy())
    slots = _slots(value)
    if not slots:
        return draw(st.sampled_from(HOSTILE))
    at = draw(st.sampled_from(slots))
    return _with_fault(value, at, draw(st.sampled_from(HOSTILE)), draw(st.booleans()))


def same_failure(schema: cs.Construct, codec: Codec[Any], value: Any) -> None:
    """``codec.encode_into`` fails exactly when ``schema.build`` fails, as it fails, and
    appends nothing then; succeeds with the same bytes otherwise."""
    try:
        want: bytes | None = schema.build(value)
        ref: Exception | None = None
    except Exception as exc:  # whatever construct raises
        want, ref = None, exc
    out = bytearray(b"head")
    try:
        codec.encode_into(value, out)
        got: EncodeError | None = None
    except EncodeError as exc:
        got = exc
    if ref is None:
        assert got is None, f"construct builds {value!r}, the codec raises {got!r}"
        assert out == b"head" + (want or b"")
        return
    assert got is not None, f"construct raises {ref!r} on {value!r}, the codec builds {out!r}"
    assert out == b"head", "nothing is appended on error"
    assert type(got.__cause__) is type(ref), f"{got.__cause__!r} is not {ref!r}"
    path = getattr(ref, "path", None)
    if path is not None:
        assert got.path == path


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_one_fault_fails_where_construct_fails(case: Case) -> None:
    codec = Codec(case.schema)

    @given(faulty(case))
    def check(value: Any) -> None:
        same_failure(case.schema, codec, value)

    check()


# -- targeted error cases ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("schema", "value", "error", "path"),
    [
        # construct's paths: Renamed adds the name (Sequence/FocusedSeq fields too); the
        # first bad item of a packed array of numbers
        (
            cs.Sequence("a" / cs.Int8ub, "b" / cs.Int8ub),
            [1, 300],
            cs.FormatFieldError,
            "(building) -> b",
        ),
        (
            cs.PrefixedArray(cs.Int8ub, cs.Int16ub),
            [1, None],
            cs.FormatFieldError,
            "(building) -> items",
        ),
        (cs.Array(3, cs.Int32sl), [1, 2, 2**31], cs.FormatFieldError, "(building)"),
        # a Switch key with no case and an Error default
        (
            SWITCH_DEFAULTS,
            {"t": 1, "pass": 1, "computed": 1, "error": None, "flags": None},
            None,
            None,
        ),
        (
            cs.Struct("t" / cs.Int8ub, "v" / cs.Switch(this.t, {1: cs.Int8ub}, default=cs.Error)),
            {"t": 2, "v": 1},
            cs.ExplicitError,
            "(building) -> v",
        ),
        # PaddedString: too long once encoded, not a str, not encodable
        (cs.PaddedString(4, "utf16"), "ab", cs.PaddingError, "(building)"),
        (cs.PaddedString(4, "utf_32_le"), "ab", cs.PaddingError, "(building)"),
        (cs.PaddedString(4, "ascii"), "abcde", cs.PaddingError, "(building)"),
        (cs.PaddedString(4, "ascii"), b"ab", cs.StringError, "(building)"),
        # (construct leaves the path out of this one; the codec names the field)
        (cs.PaddedString(4, "ascii"), "é", cs.StringError, "(building)"),
        # bits: out of range, not an int, computed widths, swapped widths, whole bytes
        (BITS_SWITCH, {"k": 2, "v": 4096}, cs.IntegerError, "(building) -> v"),
        (
            BITS_SWITCH,
            {"k": 3, "v": {"a": True, "b": -1025}},
            cs.IntegerError,
            "(building) -> v -> b",
        ),
        (BITS_SWITCH, {"k": 16, "v": 1}, cs.IntegerError, "(building) -> k"),
        (BITS_COMPUTED, {"n": 0, "b": {"x": 0, "y": 0}}, cs.IntegerError, "(building) -> b -> x"),
        (BITS_COMPUTED, {"n": 17, "b": {"x": 0, "y": 0}}, cs.IntegerError, "(building) -> b -> y"),
        (BITS_COMPUTED, {"n": 4, "b": {"x": 1.0, "y": 0}}, cs.IntegerError, "(building) -> b -> x"),
        (BITS_COMPUTED, {"n": 3, "b": {"x": 8, "y": 0}}, cs.IntegerError, "(building) -> b -> x"),
        (
            BITS_COMPUTED,
            {"n": 4, "b": {"x": 1, "y": 1 << 12}},
            cs.IntegerError,
            "(building) -> b -> y",
        ),
        (
            cs.BitStruct("x" / cs.BitsInteger(12, swapped=True), "y" / cs.Nibble),
            {"x": 1, "y": 1},
            cs.IntegerError,
            "(building) -> x",
        ),
        (
            cs.Struct("n" / cs.Int8ub, "b" / cs.BitStruct("x" / cs.BitsInteger(this._.n))),
            {"n": 4, "b": {"x": 1}},
            ValueError,  # construct's Restreamed: 4 bits left over at the end
            None,
        ),
        (
            BITS_ARRAYS,
            {"xs": [1, 2, 3], "sw": 1, "ssw": 1, "f": 0},
            cs.RangeError,
            "(building) -> xs",
        ),
        (
            BITS_ARRAYS,
            {"xs": [0] * 4, "sw": 1, "ssw": 1, "f": "a|d"},
            cs.MappingError,
            "(building) -> f",
        ),
        (
            BITS_BYTEWISE,
            {"a": 1, "fixed": 1 << 16, "s": "", "b": 1},
            cs.FormatFieldError,
            "(building) -> fixed",
        ),
        (BITS_BYTEWISE, {"a": 1, "fixed": 1, "s": "é", "b": 1}, cs.StringError, "(building) -> s"),
        (BITS_ROOT, {"v": 1, "kind": "a", "opts": 0, "d": 0}, cs.ConstError, "(building) -> v"),
        (BITS_ROOT, {"kind": "a", "opts": 16, "d": None}, cs.IntegerError, "(building) -> opts"),
        (
            BITS_MAPPING,
            {"h": {"a": 1, "m": "z", "c": 0}, "n": 1},
            cs.MappingError,
            "(building) -> h -> m",
        ),
        (
            WS_HEADER,
            {
                "b0": {"fin": 1, "rsv": 0, "opcode": "nope"},
                "b1": {"masked": 0, "len7": 3},
                "ext": None,
                "key": None,
            },
            cs.MappingError,
            "(building) -> b0 -> opcode",
        ),
        (
            WS_HEADER,
            {
                "b0": {"fin": 1, "rsv": 0, "opcode": 1},
                "b1": {"masked": 1, "len7": 126},
                "ext": 70000,
                "key": b"abcd",
            },
            cs.FormatFieldError,
            "(building) -> ext",
        ),
        (
            WS_HEADER,
            {
                "b0": {"fin": 1, "rsv": 0, "opcode": 1},
                "b1": {"masked": 1, "len7": 5},
                "ext": None,
                "key": b"abc",
            },
            cs.StreamError,
            "(building) -> key",
        ),
        (
            MQTT_LIKE,
            {
                "header": {"type": "PUBLISH", "dup": 0, "qos": 3, "retain": 0},
                "body": {"topic": "t", "id": 1 << 16},
            },
            cs.FormatFieldError,
            "(building) -> body -> id",
        ),
        (
            MQTT_LIKE,
            {"header": {"type": "CONNACK", "dup": 0, "qos": 4, "retain": 0}, "body": {}},
            cs.IntegerError,
            "(building) -> header -> qos",
        ),
    ],
)
def test_errors_are_constructs(
    schema: cs.Construct, value: Any, error: type | None, path: str | None
) -> None:
    codec = Codec(schema)
    if error is not None:
        with pytest.raises(error):
            schema.build(value)
    same_failure(schema, codec, value)
    if error is not None:
        with pytest.raises(EncodeError) as info:
            codec.encode(value)
        assert type(info.value.__cause__) is error
        assert info.value.path == path


def test_bits_written_as_bytes_start_over_with_construct() -> None:
    """A node construct builds inside bits that writes other bytes than 0/1 makes
    ``bits2bytes`` fail at a moment that depends on what follows: the generated builder
    starts over with construct, which raises its own error."""
    schema = cs.Struct("h" / cs.BitStruct("a" / cs.Nibble, cs.Padding(4, b"\x02")), "n" / cs.Int8ub)
    codec = Codec(schema)
    assert "SCHEMA.build" in builder_source(codec)
    same_failure(schema, codec, {"h": {"a": 1}, "n": 1})


#: the differential catalog's schemas with inferred framing (encode is exactly schema.build)
CATALOG = [c for c in catalog.CASES if c.explicit is None]


@pytest.mark.parametrize("entry", CATALOG, ids=[c.name for c in CATALOG])
def test_one_fault_in_catalog_values_fails_where_construct_fails(entry: catalog.Case) -> None:
    """The same property over every catalog schema (arrays of numbers, Sequence and
    FocusedSeq fields, fields built by construct...)."""
    codec = Codec(entry.schema, max_frame_size=entry.max_frame_size)
    case = Case(entry.name, entry.schema, values=lambda: entry.values)

    @given(faulty(case))
    def check(value: Any) -> None:
        same_failure(entry.schema, codec, value)

    check()


def test_a_computed_bytes_length_is_evaluated_once_as_construct_does() -> None:
    calls: list[int] = []

    def length(ctx: Any) -> int:
        calls.append(1)
        return int(ctx.n)

    schema = cs.Struct("n" / cs.Int8ub, "b" / cs.Bytes(length))
    codec = Codec(schema)
    for value in ({"n": 2, "b": b"ab"}, {"n": 2, "b": bytearray(b"ab")}):
        calls.clear()
        assert codec.encode(value) == schema.build(value)
        assert len(calls) == 2  # once for the codec, once for construct


class Shouting(cs.Adapter):  # type: ignore[misc]
    """A schema's own Adapter: its ``_encode`` is not construct's."""

    def _decode(self, obj: Any, context: Any, path: str) -> Any:
        return obj.lower()

    def _encode(self, obj: Any, context: Any, path: str) -> Any:
        return obj.upper()


class Doubled(cs.Struct):  # type: ignore[misc]
    """A Struct subclass with its own ``_build``."""

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        super()._build(obj, stream, context, path)
        return super()._build(obj, stream, context, path)


def test_a_subclass_with_its_own_build_is_built_by_its_own_code() -> None:
    """Compiling a subclass as its construct base would drop its behaviour: it is built by
    construct (that node alone), and a subclass that only parses differently is compiled."""
    schema = cs.Struct(
        "name" / Shouting(cs.PascalString(cs.Int8ub, "ascii")),
        "pair" / Doubled("a" / cs.Int8ub),
        "n" / cs.Int8ub,
    )
    codec = Codec(schema)
    value = {"name": "abc", "pair": {"a": 7}, "n": 1}
    assert codec.encode(value) == schema.build(value) == b"\x03ABC\x07\x07\x01"
    assert builder_source(codec).count("_fallback(") == 2

    class Quiet(cs.Struct):  # type: ignore[misc]
        def _parse(self, stream: Any, context: Any, path: str) -> Any:
            return super()._parse(stream, context, path)

    assert "_fallback(" not in builder_source(Codec(Quiet("a" / cs.Int8ub)))


class Banged(cs.NullTerminated):  # type: ignore[misc]
    """A terminator subclass that writes its own terminator."""

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        stream.write(obj + b"!")
        return obj


def test_a_string_over_a_subclassed_terminator_is_built_by_its_own_code() -> None:
    schema = cs.Struct("s" / cs.StringEncoded(Banged(cs.GreedyBytes), "ascii"), "n" / cs.Int8ub)
    value = {"s": "ab", "n": 1}
    assert Codec(schema).encode(value) == schema.build(value) == b"ab!\x01"


def test_an_error_inside_a_prefixed_body_appends_nothing() -> None:
    """The generated encode_into writes a Prefixed body into a scratch buffer: a bad value
    there still rolls back what the fields before it appended to the caller's buffer."""
    schema = cs.Struct("id" / cs.Int16ub, "p" / cs.Prefixed(cs.Int8ub, cs.Struct("x" / cs.Int8ub)))
    codec = Codec(schema)
    assert hasattr(codec.encode_into, "__wirekit_source__")  # the inlined, generated one
    out = bytearray(b"head")
    with pytest.raises(EncodeError):
        codec.encode_into({"id": 1, "p": {"x": 300}}, out)
    assert out == b"head"
    codec.encode_into({"id": 1, "p": {"x": 3}}, out)
    assert out == b"head\x00\x01\x01\x03"
