"""Measuring a frame without parsing it: a resumable walk over the schema.

For a schema that is neither fixed-size nor a plain length prefix, the framing still only
needs to know where the frame *ends*. :class:`Measured` builds, once per schema, a tree of
steps mirroring the construct tree, and runs it as a generator over the bytes received so
far:

* fixed-size fields are skipped, or parsed when a later expression may read them;
* ``VarInt`` fields, length prefixes and single-byte terminators are read just enough to
  know their extent;
* fields sized by an expression (``Bytes(this.length)``, ``Array(this.count, Int16ub)``,
  ``FixedSized``...) are skipped by size: their bodies are never looked at;
* ``Struct``/``Sequence``/``Array``/``Switch``/``If`` recurse;
* anything else is trial-parsed on its own, from its own start.

Skipping is only allowed for a value nothing reads. construct's ``Struct`` records every
named field in the context its later fields see (and their nested structs see, through
``this._``/``_root``): a ``Switch`` key, an ``If`` condition, a size, a ``Computed`` may
read any of them, at any depth. So each ``Struct`` step records, in a context built as
construct's ``_parse`` builds it, the value of every named field whose name an expression
of the schema may read (:func:`codec._names.read_names`): fixed fields are parsed, skipped
ones are parsed once their bytes are there, with the context they had. Every expression is
then evaluated on what construct's own parse would pass it.

When a step needs bytes that have not arrived, the generator yields the total it needs and
is kept (in the buffer) until they arrive: the walk resumes where it stopped, at any depth,
so measuring costs O(frame) however the frame is chunked. The complete frame is then parsed
once by the schema's own parser, so the value is exactly ``schema.parse(frame)``.
"""

from __future__ import annotations

import io
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

import construct as cs

from ._errors import FOREIGN_DECODE_ERRORS, DecodeError, FrameTooLarge, as_decode_error
from ._framing import Framing, parse_context, struct_context
from ._registry import PARSE_METHODS, overrides, resolve
from ._trial import GreedySchemaError, NeedMore

if TYPE_CHECKING:
    from ._buffer import Buffer

__all__ = ["Measured", "TrialField", "Window", "build_step", "is_positional", "size_lies"]


class _Missing:
    """A step's value when it skipped the bytes instead of parsing them."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

#: a step's generator: yields byte counts it needs (from the frame start), returns its end
#: and its value (:data:`MISSING` when it was not parsed)
Walk = Generator[int, None, tuple[int, Any]]


class Window:
    """The bytes a running walk may read: ``data[start:end]`` is the frame so far."""

    __slots__ = ("base", "data", "end", "max", "start")

    def __init__(self) -> None:
        self.data = bytearray()
        self.start = 0
        self.end = 0
        self.base = 0
        self.max = 0

    def need(self, upto: int) -> bool:
        """True when fewer than ``upto`` bytes of the frame are available."""
        if upto > self.max:
            raise FrameTooLarge(
                upto if upto < (1 << 62) else None,
                self.max,
                offset=self.base + self.start,
                data=self.data[self.start : min(self.end, self.start + 64)],
            )
        return self.end - self.start < upto

    def bytes(self, lo: int, hi: int) -> bytes:
        return bytes(self.data[self.start + lo : self.start + hi])


class Step:
    """One node of the measuring tree.

    ``want``: the value may be read by an expression (it is a recorded field, or a case of
    one), so a step that reads the bytes anyway returns it instead of :data:`MISSING`.
    """

    name: str | None = None
    want = False

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        raise NotImplementedError


class _FieldStream(io.BytesIO):
    """A field's bytes as a stream whose positions are the frame's, as in construct's parse
    of the whole frame (a ``Tell`` sees its offset in the frame, not in the field)."""

    def __init__(self, data: bytes, origin: int) -> None:
        super().__init__(data)
        self._origin = origin

    def tell(self) -> int:
        return super().tell() + self._origin

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence == 0:
            offset -= self._origin
        return super().seek(offset, whence) + self._origin


def _parse_bytes(node: cs.Construct, data: bytes, ctx: Any, path: str, origin: int = 0) -> Any:
    return node._parsereport(_FieldStream(data, origin), ctx, path)


def _value_at(w: Window, node: cs.Construct, start: int, end: int, ctx: Any) -> Walk:
    """The value of the field ``node`` measured at ``[start, end)``: parsed by construct once
    its bytes are there, with the context it has in construct's own parse."""
    while w.need(end):
        yield end
    stream = _FieldStream(w.bytes(start, end), start)
    value = node._parsereport(stream, ctx, "(measuring)")
    if stream.tell() != end:
        raise DecodeError(
            f"{type(node).__name__} was measured at {end - start} bytes but parses "
            f"{stream.tell() - start}",
            offset=w.base + w.start + start,
            data=w.bytes(start, min(end, start + 64)),
        )
    return end, value


