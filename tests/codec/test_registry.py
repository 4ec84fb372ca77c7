"""The registry of construct classes: the coverage list, a user's own class registered and
checked against construct's own parse/build, MRO resolution, and the errors."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from construct import this
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import (
    Analysis,
    Buffer,
    BuildGen,
    Codec,
    DecodeError,
    EncodeError,
    FrameTooLarge,
    ParseGen,
    RegistryError,
    SchemaError,
    register_construct,
    unregister_construct,
)
from codec._measure import Measured
from codec._registry import entries, resolve
from codec.testing import check_codec, feed_chunks

from .helpers import assert_same, split

DOC = Path(__file__).resolve().parents[2] / "docs" / "codec.md"


@contextmanager
def registered(cls: type[cs.Construct], **parts: Any) -> Iterator[None]:
    """``cls`` registered with ``parts`` for the block only."""
    register_construct(cls, **parts)
    try:
        yield
    finally:
        unregister_construct(cls)


# -- the coverage list ------------------------------------------------------------------------
#: every construct class the codec knows, and what it does with it: ``parse``/``build``
#: compiled (``bits``: inside a ``Bitwise`` region), ``measure`` without parsing,
#: ``analysis`` seen by the framing inference. docs/codec.md's table says the same.
COVERAGE: dict[type, set[str]] = {
    cs.FormatField: {"parse", "build"},
    cs.BytesInteger: {"parse", "build", "measure"},
    cs.BitsInteger: {"bits"},
    type(cs.VarInt): {"parse", "build", "measure"},
    type(cs.ZigZag): {"measure"},
    type(cs.Flag): {"build", "bits"},
    cs.Bytes: {"parse", "build", "measure"},
    type(cs.GreedyBytes): {"parse", "build", "analysis"},
    cs.StringEncoded: {"parse", "build"},
    cs.Prefixed: {"parse", "build", "measure", "analysis"},
    cs.FixedSized: {"parse", "build", "measure", "analysis"},
    cs.NullStripped: {"parse", "build", "analysis"},
    cs.NullTerminated: {"parse", "measure", "analysis"},
    cs.Padded: {"parse", "build", "bits", "measure"},
    cs.Struct: {"parse", "build", "bits", "measure", "analysis"},
    cs.Sequence: {"parse", "build", "bits", "measure", "analysis"},
    cs.FocusedSeq: {"parse", "build", "bits", "measure", "analysis"},
    cs.Array: {"parse", "build", "bits", "measure", "analysis"},
    cs.GreedyRange: {"build", "analysis"},
    cs.Switch: {"parse", "build", "bits", "measure", "analysis"},
    cs.IfThenElse: {"parse", "build", "bits", "measure", "analysis"},
    cs.Select: {"analysis"},
    cs.Const: {"parse", "build", "bits"},
    cs.Enum: {"parse", "build", "bits"},
    cs.FlagsEnum: {"parse", "build", "bits"},
    cs.Rebuild: {"parse", "build", "bits"},
    cs.Default: {"parse", "build", "bits"},
    cs.Computed: {"parse", "build", "bits"},
    type(cs.Pass): {"parse", "build", "bits"},
    type(cs.Terminated): {"build", "bits", "analysis"},
    type(cs.Error): {"build", "bits"},
    cs.Transformed: {"parse", "build", "bits"},
    cs.Restreamed: {"parse", "build", "bits"},
    cs.RestreamData: {"measure", "analysis"},
    cs.Tunnel: {"analysis"},
    cs.ProcessXor: {"analysis"},
    cs.ProcessRotateLeft: {"analysis"},
    cs.Peek: {"analysis"},
    cs.Seek: {"analysis"},
    cs.Pointer: {"analysis"},
    cs.Union: {"analysis"},
    cs.Lazy: {"analysis"},
    cs.LazyStruct: {"analysis"},
}

#: one node of each kind a schema writer uses, and the class it resolves to
NODES: list[tuple[Any, type]] = [
    (cs.Int16ub, cs.FormatField),
    (cs.Float32l, cs.FormatField),
    (cs.Int24ub, cs.BytesInteger),
    (cs.Nibble, cs.BitsInteger),
    (cs.VarInt, type(cs.VarInt)),
    (cs.ZigZag, type(cs.ZigZag)),
    (cs.Flag, type(cs.Flag)),
    (cs.Bytes(4), cs.Bytes),
    (cs.GreedyBytes, type(cs.GreedyBytes)),
    (cs.PascalString(cs.Int8ub, "utf8"), cs.StringEncoded),
    (cs.CString("utf8"), cs.StringEncoded),
    (cs.PaddedString(8, "ascii"), cs.StringEncoded),
    (cs.GreedyString("utf8"), cs.StringEncoded),
    (cs.Prefixed(cs.Int8ub, cs.GreedyBytes), cs.Prefixed),
    (cs.FixedSized(4, cs.GreedyBytes), cs.FixedSized),
    (cs.NullStripped(cs.GreedyBytes), cs.NullStripped),
    (cs.NullTerminated(cs.GreedyBytes), cs.NullTerminated),
    (cs.Padding(2), cs.Padded),
    (cs.Struct("a" / cs.Int8ub), cs.Struct),
    (cs.Sequence(cs.Int8ub), cs.Sequence),
    (cs.PrefixedArray(cs.Int8ub, cs.Int8ub), cs.FocusedSeq),
    (cs.Array(2, cs.Int8ub), cs.Array),
    (cs.GreedyRange(cs.Int8ub), cs.GreedyRange),
    (cs.Switch(this.k, {1: cs.Int8ub}), cs.Switch),
    (cs.If(this.k, cs.Int8ub), cs.IfThenElse),
    (cs.Optional(cs.Int8ub), cs.Select),
    (cs.Const(b"\x01"), cs.Const),
    (cs.Enum(cs.Int8ub, a=1), cs.Enum),
    (cs.FlagsEnum(cs.Int8ub, a=1), cs.FlagsEnum),
    (cs.Rebuild(cs.Int8ub, 0), cs.Rebuild),
    (cs.Default(cs.Int8ub, 0), cs.Default),
    (cs.Computed(1), cs.Computed),
    (cs.Pass, type(cs.Pass)),
    (cs.Terminated, type(cs.Terminated)),
    (cs.Error, type(cs.Error)),
    (cs.BitStruct("a" / cs.Nibble, "b" / cs.Nibble), cs.Transformed),
    (cs.Bitwise(cs.GreedyRange(cs.Bit)), cs.Restreamed),
    (cs.RestreamData(b"\x01", cs.Int8ub), cs.RestreamData),
    (cs.Compressed(cs.GreedyBytes, "zlib"), cs.Tunnel),
    (cs.ProcessXor(0x55, cs.GreedyBytes), cs.ProcessXor),
    (cs.ProcessRotateLeft(1, 1, cs.GreedyBytes), cs.ProcessRotateLeft),
    (cs.Peek(cs.Int8ub), cs.Peek),
    (cs.Seek(0), cs.Seek),
    (cs.Pointer(0, cs.Int8ub), cs.Pointer),
    (cs.Union(0, "a" / cs.Int8ub), cs.Union),
    (cs.Lazy(cs.Int8ub), cs.Lazy),
    (cs.LazyStruct("a" / cs.Int8ub), cs.LazyStruct),
]


def _parts(cls: type) -> set[str]:
    entry = entries()[cls]
    names: dict[str, object] = {
        "parse": entry.parse,
        "build": entry.build,
        "bits": entry.build_bits,
        "measure": entry.measure,
        "analysis": entry.analysis,
    }
    return {name for name, part in names.items() if part is not None}


def test_the_coverage_list_is_the_registry() -> None:
    builtin = {cls for cls, entry in entries().items() if entry.builtin}
    assert builtin == set(COVERAGE)
    for cls, parts in COVERAGE.items():
        assert _parts(cls) == parts, cls.__name__


def test_no_registered_class_derives_from_another() -> None:
    """Nearest-base resolution then picks what an ``isinstance`` chain in any order did."""
    classes = [cls for cls, entry in entries().items() if entry.builtin]
    for a in classes:
        for b in classes:
            assert a is b or not issubclass(a, b), (a, b)


@pytest.mark.parametrize(("node", "cls"), NODES, ids=[type(n).__name__ for n, _ in NODES])
def test_every_supported_class_resolves(node: Any, cls: type) -> None:
    entry = resolve(type(node))
    assert entry is not None
    assert entry.cls is cls


def test_every_registered_class_has_a_node_here() -> None:
    assert {cls for _, cls in NODES} == set(COVERAGE)


def test_an_unknown_class_resolves_to_nothing() -> None:
    assert resolve(type(cs.Hex(cs.Int8ub))) is None
    assert resolve(type(cs.Checksum(cs.Int8ub, sum, this.x))) is None


def _documented_classes() -> set[str]:
    text = DOC.read_text(encoding="utf-8")
    table = text[text.index("### Coverage list") :]
    table = table[: table.index("\n## ")]
    return set(re.findall(r"^\| `(\w+)`", table, re.M))


def test_the_docs_list_every_registered_class() -> None:
    assert _documented_classes() == {cls.__name__ for cls in COVERAGE}


# -- a user's class: a UTF-8 string behind a 2-byte big-endian length ---------------------------
class PString16(cs.Construct):  # type: ignore[misc]
    """A UTF-8 string behind a 2-byte big-endian length (construct's own code, the
    reference the registered emitters are checked against)."""

    def _parse(self, stream: Any, context: Any, path: str) -> str:
        n = int.from_bytes(cs.stream_read(stream, 2, path), "big")
        text: str = cs.stream_read(stream, n, path).decode("utf-8")
        return text

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if not isinstance(obj, str):
            raise cs.StringError(f"expected a str, got {obj!r}", path=path)
        data = obj.encode("utf-8")
        if len(data) > 0xFFFF:
            raise cs.StringError("string too long", path=path)
        cs.stream_write(stream, len(data).to_bytes(2, "big") + data, 2 + len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise cs.SizeofError("a PString16 has no fixed size", path=path)


def parse_pstring16(gen: ParseGen, node: PString16) -> str:
    length = gen.var("n")
    gen.need(2)
    gen.line(f"{length} = int.from_bytes(data[pos:pos + 2], 'big')")
    gen.line("pos += 2")
    text = gen.var("s")
    gen.line(f"{text} = {gen.read(length)}.decode('utf-8')")
    return text


def build_pstring16(gen: BuildGen, node: PString16) -> str:
    error = gen.const(cs.StringError)
    raw = gen.var("b")
    gen.line(f"if not isinstance({gen.value}, str):")
    with gen.block():
        gen.line(f"raise {error}('expected a str, got %r' % ({gen.value},), path={gen.path!r})")
    gen.line(f"{raw} = {gen.value}.encode('utf-8')")
    gen.line(f"if len({raw}) > 0xFFFF:")
    gen.line(f"    raise {error}('string too long', path={gen.path!r})")
    gen.line(f"out += len({raw}).to_bytes(2, 'big')")
    gen.line(f"out += {raw}")
    return gen.value


MEASURED: list[int] = []


def measure_pstring16(node: PString16, data: bytes | bytearray, pos: int, end: int) -> int | None:
    assert isinstance(node, PString16)  # (not the Renamed around it)
    MEASURED.append(pos)
    if end - pos < 2:
        return None
    return pos + 2 + int.from_bytes(data[pos : pos + 2], "big")


register_construct(
    PString16, parse=parse_pstring16, build=build_pstring16, measure=measure_pstring16
)


class Shout(PString16):
    """A subclass that changes nothing: handled by PString16's entry."""


