"""Code generation: a construct schema becomes specialised Python parse/build functions.

The generated parser reads one *complete* frame out of a ``bytes`` object with a position
and a limit; the framing has already established where the frame ends, so the parser never
sees a half packet. It is nevertheless safe on hostile bytes: every read is checked against
the limit of the innermost ``Prefixed``/``FixedSized`` (or the frame), exactly where
construct's stream would run short, and raises construct's own error types, which the codec
maps to :class:`DecodeError` with the offset and the bytes.

What is compiled (everything else falls back to construct's own parser *for that field
only*, with a real context, so one exotic field does not slow the whole message):

* integers and floats (``FormatField``), runs of them merged into one precompiled
  ``struct.Struct.unpack_from`` (``Padding`` becomes pad bytes in the format);
* ``BytesInteger``, ``VarInt``, byte-aligned ``BitStruct``s of ``BitsInteger``/``Flag``/padding
  fields (signed too, under ``Const``/``Enum``/``FlagsEnum``);
* ``Bytes`` (fixed or ``this``-sized), ``GreedyBytes`` inside a bounded region;
* ``PascalString``/``CString``/``PaddedString``/``GreedyString`` and ``Prefixed``;
* ``Array``/``PrefixedArray`` (one ``unpack_from`` with a repeat count for numbers);
* ``Struct``/``Sequence``/``FocusedSeq``, ``Const``, ``Enum``, ``FlagsEnum``, ``Computed``,
  ``Rebuild``/``Default``/``Renamed``, ``Switch`` and ``If``/``IfThenElse`` on fields.

``this`` expressions (``this.length``, ``this._.header.count``, arithmetic on them) are
compiled to local variables; lambdas and other callables get a construct ``Container``
context built on demand, as construct itself would pass.

Results are the types construct returns (``Container``, ``ListContainer``,
``EnumIntegerString``...), without construct's private ``_io`` key.
"""

from __future__ import annotations

import io
import itertools
import operator
import struct
from typing import Any

import construct as cs
from construct import expr as cx

from ._analysis import static_size
from ._framing import parse_context, struct_context
from ._registry import PARSE_METHODS, CodeGen, Entry, builtin_as, emitted, overrides, resolve
from ._trial import GreedySchemaError, NeedMore

__all__ = ["CompileError", "Compiler", "ParseGen", "Scope"]

_FMT_CODES = set("bBhHiIlLqQfde?")
_OPS = {
    operator.add: "+",
    operator.sub: "-",
    operator.mul: "*",
    operator.floordiv: "//",
    operator.truediv: "/",
    operator.mod: "%",
    operator.pow: "**",
    operator.lshift: "<<",
    operator.rshift: ">>",
    operator.and_: "&",
    operator.or_: "|",
    operator.xor: "^",
    operator.eq: "==",
    operator.ne: "!=",
    operator.lt: "<",
    operator.le: "<=",
    operator.gt: ">",
    operator.ge: ">=",
}


class CompileError(Exception):
    """The generator cannot express this node; the caller falls back to construct."""


class _Need(Exception):
    """The frame being measured goes past the bytes received so far."""


class _TooLarge(Exception):
    """The frame being measured is larger than ``max_frame_size`` (its size so far)."""


def _short(path: str, want: int, have: int) -> cs.StreamError:
    return cs.StreamError(
        f"stream read less than specified amount, expected {want}, found {max(have, 0)}",
        path=path,
    )


def _varint_too_long(path: str) -> cs.IntegerError:
    return cs.IntegerError("VarInt longer than 10 bytes", path=path)


def _make_context(parent: Any, index: Any, subcons: Any, items: tuple[Any, ...]) -> Any:
    """The context construct's Struct passes to its fields, rebuilt from compiled locals."""
    ctx = struct_context(parent, subcons, index=index)
    for k, v in items:
        ctx[k] = v
    return ctx


class _Region(io.BytesIO):
    """``data[base:limit]`` as a stream, without copying ``data`` (BytesIO shares a bytes
    object until written): positions are relative to ``base``, as in construct's parse of
    the frame, and reads stop at ``limit``."""

    def __init__(self, data: bytes, base: int, limit: int) -> None:
        super().__init__(data)
        self._base = base
        self._limit = limit

    def read(self, size: int | None = -1, /) -> bytes:
        here = super().tell()
        room = self._limit - here
        if size is None or size < 0 or size > room:
            size = max(room, 0)
        return super().read(size)

    def tell(self) -> int:
        return super().tell() - self._base

    def seek(self, offset: int, whence: int = 0, /) -> int:
        if whence == 0:
            return super().seek(offset + self._base) - self._base
        if whence == 2:
            return super().seek(self._limit + offset) - self._base
        return super().seek(offset, whence) - self._base


def _fallback(
    node: cs.Construct,
    data: bytes,
    base: int,
    pos: int,
    limit: int,
    ctx: Any,
    region: type[_Region] = _Region,
) -> tuple[Any, int]:
    """Parse one field with construct itself, over the region it may read."""
    stream = region(data, base, limit)
    stream.seek(pos - base)
    value = node._parsereport(stream, ctx, "(parsing)")
    return value, base + stream.tell()


class _SoftRegion(_Region):
    """A region ending where the received bytes end: reading past it means the frame is
    not complete yet (``NeedMore``, a BaseException construct does not catch)."""

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            raise GreedySchemaError
        data = super().read(size)
        if len(data) < size:
            raise NeedMore(0)
        return data


