"""Generated schemas whose later fields read earlier ones, at any depth, against construct.

Issue 15: the measurer lost a field that a later expression read (a ``Switch`` whose
``Computed`` default sized a later ``Bytes``; a ``Switch`` keyed on a nested header). Here
hypothesis composes ``Struct``s nesting ``Struct``s (also inside ``Prefixed`` and
``BitStruct``), arrays, switches, ``If``, ``Computed``, ``Rebuild``, ``Enum``/``Mapping``,
whose sizes, counts, keys and conditions refer back through ``this``, ``this._``,
``this._root``, nested paths (``this.header.length``) and lambdas. Every frame is
``schema.build(value)`` of a value construct parsed; the codec, fed any chunking of two
such frames, must return ``schema.parse`` of each, types included, with the generated
parser and with construct's own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

import construct as cs
import pytest
from construct import this
from construct.expr import ExprMixin
from hypothesis import assume, given
from hypothesis import strategies as st

from codec import Codec

from .helpers import assert_same, decode_chunks, split


@dataclass
class Scope:
    """What a field may refer to: integer fields here, in parents, in nested structs."""

    parent: Scope | None
    ints: list[str] = field(default_factory=list)
    #: nested struct name -> the integer fields inside it
    nested: dict[str, list[str]] = field(default_factory=dict)
    #: Enum/Mapping/Bytes fields here -> two values they parse to, to switch on
    symbols: dict[str, list[Any]] = field(default_factory=dict)


def _refs(scope: Scope) -> list[tuple[str, Any]]:
    """Every way to read an earlier integer from ``scope``: (label, expression)."""
    out: list[tuple[str, Any]] = []
    for name in scope.ints:
        out.append((f"this.{name}", this[name]))
        out.append((f"lambda ctx: ctx.{name}", lambda ctx, n=name: ctx[n]))
    for sub, names in scope.nested.items():
        for name in names:
            out.append((f"this.{sub}.{name}", this[sub][name]))
    if scope.parent is not None:
        for name in scope.parent.ints:
            out.append((f"this._.{name}", this._[name]))
            out.append((f"lambda ctx: ctx._.{name}", lambda ctx, n=name: ctx._[n]))
        root = scope.parent
        while root.parent is not None:
            root = root.parent
        for name in root.ints:
            out.append((f"this._root.{name}", this._root[name]))
    return out


@st.composite
def structs(draw: st.DrawFn, parent: Scope | None = None, depth: int = 0) -> cs.Construct:
    scope = Scope(parent)
    fields: list[cs.Construct] = []
    for i in range(draw(st.integers(1, 5))):
        name = f"f{i}"
        refs = _refs(scope)
        kinds = ["int", "symbol", "bits"]
        if refs:
            kinds += ["bytes", "array", "switch", "lengthswitch", "if", "computed", "rebuild"]
        if scope.symbols:
            kinds.append("symbolswitch")
        if depth < 2:
            kinds += ["nested", "prefixed", "items"]
        kind = draw(st.sampled_from(kinds))
        if kind == "int":
            fields.append(name / cs.Int8ub)
            scope.ints.append(name)
            continue
        if kind == "symbol":
            # adapters: the context holds what they parse to (EnumIntegerString, str, bytes)
            symbol, keys = draw(
                st.sampled_from(
                    [
                        (cs.Enum(cs.Int8ub, a=1, b=2), ["a", "b"]),
                        (cs.Mapping(cs.Int8ub, {"a": 0, "b": 1, "c": 2, "d": 3}), ["a", "b"]),
                        (cs.Bytes(1), [b"\x00", b"\x01"]),
                    ]
                )
            )
            fields.append(name / symbol)
            scope.symbols[name] = keys
            continue
        if kind == "symbolswitch":
            key = draw(st.sampled_from(sorted(scope.symbols)))
            one, two = scope.symbols[key]
            fields.append(
                name / cs.Switch(this[key], {one: cs.Int16ub, two: cs.Bytes(2)}, default=cs.Pass)
            )
            continue
        if kind == "bits":
            fields.append(name / cs.BitStruct("flag" / cs.Flag, "n" / cs.BitsInteger(7)))
            scope.nested[name] = ["n"]
            continue
        if kind in ("nested", "prefixed"):
            inner = draw(structs(scope, depth + 1))
            fields.append(name / (cs.Prefixed(cs.Int8ub, inner) if kind == "prefixed" else inner))
            if kind == "nested":
                scope.nested[name] = [sc.name for sc in inner.subcons if sc.name and _is_int(sc)]
            continue
        if kind == "items":  # items whose fields read the struct holding the array
            count = draw(st.sampled_from([*(r for _, r in refs), 2]))
            item = draw(structs(scope, depth + 1))
            fields.append(name / cs.Array(_apply(count, lambda v: v % 3), item))
            continue
        _, ref = draw(st.sampled_from(refs))
        small = _apply(ref, lambda v: v % 4)
        if kind == "bytes":
            fields.append(name / cs.Bytes(small))
        elif kind == "array":
            item = draw(st.sampled_from([cs.Int16ub, cs.PascalString(cs.Int8ub, "utf8")]))
            fields.append(name / cs.Array(small, item))
        elif kind == "switch":
            fields.append(
                name
                / cs.Switch(
                    small,
                    {0: cs.Int8ub, 1: cs.Int16ub, 2: cs.Bytes(small)},
                    default=cs.Computed(small),
                )
            )
        elif kind == "lengthswitch":  # RFC 6455's payload length: a later size reads it
            fields.append(
                name / cs.Switch(small, {2: cs.Int8ub, 3: cs.Int16ub}, default=cs.Computed(small))
            )
            scope.ints.append(name)
        elif kind == "if":
            fields.append(name / cs.If(_apply(small, lambda v: v == 1), cs.Int8ub))
        elif kind == "computed":
            fields.append(name / cs.Computed(small))
            scope.ints.append(name)
        elif kind == "rebuild":
            # construct rebuilds the count from the array after it, and parses the count
            fields.append(name / cs.Rebuild(cs.Int8ub, cs.len_(this[f"{name}_items"])))
            fields.append(f"{name}_items" / cs.Array(this[name] % 4, cs.Int8ub))
    return cs.Struct(*fields)


def _apply(ref: Any, op: Any) -> Any:
    """``op`` over an expression: a construct expression stays one, a lambda is wrapped."""
    if isinstance(ref, ExprMixin | int):
        return op(ref)
    return lambda ctx: op(ref(ctx))


def _is_int(sc: cs.Construct) -> bool:
    core = sc.subcon if isinstance(sc, cs.Renamed) else sc
    return core is cs.Int8ub or isinstance(core, cs.Computed)


@dataclass
class Sample:
    schema: cs.Construct
    frames: list[bytes]


@st.composite
def samples(draw: st.DrawFn) -> Sample:
    """A schema and two frames built from values construct parsed out of drawn bytes."""
    schema = draw(structs())
    frames = []
    for _ in range(2):
        raw = draw(st.binary(max_size=48)) + bytes(256)
        try:
            value = schema.parse_stream(io.BytesIO(raw))
            frame = schema.build(value)
        except (cs.ConstructError, UnicodeError):
            assume(False)
        assume(frame)
        frames.append(frame)
    return Sample(schema, frames)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
@given(sample=samples(), cuts=st.lists(st.integers(1, 400), max_size=6))
def test_decode_is_parse_of_build(sample: Sample, cuts: list[int], fast: bool) -> None:
    codec: Codec[Any] = Codec(sample.schema, fast=fast)
    stream = b"".join(sample.frames)
    want = [sample.schema.parse(f) for f in sample.frames]
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))], split(stream, cuts)):
        got, buf = decode_chunks(codec, chunks)
        assert len(buf) == 0, codec.framing
        assert_same(got, want)


# -- the cases from the issue, pinned ------------------------------------------------------
WS_HEADER = cs.BitStruct(
    "fin" / cs.Flag,
    "rsv" / cs.BitsInteger(3),
    "opcode" / cs.BitsInteger(4),
    "masked" / cs.Flag,
    "length7" / cs.BitsInteger(7),
)
WS_LENGTH = cs.Switch(
    this.header.length7,
    {126: cs.Int16ub, 127: cs.Int64ub},
    default=cs.Computed(this.header.length7),
)
WS_FRAME = cs.Struct(
    "header" / WS_HEADER,
    "length" / WS_LENGTH,
    "mask" / cs.If(this.header.masked, cs.Bytes(4)),
    "raw" / cs.Bytes(this.length),
    "payload" / cs.Computed(this.raw),
)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_websocket_frame_as_rfc6455_reads(fast: bool) -> None:
    """RFC 6455 §5.2 written field by field: the length is a Switch whose default is a
    Computed, and the payload a Computed over the raw bytes it sized."""
    frame = bytes.fromhex("8185ec35e1b2845cc17145")
    long = WS_FRAME.build(
        {
            "header": {"fin": True, "rsv": 0, "opcode": 2, "masked": False, "length7": 126},
            "length": 300,
            "mask": None,
            "raw": bytes(range(256)) + bytes(44),
        }
    )
    codec: Codec[Any] = Codec(WS_FRAME, fast=fast)
    stream = frame + long + frame
    for chunks in ([stream], [stream[i : i + 1] for i in range(len(stream))]):
        got, buf = decode_chunks(codec, chunks)
        assert not buf
        assert_same(got, [WS_FRAME.parse(f) for f in (frame, long, frame)])


def test_websocket_frame_is_measured_by_generated_code() -> None:
    """The fields a later expression reads are parsed by the generated measurer too (the
    raw bytes the payload's Computed reads), instead of handing every frame to the
    measuring walk, which costs dozens of times more per frame."""
    codec: Codec[Any] = Codec(WS_FRAME)
    assert codec._batch_fill is not None
    assert "FRAMING.measure" not in codec._batch_fill.__wirekit_source__  # type: ignore[attr-defined]


class _Reversed(cs.Adapter):  # type: ignore[misc]
    """A user's adapter: the generator cannot parse it, only construct can."""

    def _decode(self, obj: bytes, context: Any, path: str) -> bytes:
        return obj[::-1]

    def _encode(self, obj: bytes, context: Any, path: str) -> bytes:
        return obj[::-1]


def test_unparsed_fields_are_measured_by_generated_code() -> None:
    """A Check and a user's adapter nothing reads are measured as the walk measures them
    (by size, by what the adapter wraps): the frames keep the generated measurer."""
    schema = cs.Struct(
        "n" / cs.Int8ub,
        cs.Check(this.n < 200),
        "body" / _Reversed(cs.Bytes(this.n)),
        "tail" / cs.Int8ub,
    )
    codec: Codec[Any] = Codec(schema)
    assert codec._batch_fill is not None
    assert "FRAMING.measure" not in codec._batch_fill.__wirekit_source__  # type: ignore[attr-defined]
    frame = schema.build({"n": 3, "body": b"abc", "tail": 9})
    stream = frame * 3
    got, buf = decode_chunks(codec, [stream[i : i + 1] for i in range(len(stream))])
    assert not buf
    assert_same(got, [schema.parse(frame)] * 3)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_switch_on_a_variable_size_header(fast: bool) -> None:
    """Ethernet -> IPv4 -> TCP, as construct's gallery stacks them: each layer's Switch is
    keyed on a field of the variable-size header before it, and TCP's payload is sized by
    the IPv4 header two levels up (``this._.header``)."""
    tcp = cs.Struct(
        "header"
        / cs.Struct(
            "port" / cs.Int16ub,
            "header_length" / cs.ExprAdapter(cs.Int8ub, lambda o, c: o * 4, lambda o, c: o // 4),
            "options" / cs.Bytes(this.header_length - 4),
        ),
        "next" / cs.Bytes(this._.header.payload_length - this.header.header_length),
    )
    ipv4 = cs.Struct(
        "header"
        / cs.Struct(
            "header_length" / cs.Int8ub,
            "total_length" / cs.Int16ub,
            "payload_length" / cs.Computed(this.total_length - this.header_length),
            "protocol" / cs.Enum(cs.Int8ub, TCP=6, UDP=17),
            "options" / cs.Bytes(this.header_length - 4),
        ),
        "next" / cs.Switch(this.header.protocol, {"TCP": tcp}, default=cs.Pass),
    )
    ethernet = cs.Struct(
        "header" / cs.Struct("type" / cs.Enum(cs.Int16ub, IPv4=0x0800)),
        "next" / cs.Switch(this.header.type, {"IPv4": ipv4}),
    )
    value = {
        "header": {"type": "IPv4"},
        "next": {
            "header": {
                "header_length": 6,
                "total_length": 6 + 8 + 3,
                "protocol": "TCP",
                "options": b"op",
            },
            "next": {
                "header": {"port": 80, "header_length": 8, "options": b"abcd"},
                "next": b"xyz",
            },
        },
    }
    frame = ethernet.build(value)
    codec: Codec[Any] = Codec(ethernet, fast=fast)
    for chunks in ([frame * 2], [(frame * 2)[i : i + 1] for i in range(2 * len(frame))]):
        got, buf = decode_chunks(codec, chunks)
        assert not buf
        assert_same(got, [ethernet.parse(frame)] * 2)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_restream_data_of_a_prefixed_field(fast: bool) -> None:
    """``RestreamData(Prefixed(...), subcon)`` consumes its prefixed data although its
    ``sizeof()`` is 0: measured by what it reads, alone and inside a Struct."""
    field = cs.RestreamData(cs.Prefixed(cs.Int8ub, cs.GreedyBytes), cs.Int16ub)
    for schema, frame in (
        (field, b"\x02\x01\x02"),
        (cs.Struct("a" / cs.Int8ub, "b" / field, "c" / cs.Int8ub), b"\x05\x03\x01\x02\x09\x07"),
    ):
        codec: Codec[Any] = Codec(schema, fast=fast)
        got, buf = decode_chunks(codec, [frame[i : i + 1] for i in range(len(frame))] * 2)
        assert not buf
        assert_same(got, [schema.parse(frame)] * 2)
