"""``from_schema``: a hypothesis strategy of values that a construct schema builds.

The schema's tree is walked once into *generators*: functions ``gen(draw, context)`` that
draw one value for a node. Struct fields are drawn in order into a context that mirrors
construct's own, so fields sized or selected by earlier fields (``Bytes(this.len)``,
``Array(this.count, ...)``, ``Switch(this.kind, ...)``, ``If(this.flag, ...)``) come out
consistent with them. Fields that construct computes while building (``Rebuild``,
``Checksum``, ``Computed``) are left for it to compute.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import construct as cs
from hypothesis import assume
from hypothesis import strategies as st

from ._refs import Ref, collect_refs, references

__all__ = ["UnsupportedConstruct", "from_schema"]

#: longest byte string / text drawn where the schema allows any length
MAX_BYTES = 24
#: most items drawn for a variable-length array
MAX_ITEMS = 4
#: largest value drawn for an integer field that sizes a later field
MAX_SIZE_FIELD = 12
#: a size expression evaluating above this is rejected rather than drawn
MAX_EVALUATED_SIZE = 1 << 16

Draw = Callable[[st.SearchStrategy[Any]], Any]
Gen = Callable[[Draw, cs.Container], Any]


class _Omit:
    def __repr__(self) -> str:
        return "OMIT"


#: a generator's way of saying "leave this field out; construct computes it"
OMIT: Any = _Omit()
_UNRESOLVED: Any = object()

# construct's singletons (``VarInt``, ``GreedyBytes``...) are instances; these are classes
_VARINT = type(cs.VarInt)
_ZIGZAG = type(cs.ZigZag)
_FLAG = type(cs.Flag)
_GREEDY_BYTES = type(cs.GreedyBytes)
_PASS = type(cs.Pass)
_TERMINATED = type(cs.Terminated)


class UnsupportedConstruct(TypeError):
    """``from_schema`` cannot derive a strategy for a construct class; use ``overrides``."""

    def __init__(self, node: cs.Construct, path: tuple[str, ...], why: str = "") -> None:
        self.construct = node
        self.path = ".".join(path) or "<root>"
        name = type(node).__name__
        hint = (
            f"pass overrides={{{self.path!r}: <strategy>}}"
            if path
            else "give check_codec/from_schema an explicit strategy of values"
        )
        reason = f" ({why})" if why else ""
        super().__init__(
            f"cannot derive a hypothesis strategy for {name} at {self.path}{reason}; {hint}"
        )


@dataclass(frozen=True)
class _Hints:
    """What the fields after a field need from it (paths relative to the field)."""

    small: frozenset[Ref] = frozenset()
    keys: Mapping[Ref, tuple[Any, ...]] = field(default_factory=dict)

    def child(self, name: str) -> _Hints:
        small = frozenset(p[1:] for p in self.small if p and p[0] == name)
        keys = {k[1:]: v for k, v in self.keys.items() if k and k[0] == name}
        return _Hints(small, keys)

    def merge(self, other: _Hints) -> _Hints:
        keys = dict(self.keys)
        for k, v in other.keys.items():
            keys[k] = keys.get(k, ()) + v
        return _Hints(self.small | other.small, keys)


_NO_HINTS = _Hints()


def from_schema(
    schema: cs.Construct,
    overrides: Mapping[str, st.SearchStrategy[Any]] | None = None,
) -> st.SearchStrategy[Any]:
    """A strategy of values that ``schema.build`` accepts and ``schema.parse`` gives back.

    Args:
        schema: any construct schema made of the supported classes (see docs/fuzzing.md).
        overrides: strategies for named fields, by dotted path (``"header.length"``) or by
            bare name (``"payload"``, every field of that name). An override replaces the
            derivation of that field entirely, so it also serves fields whose class has no
            derivation.

    Raises:
        UnsupportedConstruct: a construct class has no derivation (the message names the
            class and the field path to override).
        ValueError: an override names no field of the schema.

    >>> import construct as cs
    >>> from hypothesis import given
    >>> schema = cs.Struct("len" / cs.Int16ub, "data" / cs.Bytes(cs.this.len))
    >>> @given(from_schema(schema))
    ... def lengths_agree(v):
    ...     assert v.len == len(v.data)
    >>> lengths_agree()
    """
    deriver = _Deriver(dict(overrides or {}))
    gen = deriver.derive(schema, (), _NO_HINTS)
    unused = sorted(set(deriver.overrides) - deriver.used)
    if unused:
        known = ", ".join(sorted(deriver.paths)) or "none"
        raise ValueError(f"overrides {unused} match no field of the schema (fields: {known})")

    @st.composite
    def values(draw: Draw) -> Any:
        return gen(draw, _root_context())

    return values()


def _root_context() -> cs.Container:
    ctx = cs.Container(_parsing=False, _building=True, _sizing=False)
    ctx._params = ctx
    ctx._root = ctx
    return ctx


def evaluate(expr: Any, ctx: cs.Container) -> Any:
    """``expr`` evaluated in ``ctx``, or ``_UNRESOLVED`` when it reads a missing field."""
    if not callable(expr):
        return expr
    try:
        return expr(ctx)
    except Exception:
        return _UNRESOLVED


def _size(expr: Any, ctx: cs.Container, free_max: int = MAX_BYTES) -> int | None:
    """A size parameter's value; ``None`` when it is computed at build time (free)."""
    value = evaluate(expr, ctx)
    if value is _UNRESOLVED:
        return None
    if not isinstance(value, int) or value < 0 or value > MAX_EVALUATED_SIZE:
        assume(False)
    return int(value)