def _fallback_soft(
    node: cs.Construct, data: bytes, base: int, pos: int, limit: int, ctx: Any
) -> tuple[Any, int]:
    """Like :func:`_fallback` for a field at the top level of a frame still arriving."""
    return _fallback(node, data, base, pos, limit, ctx, _SoftRegion)


class Scope:
    """Names visible to ``this`` at one level of Struct nesting."""

    def __init__(self, parent: Scope | None, node: Any, index_var: str | None) -> None:
        self.parent = parent
        self.node = node
        self.vars: dict[str, str] = {}
        self.order: list[str] = []
        self.index_var = index_var
        #: nested Structs parsed inline: ``this.header.length`` resolves through them
        self.children: dict[str, Scope] = {}

    def bind(self, name: str, var: str) -> None:
        if name not in self.vars:
            self.order.append(name)
        self.vars[name] = var


class Emitter:
    def __init__(self, prefix: str = "") -> None:
        #: prefix of constant names, so two emitters' namespaces can be merged
        self.prefix = prefix
        self.lines: list[str] = []
        self.depth = 1
        self.consts: dict[str, Any] = {
            "Container": cs.Container,
            "ListContainer": cs.ListContainer,
            "_short": _short,
            "_varint_too_long": _varint_too_long,
            "_fallback": _fallback,
            "_fallback_soft": _fallback_soft,
            "_make_context": _make_context,
            "_top_context": parse_context,
            "StreamError": cs.StreamError,
            "ConstError": cs.ConstError,
            "EnumInteger": cs.EnumInteger,
            "_unpack_from": struct.unpack_from,
            "_Need": _Need,
            "_TooLarge": _TooLarge,
        }
        self._ids = itertools.count()
        #: the limit that is "the end of the bytes received so far" while measuring
        self.soft: str | None = None
        #: variables known to hold non-negative integers (unsigned fields)
        self.unsigned: set[str] = set()
        #: how many lines were emitted when a frame's first read starts (see need())
        self.frame_start: int | None = None
        #: the statement that stops at a read past ``soft`` (bytes not received yet): raise
        #: ``_Need`` to a caller that catches it, or return at once where a half packet is
        #: the common case (the batch's first frame returns ``None, HALF``)
        self.halt = "raise _Need"
        #: whether a line builds objects the cyclic GC tracks (containers, lists, dicts,
        #: construct's own parse): a batch of such values is capped (see codec._batch)
        self.tracked = False
        self._const_ids: dict[int, str] = {}

    def var(self, prefix: str = "v") -> str:
        return f"{prefix}{next(self._ids)}"

    def const(self, obj: Any, prefix: str = "K") -> str:
        key = id(obj)
        name = self._const_ids.get(key)
        if name is None:
            name = f"{self.prefix}{prefix}{next(self._ids)}"
            self._const_ids[key] = name
            self.consts[name] = obj
        return name

    def unpacker(self, st: struct.Struct) -> str:
        """The name of ``st.unpack_from``, bound once: generated code calls a global instead
        of looking the method up on every frame (about a tenth of a field's cost)."""
        key = -id(st)  # (negative: no clash with the ids of const())
        name = self._const_ids.get(key)
        if name is None:
            name = f"{self.const(st, 'S')}_unpack_from"
            self._const_ids[key] = name
            self.consts[name] = st.unpack_from
        return name

    def line(self, text: str, *, tracked: bool = False) -> None:
        """Emit ``text``; ``tracked``: it builds an object the cyclic GC tracks."""
        self.lines.append("    " * self.depth + text)
        self.tracked = self.tracked or tracked

    def non_negative(self, n: str, path: str) -> None:
        if n in self.unsigned:
            return
        self.line(f"if {n} < 0:")
        self.line(
            f"    raise StreamError('length must be non-negative, found %s' % {n}, path={path!r})"
        )

    def need(self, n: str, limit: str, path: str) -> None:
        if limit == self.soft and n == "1" and len(self.lines) == self.frame_start:
            return  # a frame is only parsed when at least one byte of it is there
        self.line(f"if pos + {n} > {limit}:")
        if limit == self.soft:
            self.line(f"    if pos + {n} - fstart > maxsize:")
            self.line(f"        raise _TooLarge(pos + {n} - fstart)")
            self.line(f"    {self.halt}")
        else:
            self.line(f"    raise _short({path!r}, {n}, {limit} - pos)")

    def skip(self, n: str, limit: str, path: str) -> None:
        """Advance over ``n`` bytes that need not have arrived yet (measuring only)."""
        if limit == self.soft:
            self.line(f"pos += {n}")
            self.line("if pos - fstart > maxsize:")
            self.line("    raise _TooLarge(pos - fstart)")
        else:
            self.need(n, limit, path)
            self.line(f"pos += {n}")


