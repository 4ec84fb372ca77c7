"""Code generation for encoding: ``schema.build(value)`` as one specialised function.

The generated ``build(obj, out)`` appends the frame to a ``bytearray`` and produces exactly
``schema.build(obj)``'s bytes, rejecting what construct rejects (a missing field is a
``KeyError``, an out-of-range integer a ``struct.error``, a ``Bytes`` of the wrong length or
a ``Const`` mismatch construct's own errors), which the codec maps to :class:`EncodeError`.

Compiled: integers/floats (runs merged into one ``struct.pack``), ``Bytes``, ``GreedyBytes``,
``PascalString``/``CString``/``GreedyString``, ``Prefixed`` with an integer or ``VarInt``
length, ``Struct``/``Sequence``/``FocusedSeq`` (so ``PrefixedArray``), ``Array`` of
numbers, ``Const``, ``Enum``, ``Padding``, ``Rebuild``/``Default``/``Computed``, ``VarInt``.
A schema with anything else is built by construct itself, whole: building has context
rules (a ``Struct`` sees all its fields' values before building the first) that are only
worth reproducing for the constructs that matter on the wire.
"""

from __future__ import annotations

import itertools
import struct
from collections.abc import Callable
from typing import Any

import construct as cs
from construct import expr as cx
from construct.lib import integer2bytes

from ._compiler import _OPS, CompileError, _fmt, _strip_renamed
from ._framing import parse_context, struct_context

__all__ = ["compile_builder"]

Builder = Callable[[Any, bytearray], None]


def _context(parent: Any, obj: Any, subcons: Any) -> Any:
    """The context construct's ``Struct._build`` gives its fields (all values visible)."""
    ctx = struct_context(parent, subcons, index=parent.get("_index"), building=True)
    ctx.update(obj)
    return ctx


def _top() -> Any:
    return parse_context(building=True)


def _greedy(data: Any, path: str) -> bytes:
    """``GreedyBytes._build``: a bytearray is converted, anything else must be bytes."""
    out = bytes(data) if type(data) is bytearray else data
    if not isinstance(out, bytes):
        raise cs.StringError(f"given non-bytes value, perhaps unicode? {out!r}", path=path)
    return out


def _write_bytes(data: Any, length: int, path: str) -> bytes:
    """``Bytes._build``: an int becomes ``length`` big-endian bytes, a bytearray is
    converted, anything else must be bytes of exactly ``length``."""
    if isinstance(data, int):
        data = integer2bytes(data, length)
    out = _greedy(data, path)
    if length < 0:
        raise cs.StreamError(f"length must be non-negative, found {length}", path=path)
    if len(out) != length:
        raise cs.StreamError(
            f"bytes object of wrong length, expected {length}, found {len(out)}", path=path
        )
    return out


def _blame(
    packers: tuple[struct.Struct, ...], values: tuple[Any, ...], paths: tuple[str, ...]
) -> None:
    """After a merged ``struct.pack`` failed: raise construct's error for the field at fault."""
    for packer, value, path in zip(packers, values, paths, strict=True):
        try:
            packer.pack(value)
        except struct.error as exc:
            raise cs.FormatFieldError(
                f"struct {packer.format!r} error during building, given value {value!r}",
                path=path,
            ) from exc
    raise cs.FormatFieldError("struct error during building", path=paths[0])  # pragma: no cover


def _number_run(subcons: list[Any], i: int) -> list[tuple[Any, tuple[str, str]]]:
    """The run of named plain-number fields with one byte order starting at ``i``."""
    run: list[tuple[Any, tuple[str, str]]] = []
    for sc in subcons[i:]:
        core, _ = _strip_renamed(sc)
        f = _fmt(core)
        if f is None or not sc.name or (run and f[0] != run[0][1][0]):
            break
        run.append((sc, f))
    return run


def _varint(value: int, path: str) -> bytes:
    if not isinstance(value, int) or value < 0:
        raise cs.IntegerError(f"VarInt cannot build from {value!r}", path=path)
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