class Static(Step):
    """A field of known size; parsed when its value may be read by a later expression.

    Parsing it here is only an aid to sizing: a field that cannot be parsed on its own
    (a ``Checksum`` over a body not parsed yet) is left out of the context, and the frame's
    real parse reports any error in it.
    """

    def __init__(self, node: cs.Construct, size: int, want: bool) -> None:
        self.node = node
        self.size = size
        self.name = node.name
        self.want = want
        #: only a Tell sees where it stands: the rest parse from a plain stream (cheaper)
        self.positional = _contains(node, lambda n: isinstance(n, type(cs.Tell)))

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        end = pos + self.size
        if not self.want:
            return end, MISSING
        while w.need(end):
            yield end
        data = w.bytes(pos, end)
        try:
            if self.positional:
                value = _parse_bytes(self.node, data, ctx, "(measuring)", pos)
            else:
                value = self.node._parsereport(io.BytesIO(data), ctx, "(measuring)")
        except FOREIGN_DECODE_ERRORS:
            return end, MISSING
        return end, value


class VarIntStep(Step):
    """A base-128 VarInt: read until the byte without the continuation bit."""

    def __init__(self, node: cs.Construct, want: bool) -> None:
        self.node = node
        self.name = node.name
        self.want = want

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        p = pos
        while True:
            while w.need(p + 1):
                yield p + 1
            b = w.data[w.start + p]
            p += 1
            if not b & 0x80:
                break
            if p - pos >= 10:
                raise DecodeError(
                    "VarInt longer than 10 bytes",
                    offset=w.base + w.start + pos,
                    data=w.bytes(pos, p),
                )
        if self.want:
            return p, _parse_bytes(self.node, w.bytes(pos, p), ctx, "(measuring)", pos)
        return p, MISSING


class PrefixStep(Step):
    """``Prefixed``/``PascalString``: read the length field, skip the body."""

    def __init__(self, node: cs.Construct, prefixed: Any, length_step: Step) -> None:
        self.node = node
        self.prefixed = prefixed
        self.length_step = length_step
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        after, _ = yield from self.length_step.walk(w, pos, ctx)
        while w.need(after):
            yield after
        length = _parse_bytes(
            self.prefixed.lengthfield, w.bytes(pos, after), ctx, "(measuring)", pos
        )
        if not isinstance(length, int) or length < 0:
            raise DecodeError(
                f"length prefix {length!r} is not a non-negative integer",
                offset=w.base + w.start + pos,
                data=w.bytes(pos, after),
            )
        end = pos + length if self.prefixed.includelength else after + length
        if end < after:
            raise DecodeError(
                f"length prefix {length} is shorter than the prefix itself",
                offset=w.base + w.start + pos,
                data=w.bytes(pos, after),
            )
        w.need(end)  # FrameTooLarge as soon as the length is known
        return end, MISSING


class DelimStep(Step):
    """``CString``/``NullTerminated`` with a one-byte terminator: find it, resuming."""

    def __init__(self, node: cs.Construct, term: bytes) -> None:
        self.node = node
        self.term = term
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        scan = pos
        term = self.term
        while True:
            i = w.data.find(term, w.start + scan, w.end)
            if i >= 0:
                return i - w.start + 1, MISSING
            scan = w.end - w.start
            while w.need(scan + 1):
                yield scan + 1


class Sized(Step):
    """A field whose size an expression gives from the fields before it."""

    def __init__(self, node: cs.Construct, fallback: Step) -> None:
        self.node = node
        self.fallback = fallback
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        try:
            size = self.node._sizeof(ctx, "(measuring)")
        except Exception:
            return (yield from self.fallback.walk(w, pos, ctx))
        if not isinstance(size, int) or size < 0:
            return (yield from self.fallback.walk(w, pos, ctx))
        end: int = pos + size
        w.need(end)
        return end, MISSING