class ParseGen(CodeGen):
    """What a parse emitter registered with :func:`codec.register_construct` is given.

    The emitter adds lines to the generated parse function, which holds the frame in
    ``data`` (``bytes``; a ``bytearray`` while measuring, so take ``bytes`` values with
    :meth:`read`) and the position of the node in ``pos``: the lines must leave ``pos``
    just after the node, read ``data`` only below positions :meth:`need` checked, and put
    the node's value (what construct's ``_parse`` returns) in a variable whose name the
    emitter returns. Errors are construct's (``construct.StreamError``...), raised with
    ``path=gen.path``; the codec turns them into :class:`~codec.DecodeError`.
    """

    def __init__(self, compiler: Compiler, limit: str, scope: Scope, path: str) -> None:
        super().__init__(compiler.e, path)
        self._compiler = compiler
        self._limit = limit
        self._scope = scope

    def need(self, n: int | str) -> None:
        """Check that ``n`` bytes (a number, or an expression of the generated code) are
        there from ``pos``: else construct's ``StreamError``, or "not complete yet"."""
        self._compiler.e.need(str(n), self._limit, self.path)

    def read(self, n: int | str) -> str:
        """Check, take and step over ``n`` bytes: the variable holding them, as ``bytes``."""
        e = self._compiler.e
        size = e.var("n")
        e.line(f"{size} = {n}")
        e.non_negative(size, self.path)
        e.need(size, self._limit, self.path)
        v = e.var("u")
        e.line(f"{v} = {self._compiler.blob(f'pos + {size}')}")
        e.line(f"pos += {size}")
        return v

    def expr(self, ex: object) -> str:
        """Source computing ``ex``: a constant, a ``this`` expression (``this.length``), or
        any callable, called with the context construct would pass it."""
        return self._compiler.expr(ex, self._scope)

    def parse(self, subcon: cs.Construct) -> str:
        """Emit the parsing of ``subcon`` at ``pos`` (compiled, or by construct); the
        variable holding its value."""
        return self._compiler.parse(subcon, self._limit, self._scope, self.path)


def _strip_renamed(node: Any) -> tuple[Any, str | None]:
    name = None
    while isinstance(node, cs.Renamed):
        name = name or node.name
        node = node.subcon
    return node, name


def _fmt(node: Any) -> tuple[str, str] | None:
    """``(byteorder char, code)`` of a plain struct-format field."""
    if isinstance(node, cs.FormatField) and builtin_as(node, cs.FormatField):
        fmt = node.fmtstr
        if len(fmt) == 2 and fmt[0] in "<>" and fmt[1] in _FMT_CODES:
            return fmt[0], fmt[1]
    return None


def _builtin(node: Any) -> bool:
    """Whether ``node`` is compiled as the built-in class it resolves to (not a subclass
    with code of its own, nor one a user registered)."""
    entry = resolve(type(node))
    return entry is not None and builtin_as(node, entry.cls)


def _bit_fields(node: Any) -> list[Any] | None:
    """The fields of a ``Struct`` inside ``Bitwise``, in order, when every one is a bit
    field the generated code reads from one integer: ``("leaf", name, bits, kind, signed,
    wrappers)`` with ``kind`` ``int``/``flag``/``pad`` and the ``Const``/``Enum``/``FlagsEnum``
    wrappers innermost first, or ``("struct", name, fields)`` for a nested ``Struct``."""
    if not isinstance(node, cs.Struct) or not _builtin(node):
        return None
    fields: list[Any] = []
    for sc in node.subcons:
        core, _ = _strip_renamed(sc)
        wrappers: list[Any] = []
        while isinstance(core, cs.Const | cs.Enum | cs.FlagsEnum):
            if not _builtin(core):
                return None
            wrappers.insert(0, core)
            core, _ = _strip_renamed(core.subcon)
        if core is not cs.Flag and not _builtin(core):
            return None
        if core is cs.Flag:
            fields.append(("leaf", sc.name, 1, "flag", False, wrappers))
        elif (
            isinstance(core, cs.BitsInteger)
            and isinstance(core.length, int)
            and core.length > 0
            and not core.swapped
        ):
            fields.append(("leaf", sc.name, core.length, "int", bool(core.signed), wrappers))
        elif (
            isinstance(core, cs.Padded)
            and core.subcon is cs.Pass
            and isinstance(core.length, int)
            and not wrappers
        ):
            fields.append(("leaf", None, core.length, "pad", False, wrappers))
        elif isinstance(core, cs.Struct) and not wrappers:
            nested = _bit_fields(core)
            if nested is None:
                return None
            fields.append(("struct", sc.name, nested))
        else:
            return None
    return fields


def _bit_count(fields: list[Any]) -> int:
    return sum(_bit_count(f[2]) if f[0] == "struct" else f[2] for f in fields)