class Reversed16(PString16):
    """A subclass with its own parse and build: construct's code runs for it."""

    def _parse(self, stream: Any, context: Any, path: str) -> str:
        return super()._parse(stream, context, path)[::-1]

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        return super()._build(obj[::-1] if isinstance(obj, str) else obj, stream, context, path)


RECORD = cs.Struct(
    "id" / cs.Int16ub,
    "name" / PString16(),
    "tags" / cs.PrefixedArray(cs.Int8ub, PString16()),
    "size" / cs.Int8ub,
    "body" / cs.Bytes(this.size),
)
texts = st.text(max_size=12)


@st.composite
def _records(draw: st.DrawFn) -> dict[str, Any]:
    body = draw(st.binary(max_size=20))
    return {
        "id": draw(st.integers(0, 0xFFFF)),
        "name": draw(texts),
        "tags": draw(st.lists(texts, max_size=3)),
        "size": len(body),
        "body": body,
    }


records = _records()


def test_the_emitters_are_in_the_generated_code() -> None:
    c: Codec[Any] = Codec(RECORD)
    source = c.source()
    assert "_fallback(" not in source  # nothing parsed or built by construct
    assert ".decode('utf-8')" in source
    assert "to_bytes(2, 'big')" in source
    assert isinstance(c.framing, Measured)
    assert "name: measured" in repr(c.framing)