class Fields(Step):
    """``Struct``/``Sequence``/``FocusedSeq``: the fields in order, in a fresh context.

    ``record[i]`` is the name under which field ``i``'s value enters the context, when an
    expression may read it (``None`` otherwise): its step's value, or construct's parse of
    its bytes when the step skipped them.
    """

    def __init__(
        self, node: cs.Construct, inner: Any, steps: list[Step], record: list[str | None]
    ) -> None:
        self.node = node
        self.inner = inner
        self.steps = steps
        self.record = record
        self.fields = list(zip(steps, inner.subcons, record, strict=True))
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        index = ctx.get("_index")
        sub = struct_context(ctx, getattr(self.inner, "_subcons", None), index=index)
        for step, sc, name in self.fields:
            start = pos
            pos, value = yield from step.walk(w, pos, sub)
            if name is not None:
                if value is MISSING:
                    sub["_index"] = index  # (an Array inside moved it, as it will again)
                    _, value = yield from _value_at(w, sc, start, pos, sub)
                sub[name] = value
        return pos, MISSING


class ArrayStep(Step):
    """``Array(count, item)`` whose items must be walked one by one."""

    def __init__(self, node: cs.Construct, inner: Any, item: Step) -> None:
        self.node = node
        self.inner = inner
        self.item = item
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        count = self.inner.count
        if callable(count):
            count = count(ctx)
        if not isinstance(count, int) or not count >= 0:
            raise DecodeError(
                f"invalid array count {count!r}", offset=w.base + w.start + pos, data=b""
            )
        for i in range(count):
            ctx._index = i
            pos, _ = yield from self.item.walk(w, pos, ctx)
        return pos, MISSING


class SwitchStep(Step):
    """``Switch``: pick the case from the context, walk it."""

    def __init__(self, node: cs.Construct, inner: Any, cases: dict[Any, Step], default: Step):
        self.node = node
        self.inner = inner
        self.cases = cases
        self.default = default
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        key = self.inner.keyfunc
        if callable(key):
            key = key(ctx)
        step = self.cases.get(key, self.default)
        return (yield from step.walk(w, pos, ctx))


class IfStep(Step):
    """``If``/``IfThenElse``."""

    def __init__(self, node: cs.Construct, inner: Any, then: Step, other: Step) -> None:
        self.node = node
        self.inner = inner
        self.then = then
        self.other = other
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        cond = self.inner.condfunc
        if callable(cond):
            cond = cond(ctx)
        step = self.then if cond else self.other
        return (yield from step.walk(w, pos, ctx))


class TrialField(Step):
    """Anything else: parse just this field from its own start, retrying when it lacked
    bytes (after they arrive). Its value enters the context when the field is named."""

    def __init__(self, node: cs.Construct) -> None:
        self.node = node
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        while True:
            stream = _TrialFieldStream(
                bytes(w.data[w.start + pos : min(w.end, w.start + w.max)]), pos
            )
            try:
                value = self.node._parsereport(stream, ctx, "(measuring)")
            except NeedMore as more:
                need = more.need
                while w.need(need):
                    yield need
                continue
            except GreedySchemaError:
                raise DecodeError(
                    "a field reads to the end of the stream, so frames cannot be delimited",
                    offset=w.base + w.start + pos,
                    data=w.bytes(pos, pos + 32),
                ) from None
            return stream.tell(), value


class CustomStep(Step):
    """A user's class registered with a ``measure(node, data, pos, end)``: asked where the
    field ends, and again with more bytes while it cannot tell."""

    def __init__(self, node: cs.Construct, core: cs.Construct, measure: Any) -> None:
        self.node = node
        #: the user's construct (``node`` without its names and adapters)
        self.core = core
        self.measure = measure
        self.name = node.name

    def walk(self, w: Window, pos: int, ctx: Any) -> Walk:
        while True:
            end = self.measure(self.core, w.data, w.start + pos, w.end)
            if end is not None:
                break
            upto = w.end - w.start + 1
            while w.need(upto):
                yield upto
        end -= w.start
        if end < pos:
            raise DecodeError(
                f"{type(self.node).__name__} was measured to end before its start",
                offset=w.base + w.start + pos,
                data=w.bytes(pos, pos + 32),
            )
        w.need(end)  # FrameTooLarge as soon as the size is known
        return end, MISSING


class _TrialFieldStream(_FieldStream):
    """The bytes received from a field's start on, at the frame's positions; reading past
    them raises :class:`NeedMore` with the frame size needed (see ``codec._trial``)."""

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            raise GreedySchemaError
        data = super().read(size)
        if len(data) < size:
            raise NeedMore(self.tell() - len(data) + size)
        return data

    def read1(self, size: int | None = -1, /) -> bytes:
        return self.read(size)


