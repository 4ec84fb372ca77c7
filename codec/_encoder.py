"""Code generation for encoding: ``schema.build(value)`` as one specialised function.

The generated ``build(obj, out)`` appends the frame to a ``bytearray`` and produces exactly
``schema.build(obj)``'s bytes, rejecting what construct rejects with construct's own error
classes (a missing field is a ``KeyError``, an out-of-range integer a ``FormatFieldError``
or ``IntegerError``, a ``Bytes`` of the wrong length a ``StreamError``, a too long
``PaddedString`` a ``PaddingError``...), which the codec maps to :class:`EncodeError` with
the field's path.

Compiled:

* integers and floats (runs of named fields merged into one ``struct.pack``),
  ``BytesInteger``, ``VarInt``, ``Flag``;
* ``Bytes``, ``GreedyBytes``, ``PascalString``/``CString``/``GreedyString``,
  ``PaddedString`` in every encoding construct pads (``FixedSized`` over ``NullStripped``:
  the encoded bytes padded with zero bytes to the length), ``FixedSized`` in general,
  ``Prefixed`` with any compiled length field;
* ``Struct``/``Sequence``/``FocusedSeq`` (so ``PrefixedArray``), ``Array``;
* ``Const``, ``Enum``, ``FlagsEnum``, ``Padding``, ``Rebuild``/``Default``/``Computed``;
* ``Switch`` (the key evaluated as construct evaluates it at build time, cases and default
  compiled like any field: ``Pass``, ``Computed``, ``Error``...) and ``If``/``IfThenElse``;
* ``BitStruct``/``Bitwise`` (both of construct's forms: ``Transformed`` when ``sizeof``
  knows the size, ``Restreamed`` otherwise) over ``BitsInteger``/``Bit``/``Nibble``/
  ``Octet``/``Flag``/``Padding`` fields, possibly under ``Const``/``Enum``/``FlagsEnum``/
  ``Rebuild``/``Default``, in nested ``Struct``/``Sequence``s, ``Array``s, ``Switch``/
  ``If`` branches, with computed or byte-swapped widths, and ``Bytewise`` fields: every
  field is checked as construct checks it, then all are packed into one ``int`` written
  with ``int.to_bytes``. Where every width is a constant the terms are shifted into place
  in one expression; from the first width known only at run time, the region accumulates
  its bits and counts them, and its end is checked as construct checks it (whole bytes,
  the declared size).

Everything else is built by construct itself **for that node only**: the generated code
calls the node's own ``_build`` with the build context construct would give it (every given
value of the enclosing ``Struct`` visible, fields already built replaced by what their
``_build`` returned, ``_index`` inside arrays), on a stream whose positions are those of
construct's stream, and appends what it wrote. One ``Checksum``, ``Hex``, ``Timestamp`` or
``RepeatUntil`` field therefore costs one construct call, not the whole message.

What stays whole-schema (``CompileError``, and the codec calls ``schema.build``):

* a schema whose root itself is not compiled (nothing would be gained);
* ``Seek``, ``Pointer`` and ``StopIf`` reached by the generated code: they move the stream
  or stop the enclosing ``Struct``, which appending code cannot follow.

A node built by construct that turns out to need more than its own bytes (it seeks back
before its own start, or leaves the stream anywhere but at its end) makes the generated
function start over with ``schema.build(obj)``, so the bytes are construct's in every case.

Inside a ``Bitwise`` region a field the generator does not cover is built by construct alone
too, on a bit stream at its bit position (construct writes one byte per bit there); its bits
join the region's integer. One that writes anything but bits (``bits2bytes`` would fail,
at a moment that depends on what follows) makes the generated function start over with
``schema.build(obj)``.

Where the generated code knowingly differs from construct (values and bytes never do):

* a string its encoding cannot encode is construct's ``StringError`` *with* the field's
  path (construct raises it without one);
* a ``Struct``'s given values are all read when the ``Struct`` starts, so with a missing
  field *and* a bad value before it, the error is the missing field's (construct: the bad
  value's). With one fault the error is construct's: a failed read replays construct's
  checks (``_struct_error``) to raise what construct raises first;
* lambdas run by the generated code see ``_io`` as ``None`` in the context (construct: the
  stream); nodes built by construct see their own stream there.

The helpers the generated code calls live in :mod:`codec._build_runtime`.
"""

from __future__ import annotations

import itertools
import re
import struct
from collections.abc import Callable
from typing import Any

import construct as cs
from construct import expr as cx
from construct.lib import bits2bytes, bytes2bits

from ._build_runtime import HELPERS
from ._compiler import _OPS, CompileError, _fmt, _strip_renamed
from ._errors import FOREIGN_ENCODE_ERRORS, EncodeError, as_encode_error
from ._registry import BUILD_METHODS, CodeGen, Entry, builtin_as, emitted, overrides, resolve
from ._source import exec_generated

__all__ = [
    "BuildGen",
    "Builder",
    "EncodeInto",
    "blob_encode_into",
    "compile_builder",
    "compile_encode_into",
]

Builder = Callable[[Any, bytearray], None]
EncodeInto = Callable[[Any, bytearray], None]

#: constructs that move the stream or stop their Struct: only construct builds them (whole)
_WHOLE_SCHEMA = (cs.Seek, cs.Pointer, cs.StopIf)


class _WholeSchema(CompileError):
    """A node only construct can build, and only as part of the whole message."""


def _number_run(subcons: list[Any], i: int, built: set[str]) -> list[tuple[Any, tuple[str, str]]]:
    """The run of named plain-number fields with one byte order starting at ``i`` (each
    name once, not built before: the run packs the values given for them)."""
    run: list[tuple[Any, tuple[str, str]]] = []
    names: set[str] = set()
    for sc in subcons[i:]:
        core, _ = _strip_renamed(sc)
        f = _fmt(core)
        if f is None or not sc.name or (run and f[0] != run[0][1][0]):
            break
        if sc.name in built or sc.name in names:
            break
        names.add(sc.name)
        run.append((sc, f))
    return run


def _unwrap(node: Any, path: str) -> tuple[Any, str]:
    """``node`` without its ``Renamed`` layers, and the path construct builds it under:
    each ``Renamed`` adds `` -> name`` (construct's ``Renamed._build`` does, not ``Struct``),
    so a named field of a ``Sequence``/``FocusedSeq`` is in its errors' path too."""
    while isinstance(node, cs.Renamed):
        path += f" -> {node.name}"
        node = node.subcon
    return node, path