class Compiler:
    """Generates the parse function for one schema (see the module docstring)."""

    def __init__(
        self,
        schema: cs.Construct,
        *,
        measuring: bool = False,
        plain: bool = False,
        read: frozenset[str] | None = None,
    ) -> None:
        self.schema = schema
        #: build dicts and lists instead of construct's Container/ListContainer
        self.plain = plain
        #: emit a measurer (frame extent only, bodies skipped) instead of a parser
        self.measuring = measuring
        #: measuring: the context keys an expression of the schema may read
        #: (``codec._names.read_names``); a Struct field named so is parsed, not skipped, so
        #: the expressions after it (contexts built for callables included) see its value.
        #: ``None``: unknown, and then no context is built while measuring
        self.read = read
        #: how many fields being parsed whole (while measuring) enclose the current node
        self.full = 0
        self.e = Emitter("m_" if measuring else "")
        #: the scope of the Struct parsed last (so a parent can resolve into it)
        self.last_scope: Scope | None = None
        #: the variable holding the start of the region each limit variable bounds
        self.bases: dict[str, str] = {"limit": "start"}
        #: the region starts a later line reads (a fallback parses from its region's start)
        self.used_bases: set[str] = set()
        #: the line that sets each region start, dropped by :meth:`lines` when none reads it
        self.base_lines: dict[str, int] = {}

    def body(self) -> list[str]:
        """The lines emitted so far, without the region starts nothing reads."""
        unused = {i for base, i in self.base_lines.items() if base not in self.used_bases}
        return [line for i, line in enumerate(self.e.lines) if i not in unused]

    # -- expressions ----------------------------------------------------------------------
    def expr(self, ex: Any, scope: Scope) -> str:
        """Python source computing ``ex`` (a constant or a ``this`` expression)."""
        if isinstance(ex, bool | int | float | str | bytes) or ex is None:
            return repr(ex)
        if isinstance(ex, cx.Path):
            parts: list[Any] = []
            node: Any = ex
            while getattr(node, "_Path__parent", None) is not None:
                parts.append(node._Path__field)
                node = node._Path__parent
            if node._Path__name != "this":
                return self.call_with_context(ex, scope)
            parts.reverse()
            s: Scope | None = scope
            while parts and parts[0] == "_" and s is not None:
                parts.pop(0)
                s = s.parent
            if s is None or not parts:
                return self.call_with_context(ex, scope)
            while len(parts) > 1 and parts[0] in s.children:
                s = s.children[parts.pop(0)]
            head = parts[0]
            if head == "_index" and s.index_var is not None:
                base = s.index_var
            elif head in s.vars and s.vars[head] != "None":
                base = s.vars[head]
            else:
                return self.call_with_context(ex, scope)
            for p in parts[1:]:
                base = f"{base}[{p!r}]"
            return base
        if isinstance(ex, cx.BinExpr):
            lhs = self.expr(ex.lhs, scope)
            rhs = self.expr(ex.rhs, scope)
            sym = _OPS.get(ex.op)
            if sym is not None:
                return f"({lhs} {sym} {rhs})"
            return f"{self.e.const(ex.op, 'OP')}({lhs}, {rhs})"
        if isinstance(ex, cx.UniExpr):
            operand = self.expr(ex.operand, scope)
            return f"{self.e.const(ex.op, 'OP')}({operand})"
        if callable(ex):
            return self.call_with_context(ex, scope)
        return self.e.const(ex)

    def context(self, scope: Scope | None) -> str:
        if scope is None or scope.node is None:
            return "_top_context()"
        parent = self.context(scope.parent)
        items = ", ".join(f"({k!r}, {scope.vars[k]})" for k in scope.order)
        subcons = self.e.const(getattr(scope.node, "_subcons", None))
        index = scope.index_var or "None"
        return f"_make_context({parent}, {index}, {subcons}, ({items}{',' if items else ''}))"

    def blob(self, end: str) -> str:
        """Source of the ``bytes`` from ``pos`` to ``end``: a measurer reads the buffer's
        ``bytearray`` itself, whose slices are ``bytearray``s (unhashable: a ``Switch``
        keyed on them would fail), so it converts them."""
        return f"bytes(data[pos:{end}])" if self.measuring else f"data[pos:{end}]"

    @property
    def skipping(self) -> bool:
        """Measuring a body whose value nothing reads: its bytes are skipped, not parsed."""
        return self.measuring and not self.full

    def call_with_context(self, fn: Any, scope: Scope) -> str:
        if self.measuring and self.read is None:
            raise CompileError("a measurer cannot build contexts")
        return f"{self.e.const(fn, 'F')}({self.context(scope)})"

    # -- nodes ----------------------------------------------------------------------------
    def parse(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        """Emit code parsing ``node`` at ``pos``; return the variable holding its value.

        The emitter is the one registered for ``node``'s class (``codec._registry``); one
        that declines (returns ``None``), or none, leaves the node to construct's parser.
        """
        node, _ = _strip_renamed(node)
        entry = resolve(type(node))
        if entry is not None:
            v: str | None = None
            if entry.builtin:
                # (a subclass of a supported class with its own _parse runs its own code)
                if entry.parse is not None and (
                    type(node) is entry.cls or not overrides(type(node), entry, PARSE_METHODS)
                ):
                    v = entry.parse(self, node, limit, scope, path)
            else:
                v = self.custom(entry, node, limit, scope, path)
            if v is not None:
                return v
        if self.skipping:
            skipped = self.skip_unparsed(node, limit, scope, path)
            if skipped is not None:
                return skipped
        return self.fallback(node, limit, scope)

    def custom(self, entry: Entry, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        """A class registered by the user: its ``measure`` (measuring a field nothing
        reads), else its parse emitter, through :class:`ParseGen`."""
        if overrides(type(node), entry, PARSE_METHODS):
            return None
        if self.skipping and entry.measure is not None:
            return self.measure_call(entry.measure, node, limit, path)
        if entry.parse is None:
            return None
        depth = self.e.depth
        v = entry.parse(ParseGen(self, limit, scope, path), node)
        self.e.tracked = True  # (what the user's lines build is not known: count it in)
        return emitted("parse", node, v, depth, self.e.depth)

    def measure_call(self, measure: Any, node: Any, limit: str, path: str) -> str:
        """Skip a user's field by its ``measure(node, data, pos, end)``."""
        e = self.e
        m = e.const(measure, "F")
        k = e.const(node, "N")
        v = e.var("m")
        e.line(f"{v} = {m}({k}, data, pos, {limit})")
        if limit == e.soft:
            e.line(f"if {v} is None:")
            e.line(f"    if {limit} + 1 - fstart > maxsize:")
            e.line(f"        raise _TooLarge({limit} + 1 - fstart)")
            e.line(f"    {e.halt}")
        else:
            e.line(f"if {v} is None or {v} > {limit}:")
            e.line(f"    raise _short({path!r}, ({v} or {limit} + 1) - pos, {limit} - pos)")
        e.line(f"if {v} < pos:")
        e.line(f"    raise StreamError('measured before its own start: %s' % {v}, path={path!r})")
        e.line(f"pos = {v}")
        if limit == e.soft:
            e.line("if pos - fstart > maxsize:")
            e.line("    raise _TooLarge(pos - fstart)")
        return "None"

    # -- the built-in emitters (registered in codec._constructs; None: not this node) -----
    def format_field(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        e = self.e
        fmt = _fmt(node)
        if fmt is None:
            return None
        size = struct.calcsize(fmt[0] + fmt[1])
        v = e.var()
        e.need(str(size), limit, path)
        if fmt[1] == "B":
            e.line(f"{v} = data[pos]")
        else:
            unpack = e.unpacker(struct.Struct(fmt[0] + fmt[1]))
            e.line(f"{v}, = {unpack}(data, pos)")
        if fmt[1] in "BHILQ":
            e.unsigned.add(v)
        e.line(f"pos += {size}")
        return v

    def bytes_(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        e = self.e
        n = self.expr(node.length, scope)
        v = e.var()
        nv = e.var("n")
        e.line(f"{nv} = {n}")
        if n in e.unsigned:
            e.unsigned.add(nv)
        e.non_negative(nv, path)
        if self.skipping:
            e.skip(nv, limit, path)
            return "None"
        e.need(nv, limit, path)
        e.line(f"{v} = {self.blob(f'pos + {nv}')}")
        e.line(f"pos += {nv}")
        return v

    def greedy_bytes(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if node is not cs.GreedyBytes:
            return None
        return self.rest("GreedyBytes", limit)

    def rest(self, what: str, limit: str, suffix: str = "") -> str:
        """The bytes from ``pos`` to the end of the enclosing region (``suffix`` applied),
        for ``what`` reads them all; a frame's end is not known while it arrives."""
        e = self.e
        if limit == e.soft:
            raise CompileError(f"{what} at the top level has no extent")
        v = e.var()
        e.line(f"{v} = {self.blob(limit)}{suffix}")
        e.line(f"pos = {limit}")
        return v

    def string_encoded(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if self.skipping:
            self.parse(node.subcon, limit, scope, path)
            return "None"
        return self.string(node, limit, scope, path)

    def array_(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        return None if node.discard else self.array(node, limit, scope, path)

    def mapped_(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        return self.mapped(node, self.parse(node.subcon, limit, scope, path), path)

    def subcon(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        """``Rebuild``/``Default``: parsing is the subcon's."""
        return self.parse(node.subcon, limit, scope, path)

    def computed(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        v = self.e.var()
        self.e.line(f"{v} = {self.expr(node.func, scope)}")
        return v

    def padding(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if node.subcon is not cs.Pass:
            return None
        n = self.expr(node.length, scope)
        self.e.need(n, limit, path)
        self.e.line(f"pos += {n}")
        return "None"

    def varint_(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        return self.varint(limit, path) if type(node) is type(cs.VarInt) else None

    def bytes_integer(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if callable(node.swapped):
            return None
        e = self.e
        n = self.expr(node.length, scope)
        v = e.var()
        nv = e.var("n")
        e.line(f"{nv} = {n}")
        e.need(nv, limit, path)
        order = "little" if node.swapped else "big"
        e.line(f"{v} = int.from_bytes(data[pos:pos + {nv}], {order!r}, signed={bool(node.signed)})")
        e.line(f"pos += {nv}")
        return v

    def if_then_else(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        e = self.e
        cond = self.expr(node.condfunc, scope)
        v = e.var()
        e.line(f"if {cond}:")
        e.depth += 1
        t = self.parse(node.thensubcon, limit, scope, path)
        e.line(f"{v} = {t}")
        e.depth -= 1
        e.line("else:")
        e.depth += 1
        f = self.parse(node.elsesubcon, limit, scope, path)
        e.line(f"{v} = {f}")
        e.depth -= 1
        return v

    def pass_(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        return "None" if node is cs.Pass else None

    def fixed_sized(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        e = self.e
        n = self.expr(node.length, scope)
        nv = e.var("n")
        e.line(f"{nv} = {n}")
        e.non_negative(nv, path)
        if self.skipping:
            e.skip(nv, limit, path)
            return "None"
        lim = self.region(nv, limit, path)
        v = self.parse(node.subcon, lim, scope, path)
        e.line(f"pos = {lim}")
        return v

    def null_stripped(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if _strip_renamed(node.subcon)[0] is not cs.GreedyBytes or len(node.pad) != 1:
            return None
        return self.rest("NullStripped", limit, f".rstrip({node.pad!r})")

    def null_terminated(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        if not (
            _strip_renamed(node.subcon)[0] is cs.GreedyBytes
            and len(node.term) == 1
            and node.consume
            and node.require
        ):
            return None
        e = self.e
        v = e.var()
        i = e.var("i")
        e.line(f"{i} = data.find({node.term!r}, pos, {limit})")
        e.line(f"if {i} < 0:")
        if limit == e.soft:
            e.line(f"    {e.halt}")
        else:
            e.line(f"    raise StreamError('NullTerminated: terminator not found in {path}')")
        if self.skipping:
            e.line(f"pos = {i} + 1")
            return "None"
        keep = f"{i} + 1" if node.include else i
        e.line(f"{v} = {self.blob(keep)}")
        e.line(f"pos = {i} + 1")
        return v

    def skip_unparsed(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        """Measure, without parsing, a node nothing reads that the generator cannot parse:
        an adapter by what it wraps (construct's ``Adapter`` parses exactly its subcon), a
        node of known size (a ``Check``, a checksum) by its size, as the measuring walk
        does. ``None`` when neither applies (the measurer is then not generated)."""
        if isinstance(node, cs.Adapter) and type(node)._parse is cs.Adapter._parse:
            self.parse(node.subcon, limit, scope, path)
            return "None"
        size = static_size(node)
        if size is None:
            return None
        if size:
            self.e.skip(str(size), limit, path)
        return "None"

    def region(self, n: str, limit: str, path: str) -> str:
        """Open the region of the next ``n`` bytes (a ``Prefixed`` body, a ``FixedSized``):
        check they are there, and return the variable holding its end, the limit of every
        read inside it."""
        e = self.e
        e.need(n, limit, path)
        lim = e.var("lim")
        e.line(f"{lim} = pos + {n}")
        base = e.var("base")
        self.base_lines[base] = len(e.lines)
        e.line(f"{base} = pos")
        self.bases[lim] = base
        return lim

    def prefix_length(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        """Parse a ``Prefixed``'s length field; the variable holding its body's size."""
        e = self.e
        n = self.parse(node.lengthfield, limit, scope, path)
        e.non_negative(n, path)
        if node.includelength:
            size = e.var("n")
            e.line(f"{size} = {n} - ({e.const(node.lengthfield, 'L')}.sizeof())")
            e.non_negative(size, path)
            return size
        return n

    def fallback(self, node: Any, limit: str, scope: Scope) -> str:
        if self.measuring:
            raise CompileError(f"cannot measure {type(node).__name__} without parsing it")
        v = self.e.var()
        k = self.e.const(node, "N")
        base = self.bases.get(limit, "start")
        ctx = self.context(scope)
        fn = "_fallback_soft" if limit == self.e.soft else "_fallback"
        self.used_bases.add(base)
        self.e.line(f"{v}, pos = {fn}({k}, data, {base}, pos, {limit}, {ctx})", tracked=True)
        return v

    def fields(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        e = self.e
        inner = Scope(scope, node, scope.index_var)
        subcons = list(node.subcons)
        values: list[tuple[str | None, str]] = []
        i = 0
        while i < len(subcons):
            run = self._fixed_run(subcons, i)
            if len(run) > 1:
                fmt = "".join(code for _, code in run)
                order = next((o for o in self._orders(run) if o), ">")
                st_ = struct.Struct(order + fmt)
                names = []
                targets = []
                for sc, code in run:
                    if code.endswith("x"):
                        names.append(sc.name)
                        continue
                    v = e.var()
                    targets.append(v)
                    names.append(sc.name)
                e.need(str(st_.size), limit, path)
                tgt = ", ".join(targets) + ("," if len(targets) == 1 else "")
                e.line(f"{tgt} = {e.unpacker(st_)}(data, pos)")
                e.line(f"pos += {st_.size}")
                it = iter(targets)
                for (_, code), name in zip(run, names, strict=True):
                    v = "None" if code.endswith("x") else next(it)
                    if code in "BHILQ":
                        e.unsigned.add(v)
                    values.append((name, v))
                    if name:
                        inner.bind(name, v)
                i += len(run)
                continue
            sc = subcons[i]
            self.last_scope = None
            whole = self.measuring and self.read is not None and sc.name in self.read
            self.full += whole
            v = self.parse(sc, limit, inner, f"{path} -> {sc.name}" if sc.name else path)
            self.full -= whole
            values.append((sc.name, v))
            child = self._take_last_scope()
            if sc.name:
                inner.bind(sc.name, v)
                if child is not None:
                    inner.children[sc.name] = child
            i += 1
        self.last_scope = inner if isinstance(node, cs.Struct) else None
        if self.skipping:
            return "None"
        out = e.var("obj")
        if isinstance(node, cs.Struct) and self.plain:
            items = ", ".join(f"{name!r}: {v}" for name, v in values if name)
            e.line(f"{out} = {{{items}}}", tracked=True)
            return out
        if isinstance(node, cs.Struct):
            e.line(f"{out} = Container()", tracked=True)
            for name, v in values:
                if name:
                    e.line(f"{out}[{name!r}] = {v}")
            return out
        if isinstance(node, cs.Sequence):
            items = ", ".join(v for _, v in values)
            if self.plain:
                e.line(f"{out} = [{items}]", tracked=True)
            else:
                e.line(
                    f"{out} = ListContainer(({items}{',' if len(values) == 1 else ''}))",
                    tracked=True,
                )
            return out
        # FocusedSeq: the value of the parsesubcon
        focus = node.parsebuildfrom
        if callable(focus):
            focus = focus(cs.Container())
        if isinstance(focus, int):
            return values[focus][1]
        for name, v in values:
            if name == focus:
                return v
        raise CompileError(f"FocusedSeq focus {focus!r} not found")

    def _take_last_scope(self) -> Scope | None:
        scope, self.last_scope = self.last_scope, None
        return scope

    def _orders(self, run: list[tuple[Any, str]]) -> list[str]:
        out = []
        for sc, _ in run:
            core, _name = _strip_renamed(sc)
            if isinstance(core, cs.Rebuild | cs.Default):
                core = _strip_renamed(core.subcon)[0]
            f = _fmt(core)
            out.append(f[0] if f else "")
        return out

    def _fixed_run(self, subcons: list[Any], i: int) -> list[tuple[Any, str]]:
        """The longest run of plain-format fields (and fixed Padding) with one byte order."""
        run: list[tuple[Any, str]] = []
        order = None
        for sc in subcons[i:]:
            core, _ = _strip_renamed(sc)
            if isinstance(core, cs.Rebuild | cs.Default) and _builtin(core):
                core, _ = _strip_renamed(core.subcon)
            f = _fmt(core)
            if f is not None:
                if order is not None and f[0] != order:
                    break
                order = f[0]
                run.append((sc, f[1]))
                continue
            if (
                builtin_as(core, cs.Padded)
                and core.subcon is cs.Pass
                and isinstance(core.length, int)
            ):
                run.append((sc, f"{core.length}x"))
                continue
            break
        while run and run[-1][1].endswith("x"):
            run.pop()
        return run

    def string(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        e = self.e
        sub = node.subcon
        enc = node.encoding
        core, _ = _strip_renamed(sub)
        if builtin_as(core, cs.Prefixed) and _strip_renamed(core.subcon)[0] is cs.GreedyBytes:
            # PascalString: decode straight from the slice
            n = self.prefix_length(core, limit, scope, path)
            e.need(n, limit, path)
            v = e.var()
            end = e.var("lim")
            e.line(f"{end} = pos + {n}")
            if enc.replace("-", "").replace("_", "").lower() == "utf8":
                e.line(f"{v} = data[pos:{end}].decode()")
            else:
                e.line(f"{v} = data[pos:{end}].decode({enc!r})")
            e.line(f"pos = {end}")
            return v
        raw = self.parse(sub, limit, scope, path)
        v = e.var()
        if enc.replace("-", "").replace("_", "").lower() in ("utf8",):
            e.line(f"{v} = {raw}.decode()")
        else:
            e.line(f"{v} = {raw}.decode({enc!r})")
        return v

    def prefixed(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        e = self.e
        n = self.prefix_length(node, limit, scope, path)
        if self.skipping:
            e.skip(n, limit, path)
            return "None"
        lim = self.region(n, limit, path)
        sub, _ = _strip_renamed(node.subcon)
        if sub is cs.GreedyBytes:
            v = e.var()
            e.line(f"{v} = {self.blob(lim)}")
            e.line(f"pos = {lim}")
            return v
        if builtin_as(sub, cs.StringEncoded) and _strip_renamed(sub.subcon)[0] is cs.GreedyBytes:
            v = e.var()
            enc = sub.encoding
            if enc.replace("-", "").replace("_", "").lower() == "utf8":
                e.line(f"{v} = data[pos:{lim}].decode()")
            else:
                e.line(f"{v} = data[pos:{lim}].decode({enc!r})")
            e.line(f"pos = {lim}")
            return v
        v = self.parse(node.subcon, lim, scope, path)
        # construct parses the sub-stream and ignores what the subcon left unread
        e.line(f"pos = {lim}")
        return v

    def array(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        e = self.e
        count = self.expr(node.count, scope)
        c = e.var("c")
        e.line(f"{c} = {count}")
        e.line(f"if not 0 <= {c}:")
        e.line(f"    raise cs.RangeError('invalid count %s' % ({c},))")
        e.consts["cs"] = cs
        item, _ = _strip_renamed(node.subcon)
        f = _fmt(item)
        v = e.var()
        if f is not None and self.skipping:
            e.skip(f"{c} * {struct.calcsize(f[0] + f[1])}", limit, path)
            return "None"
        if f is not None:
            size = struct.calcsize(f[0] + f[1])
            total = e.var("n")
            e.line(f"{total} = {c} * {size}")
            e.need(total, limit, path)
            seq = "list" if self.plain else "ListContainer"
            e.line(f"{v} = {seq}(_unpack_from('{f[0]}%d{f[1]}' % {c}, data, pos))", tracked=True)
            e.line(f"pos += {total}")
            return v
        idx = e.var("i")
        e.line(f"{v} = {'[]' if self.plain else 'ListContainer()'}", tracked=True)
        e.line(f"for {idx} in range({c}):")
        e.depth += 1
        inner = Scope(scope.parent, scope.node, idx)
        inner.vars = scope.vars
        inner.order = scope.order
        x = self.parse(node.subcon, limit, inner, path)
        if not self.skipping:
            e.line(f"{v}.append({x})")
        else:
            e.line("pass")
        e.depth -= 1
        return v

    def switch(self, node: Any, limit: str, scope: Scope, path: str) -> str:
        e = self.e
        key = self.expr(node.keyfunc, scope)
        keys = list(node.cases)
        index = {k: i for i, k in enumerate(keys)}
        idx = e.var("k")
        v = e.var()
        e.line(f"{idx} = {e.const(index, 'M')}.get({key}, -1)")
        for i, k in enumerate(keys):
            e.line(f"{'if' if i == 0 else 'elif'} {idx} == {i}:")
            e.depth += 1
            x = self.parse(node.cases[k], limit, scope, path)
            e.line(f"{v} = {x}")
            e.depth -= 1
        e.line("else:" if keys else "if True:")
        e.depth += 1
        x = self.parse(node.default, limit, scope, path)
        e.line(f"{v} = {x}")
        e.depth -= 1
        return v

    def varint(self, limit: str, path: str) -> str:
        e = self.e
        v = e.var()
        b = e.var("b")
        sh = e.var("s")
        e.line(f"{v} = 0")
        e.line(f"{sh} = 0")
        e.line("while True:")
        e.line(f"    if pos >= {limit}:")
        if limit == e.soft:
            e.line(f"        {e.halt}")
        else:
            e.line(f"        raise _short({path!r}, 1, 0)")
        e.line(f"    {b} = data[pos]")
        e.line("    pos += 1")
        e.line(f"    {v} |= ({b} & 0x7F) << {sh}")
        e.line(f"    if not {b} & 0x80:")
        e.line("        break")
        e.line(f"    {sh} += 7")
        # the 10th byte ends it (any 64-bit value fits): a longer run of continuation bytes
        # is malformed, and against the end of the bytes received it would otherwise wait
        # for more without end, never knowing the frame's size (see _measure.VarIntStep)
        e.line(f"    if {sh} >= 70:")
        e.line(f"        raise _varint_too_long({path!r})")
        return v

    def bitstruct(self, node: Any, limit: str, scope: Scope, path: str) -> str | None:
        """A byte-aligned ``BitStruct`` of ``BitsInteger`` (signed or not; ``Bit``,
        ``Nibble``, ``Octet``), ``Flag`` and padding fields, each possibly under ``Const``,
        ``Enum`` or ``FlagsEnum``, and of nested ``Struct``s of such fields: one
        ``int.from_bytes``, then shifts and masks."""
        if not isinstance(node, cs.Transformed | cs.Restreamed):
            return None
        inner, _ = _strip_renamed(node.subcon)
        fields = _bit_fields(inner)
        if fields is None:
            return None
        nbits = _bit_count(fields)
        if nbits == 0 or nbits % 8:
            return None
        nbytes = nbits // 8
        try:
            if node.sizeof() != nbytes:
                return None
        except Exception:
            return None
        e = self.e
        word = e.var("w")
        e.need(str(nbytes), limit, path)
        e.line(f"{word} = int.from_bytes(data[pos:pos + {nbytes}], 'big')")
        e.line(f"pos += {nbytes}")
        out, _ = self.bit_struct(fields, word, nbits, path)
        return out

    def bit_struct(self, fields: list[Any], word: str, shift: int, path: str) -> tuple[str, int]:
        """Emit the container of ``fields`` (see :func:`_bit_fields`) whose bits end
        ``shift`` bits before the end of ``word``; return it and the bits left after it."""
        e = self.e
        out = e.var("obj")
        e.line(f"{out} = {'{}' if self.plain else 'Container()'}", tracked=True)
        for field in fields:
            name = field[1]
            sub = f"{path} -> {name}" if name else path
            if field[0] == "struct":
                val, shift = self.bit_struct(field[2], word, shift, sub)
                if name:
                    e.line(f"{out}[{name!r}] = {val}")
                continue
            _, name, n, kind, signed, wrappers = field
            shift -= n
            if kind == "pad":
                continue
            raw = f"({word} >> {shift}) & {(1 << n) - 1}" if shift else f"{word} & {(1 << n) - 1}"
            if kind == "flag":
                val = f"bool({raw})"
            elif signed or wrappers:
                val = e.var()
                e.line(f"{val} = {raw}")
                if signed:  # construct's bits2integer: two's complement of n bits
                    e.line(f"if {val} >= {1 << (n - 1)}:")
                    e.line(f"    {val} -= {1 << n}")
            else:
                val = raw
            for wrapper in wrappers:
                val = self.mapped(wrapper, val, sub)
            if name:
                e.line(f"{out}[{name!r}] = {val}")
        return out, shift

    def mapped(self, node: Any, val: str, path: str) -> str:
        """``Const``/``Enum``/``FlagsEnum`` applied to the value ``val`` its subcon gave
        (a byte field, or a bit field of a ``BitStruct``), as their ``parse`` does it."""
        e = self.e
        if isinstance(node, cs.Const):
            if not self.measuring:
                k = e.const(node.value)
                e.line(f"if {val} != {k}:")
                e.line(
                    f"    raise ConstError('parsing expected %r but parsed %r' % ({k}, {val}), "
                    f"path={path!r})"
                )
            return val
        v = e.var()
        if isinstance(node, cs.Enum):
            m = e.const(node.decmapping, "M")
            e.line(f"{v} = {m}.get({val})")
            e.line(f"if {v} is None:")
            e.line(f"    {v} = EnumInteger({val})")
        elif self.plain:  # the flags as a dict: construct's keys and order, no _flagsenum
            items = ", ".join(f"{n!r}: {val} & {b} == {b}" for n, b in node.flags.items())
            e.line(f"{v} = {{{items}}}", tracked=True)
        else:
            e.line(f"{v} = {e.const(node, 'A')}._decode({val}, None, {path!r})", tracked=True)
        return v