@settings(max_examples=60, deadline=None)
@given(value=records, cuts=st.lists(st.integers(0, 200), max_size=6))
@pytest.mark.parametrize("fast", [True, False])
def test_a_registered_class_against_construct(fast: bool, value: Any, cuts: list[int]) -> None:
    c: Codec[Any] = Codec(RECORD, fast=fast)
    frame = RECORD.build(value)
    assert c.encode(value) == frame
    want = RECORD.parse(frame)
    assert_same(c.decode(Buffer(frame)), want)
    stream = frame * 3
    got = list(feed_chunks(c, split(stream, cuts)))
    assert len(got) == 3
    for message in got:
        assert_same(message, want)


@settings(max_examples=30, deadline=None)
@given(value=records)
def test_half_packets_and_sticky_packets(value: Any) -> None:
    c: Codec[Any] = Codec(RECORD)
    frame = RECORD.build(value)
    for k in range(len(frame)):
        buf = Buffer(frame[:k])
        assert c.decode(buf) is None
        assert len(buf) == k
    buf = Buffer(frame + frame + frame[:3])
    assert_same(c.decode(buf), RECORD.parse(frame))
    assert_same(c.decode(buf), RECORD.parse(frame))
    assert c.decode(buf) is None
    assert len(buf) == 3