def _builds_as_construct(node: Any) -> bool:
    """Whether ``node`` builds as the construct class it is: a subclass defined elsewhere
    (a schema's own ``class Masked(cs.Adapter)``, a ``Struct`` with its own ``_build``) that
    overrides ``_build`` or ``_encode`` must be built by its own code, not compiled as its
    construct base."""
    cls = type(node)
    base = next((c for c in cls.__mro__ if c.__module__.startswith("construct.")), None)
    if base is None:
        return False
    return all(getattr(cls, m, None) is getattr(base, m, None) for m in ("_build", "_encode"))


class BuildGen(CodeGen):
    """What a build emitter registered with :func:`codec.register_construct` is given.

    The emitter adds lines to the generated build function, which appends the frame to the
    ``bytearray`` ``out``; the value to build is in the variable named :attr:`value`. The
    lines must append exactly the bytes construct's ``_build`` writes, raise construct's
    errors (``path=gen.path``) on a bad value, and the emitter returns the name of a
    variable holding what ``_build`` returns (usually :attr:`value` itself).
    """

    def __init__(self, compiler: _BuildCompiler, value: str, ctx: str, path: str) -> None:
        super().__init__(compiler, path)
        self._compiler = compiler
        self._ctx = ctx
        #: the variable holding the value to build
        self.value = value

    def expr(self, ex: object) -> str:
        """Source computing ``ex`` in the build context: a constant, a ``this`` expression,
        or any callable, called with the context construct would pass it."""
        return self._compiler.value_of(ex, self._ctx)

    def build(self, subcon: cs.Construct, value: str) -> str:
        """Emit the building of ``subcon`` from the variable ``value`` (compiled, or by
        construct); the variable holding what its ``_build`` returns."""
        return self._compiler.build(subcon, value, self._ctx, self.path)