def _int_range(node: cs.Construct, ctx: cs.Container | None = None) -> tuple[int, int] | None:
    """``(lo, hi)`` of an integer field, or ``None`` when ``node`` is not one."""
    node = _strip(node)
    if isinstance(node, cs.FormatField):
        code = node.fmtstr[-1]
        if code in "bBhHiIlLqQ":
            bits = 8 * struct.calcsize(node.fmtstr)
            return (
                (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
                if code.islower()
                else (0, (1 << bits) - 1)
            )
        return None
    if isinstance(node, cs.BytesInteger | cs.BitsInteger):
        length = node.length if ctx is None else evaluate(node.length, ctx)
        if not isinstance(length, int):
            return None
        bits = length * (8 if isinstance(node, cs.BytesInteger) else 1)
        if bits <= 0:
            return (0, 0)
        if node.signed:
            return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
        return 0, (1 << bits) - 1
    if isinstance(node, _VARINT):
        return 0, (1 << 64) - 1
    if isinstance(node, _ZIGZAG):
        return -(1 << 63), (1 << 63) - 1
    return None


def _strip(node: cs.Construct) -> cs.Construct:
    while isinstance(node, cs.Renamed | cs.Hex | cs.HexDump):
        node = node.subcon
    return node


def _is_bitwise(node: cs.Construct) -> bool | None:
    """True for ``Bitwise``, False for ``Bytewise``, None for other Transformed/Restreamed."""
    func = getattr(node, "decodefunc", None) or getattr(node, "decoder", None)
    if func is cs.lib.bytes2bits:
        return True
    if func is cs.lib.bits2bytes:
        return False
    return None


@dataclass(frozen=True)
class _Bytes:
    """Constraints on a raw byte string, collected from a chain of byte wrappers."""

    min_len: int = 0
    max_len: int | None = None
    no_term: bytes = b""
    no_trailing: bytes = b""


def _byte_chain(node: cs.Construct, ctx: cs.Container) -> _Bytes | None:
    """Constraints for ``GreedyBytes`` wrapped in Prefixed/FixedSized/NullTerminated/...;
    ``None`` when ``node`` is not such a chain."""
    node = _strip(node)
    if isinstance(node, _GREEDY_BYTES):
        return _Bytes()
    if isinstance(node, cs.NullTerminated) and not node.include and node.consume:
        inner = _byte_chain(node.subcon, ctx)
        return None if inner is None else _Bytes(inner.min_len, inner.max_len, node.term)
    if isinstance(node, cs.NullStripped):
        inner = _byte_chain(node.subcon, ctx)
        if inner is None:
            return None
        return _Bytes(inner.min_len, inner.max_len, inner.no_term, node.pad)
    if isinstance(node, cs.Prefixed):
        inner = _byte_chain(node.subcon, ctx)
        rng = _int_range(node.lengthfield)
        if inner is None:
            return None
        top = (
            None
            if rng is None
            else rng[1] - (_static_size(node.lengthfield) or 0) * bool(node.includelength)
        )
        return _Bytes(inner.min_len, _min(inner.max_len, top), inner.no_term, inner.no_trailing)
    if isinstance(node, cs.FixedSized):
        inner = _byte_chain(node.subcon, ctx)
        if inner is None:
            return None
        n = _size(node.length, ctx)
        if n is None:
            return inner
        greedy = isinstance(_strip(node.subcon), _GREEDY_BYTES)
        return _Bytes(n if greedy else 0, n, inner.no_term, inner.no_trailing)
    return None


def _min(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    if b is None:
        return a
    return min(a, b)


def _static_size(node: cs.Construct) -> int | None:
    try:
        size = node.sizeof()
    except Exception:
        return None
    return size if isinstance(size, int) else None


def _fit_bytes(raw: bytes, c: _Bytes) -> bytes:
    """Bend a drawn byte string to the constraints (shrinks stay meaningful)."""
    if c.no_term:
        raw = raw.replace(c.no_term, b"")
    if c.max_len is not None:
        raw = raw[: c.max_len]
    if c.no_trailing:
        while raw.endswith(c.no_trailing):
            raw = raw[: -len(c.no_trailing)]
    return raw


def _bytes_strategy(c: _Bytes, bitwise: bool = False) -> st.SearchStrategy[bytes]:
    top = MAX_BYTES if c.max_len is None else min(c.max_len, max(MAX_BYTES, c.min_len))
    if bitwise:
        bits = st.lists(st.sampled_from([0, 1]), min_size=c.min_len, max_size=max(top, c.min_len))
        return bits.map(bytes)
    return st.binary(min_size=c.min_len, max_size=max(top, c.min_len))


def _text_strategy(encoding: str, max_chars: int) -> st.SearchStrategy[str]:
    try:
        alphabet = st.characters(codec=encoding)
    except Exception:  # pragma: no cover - hypothesis rejects an unknown codec name
        alphabet = st.characters(exclude_categories=["Cs"])
    return st.text(alphabet, max_size=max_chars)


def _roundtrips(node: cs.Construct, value: Any, ctx: cs.Container) -> bool:
    try:
        built = node.build(value, **ctx)
        return bool(node.parse(built, **ctx) == value)
    except Exception:
        return False


def _builds(node: cs.Construct, value: Any, ctx: cs.Container) -> bool:
    """``value`` builds and the bytes parse back (the value may differ: Rebuild fields)."""
    try:
        node.parse(node.build(value, **ctx), **ctx)
    except Exception:
        return False
    return True


def _float_strategy(width: int) -> st.SearchStrategy[float]:
    return st.floats(width=width, allow_nan=True, allow_infinity=True)  # type: ignore[arg-type]


class _Deriver:
    def __init__(self, overrides: dict[str, st.SearchStrategy[Any]]) -> None:
        self.overrides = overrides
        self.used: set[str] = set()
        self.paths: set[str] = set()

    # -- dispatch ------------------------------------------------------------------------
    def derive(
        self, node: cs.Construct, path: tuple[str, ...], hints: _Hints, bitwise: bool = False
    ) -> Gen:
        if isinstance(node, cs.Renamed):
            return self._renamed(node, path, hints, bitwise)
        method = _DISPATCH.get(type(node))
        if method is None:
            for cls, meth in _DISPATCH_SUB:
                if isinstance(node, cls):
                    method = meth
                    break
        if method is None:
            raise UnsupportedConstruct(node, path)
        gen: Gen = method(self, node, path, hints, bitwise)
        return gen

    def _renamed(
        self, node: cs.Renamed, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        name = node.name
        sub = node.subcon
        if name is None or (isinstance(sub, cs.Renamed) and sub.name == name):
            return self.derive(sub, path, hints, bitwise)  # a docstring-only rename
        full = (*path, name)
        dotted = ".".join(full)
        self.paths.add(dotted)
        for key in (dotted, name):
            if key in self.overrides:
                self.used.add(key)
                strategy = self.overrides[key]
                return lambda draw, ctx: draw(strategy)
        return self.derive(node.subcon, full, hints, bitwise)

    # -- numbers -------------------------------------------------------------------------
    def _integer(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        small = () in hints.small
        keys = hints.keys.get((), ())
        key_values = tuple(k for k in keys if _roundtrips(node, k, cs.Container()))

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            if key_values and draw(st.booleans()):
                return draw(st.sampled_from(key_values))
            rng = _int_range(node, ctx)
            if rng is None:
                length = evaluate(node.length, ctx)
                if length is _UNRESOLVED:
                    raise UnsupportedConstruct(node, path, "its length is not known")
                assume(False)
                raise AssertionError  # pragma: no cover
            lo, hi = rng
            if small:
                lo, hi = max(lo, 0), min(hi, MAX_SIZE_FIELD)
            return draw(st.integers(lo, hi))

        return gen

    def _format_field(
        self, node: cs.FormatField, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        code = node.fmtstr[-1]
        if code in "bBhHiIlLqQ":
            return self._integer(node, path, hints, bitwise)
        strategy: st.SearchStrategy[Any]
        if code in "efd":
            strategy = _float_strategy({"e": 16, "f": 32, "d": 64}[code])
        elif code == "?":
            strategy = st.booleans()
        elif code == "c":
            strategy = st.binary(min_size=1, max_size=1)
        else:
            raise UnsupportedConstruct(node, path, f"format {node.fmtstr!r}")
        return lambda draw, ctx: draw(strategy)

    def _flag(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        keys = tuple(k for k in hints.keys.get((), ()) if isinstance(k, bool))
        strategy = st.sampled_from(keys) if keys and len(keys) == 2 else st.booleans()
        return lambda draw, ctx: draw(strategy)

    # -- bytes and strings ---------------------------------------------------------------
    def _bytes(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        def gen(draw: Draw, ctx: cs.Container) -> Any:
            if isinstance(node, cs.Bytes):
                n = _size(node.length, ctx)
                c = _Bytes() if n is None else _Bytes(n, n)
            else:
                chain = _byte_chain(node, ctx)
                assert chain is not None
                c = chain
            raw = _fit_bytes(draw(_bytes_strategy(c, bitwise)), c)
            if len(raw) < c.min_len:
                assume(False)
            return raw

        return gen

    def _byte_wrapper(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        """Prefixed/FixedSized/NullTerminated/NullStripped: a bytes chain, or a wrapped
        value whose build must fit (checked by building it)."""
        if _byte_chain(node, _root_context()) is not None or _only_dynamic_chain(node):
            return self._bytes(node, path, hints, bitwise)
        inner = self.derive(node.subcon, path, hints, bitwise)

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            value = inner(draw, ctx)
            assume(_builds(node, value, ctx))
            return value

        return gen

    def _string(
        self, node: cs.StringEncoded, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        encoding = node.encoding
        sub = node.subcon
        if _byte_chain(sub, _root_context()) is None and not _only_dynamic_chain(sub):
            raise UnsupportedConstruct(node, path, f"string over {type(_strip(sub)).__name__}")

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            c = _byte_chain(sub, ctx)
            assert c is not None
            budget = MAX_BYTES if c.max_len is None else min(c.max_len, MAX_BYTES * 4)
            text: str = draw(_text_strategy(encoding, min(budget, MAX_BYTES)))
            if c.no_term:
                text = text.replace("\x00", "")
            if c.no_trailing:
                text = text.rstrip("\x00")
            while text and len(text.encode(encoding)) > (c.max_len or math.inf):
                text = text[:-1]
            if c.min_len:  # a FixedSized(n, GreedyBytes) string: exactly n bytes
                pad = c.min_len - len(text.encode(encoding)) if text else c.min_len
                assume(pad >= 0)
                text += "\x00" * (pad // max(1, len("\x00".encode(encoding))))
            assume(_roundtrips(node, text, ctx))
            return text

        return gen

    # -- mappings ------------------------------------------------------------------------
    def _enum(self, node: cs.Enum, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        inner = self.derive(node.subcon, path, _NO_HINTS, bitwise)
        labels = tuple(str(k) for k in node.encmapping)
        keys = tuple(k for k in hints.keys.get((), ()) if _roundtrips(node, k, cs.Container()))
        decmapping = node.decmapping

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            if keys and draw(st.booleans()):
                return draw(st.sampled_from(keys))
            if labels and draw(st.booleans()):
                return draw(st.sampled_from(labels))
            raw = inner(draw, ctx)
            label = decmapping.get(raw)
            return str(label) if label is not None else raw

        return gen

    def _flags_enum(
        self, node: cs.FlagsEnum, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        flags = dict(node.flags)
        bits = sorted(set(flags.values()))
        top = _int_range(node.subcon)
        if top is not None:
            bits = [b for b in bits if top[0] <= b <= top[1]]

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            chosen = draw(st.lists(st.sampled_from(bits), unique=True)) if bits else []
            value = 0
            for b in chosen:
                value |= b
            return cs.Container({name: value & v == v for name, v in flags.items()})

        return gen

    def _mapping(
        self, node: cs.Mapping, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        choices = tuple(node.encmapping)
        if not choices:
            raise UnsupportedConstruct(node, path, "empty mapping")
        strategy = st.sampled_from(choices)
        return lambda draw, ctx: draw(strategy)

    # -- fixed and computed values -------------------------------------------------------
    def _const(self, node: cs.Const, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        value = node.value
        return lambda draw, ctx: value

    def _computed(
        self, node: cs.Computed, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        def gen(draw: Draw, ctx: cs.Container) -> Any:
            value = evaluate(node.func, ctx)
            return OMIT if value is _UNRESOLVED else value

        return gen

    def _omit(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        return lambda draw, ctx: OMIT

    def _none(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        return lambda draw, ctx: None

    def _check(self, node: cs.Check, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        def gen(draw: Draw, ctx: cs.Container) -> Any:
            ok = evaluate(node.func, ctx)
            assume(ok is not _UNRESOLVED and bool(ok))
            return None

        return gen

    def _default(
        self, node: cs.Default, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        return self.derive(node.subcon, path, hints, bitwise)

    def _padded(self, node: cs.Padded, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        if isinstance(_strip(node.subcon), _PASS):  # Padding(n)
            return self._none(node, path, hints, bitwise)
        return self._byte_wrapper(node, path, hints, bitwise)

    def _transparent(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        return self.derive(node.subcon, path, hints, bitwise)

    def _transformed(self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        mode = _is_bitwise(node)
        if mode is None:
            raise UnsupportedConstruct(node, path, "unknown stream transformation")
        return self.derive(node.subcon, path, hints, mode)

    def _raw_copy(
        self, node: cs.RawCopy, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        inner = self.derive(node.subcon, path, hints, bitwise)
        return lambda draw, ctx: cs.Container(value=inner(draw, ctx))

    # -- choices -------------------------------------------------------------------------
    def _select(self, node: cs.Select, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        gens = [self.derive(sc, path, hints, bitwise) for sc in node.subcons]
        if len(gens) == 2 and isinstance(_strip(node.subcons[1]), _PASS):  # Optional
            gens.reverse()  # shrink toward "absent"

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            return gens[draw(st.integers(0, len(gens) - 1))](draw, ctx)

        return gen

    def _if(self, node: cs.IfThenElse, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        then = self.derive(node.thensubcon, path, hints, bitwise)
        other = self.derive(node.elsesubcon, path, hints, bitwise)

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            cond = evaluate(node.condfunc, ctx)
            if cond is _UNRESOLVED:
                raise UnsupportedConstruct(node, path, "its condition reads a later field")
            return then(draw, ctx) if cond else other(draw, ctx)

        return gen

    def _switch(self, node: cs.Switch, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        cases = {k: self.derive(sc, path, hints, bitwise) for k, sc in node.cases.items()}
        default = self.derive(node.default, path, hints, bitwise)

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            key = evaluate(node.keyfunc, ctx)
            if key is _UNRESOLVED:
                raise UnsupportedConstruct(node, path, "its key reads a later field")
            return cases.get(key, default)(draw, ctx)

        return gen

    # -- repetition ----------------------------------------------------------------------
    def _array(self, node: cs.Array, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        item = self.derive(node.subcon, path, _NO_HINTS, bitwise)

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            n = _size(node.count, ctx)
            if n is None:
                n = draw(st.integers(0, MAX_ITEMS))
            return cs.ListContainer(_items(item, draw, ctx, n))

        return gen

    def _greedy_range(
        self, node: cs.GreedyRange, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        item = self.derive(node.subcon, path, _NO_HINTS, bitwise)

        def gen(draw: Draw, ctx: cs.Container) -> Any:
            return cs.ListContainer(_items(item, draw, ctx, draw(st.integers(0, MAX_ITEMS))))

        return gen

    # -- records -------------------------------------------------------------------------
    def _record(
        self, node: Any, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> list[tuple[str | None, cs.Construct, Gen]]:
        subcons: list[cs.Construct] = list(node.subcons)
        later: list[_Hints] = [_NO_HINTS] * len(subcons)
        acc = _NO_HINTS
        for i in range(len(subcons) - 1, -1, -1):
            later[i] = acc
            acc = acc.merge(_hints_from(subcons[i]))
        fields = []
        for i, sc in enumerate(subcons):
            name = sc.name
            own = later[i].child(name) if name else _NO_HINTS
            if name:
                own = own.merge(hints.child(name))
            fields.append((name, sc, self.derive(sc, path, own, bitwise)))
        return fields

    def _struct(self, node: cs.Struct, path: tuple[str, ...], hints: _Hints, bitwise: bool) -> Gen:
        fields = self._record(node, path, hints, bitwise)

        def gen(draw: Draw, parent: cs.Container) -> Any:
            ctx = _child_context(parent)
            value = cs.Container()
            for name, _sc, g in fields:
                v = g(draw, ctx)
                if v is OMIT or not name:
                    continue
                value[name] = v
                ctx[name] = v
            return value

        return gen

    def _sequence(
        self, node: cs.Sequence, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        fields = self._record(node, path, hints, bitwise)

        def gen(draw: Draw, parent: cs.Container) -> Any:
            ctx = _child_context(parent)
            value = cs.ListContainer()
            for name, _sc, g in fields:
                v = g(draw, ctx)
                v = None if v is OMIT else v
                value.append(v)
                if name:
                    ctx[name] = v
            return value

        return gen

    def _focused(
        self, node: cs.FocusedSeq, path: tuple[str, ...], hints: _Hints, bitwise: bool
    ) -> Gen:
        focus = node.parsebuildfrom
        if callable(focus):
            raise UnsupportedConstruct(node, path, "its focus is computed")
        fields = self._record(node, path, hints, bitwise)
        index = focus if isinstance(focus, int) else None
        for i, (name, sc, _g) in enumerate(fields):
            if name == focus:
                index = i
            elif i != index and not sc.flagbuildnone:
                raise UnsupportedConstruct(
                    node, path, f"unfocused field {name or i} cannot be built from None"
                )
        if index is None:
            raise UnsupportedConstruct(node, path, f"no field {focus!r}")

        def gen(draw: Draw, parent: cs.Container) -> Any:
            ctx = _child_context(parent)
            result = None
            for i, (name, _sc, g) in enumerate(fields):
                v = g(draw, ctx)
                if i == index:
                    result = v
                if name and v is not OMIT:
                    ctx[name] = v
            return result

        return gen


def _only_dynamic_chain(node: cs.Construct) -> bool:
    """True when ``node`` is a byte chain whose sizes depend on the context."""
    node = _strip(node)
    if isinstance(node, cs.FixedSized):
        return _byte_chain(node.subcon, _root_context()) is not None or _only_dynamic_chain(
            node.subcon
        )
    if isinstance(node, cs.NullTerminated | cs.NullStripped | cs.Prefixed):
        return _only_dynamic_chain(node.subcon)
    return False


def _items(item: Gen, draw: Draw, ctx: cs.Container, n: int) -> list[Any]:
    out = []
    for i in range(n):
        ctx._index = i
        out.append(item(draw, ctx))
    return out


def _child_context(parent: cs.Container) -> cs.Container:
    ctx = cs.Container(_=parent, _parsing=False, _building=True, _sizing=False)
    ctx._params = parent.get("_params", parent)
    ctx._root = parent.get("_root", parent)
    return ctx


def _hints_from(node: cs.Construct) -> _Hints:
    """What ``node`` (a later sibling) needs from the fields before it."""
    small: set[Ref] = set()
    keys: dict[Ref, tuple[Any, ...]] = {}

    def on(role: str, expr: Any, at: cs.Construct) -> None:
        refs = references(expr)
        if role == "size":
            small.update(refs.paths)
        elif role == "key" and refs.direct is not None and isinstance(at, cs.Switch):
            keys[refs.direct] = keys.get(refs.direct, ()) + tuple(at.cases)

    collect_refs(node, on)
    return _Hints(frozenset(small), keys)


_Method = Callable[[_Deriver, Any, tuple[str, ...], _Hints, bool], Gen]

_DISPATCH: dict[type, _Method] = {
    cs.FormatField: _Deriver._format_field,
    cs.BytesInteger: _Deriver._integer,
    cs.BitsInteger: _Deriver._integer,
    _VARINT: _Deriver._integer,
    _ZIGZAG: _Deriver._integer,
    _FLAG: _Deriver._flag,
    cs.Bytes: _Deriver._bytes,
    _GREEDY_BYTES: _Deriver._bytes,
    cs.StringEncoded: _Deriver._string,
    cs.Enum: _Deriver._enum,
    cs.FlagsEnum: _Deriver._flags_enum,
    cs.Mapping: _Deriver._mapping,
    cs.Const: _Deriver._const,
    cs.Computed: _Deriver._computed,
    cs.Rebuild: _Deriver._omit,
    cs.Checksum: _Deriver._omit,
    cs.Default: _Deriver._default,
    cs.Check: _Deriver._check,
    _PASS: _Deriver._none,
    _TERMINATED: _Deriver._none,
    cs.Padded: _Deriver._padded,
    cs.Aligned: _Deriver._transparent,
    cs.Hex: _Deriver._transparent,
    cs.HexDump: _Deriver._transparent,
    cs.Transformed: _Deriver._transformed,
    cs.Restreamed: _Deriver._transformed,
    cs.RawCopy: _Deriver._raw_copy,
    cs.Prefixed: _Deriver._byte_wrapper,
    cs.FixedSized: _Deriver._byte_wrapper,
    cs.NullTerminated: _Deriver._byte_wrapper,
    cs.NullStripped: _Deriver._byte_wrapper,
    cs.Select: _Deriver._select,
    cs.IfThenElse: _Deriver._if,
    cs.Switch: _Deriver._switch,
    cs.Array: _Deriver._array,
    cs.GreedyRange: _Deriver._greedy_range,
    cs.Struct: _Deriver._struct,
    cs.Sequence: _Deriver._sequence,
    cs.FocusedSeq: _Deriver._focused,
}

#: subclasses of these (user types deriving from them) use the same derivation
_DISPATCH_SUB: list[tuple[type, _Method]] = [
    (cs.Struct, _Deriver._struct),
    (cs.Sequence, _Deriver._sequence),
    (cs.FormatField, _Deriver._format_field),
]