def test_check_codec_on_a_registered_class() -> None:
    check_codec(Codec(RECORD), records, max_examples=25)


def test_the_measure_function_is_asked_again_with_more_bytes() -> None:
    c: Codec[Any] = Codec(RECORD, fast=False)  # the framing's own walk
    frame = RECORD.build({"id": 1, "name": "héllo", "tags": ["a"], "size": 0, "body": b""})
    MEASURED.clear()
    d = c.decoder()
    for i in range(len(frame) - 1):
        assert list(d.feed(frame[i : i + 1])) == []
    assert MEASURED.count(2) >= 2  # "name" at 2: first with 1 byte, then with enough
    assert_same(list(d.feed(frame[-1:])), [RECORD.parse(frame)])


def test_frame_too_large_when_a_measured_size_says_so() -> None:
    c: Codec[Any] = Codec(RECORD, max_frame_size=64)
    with pytest.raises(FrameTooLarge):
        c.decode(Buffer(b"\x00\x01\xff\xff"))


def test_bad_bytes_and_bad_values_are_the_codec_errors() -> None:
    c: Codec[Any] = Codec(RECORD)
    with pytest.raises(DecodeError):
        c.decode_all(b"\x00\x01\x00\x01\xff\x00\x00")  # not UTF-8
    with pytest.raises(EncodeError, match="name"):
        c.encode({"id": 1, "name": 5, "tags": [], "size": 0, "body": b""})


def test_at_the_top_level() -> None:
    c: Codec[str] = Codec(PString16())
    frame = PString16().build("smart-socket")
    assert c.encode("smart-socket") == frame
    assert c.decode_all(frame * 2) == ["smart-socket"] * 2
    assert c.decode(Buffer(frame[:5])) is None