class _BuildCompiler:
    def __init__(self) -> None:
        #: per Struct context variable: field name -> local holding its current value
        self.locals: dict[str, dict[str, str]] = {}
        self.lines: list[str] = []
        self.depth = 1
        self.ids = itertools.count()
        self.consts: dict[str, Any] = {
            "_context": _context,
            "_top": _top,
            "_write_bytes": _write_bytes,
            "_varint": _varint,
            "_blame": _blame,
            "_greedy": _greedy,
            "struct": struct,
            "Container": cs.Container,
            "ConstError": cs.ConstError,
            "MappingError": cs.MappingError,
            "RangeError": cs.RangeError,
            "StringError": cs.StringError,
        }

    def var(self, p: str = "b") -> str:
        return f"{p}{next(self.ids)}"

    def const(self, obj: Any, p: str = "K") -> str:
        name = f"{p}{next(self.ids)}"
        self.consts[name] = obj
        return name

    def line(self, s: str) -> None:
        self.lines.append("    " * self.depth + s)

    def value_of(self, ex: Any, ctx: str) -> str:
        """Python source for an expression evaluated in the build context ``ctx``.

        ``this.name`` (and arithmetic on it) becomes the field's local variable: its built
        value once built, else the value given for it (construct's Struct puts every given
        value in the context before building the first field). Other callables get the
        context itself.
        """
        if isinstance(ex, bool | int | float | str | bytes) or ex is None:
            return repr(ex)
        if isinstance(ex, cx.Path):
            local = self._path(ex, ctx)
            if local is not None:
                return local
        if isinstance(ex, cx.BinExpr) and ex.op in _OPS:
            lhs = self.value_of(ex.lhs, ctx)
            rhs = self.value_of(ex.rhs, ctx)
            return f"({lhs} {_OPS[ex.op]} {rhs})"
        if callable(ex):
            return f"{self.const(ex, 'F')}({ctx})"
        return self.const(ex)

    def _path(self, ex: Any, ctx: str) -> str | None:
        node = ex
        parts = []
        while getattr(node, "_Path__parent", None) is not None:
            parts.append(node._Path__field)
            node = node._Path__parent
        if node._Path__name != "this" or len(parts) != 1:
            return None
        fields = self.locals.get(ctx)
        if fields is None:
            return None
        return fields.get(parts[0])

    # -- nodes ----------------------------------------------------------------------------
    def build(self, node: Any, val: str, ctx: str, path: str) -> str:
        """Emit code appending ``node`` built from ``val``; return what construct's
        ``_build`` returns (the value later fields see in the context)."""
        node, _ = _strip_renamed(node)
        f = _fmt(node)
        if f is not None:
            s = self.const(struct.Struct(f[0] + f[1]), "S")
            self.line("try:")
            self.line(f"    out += {s}.pack({val})")
            self.line("except struct.error:")
            self.line(f"    _blame(({s},), ({val},), ({path!r},))")
            return val
        if isinstance(node, cs.Struct):
            return self.struct(node, val, ctx, path)
        if isinstance(node, cs.Sequence):
            return self.sequence(node, val, ctx, path)
        if isinstance(node, cs.FocusedSeq):
            return self.focused(node, val, ctx, path)
        if isinstance(node, cs.Bytes):
            n = self.value_of(node.length, ctx)
            v = self.var()
            self.line(f"{v} = _write_bytes({val}, {n}, {path!r})")
            self.line(f"out += {v}")
            return v
        if node is cs.GreedyBytes:
            v = self.var()
            self.line(f"{v} = _greedy({val}, {path!r})")
            self.line(f"out += {v}")
            return v
        if isinstance(node, cs.StringEncoded):
            return self.string(node, val, ctx, path)
        if isinstance(node, cs.Prefixed):
            return self.prefixed(node, val, ctx, path)
        if isinstance(node, cs.Const):
            k = self.const(node.value)
            self.line(f"if {val} is not None and {val} != {k}:")
            self.line(
                f"    raise ConstError('building expected None or %r but got %r' % ({k}, {val}),"
                f" path={path!r})"
            )
            self.build(node.subcon, k, ctx, path)
            return k
        if isinstance(node, cs.Enum):
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
        if isinstance(node, cs.Rebuild):
            v = self.var()
            self.line(f"{v} = {self.value_of(node.func, ctx)}")
            return self.build(node.subcon, v, ctx, path)
        if isinstance(node, cs.Default):
            v = self.var()
            self.line(f"{v} = {self.value_of(node.value, ctx)} if {val} is None else {val}")
            return self.build(node.subcon, v, ctx, path)
        if isinstance(node, cs.Computed):
            v = self.var()
            self.line(f"{v} = {self.value_of(node.func, ctx)}")
            return v
        if isinstance(node, cs.Padded) and node.subcon is cs.Pass and isinstance(node.length, int):
            pad = (node.pattern * node.length)[: node.length]
            self.line(f"out += {pad!r}")
            return "None"
        if type(node) is type(cs.VarInt):
            self.line(f"out += _varint({val}, {path!r})")
            return val
        if isinstance(node, cs.Array) and not node.discard:
            return self.array(node, val, ctx, path)
        if node is cs.Pass:
            return "None"
        raise CompileError(f"no build code for {type(node).__name__}")

    def struct(self, node: Any, val: str, ctx: str, path: str) -> str:
        obj = self.var("o")
        c = self.var("c")
        self.line(f"{obj} = Container() if {val} is None else {val}")
        self.line(f"{c} = _context({ctx}, {obj}, {self.const(node._subcons)})")
        # this.<field> inside this Struct: a local for each field, given value first
        fields: dict[str, str] = {}
        self.locals[c] = fields
        names = [sc.name for sc in node.subcons if sc.name]
        for sc in node.subcons:
            if sc.name and not sc.flagbuildnone:
                fields[sc.name] = self.var("g")
                self.line(f"{fields[sc.name]} = {obj}[{sc.name!r}]")
        del names
        subcons = list(node.subcons)
        i = 0
        while i < len(subcons):
            run = _number_run(subcons, i)
            if len(run) > 1:
                # one struct.pack for a run of named numbers with one byte order
                names = [sc.name for sc, _ in run]
                subs = [fields[n] for n in names]
                for name, x in zip(names, subs, strict=True):
                    self.line(f"{c}[{name!r}] = {x}")
                fmt = run[0][1][0] + "".join(code for _, (_, code) in run)
                s = self.const(struct.Struct(fmt), "S")
                singles = ", ".join(
                    self.const(struct.Struct(o + code), "S") for _, (o, code) in run
                )
                paths = tuple(f"{path} -> {n}" for n in names)
                self.line("try:")
                self.line(f"    out += {s}.pack({', '.join(subs)})")
                self.line("except struct.error:")
                self.line(f"    _blame(({singles},), ({', '.join(subs)},), {paths!r})")
                i += len(run)
                continue
            sc = subcons[i]
            i += 1
            if sc.name and sc.name in fields:
                sub = fields[sc.name]
            else:
                sub = self.var("x")
                if sc.flagbuildnone:
                    self.line(f"{sub} = {obj}.get({sc.name!r}, None)")
                else:
                    self.line(f"{sub} = {obj}[{sc.name!r}]")
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {sub}")
            ret = self.build(sc, sub, c, f"{path} -> {sc.name}" if sc.name else path)
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {ret}")
                fields[sc.name] = ret
        return c

    def sequence(self, node: Any, val: str, ctx: str, path: str) -> str:
        obj = self.var("o")
        c = self.var("c")
        it = self.var("it")
        self.line(f"{obj} = [None] * {len(node.subcons)} if {val} is None else {val}")
        self.line(f"{c} = _context({ctx}, {{}}, {self.const(node._subcons)})")
        self.line(f"{it} = iter({obj})")
        for sc in node.subcons:
            sub = self.var("x")
            self.line(f"{sub} = next({it})")
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {sub}")
            ret = self.build(sc, sub, c, path)
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {ret}")
        return val

    def focused(self, node: Any, val: str, ctx: str, path: str) -> str:
        focus = node.parsebuildfrom
        if callable(focus):
            raise CompileError("FocusedSeq with a computed focus")
        c = self.var("c")
        self.line(f"{c} = _context({ctx}, {{}}, {self.const(node._subcons)})")
        self.line(f"{c}[{focus!r}] = {val}")
        ret_var = "None"
        for sc in node.subcons:
            sub = val if sc.name == focus else "None"
            ret = self.build(sc, sub, c, path)
            if sc.name:
                self.line(f"{c}[{sc.name!r}] = {ret}")
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
        self.line(f"{raw} = {val}.encode({enc!r}) if {val} else b''")
        sub, _ = _strip_renamed(node.subcon)
        if isinstance(sub, cs.NullTerminated):
            inner, _ = _strip_renamed(sub.subcon)
            if inner is not cs.GreedyBytes or sub.include or not sub.consume:
                raise CompileError("NullTerminated with options")
            self.line(f"out += {raw}")
            self.line(f"out += {sub.term!r}")
            return val
        self.build(node.subcon, raw, ctx, path)
        return val

    def prefixed(self, node: Any, val: str, ctx: str, path: str) -> str:
        sub, _ = _strip_renamed(node.subcon)
        body = self.var("body")
        if sub is cs.GreedyBytes:
            self.line(f"{body} = {val} if type({val}) is bytes else _greedy({val}, {path!r})")
        else:
            # build the body into a scratch buffer, then write its length first
            outer = self.var("buf")
            self.line(f"{outer} = out")
            self.line("out = bytearray()")
            self.build(node.subcon, val, ctx, path)
            self.line(f"{body} = bytes(out)")
            self.line(f"out = {outer}")
        n = self.var("n")
        if node.includelength:
            size = self.const(node.lengthfield, "L")
            self.line(f"{n} = len({body}) + {size}.sizeof()")
        else:
            self.line(f"{n} = len({body})")
        self.build(node.lengthfield, n, ctx, path)
        self.line(f"out += {body}")
        return val

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
        if f is None:
            # construct's Array._build: each item built in turn, the index in the context
            i = self.var("i")
            x = self.var("e")
            self.line(f"for {i}, {x} in enumerate({val}):")
            self.depth += 1
            self.line(f"{ctx}['_index'] = {i}")
            self.build(node.subcon, x, ctx, path)
            self.depth -= 1
            return val
        fmt = self.const(f[0] + "%d" + f[1])
        self.line(f"out += struct.pack({fmt} % {c}, *{val})")
        self.consts["struct"] = struct
        return val