# -- building the tree ---------------------------------------------------------------------
def _static_size(node: cs.Construct) -> int | None:
    """``node.sizeof()`` when the measurer may skip that many bytes without parsing them."""
    try:
        size = node.sizeof()
    except Exception:
        return None
    if not isinstance(size, int) or size < 0:
        return None
    return None if size_lies(node) else size


def _peeks(node: cs.Construct) -> bool:
    return isinstance(node, cs.Peek)


def _consumes_unsized(node: cs.Construct) -> bool:
    return isinstance(node, cs.RestreamData) and isinstance(node.datafunc, cs.Construct)


def size_lies(node: cs.Construct) -> bool:
    """True when ``node.sizeof()`` is not what parsing ``node`` consumes.

    ``RestreamData(Prefixed(...), subcon)`` parses its data from the stream with a construct
    but says its size is 0 ("as far as other fields see it"): trusting ``sizeof()`` would cut
    frames short.
    """
    return _contains(node, _consumes_unsized)


def _children(node: cs.Construct) -> list[cs.Construct]:
    """The constructs ``node`` parses from the same stream (its subcons, cases, prefixes)."""
    out: list[Any] = []
    for attr in ("subcon", "thensubcon", "elsesubcon", "default", "lengthfield", "datafunc"):
        child = getattr(node, attr, None)
        if isinstance(child, cs.Construct):
            out.append(child)
    out.extend(getattr(node, "subcons", ()) or ())
    cases = getattr(node, "cases", None)
    if isinstance(cases, dict):
        out.extend(cases.values())
    return [c for c in out if isinstance(c, cs.Construct)]


def _contains(node: cs.Construct, pred: Any, _seen: set[int] | None = None) -> bool:
    seen = _seen if _seen is not None else set()
    if id(node) in seen:
        return False
    seen.add(id(node))
    return bool(pred(node)) or any(_contains(c, pred, seen) for c in _children(node))


def _core(node: cs.Construct) -> cs.Construct:
    """Strip wrappers that consume exactly what they wrap (names, adapters, rebuilds)."""
    while isinstance(node, cs.Renamed | cs.Adapter | cs.Rebuild | cs.Default | cs.Const):
        node = node.subcon
    return node


def _value_preserving(node: cs.Construct) -> cs.Construct:
    """Strip the wrappers that parse to their subcon's value unchanged."""
    while isinstance(node, cs.Renamed | cs.Rebuild | cs.Default | cs.Const):
        node = node.subcon
    return node


def _seeks(node: cs.Construct) -> bool:
    """A construct that moves the stream position or reads elsewhere (``Seek``,
    ``Pointer``, ``Union``, ``Lazy``...; ``Analysis.seeks``): only a whole trial parse of
    the frame sees it as construct does."""
    entry = resolve(type(node))
    return entry is not None and entry.analysis is not None and entry.analysis.seeks


def is_positional(node: cs.Construct) -> bool:
    """True when ``node`` contains a construct that seeks in the stream."""
    return _contains(node, _seeks)


def build_step(node: cs.Construct, names: frozenset[str] | None, want: bool = False) -> Step:
    """The measuring step for ``node``.

    ``names``: the context keys an expression of the schema may read (``None``: any), so
    the fields a ``Struct`` records; ``want``: whether ``node``'s own value may be read.
    The step is the one registered for the class of what ``node`` wraps
    (``codec._registry``); a class with none, or one that declines, is trial-parsed.
    """
    size = _static_size(node)
    # (a Peek's value depends on the bytes after it: when read, it is parsed where it stands)
    if size is not None and not (want and _contains(node, _peeks)):
        return Static(node, size, want)
    core = _core(node)
    entry = resolve(type(core))
    if entry is None or entry.measure is None:
        return TrialField(node)
    if type(core) is not entry.cls and overrides(type(core), entry, PARSE_METHODS):
        return TrialField(node)  # (its own _parse may consume other bytes)
    if not entry.builtin:
        return CustomStep(node, core, entry.measure)
    step: Step | None = entry.measure(node, core, names, want)
    return step if step is not None else TrialField(node)


# -- the built-in steps (registered in codec._constructs; None: a trial parse) -------------
def varint_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    if type(core) is type(cs.VarInt) or type(core) is type(cs.ZigZag):
        return VarIntStep(node, want)
    return None


def prefix_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    length_step = build_step(core.lengthfield, names)
    if isinstance(length_step, Static | VarIntStep):
        return PrefixStep(node, core, length_step)
    return None


def delim_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    if core.consume and len(core.term) == 1:
        return DelimStep(node, core.term)
    return None