# -- the generator ---------------------------------------------------------------------------
class _BuildCompiler:
    def __init__(self) -> None:
        #: per Struct context variable: field name -> local holding its current value
        self.locals: dict[str, dict[str, str]] = {}
        #: per Struct context variable: the context variable of the enclosing Struct
        self.parents: dict[str, str] = {}
        #: variables known to hold ``bytes`` (an encoded string)
        self.known_bytes: set[str] = set()
        self.lines: list[str] = []
        self.depth = 1
        self.ids = itertools.count(1)
        #: where construct's stream starts in ``out``: the frame's start, or 0 in a scratch
        self.base = "base0"
        #: inside a Bitwise region: the fields' bits not yet in a run-time accumulator,
        #: (term or None, width, constant bits)
        self.bits: list[tuple[str | None, int, int]] | None = None
        #: inside a Bitwise region whose width is known only at run time (a Switch, an
        #: array, a computed width, a field built by construct): the variables holding the
        #: bits so far and their count; ``None`` while every width is a constant
        self.acc: tuple[str, str] | None = None
        #: how many nodes are built by construct (each one a ``_fallback`` call)
        self.fallbacks = 0
        self.consts: dict[str, Any] = dict(HELPERS)

    def var(self, p: str = "b") -> str:
        return f"{p}{next(self.ids)}"

    def const(self, obj: Any, p: str = "K") -> str:
        name = f"{p}{next(self.ids)}"
        self.consts[name] = obj
        return name

    def packer(self, name: str) -> str:
        """The name of the struct const ``name``'s ``pack``, bound once: generated code calls
        a global instead of looking the method up on every message."""
        bound = f"{name}_pack"
        self.consts[bound] = self.consts[name].pack
        return bound

    def line(self, s: str) -> None:
        self.lines.append("    " * self.depth + s)

    def value_of(self, ex: Any, ctx: str) -> str:
        """Python source for an expression evaluated in the build context ``ctx``.

        ``this.name`` (and arithmetic on it, ``len_(this.name)`` and other ``construct.expr``
        forms) becomes the field's local variable: its built value once built, else the
        value given for it (construct's Struct puts every given value in the context before
        building the first field). Other callables get the context itself.
        """
        if isinstance(ex, bool | int | float | str | bytes) or ex is None:
            return repr(ex)
        if isinstance(ex, cx.Path):
            local = self._path(ex, ctx)
            if local is not None:
                return local
        if isinstance(ex, cx.BinExpr):
            lhs = self.value_of(ex.lhs, ctx)
            rhs = self.value_of(ex.rhs, ctx)
            if ex.op in _OPS:
                return f"({lhs} {_OPS[ex.op]} {rhs})"
            return f"{self.const(ex.op, 'OP')}({lhs}, {rhs})"
        if isinstance(ex, cx.UniExpr):
            return f"{self.const(ex.op, 'OP')}({self.value_of(ex.operand, ctx)})"
        if isinstance(ex, cx.FuncPath) and ex._FuncPath__operand is not None:
            # len_(this.items) and the like: the function of the operand's value
            func = self.const(ex._FuncPath__func, "OP")
            return f"{func}({self.value_of(ex._FuncPath__operand, ctx)})"
        if callable(ex):
            return f"{self.const(ex, 'F')}({ctx})"
        return self.const(ex)

    def _path(self, ex: Any, ctx: str) -> str | None:
        """The local holding ``this.a.b`` (``this._.a`` goes to the enclosing Struct), when
        every step is a Struct the generated code built inline; else ``None``."""
        node = ex
        parts = []
        while getattr(node, "_Path__parent", None) is not None:
            parts.append(node._Path__field)
            node = node._Path__parent
        if node._Path__name != "this" or not parts:
            return None
        parts.reverse()
        scope: str | None = ctx
        for i, part in enumerate(parts):
            if scope is None:
                return None
            if part == "_":
                scope = self.parents.get(scope)
                continue
            local = self.locals.get(scope, {}).get(part)
            if local is None or i == len(parts) - 1:
                return local
            scope = local if local in self.locals else None
        return None

    # -- nodes ----------------------------------------------------------------------------
    def build(self, node: Any, val: str, ctx: str, path: str) -> str:
        """Emit code appending ``node`` built from ``val``; return what construct's
        ``_build`` returns (the value later fields see in the context).

        A node the generator does not cover is built by construct (:meth:`fallback`); the
        code emitted for it so far is dropped first.
        """
        mark = len(self.lines)
        depth = self.depth
        bits = None if self.bits is None else list(self.bits)
        acc = self.acc
        try:
            return self.node(node, val, ctx, path)
        except _WholeSchema:
            raise
        except CompileError:
            del self.lines[mark:]
            self.depth = depth
            self.bits = bits
            self.acc = acc
            if bits is not None:
                return self.bits_fallback(node, val, ctx, path)
            return self.fallback(node, val, ctx, path)

    def fallback(self, node: Any, val: str, ctx: str, path: str) -> str:
        """Emit a call building ``node`` with construct's own ``_build``."""
        node, path = _unwrap(node, path)
        if isinstance(node, _WHOLE_SCHEMA):
            raise _WholeSchema(f"{type(node).__name__} moves the stream or stops its Struct")
        self.fallbacks += 1
        v = self.var()
        k = self.const(node, "N")
        self.line(f"{v} = _fallback({k}, {val}, {ctx}, {path!r}, out, {self.base})")
        return v

    def bits_fallback(self, node: Any, val: str, ctx: str, path: str) -> str:
        """Emit a call building one node of a Bitwise region with construct's ``_build``
        (on a bit stream at the region's position), its bits added to the accumulator."""
        node, path = _unwrap(node, path)
        if isinstance(node, _WHOLE_SCHEMA):
            raise _WholeSchema(f"{type(node).__name__} moves the stream or stops its Struct")
        self.fallbacks += 1
        acc, count = self.bits_dynamic()
        v, t, w = self.var(), self.var("t"), self.var("w")
        k = self.const(node, "N")
        self.line(f"{v}, {t}, {w} = _bits_fallback({k}, {val}, {ctx}, {path!r}, {count})")
        self.line(f"{acc} = ({acc} << {w}) | {t}")
        self.line(f"{count} += {w}")
        return v

    def node(self, node: Any, val: str, ctx: str, path: str) -> str:
        """Emit the generated code for ``node``; ``CompileError`` when there is none.

        The emitter is the one registered for ``node``'s class (``codec._registry``), the
        one for a ``Bitwise`` region inside one.
        """
        node, path = _unwrap(node, path)
        entry = resolve(type(node))
        if entry is not None and not entry.builtin:
            return self.custom(entry, node, val, ctx, path)
        if not _builds_as_construct(node):
            raise CompileError(f"{type(node).__name__} has its own build")
        if self.bits is not None:
            emit = entry.build_bits if entry is not None else None
        else:
            emit = entry.build if entry is not None else None
        if emit is None:
            raise CompileError(f"no build code for {type(node).__name__}")
        ret: str = emit(self, node, val, ctx, path)
        return ret

    def custom(self, entry: Entry, node: Any, val: str, ctx: str, path: str) -> str:
        """A class registered by the user: its build emitter, through :class:`BuildGen`
        (outside ``Bitwise`` regions, where it would write bytes, not bits)."""
        if entry.build is None or self.bits is not None:
            raise CompileError(f"no build code for {type(node).__name__}")
        if overrides(type(node), entry, BUILD_METHODS):
            raise CompileError(f"{type(node).__name__} has its own build")
        depth = self.depth
        ret = entry.build(BuildGen(self, val, ctx, path), node)
        return emitted("build", node, ret, depth, self.depth)

    # -- the built-in emitters (registered in codec._constructs) --------------------------
    def format_field(self, node: Any, val: str, ctx: str, path: str) -> str:
        f = _fmt(node)
        if f is None:
            raise CompileError(f"no build code for FormatField {node.fmtstr!r}")
        s = self.const(struct.Struct(f[0] + f[1]), "S")
        self.line("try:")
        self.line(f"    out += {self.packer(s)}({val})")
        self.line("except struct.error:")
        self.line(f"    _blame(({s},), ({val},), ({path!r},))")
        return val

    def bytes_(self, node: Any, val: str, ctx: str, path: str) -> str:
        n = self.value_of(node.length, ctx)
        if not (n.isidentifier() or n.isdigit()):
            length = self.var("n")  # evaluated once, as construct evaluates it
            self.line(f"{length} = {n}")
            n = length
        v = self.var()
        # the common case inline: bytes of the right length go as they are
        self.line(f"if type({val}) is bytes and len({val}) == {n}:")
        self.line(f"    {v} = {val}")
        self.line("else:")
        self.line(f"    {v} = _write_bytes({val}, {n}, {path!r})")
        self.line(f"out += {v}")
        return v

    def greedy_bytes(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node is not cs.GreedyBytes:
            raise CompileError(f"no build code for {type(node).__name__}")
        v = self.var()
        self.line(f"{v} = _greedy({val}, {path!r})")
        self.line(f"out += {v}")
        return v

    def null_stripped(self, node: Any, val: str, ctx: str, path: str) -> str:
        return self.build(node.subcon, val, ctx, path)  # building defers to the subcon

    def flag(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node is not cs.Flag:
            raise CompileError(f"no build code for {type(node).__name__}")
        self.line(f"out += b'\\x01' if {val} else b'\\x00'")
        return val

    def padding(self, node: Any, val: str, ctx: str, path: str) -> str:
        if not (node.subcon is cs.Pass and isinstance(node.length, int) and node.length >= 0):
            raise CompileError("Padded around a field")
        pad = (node.pattern * node.length)[: node.length]
        self.line(f"out += {pad!r}")
        return "None"

    def varint(self, node: Any, val: str, ctx: str, path: str) -> str:
        if type(node) is not type(cs.VarInt):
            raise CompileError(f"no build code for {type(node).__name__}")
        self.line(f"out += _varint({val}, {path!r})")
        return val

    def array_(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node.discard:
            raise CompileError("Array with discard=True")
        return self.array(node, val, ctx, path)

    def greedy_range(self, node: Any, val: str, ctx: str, path: str) -> str:
        return self.items(node, val, ctx, path, keep=not node.discard)

    # (these are built the same way in a byte stream and in a Bitwise region)
    def const_(self, node: Any, val: str, ctx: str, path: str) -> str:
        k = self.const(node.value)
        self.line(f"if {val} is not None and {val} != {k}:")
        self.line(
            f"    raise ConstError('building expected None or %r but got %r' % ({k}, {val}),"
            f" path={path!r})"
        )
        return self.build(node.subcon, k, ctx, path)

    def enum(self, node: Any, val: str, ctx: str, path: str) -> str:
        m = self.const(node.encmapping, "M")
        raw = self.var()
        self.line(f"if isinstance({val}, int):")
        self.line(f"    {raw} = {val}")
        self.line("else:")
        self.line(f"    {raw} = {m}.get({val})")
        self.line(f"    if {raw} is None:")
        self.line(
            f"        raise MappingError('building failed, no mapping for %r' % ({val},),"
            f" path={path!r})"
        )
        self.build(node.subcon, raw, ctx, path)
        return val

    def flags_enum(self, node: Any, val: str, ctx: str, path: str) -> str:
        raw = self.var()
        known = {k: v for k, v in node.flags.items() if not k.startswith("_") and v is not None}
        flags = self.const(node.flags, "M")
        self.line(f"{raw} = _flags({val}, {flags}, {self.const(known, 'M')}, {path!r})")
        self.build(node.subcon, raw, ctx, path)
        return val

    def rebuild(self, node: Any, val: str, ctx: str, path: str) -> str:
        v = self.var()
        self.line(f"{v} = {self.value_of(node.func, ctx)}")
        return self.build(node.subcon, v, ctx, path)

    def default(self, node: Any, val: str, ctx: str, path: str) -> str:
        v = self.var()
        self.line(f"{v} = {self.value_of(node.value, ctx)} if {val} is None else {val}")
        return self.build(node.subcon, v, ctx, path)

    def computed(self, node: Any, val: str, ctx: str, path: str) -> str:
        v = self.var()
        self.line(f"{v} = {self.value_of(node.func, ctx)}")
        return v

    def pass_(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node is not cs.Pass:
            raise CompileError(f"no build code for {type(node).__name__}")
        return "None"

    def terminated(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node is not cs.Terminated:
            raise CompileError(f"no build code for {type(node).__name__}")
        return val  # (building writes nothing and returns the value)

    def error(self, node: Any, val: str, ctx: str, path: str) -> str:
        if node is not cs.Error:
            raise CompileError(f"no build code for {type(node).__name__}")
        self.line(
            f"raise ExplicitError('Error field was activated during building', path={path!r})"
        )
        return "None"

    def struct(self, node: Any, val: str, ctx: str, path: str) -> str:
        obj = self.var("o")
        c = self.var("c")
        self.line(f"{obj} = Container() if {val} is None else {val}")
        self.line(f"{c} = _context({ctx}, {obj}, {self.const(node._subcons)})")
        if not node.subcons:
            self.line(f"_context({ctx}, {obj}, None)")  # construct's check that it is a mapping
        # this.<field> inside this Struct: a local for each field, given value first
        fields: dict[str, str] = {}
        self.locals[c] = fields
        self.parents[c] = ctx
        plain = [sc.name for sc in node.subcons if sc.name and not sc.flagbuildnone]
        if plain or node.subcons:
            me = self.const(node, "N")
        if plain:
            # the given values read at once; when that fails (a missing key, a value that
            # is no mapping), construct's own order of checks says which error it is
            self.line("try:")
            for name in plain:
                fields[name] = self.var("g")
                self.line(f"    {fields[name]} = {obj}[{name!r}]")
            self.line("except Exception:")
            self.line(f"    _struct_error({obj}, {me})")
            self.line("    raise")
        elif node.subcons:
            # no plain field to read: construct's check that the value is a mapping
            self.line(f"if type({obj}) is not dict and type({obj}) is not Container:")
            self.line(f"    _struct_error({obj}, {me})")
        subcons = list(node.subcons)
        built: set[str] = set()
        i = 0
        while i < len(subcons):
            run = _number_run(subcons, i, built) if self.bits is None else []
            if len(run) > 1:
                # one struct.pack for a run of named numbers with one byte order
                # (the context already holds these given values, and a number's build
                # returns the value given: no context update to write)
                names = [sc.name for sc, _ in run]
                subs = [fields[n] for n in names]
                fmt = run[0][1][0] + "".join(code for _, (_, code) in run)
                s = self.const(struct.Struct(fmt), "S")
                singles = ", ".join(
                    self.const(struct.Struct(o + code), "S") for _, (o, code) in run
                )
                paths = tuple(f"{path} -> {n}" for n in names)
                self.line("try:")
                self.line(f"    out += {self.packer(s)}({', '.join(subs)})")
                self.line("except struct.error:")
                self.line(f"    _blame(({singles},), ({', '.join(subs)},), {paths!r})")
                built.update(names)
                i += len(run)
                continue
            sc = subcons[i]
            i += 1
            if sc.name and sc.name in fields and sc.name not in built:
                sub = fields[sc.name]  # already in the context (``_context`` copied it)
            else:
                if sc.flagbuildnone:
                    # dropped when nothing reads it (Padding, Computed), as long as another
                    # field's lookup still rejects what construct rejects (a non-mapping)
                    sub = self.var("q" if fields else "x")
                    self.line(f"{sub} = {obj}.get({sc.name!r}, None)")
                else:
                    sub = self.var("x")
                    self.line(f"{sub} = {obj}[{sc.name!r}]")
                if sc.name:
                    self.line(f"{c}[{sc.name!r}] = {sub}")
            ret = self.build(sc, sub, c, path)  # (a Renamed field adds its name to the path)
            if sc.name:
                if ret != sub:
                    self.line(f"{c}[{sc.name!r}] = {ret}")
                fields[sc.name] = ret
                built.add(sc.name)
        return c

    def sequence(self, node: Any, val: str, ctx: str, path: str) -> str:
        obj = self.var("o")
        c = self.var("c")
        it = self.var("it")
        self.line(f"{obj} = [None] * {len(node.subcons)} if {val} is None else {val}")
        self.line(f"{c} = _context({ctx}, {{}}, {self.const(node._subcons)})")
        self.line(f"{it} = iter({obj})")
        # a Sequence's context holds a field from when it is reached (given, then built)
        fields: dict[str, str] = {}
        self.locals[c] = fields
        self.parents[c] = ctx
        rets = []
        for sc in node.subcons:
            sub = self.var("x")
            self.line(f"{sub} = next({it})")
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {sub}")
                fields[sc.name] = sub
            ret = self.build(sc, sub, c, path)
            rets.append(ret)
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {ret}")
                fields[sc.name] = ret
        # construct returns the list of what each item's build returned (kept only if read)
        out = self.var("c")
        self.line(f"{out} = ListContainer(({', '.join(rets)}{',' if rets else ''}))")
        return out

    def focused(self, node: Any, val: str, ctx: str, path: str) -> str:
        focus = node.parsebuildfrom
        if callable(focus):
            raise CompileError("FocusedSeq with a computed focus")
        c = self.var("c")
        self.line(f"{c} = _context({ctx}, {{}}, {self.const(node._subcons)})")
        self.line(f"{c}[{focus!r}] = {val}")
        # the focus is in the context from the start (the value given), others once built
        fields = {focus: val}
        self.locals[c] = fields
        self.parents[c] = ctx
        ret_var = "None"
        for sc in node.subcons:
            sub = val if sc.name == focus else "None"
            ret = self.build(sc, sub, c, path)
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {ret}")
                fields[sc.name] = ret
            if sc.name == focus:
                ret_var = ret
        return ret_var

    def string(self, node: Any, val: str, ctx: str, path: str) -> str:
        enc = node.encoding
        raw = self.var()
        self.line(f"if not isinstance({val}, str):")
        self.line(
            f"    raise StringError('string encoding failed, expected unicode string',"
            f" path={path!r})"
        )
        self.line("try:")
        self.line(f"    {raw} = {val}.encode({enc!r}) if {val} else b''")
        self.line("except Exception:")
        self.line(f"    raise _encode_error({val}, {enc!r}, {path!r}) from None")
        self.known_bytes.add(raw)
        sub, _ = _strip_renamed(node.subcon)
        if isinstance(sub, cs.NullTerminated) and _builds_as_construct(sub):
            inner, _ = _strip_renamed(sub.subcon)
            if inner is not cs.GreedyBytes or sub.include or not sub.consume:
                raise CompileError("NullTerminated with options")
            self.line(f"out += {raw}")
            self.line(f"out += {sub.term!r}")
            return val
        self.build(node.subcon, raw, ctx, path)
        return val

    def scratch(self) -> tuple[str, str]:
        """Start building into a fresh ``out`` (construct's fresh BytesIO for a body)."""
        outer = self.var("buf")
        self.line(f"{outer} = out")
        self.line("out = bytearray()")
        base = self.base
        self.base = "0"
        return outer, base

    def end_scratch(self, outer: str, base: str) -> str:
        """Back to the enclosing ``out``; the variable holding the body's bytes."""
        body = self.var("body")
        self.line(f"{body} = out")
        self.line(f"out = {outer}")
        self.base = base
        return body

    def body_of(self, subcon: Any, inner: Any, val: str, ctx: str, path: str) -> tuple[str, str]:
        """The bytes of a wrapped body (``Prefixed``, ``FixedSized``) as a local, and what
        its build returns: ``val`` itself for ``GreedyBytes`` (``inner``, ``subcon`` with
        names stripped), else ``subcon`` built into a scratch buffer, so that what wraps it
        can write its length or padding around it."""
        if inner is cs.GreedyBytes and val in self.known_bytes:
            return val, val
        if inner is cs.GreedyBytes:
            body = self.var("body")
            self.line(f"{body} = {val} if type({val}) is bytes else _greedy({val}, {path!r})")
            return body, body
        outer, base = self.scratch()
        try:
            ret = self.build(subcon, val, ctx, path)
        finally:
            body = self.end_scratch(outer, base)
        return body, ret

    def prefixed(self, node: Any, val: str, ctx: str, path: str) -> str:
        sub, _ = _strip_renamed(node.subcon)
        # the body first (into a scratch buffer unless it is the bytes given), then its length
        body, ret = self.body_of(node.subcon, sub, val, ctx, path)
        n = self.var("n")
        if node.includelength:
            size = self.const(node.lengthfield, "L")
            self.line(f"{n} = len({body}) + {size}.sizeof()")
        else:
            self.line(f"{n} = len({body})")
        self.build(node.lengthfield, n, ctx, path)
        self.line(f"out += {body}")
        return ret

    def fixed_sized(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``FixedSized``: the body, then zero bytes up to the length (``PaddedString`` is
        one, over ``NullStripped(GreedyBytes)``: construct pads with zero *bytes*)."""
        if isinstance(node.length, int):
            if node.length < 0:
                raise CompileError("FixedSized with a negative length")
            n = repr(node.length)
        else:
            n = self.var("n")
            self.line(f"{n} = {self.value_of(node.length, ctx)}")
            self.line(f"if {n} < 0:")
            self.line(f"    raise PaddingError('length cannot be negative', path={path!r})")
        sub, _ = _strip_renamed(node.subcon)
        if isinstance(sub, cs.NullStripped) and _builds_as_construct(sub):
            sub, _ = _strip_renamed(sub.subcon)
        body, ret = self.body_of(node.subcon, sub, val, ctx, path)
        self.line(f"if len({body}) > {n}:")
        self.line(
            f"    raise PaddingError('subcon build %d bytes but was allowed only %d'"
            f" % (len({body}), {n}), path={path!r})"
        )
        self.line(f"out += {body}.ljust({n}, b'\\x00')")
        return ret

    def bytes_integer(self, node: Any, val: str, ctx: str, path: str) -> str:
        length = node.length
        if not isinstance(length, int) or length <= 0 or callable(node.swapped):
            raise CompileError("BytesInteger with a computed or non-positive length")
        order = "little" if node.swapped else "big"
        signed = bool(node.signed)
        self.line("try:")
        self.line(f"    out += int.to_bytes({val}, {length}, {order!r}, signed={signed})")
        self.line("except (TypeError, OverflowError):")
        self.line(f"    _int_error({val}, {length}, {signed}, {path!r}, False)")
        return val

    def switch(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``Switch``: ``cases.get(key, default)`` as construct looks it up (hash and
        equality of a dict), then the chosen case built like any field."""
        if not callable(node.keyfunc):
            try:
                chosen = node.cases.get(node.keyfunc, node.default)
            except TypeError as exc:  # an unhashable constant key: construct fails too
                raise CompileError("Switch on an unhashable constant") from exc
            return self.build(chosen, val, ctx, path)
        if self.bits is not None:
            self.bits_dynamic()  # each case may have its own width
        key = self.value_of(node.keyfunc, ctx)
        if not key.isidentifier():
            k = self.var("k")
            self.line(f"{k} = {key}")
            key = k
        branches: list[Any] = []
        index: dict[Any, int] = {}
        for case, sc in node.cases.items():  # (not ``k``: a str above, checked when compiled)
            for i, seen in enumerate(branches):
                if seen is sc:
                    index[case] = i
                    break
            else:
                index[case] = len(branches)
                branches.append(sc)
        sel = self.var("s")
        self.line(f"{sel} = {self.const(index, 'D')}.get({key}, -1)")
        ret = self.var("r")
        self.branches(sel, [*branches, node.default], 0, len(branches), ret, val, ctx, path)
        return ret

    def branches(
        self,
        sel: str,
        nodes: list[Any],
        lo: int,
        hi: int,
        ret: str,
        val: str,
        ctx: str,
        path: str,
    ) -> None:
        """Branches ``lo..hi-1`` (and the default, ``nodes[-1]``, at ``sel == -1``) as a
        balanced tree of comparisons: a long ``Switch`` costs O(log cases) compares."""
        if hi - lo > 4:
            mid = (lo + hi) // 2
            self.line(f"if {sel} < {mid}:")
            self.depth += 1
            self.branches(sel, nodes, lo, mid, ret, val, ctx, path)
            self.depth -= 1
            self.line("else:")
            self.depth += 1
            self.branches(sel, nodes, mid, hi, ret, val, ctx, path)
            self.depth -= 1
            return
        default_here = lo == 0
        for i in range(lo, hi):
            if i == hi - 1 and not default_here:
                if i == lo:  # the only branch left, no default: no test needed
                    self.arm(nodes[i], ret, val, ctx, path, indent=False)
                    return
                self.line("else:")
            else:
                self.line(f"{'if' if i == lo else 'elif'} {sel} == {i}:")
            self.arm(nodes[i], ret, val, ctx, path)
        if default_here:
            if hi > lo:
                self.line("else:")
                self.arm(nodes[-1], ret, val, ctx, path)
            else:
                self.arm(nodes[-1], ret, val, ctx, path, indent=False)

    def arm(
        self, node: Any, ret: str, val: str, ctx: str, path: str, *, indent: bool = True
    ) -> None:
        if indent:
            self.depth += 1
        r = self.build(node, val, ctx, path)
        self.line(f"{ret} = {r}")
        if self.bits is not None:
            self.bits_flush()  # (a Bitwise region: the branch's bits, whatever their width)
        if indent:
            self.depth -= 1

    def if_then_else(self, node: Any, val: str, ctx: str, path: str) -> str:
        ret = self.var("r")
        if self.bits is not None:
            self.bits_dynamic()
        self.line(f"if {self.value_of(node.condfunc, ctx)}:")
        self.arm(node.thensubcon, ret, val, ctx, path)
        self.line("else:")
        self.arm(node.elsesubcon, ret, val, ctx, path)
        return ret

    def array(self, node: Any, val: str, ctx: str, path: str) -> str:
        item, _ = _strip_renamed(node.subcon)
        f = _fmt(item)
        count = self.value_of(node.count, ctx)
        c = self.var("n")
        self.line(f"{c} = {count}")
        self.line(f"if not 0 <= {c}:")
        self.line(f"    raise RangeError('invalid count %s' % ({c},), path={path!r})")
        self.line(f"if len({val}) != {c}:")
        self.line(
            f"    raise RangeError('expected %d elements, found %d' % ({c}, len({val})),"
            f" path={path!r})"
        )
        if f is None or self.bits is not None:
            return self.items(node, val, ctx, path, keep=True)
        rets = self.var("c")  # construct returns the items' build results (kept only if read)
        fmt = self.const(f[0] + "%d" + f[1])
        one = self.const(struct.Struct(f[0] + f[1]), "S")
        _, item_path = _unwrap(node.subcon, path)
        self.line("try:")
        self.line(f"    out += struct.pack({fmt} % {c}, *{val})")
        self.line("except struct.error:")  # construct's error for the first bad item
        self.line(f"    _blame(({one},) * {c}, tuple({val}), ({item_path!r},) * {c})")
        self.line(f"{rets} = ListContainer({val})")
        return rets

    def items(self, node: Any, val: str, ctx: str, path: str, *, keep: bool) -> str:
        """construct's ``Array``/``GreedyRange`` ``_build`` loop: each item built in turn,
        its index in the context; the list of what the items' builds returned (``keep``;
        kept only if something reads it)."""
        if self.bits is not None:
            self.bits_dynamic()
        rets = self.var("c")
        i = self.var("i")
        x = self.var("e")
        self.line(f"{rets} = ListContainer()")
        self.line(f"for {i}, {x} in enumerate({val}):")
        self.depth += 1
        self.line(f"{ctx}['_index'] = {i}")
        r = self.build(node.subcon, x, ctx, path)
        if keep:
            self.line(f"{rets}.append({r})")
        if self.bits is not None:
            self.bits_flush()
        self.line("pass")
        self.depth -= 1
        return rets

    # -- Bitwise ----------------------------------------------------------------------------
    def bitwise(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``Bitwise``/``BitStruct``: each field checked in order, all their bits packed into
        one ``int`` written with one ``int.to_bytes``.

        ``Transformed`` is construct's form for a region whose size ``sizeof`` knows: when
        every width is a constant too, the fields' terms are shifted into one expression
        (no run-time bookkeeping at all). ``Restreamed`` (a ``Switch``, a computed width...
        that ``sizeof`` cannot see through) and regions with such parts accumulate the bits
        at run time (``self.acc``). Either way the end is checked as construct checks it.
        """
        if isinstance(node, cs.Transformed):
            if node.encodefunc is not bits2bytes or node.decodefunc is not bytes2bits:
                raise CompileError("a Transformed other than Bitwise")
            if not isinstance(node.encodeamount, int):
                raise CompileError("a Bitwise without a byte count")
            size: int | None = node.encodeamount
        elif (
            node.encoder is bits2bytes
            and node.encoderunit == 8
            and node.decoder is bytes2bits
            and node.decoderunit == 1
        ):
            size = None  # Restreamed: as many bytes as the bits make
        else:
            raise CompileError("a Restreamed other than Bitwise")
        outer = (self.bits, self.acc)
        self.bits, self.acc = [], None
        try:
            ret = self.build(node.subcon, val, ctx, path)
            bits, acc = self.region()
            if acc is not None:
                self.bits_flush()
                bits, acc = self.region()
        finally:
            self.bits, self.acc = outer
        assert bits is not None
        if acc is None:
            width = sum(w for _, w, _ in bits)
            expr = _bits_expr(bits)
            if size is None and width % 8 == 0:
                size = width // 8
            if size is not None and width == 8 * size:
                if size:
                    self.line(f"out += ({expr}).to_bytes({size}, 'big')")
            else:
                self.line(f"_bits_amount({width}, {size}, {path!r})")  # construct fails too
        else:
            bits_var, count = acc
            if size is None:
                self.line(f"if {count} & 7:")
                self.line(f"    _bits_amount({count}, None, {path!r})")
                self.line(f"out += {bits_var}.to_bytes({count} >> 3, 'big')")
            else:
                self.line(f"if {count} != {8 * size}:")
                self.line(f"    _bits_amount({count}, {size}, {path!r})")
                self.line(f"out += {bits_var}.to_bytes({size}, 'big')")
        # (construct's Restreamed returns the value given, Transformed what its subcon built)
        return ret if isinstance(node, cs.Transformed) else val

    def region(self) -> tuple[list[tuple[str | None, int, int]] | None, tuple[str, str] | None]:
        """The current Bitwise region's state (what nested nodes left in it)."""
        return self.bits, self.acc

    def bits_dynamic(self) -> tuple[str, str]:
        """Switch the current Bitwise region to run-time accumulation (if it is not yet):
        the bits so far go into the accumulator; return its variables (bits, count)."""
        assert self.bits is not None
        if self.acc is None:
            self.acc = (self.var("acc"), self.var("nbits"))
            width = sum(w for _, w, _ in self.bits)
            self.line(f"{self.acc[0]} = {_bits_expr(self.bits)}")
            self.line(f"{self.acc[1]} = {width}")
            self.bits = []
        else:
            self.bits_flush()
        return self.acc

    def bits_flush(self) -> None:
        """Add the constant-width bits gathered since the last flush to the accumulator."""
        assert self.bits is not None
        assert self.acc is not None
        if not self.bits:
            return
        width = sum(w for _, w, _ in self.bits)
        bits_var, count = self.acc
        self.line(f"{bits_var} = ({bits_var} << {width}) | {_bits_expr(self.bits)}")
        self.line(f"{count} += {width}")
        self.bits = []

    def flag_bits(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``Flag`` in a Bitwise region: one bit."""
        assert self.bits is not None
        if node is not cs.Flag:
            raise CompileError(f"no build code for {type(node).__name__}")
        bit = self.var("t")
        self.line(f"{bit} = 1 if {val} else 0")
        self.bits.append((bit, 1, 0))
        return val

    def padding_bits(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``Padding`` in a Bitwise region: constant bits."""
        assert self.bits is not None
        if not (
            node.subcon is cs.Pass
            and isinstance(node.length, int)
            and node.length >= 0
            and node.pattern in (b"\x00", b"\x01")
        ):
            raise CompileError("Padded around a bit field")
        ones = 2**node.length - 1 if node.pattern == b"\x01" else 0
        self.bits.append((None, node.length, ones))
        return "None"

    def bits_integer(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``BitsInteger`` (``Bit``, ``Nibble``, ``Octet``): a constant width is checked
        inline and adds a term; a computed one goes through ``_bits_value``."""
        assert self.bits is not None
        width = node.length
        signed = bool(node.signed)
        swapped = node.swapped
        if not isinstance(swapped, bool):
            raise CompileError("BitsInteger with a computed byte order")
        if isinstance(width, int) and width > 0 and not (swapped and width % 8):
            lo, hi = (-(2**width // 2), 2**width // 2 - 1) if signed else (0, 2**width - 1)
            self.line(f"if not (isinstance({val}, int) and {lo} <= {val} <= {hi}):")
            self.line(f"    _int_error({val}, {width}, {signed}, {path!r}, True)")
            term = f"({val} & {hex(2**width - 1)})" if signed else val
            if swapped:
                term = f"int.from_bytes({term}.to_bytes({width // 8}, 'little'), 'big')"
            self.bits.append((term, width, 0))
            return val
        if isinstance(width, int):
            raise CompileError("BitsInteger that construct always refuses")
        # a computed width: construct checks the type before it evaluates the length
        self.line(f"if not isinstance({val}, int):")
        self.line(f"    raise IntegerError('value %s is not an integer' % ({val},), path={path!r})")
        w = self.var("w")
        self.line(f"{w} = {self.value_of(width, ctx)}")
        t = self.var("t")
        self.line(f"{t} = _bits_value({val}, {w}, {signed}, {swapped}, {path!r})")
        bits_var, count = self.bits_dynamic()
        self.line(f"{bits_var} = ({bits_var} << {w}) | {t}")
        self.line(f"{count} += {w}")
        return val

    def bytewise(self, node: Any, val: str, ctx: str, path: str) -> str:
        """``Bytewise`` inside a Bitwise region: the subcon built as bytes into a scratch
        buffer (construct's fresh stream), then taken as ``8 * len`` bits."""
        assert self.bits is not None
        if isinstance(node, cs.Transformed):
            if node.encodefunc is not bytes2bits or node.decodefunc is not bits2bytes:
                raise CompileError("a Transformed other than Bytewise")
            if not isinstance(node.encodeamount, int):
                raise CompileError("a Bytewise without a bit count")
            amount: int | None = node.encodeamount
        elif node.encoder is bytes2bits and node.encoderunit == 1 and node.decoder is bits2bytes:
            amount = None
        else:
            raise CompileError("a Restreamed other than Bytewise")
        region = (self.bits, self.acc)
        self.bits, self.acc = None, None
        outer, base = self.scratch()
        try:
            ret = self.build(node.subcon, val, ctx, path)
        finally:
            body = self.end_scratch(outer, base)
            self.bits, self.acc = region
        assert self.bits is not None
        term = f"int.from_bytes({body}, 'big')"
        if amount is not None:
            self.line(f"if len({body}) << 3 != {amount}:")
            self.line(
                "    raise StreamError('encoding transformation produced wrong amount of bytes,"
                f" %s instead of expected %s' % (8 * len({body}), {amount}), path={path!r})"
            )
            self.bits.append((term, amount, 0))
            return ret
        bits_var, count = self.bits_dynamic()
        self.line(f"{bits_var} = ({bits_var} << (len({body}) << 3)) | {term}")
        self.line(f"{count} += len({body}) << 3")
        return val


def _bits_expr(bits: list[tuple[str | None, int, int]]) -> str:
    """One expression of a run of constant-width bit fields: each term shifted to its
    place (the first field highest), constant bits or-ed in as one literal."""
    terms: list[str] = []
    fixed = 0
    shift = sum(w for _, w, _ in bits)
    for term, w, constant in bits:
        shift -= w
        if term is None:
            fixed |= constant << shift
        else:
            terms.append(f"{term} << {shift}" if shift else term)
    if fixed:
        terms.append(hex(fixed))
    return " | ".join(terms) or "0"


#: a variable the generator may drop: contexts and return lists (``c``), switch results
#: (``r``), optional given values (``q``); each is only ever defined by side-effect-free lines
_PRUNABLE = re.compile(r"\b[crq]\d+\b")
_KEY = r"\[(?:'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\w+)\]"
_DEFINITION = re.compile(rf"\s*([crq]\d+)(?:(?:{_KEY})? = |\.append\()")


def _prune(lines: list[str]) -> list[str]:
    """Drop the definitions of prunable variables nothing needs (mark and sweep).

    Building a context ``Container`` per ``Struct`` costs more than the rest of a small
    message, and construct's return values (contexts, lists) are only needed when an
    expression or a node built by construct reads them. A variable is live when a line with
    an effect (a write, a check, a call) mentions it, or when the definition of a live
    variable does. Dropped lines become ``pass`` where a block would otherwise be empty.
    """
    defines: list[str | None] = []
    needs: dict[str, set[str]] = {}
    live: set[str] = set()
    for line in lines:
        m = _DEFINITION.match(line)
        name = m.group(1) if m else None
        defines.append(name)
        mentioned = set(_PRUNABLE.findall(line))
        if name is None:
            live |= mentioned
        else:
            needs.setdefault(name, set()).update(mentioned - {name})
    todo = list(live)
    while todo:
        for other in needs.get(todo.pop(), ()):
            if other not in live:
                live.add(other)
                todo.append(other)
    kept = [
        line if name is None or name in live else line[: len(line) - len(line.lstrip())] + "pass"
        for line, name in zip(lines, defines, strict=True)
    ]
    return _drop_needless_pass(kept)


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip())


def _drop_needless_pass(lines: list[str]) -> list[str]:
    """Remove each ``pass`` whose block has another statement."""
    out: list[str] = []
    for i, line in enumerate(lines):
        if line.strip() == "pass":
            opens_block = bool(out) and out[-1].rstrip().endswith(":")
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if not opens_block or (nxt and _indent(nxt) == _indent(line)):
                continue
        out.append(line)
    return out


def compile_builder(schema: cs.Construct) -> Builder:
    """``build(obj, out)``: append ``schema.build(obj)`` to ``out``.

    Raises ``CompileError`` when the whole schema is better built by construct: its root is
    not compiled, or it has a node that moves the stream (see the module docstring).
    """
    comp = _BuildCompiler()
    top = comp.var("c")
    comp.line(f"{top} = _top()")
    comp.node(schema, "obj", top, "(building)")  # the root itself never falls back
    body = _prune(comp.lines)
    if comp.fallbacks:
        # a node built by construct may need the whole stream: start over with construct
        src = "\n".join(
            [
                "def build(obj, out):",
                "    dest = out",
                "    base0 = len(out)",
                "    try:",
                *("    " + line for line in body),
                "    except _Reseek:",
                "        del dest[base0:]",
                "        dest += SCHEMA.build(obj)",
            ]
        )
        comp.consts["SCHEMA"] = schema
    else:
        src = "\n".join(["def build(obj, out):", *body])
    src += "\n"
    fn: Builder = exec_generated(src, "build", type(schema).__name__, dict(comp.consts), "build")
    if not comp.fallbacks:
        #: what :func:`compile_encode_into` inlines (a builder with no construct fallback)
        fn.__wirekit_body__ = (body, comp.consts, type(schema).__name__)  # type: ignore[attr-defined]
    return fn


def compile_encode_into(builder: Builder, max_frame_size: int) -> EncodeInto | None:
    """``encode_into(obj, out)`` with ``builder``'s body inlined: append one frame to
    ``out``, or append nothing and raise :class:`EncodeError` (bad value, or a frame over
    ``max_frame_size``). One call per message sent instead of a wrapper and the builder;
    ``None`` when the builder cannot be inlined (it falls back to construct somewhere)."""
    parts = getattr(builder, "__wirekit_body__", None)
    if parts is None:
        return None
    body, consts, name = parts
    # (the body rebinds ``out`` to a scratch buffer inside Prefixed/FixedSized bodies: the
    # rollback must use the caller's buffer, ``dest_``, or an error there would leave the
    # bytes written before it)
    src = "\n".join(
        [
            "def encode_into(obj, out):",
            "    dest_ = out",
            "    mark_ = len(out)",
            "    try:",
            *("    " + line for line in body),
            "    except FOREIGN as exc_:",
            "        del dest_[mark_:]",
            "        raise _as_encode_error(exc_) from exc_",
            "    if len(dest_) - mark_ > MAXSIZE:",
            "        size_ = len(dest_) - mark_",
            "        del dest_[mark_:]",
            "        raise EncodeError(",
            "            f'encoded frame of {size_} bytes exceeds limit={MAXSIZE}'",
            "        )",
        ]
    )
    src += "\n"
    namespace = dict(consts)
    namespace.update(
        FOREIGN=FOREIGN_ENCODE_ERRORS,
        _as_encode_error=as_encode_error,
        EncodeError=EncodeError,
        MAXSIZE=max_frame_size,
    )
    fn: EncodeInto = exec_generated(src, "encode", name, namespace, "encode_into")
    return fn


def blob_encode_into(
    schema: cs.Construct, general: EncodeInto, max_frame_size: int
) -> EncodeInto | None:
    """``encode_into`` for the plainest frame there is, a ``bytes`` body behind an integer
    length prefix (``Prefixed(Int32ub, GreedyBytes)`` and the like): when the value is
    ``bytes`` and short enough, the prefix and the body are appended at once, with no
    rollback mark and no size check afterwards (neither can fail). Any other value, a
    ``bytearray`` or an oversized one, goes to ``general`` (the schema's generated
    ``encode_into``), which converts it or raises exactly as before. ``None`` for any other
    schema."""
    core, _ = _strip_renamed(schema)
    if not builtin_as(core, cs.Prefixed) or getattr(core, "includelength", False):
        return None
    body, _ = _strip_renamed(core.subcon)
    prefix, _ = _strip_renamed(core.lengthfield)
    f = _fmt(prefix)
    if body is not cs.GreedyBytes or f is None or f[1] not in "bBhHiIlLqQ":
        return None
    packer = struct.Struct(f[0] + f[1])
    bits = 8 * packer.size - (1 if f[1].islower() else 0)  # (signed: one bit less)
    limit = min((1 << bits) - 1, max_frame_size - packer.size)
    pack = packer.pack

    def encode_into(obj: Any, out: bytearray) -> None:
        if type(obj) is bytes and len(obj) <= limit:
            out += pack(len(obj))
            out += obj
        else:
            general(obj, out)

    encode_into.__wirekit_general__ = general  # type: ignore[attr-defined]  # (for source())
    return encode_into