# -- MRO resolution ---------------------------------------------------------------------------
def test_a_subclass_resolves_to_its_registered_base() -> None:
    entry = resolve(Shout)
    assert entry is not None
    assert entry.cls is PString16
    schema = cs.Struct("a" / cs.Int8ub, "s" / Shout())
    c: Codec[Any] = Codec(schema)
    assert "_fallback(" not in c.source()
    frame = schema.build({"a": 1, "s": "hi"})
    assert c.encode({"a": 1, "s": "hi"}) == frame
    assert_same(c.decode_all(frame), [schema.parse(frame)])


def test_a_subclass_with_its_own_code_runs_its_own_code() -> None:
    schema = cs.Struct("a" / cs.Int8ub, "s" / Reversed16())
    c: Codec[Any] = Codec(schema)
    assert "_fallback(" in c.source()
    frame = schema.build({"a": 1, "s": "hello"})
    assert frame.endswith(b"olleh")
    assert c.encode({"a": 1, "s": "hello"}) == frame
    assert_same(c.decode_all(frame * 2), [schema.parse(frame)] * 2)


# -- only some parts ----------------------------------------------------------------------------
class Tagged(cs.Subconstruct):  # type: ignore[misc]
    """One byte 0xAA, then the subcon (registered with a parse emitter only)."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        if cs.stream_read(stream, 1, path) != b"\xaa":
            raise cs.ConstError("no tag", path=path)
        return self.subcon._parsereport(stream, context, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        cs.stream_write(stream, b"\xaa", 1, path)
        return self.subcon._build(obj, stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        size: int = 1 + self.subcon._sizeof(context, path)
        return size


def parse_tagged(gen: ParseGen, node: Tagged) -> str:
    error = gen.const(cs.ConstError)
    gen.need(1)
    gen.line("if data[pos] != 0xAA:")
    gen.line(f"    raise {error}('no tag', path={gen.path!r})")
    gen.line("pos += 1")
    return gen.parse(node.subcon)


@pytest.fixture
def tagged() -> Iterator[None]:
    with registered(Tagged, parse=parse_tagged):
        yield


@pytest.mark.usefixtures("tagged")
@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 255), body=st.binary(max_size=10))
def test_parts_left_out_fall_back_to_construct(n: int, body: bytes) -> None:
    schema = cs.Struct(
        "n" / Tagged(cs.Int8ub), "body" / cs.Prefixed(cs.Int8ub, Tagged(cs.GreedyBytes))
    )
    c: Codec[Any] = Codec(schema)
    value = {"n": n, "body": body}
    frame = schema.build(value)
    assert c.encode(value) == frame  # built by construct's own _build, field by field
    assert_same(c.decode_all(frame * 2), [schema.parse(frame)] * 2)
    with pytest.raises(DecodeError):
        c.decode_all(b"\x00" + frame[1:])


@pytest.mark.usefixtures("tagged")
def test_parse_only_compiles_the_parser() -> None:
    schema = cs.Struct("n" / Tagged(cs.Int8ub), "s" / PString16())
    source = Codec(schema).source()
    assert "if data[pos] != 0xAA:" in source  # the parser: compiled
    assert "_fallback(" in source  # the builder: construct's _build for the Tagged field


# -- analysis ---------------------------------------------------------------------------------
class Rest(cs.Construct):  # type: ignore[misc]
    """Everything to the end of the stream."""

    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        data: bytes = stream.read()
        return data

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        cs.stream_write(stream, obj, len(obj), path)
        return obj


def test_an_analysis_entry_is_seen_by_the_framing_inference() -> None:
    schema = cs.Struct("a" / cs.Int8ub, "rest" / Rest())
    Codec(schema)  # unknown: trial-parsed (and wrong in a stream, as construct would be)
    with registered(Rest, analysis=Analysis(greedy=True, overreads=True)):
        with pytest.raises(SchemaError, match="Rest at rest"):
            Codec(schema)
        framed: Codec[Any] = Codec(cs.Prefixed(cs.Int8ub, schema))
        assert framed.decode_all(b"\x03\x01ab") == [cs.Container(a=1, rest=b"ab")]


# -- errors -------------------------------------------------------------------------------------
class Spare(cs.Construct):  # type: ignore[misc]
    def _parse(self, stream: Any, context: Any, path: str) -> bytes:
        data: bytes = cs.stream_read(stream, 1, path)
        return data


def test_registering_twice_is_an_error() -> None:
    with registered(Spare, parse=lambda gen, node: gen.read(1)):
        with pytest.raises(RegistryError, match="registered already"):
            register_construct(Spare, parse=lambda gen, node: gen.read(1))
        register_construct(Spare, parse=lambda gen, node: gen.read(1), replace=True)


def test_registering_a_supported_class_is_an_error() -> None:
    with pytest.raises(RegistryError, match="supports it already"):
        register_construct(cs.Struct, parse=lambda gen, node: "None")
    with pytest.raises(RegistryError):
        unregister_construct(cs.Struct)


@pytest.mark.parametrize(
    "bad",
    [
        {"cls": int},
        {"cls": cs.Int8ub},
        {"parse": "not callable"},
        {"build": 42},
        {"measure": b"x"},
        {"analysis": {"greedy": True}},
    ],
    ids=["not-a-construct", "an-instance", "parse", "build", "measure", "analysis"],
)
def test_a_bad_registration_is_refused(bad: dict[str, Any]) -> None:
    cls = bad.pop("cls", Spare)
    with pytest.raises(RegistryError):
        register_construct(cls, **bad)
    assert Spare not in entries()


def test_an_emitter_that_returns_no_variable_is_refused_when_the_codec_is_built() -> None:
    def returns_none(gen: ParseGen, node: Any) -> Any:
        return None

    with registered(Spare, parse=returns_none), pytest.raises(TypeError, match="returned None"):
        Codec(cs.Struct("a" / cs.Int8ub, "b" / Spare()))


def test_an_emitter_that_leaves_a_block_open_is_refused() -> None:
    def opens(gen: BuildGen, node: Any) -> str:
        gen.line("if True:")
        gen._lines.depth += 1  # (what forgetting to close gen.block() would do)
        return gen.value

    with registered(Spare, build=opens), pytest.raises(TypeError, match="left a block open"):
        Codec(cs.Struct("a" / cs.Int8ub, "b" / Spare()))


# -- subclasses of supported classes, with code of their own ----------------------------------
class Inverted(cs.FormatField):  # type: ignore[misc]
    """A byte stored inverted: parses and builds differently from its FormatField base."""

    def __init__(self) -> None:
        super().__init__(">", "B")

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        return 255 - super()._parse(stream, context, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        super()._build(255 - obj, stream, context, path)
        return obj


class Tallied(cs.Struct):  # type: ignore[misc]
    """A Struct whose parse adds a key."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        obj = super()._parse(stream, context, path)
        obj["tally"] = sum(v for k, v in obj.items() if not k.startswith("_"))
        return obj


@settings(max_examples=40, deadline=None)
@given(a=st.integers(0, 255), b=st.integers(0, 255), c=st.integers(0, 255))
def test_a_subclass_of_a_supported_class_with_its_own_code_is_not_compiled_as_its_base(
    a: int, b: int, c: int
) -> None:
    schema = cs.Struct(
        "a" / cs.Int8ub,
        "b" / Inverted(),
        "c" / cs.Int8ub,
        "t" / Tallied("x" / cs.Int8ub, "y" / cs.Int8ub),
        "bits" / cs.BitStruct("hi" / cs.Nibble, "lo" / cs.Nibble),
    )
    value = {"a": a, "b": b, "c": c, "t": {"x": a, "y": c}, "bits": {"hi": b >> 4, "lo": b & 15}}
    frame = schema.build(value)
    for fast in (True, False):
        codec: Codec[Any] = Codec(schema, fast=fast)
        assert codec.encode(value) == frame
        assert_same(codec.decode_all(frame * 2), [schema.parse(frame)] * 2)