def restream_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    if not isinstance(core.datafunc, cs.Construct):
        return None
    # it consumes what its data construct consumes; its value, when read, is parsed
    step = build_step(core.datafunc, names)
    step.name = node.name
    return step


def fields_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    if any(isinstance(_core(sc), cs.StopIf) for sc in core.subcons):
        return None
    record = [
        sc.name if sc.name and (names is None or sc.name in names) else None for sc in core.subcons
    ]
    steps = [
        build_step(sc, names, r is not None) for sc, r in zip(core.subcons, record, strict=True)
    ]
    return Fields(node, core, steps, record)


def array_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    if core.discard:
        return None
    item = build_step(core.subcon, names)
    if isinstance(item, Static):
        return Sized(node, TrialField(node))
    return ArrayStep(node, core, item)


def _branch_want(node: Any, core: Any, want: bool) -> bool:
    """A Switch/If's value is its branch's, unless an adapter around it changes it (its
    value is then parsed whole, when it is read)."""
    return want and _value_preserving(node) is core


def switch_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    want = _branch_want(node, core, want)
    cases = {k: build_step(v, names, want) for k, v in core.cases.items()}
    return SwitchStep(node, core, cases, build_step(core.default, names, want))


def if_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    want = _branch_want(node, core, want)
    return IfStep(
        node,
        core,
        build_step(core.thensubcon, names, want),
        build_step(core.elsesubcon, names, want),
    )


def sized_step(node: Any, core: Any, names: frozenset[str] | None, want: bool) -> Step | None:
    """``Bytes``, ``FixedSized``, ``Padded``, ``BytesInteger``: skipped by their size."""
    return Sized(node, TrialField(node))


class Measured(Framing):
    """Frames measured by walking the schema (see the module docstring)."""

    def __init__(self, schema: cs.Construct, root: Step) -> None:
        self.schema = schema
        self.root = root
        #: whether measuring a frame scans its body (delimiters, item by item, trial
        #: parses) rather than reading only headers
        self.scans = _scans(root)

    def __repr__(self) -> str:
        return self._with_origin(f"Measured({_describe(self.root)})")

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        origin = buf.base + start
        hint = buf.hint
        if hint is not None and hint[0] is self and hint[1] == origin:
            _, _, walk, w, need = hint
            if walk is None:  # size already known, body still arriving
                return int(need)
            if end - start < need:
                return -int(need)
        else:
            w = Window()
            w.max = max_frame_size
            walk = self.root.walk(w, 0, parse_context())
        w.data = data
        w.start = start
        w.end = end
        w.base = buf.base
        try:
            need = next(walk)
        except StopIteration as stop:
            size = int(stop.value[0])
            if size == 0:
                buf.hint = None
                raise DecodeError(
                    "the schema consumed no bytes: it cannot delimit frames", offset=origin
                ) from None
            buf.hint = (self, origin, None, None, size) if size > end - start else None
            return size
        except DecodeError:
            buf.hint = None
            raise
        except FOREIGN_DECODE_ERRORS as exc:
            buf.hint = None
            raise as_decode_error(exc, offset=origin, data=data[start:end]) from exc
        buf.hint = (self, origin, walk, w, need)
        return -int(need)


def _scans(step: Step) -> bool:
    if isinstance(step, DelimStep | ArrayStep | TrialField | CustomStep):
        return True
    if isinstance(step, Fields):
        return any(_scans(s) for s in step.steps)
    if isinstance(step, SwitchStep):
        return any(_scans(s) for s in [*step.cases.values(), step.default])
    if isinstance(step, IfStep):
        return _scans(step.then) or _scans(step.other)
    if isinstance(step, Sized):
        return False  # its trial fallback only runs when an expression fails
    return False


def _describe(step: Step) -> str:
    if isinstance(step, Fields):
        inner = ", ".join(_describe(s) for s in step.steps)
        return f"{type(step.inner).__name__}[{inner}]"
    label = {
        Static: "fixed",
        VarIntStep: "varint",
        PrefixStep: "prefixed",
        DelimStep: "terminated",
        Sized: "sized",
        ArrayStep: "array",
        SwitchStep: "switch",
        IfStep: "if",
        TrialField: "trial",
        CustomStep: "measured",
    }[type(step)]
    if isinstance(step, ArrayStep):
        label = f"array[{_describe(step.item)}]"
    if isinstance(step, Static):
        label = f"fixed {step.size}"
    return f"{step.name}: {label}" if step.name else label