def _prune_contexts(lines: list[str]) -> list[str]:
    """Drop the build contexts no expression reads (innermost first): building a context
    Container per Struct costs more than the rest of a small message."""
    import re

    names = sorted(
        {m.group(1) for line in lines if (m := re.match(r"\s*(c\d+) = _context\(", line))},
        key=lambda n: -int(n[1:]),
    )
    for name in names:
        own = re.compile(rf"\s*{name}(\[[^\]]*\])? = ")
        word = re.compile(rf"\b{name}\b")
        if any(word.search(line) and not own.match(line) for line in lines):
            continue
        lines = [line for line in lines if not own.match(line)]
    return lines


def compile_builder(schema: cs.Construct) -> Builder:
    """``build(obj, out)``: append ``schema.build(obj)`` to ``out``; ``CompileError`` when
    the schema has a construct the generator does not cover."""
    comp = _BuildCompiler()
    comp.build(schema, "obj", "_top()", "(building)")
    src = "def build(obj, out):\n" + "\n".join(_prune_contexts(comp.lines)) + "\n"
    namespace = dict(comp.consts)
    code = compile(src, f"<wirekit builder for {type(schema).__name__}>", "exec")
    exec(code, namespace)
    fn: Builder = namespace["build"]
    fn.__wirekit_source__ = src  # type: ignore[attr-defined]
    return fn
