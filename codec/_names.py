"""Which context keys a schema's expressions may read.

The measurer (:mod:`codec._measure`) skips field bodies it only needs the size of. A skipped
field has no value, so it must not be skipped when a later expression reads it: construct's
``Struct`` puts every named field's value in the context its later fields (and their nested
structs, through ``this._``) see, and a ``Switch`` key, an ``If`` condition, a size or a
``Computed`` may read any of them.

:func:`read_names` answers, once per schema, which names that may be: every field of every
``this`` path (``this.header.length`` reads ``header`` and ``length``), and for Python
callables (lambdas, functions, the methods of user-defined constructs and adapters) every
attribute name and string constant their code uses, following the functions they call.
A callable whose code cannot be seen (``operator.itemgetter``, a C function that takes the
context) may read anything: the answer is then ``None``, and the measurer keeps every field.
"""

from __future__ import annotations

import functools
import types
from typing import Any

import construct as cs
from construct import expr as cx

__all__ = ["read_names"]

#: attributes of a construct node that hold subcons rather than expressions
_CHILDREN = ("subcon", "thensubcon", "elsesubcon", "default", "lengthfield", "checksumfield")

#: callables known not to read a context by name (they take values, not contexts)
_VALUE_FUNCTIONS: tuple[type, ...] = (types.BuiltinFunctionType, type)


#: attributes only building evaluates: a name they read is not read by a parse
_BUILD_ONLY: dict[type, tuple[str, ...]] = {
    cs.Rebuild: ("func",),
    cs.Default: ("value",),
    cs.ExprAdapter: ("encoder",),
    cs.ExprSymmetricAdapter: ("encoder",),
}


class _Opaque(Exception):
    """A callable whose code cannot be inspected: it may read any name."""


def read_names(schema: cs.Construct) -> frozenset[str] | None:
    """Every context key an expression in ``schema`` may read, or ``None`` for "any"."""
    names: set[str] = set()
    try:
        _node(schema, names, set())
    except _Opaque:
        return None
    return frozenset(names)


def _node(node: cs.Construct, names: set[str], seen: set[int]) -> None:
    if id(node) in seen:
        return
    seen.add(id(node))
    cls = type(node)
    if not cls.__module__.startswith("construct."):
        # a user's construct or adapter: its methods may read the context
        for attr in ("_parse", "_decode", "_sizeof", "_emitparse"):
            method = getattr(cls, attr, None)
            if method is not None and not method.__module__.startswith("construct."):
                _callable(method, names, seen)
    for key, value in vars(node).items():
        if key in ("name", "docs", "flagbuildnone"):
            continue
        if key in _BUILD_ONLY.get(cls, ()):
            continue
        if key in ("subcons", "_subcons"):
            for sub in value.values() if isinstance(value, dict) else value:
                if isinstance(sub, cs.Construct):
                    _node(sub, names, seen)
            continue
        if key == "cases" and isinstance(value, dict):
            for sub in value.values():
                if isinstance(sub, cs.Construct):
                    _node(sub, names, seen)
            continue
        if isinstance(value, cs.Construct):
            _node(value, names, seen)
        elif key not in _CHILDREN:
            _value(value, names, seen)


def _value(value: Any, names: set[str], seen: set[int]) -> None:
    """Names an attribute value may read when construct evaluates it with a context."""
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return
    if isinstance(value, cx.ExprMixin):
        _expr(value, names, seen)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _value(item, names, seen)
    elif isinstance(value, dict):
        for item in value.values():
            _value(item, names, seen)
    elif callable(value):
        _callable(value, names, seen)


def _expr(ex: Any, names: set[str], seen: set[int]) -> None:
    """A construct expression tree: ``this`` paths, operators, ``len_``..."""
    if isinstance(ex, cx.Path):
        node: Any = ex
        while node is not None:
            field = node._Path__field
            if field is not None:
                names.add(str(field))
            node = node._Path__parent
    elif isinstance(ex, cx.BinExpr):
        _value(ex.lhs, names, seen)
        _value(ex.rhs, names, seen)
    elif isinstance(ex, cx.UniExpr):
        _value(ex.operand, names, seen)
    elif isinstance(ex, cx.FuncPath):
        _value(ex._FuncPath__operand, names, seen)
    elif isinstance(ex, cx.Path2):
        pass  # list_[i]: indexes a list being built, never the context by name
    else:  # pragma: no cover - an ExprMixin construct does not define
        raise _Opaque


def _callable(fn: Any, names: set[str], seen: set[int]) -> None:
    if id(fn) in seen:
        return
    seen.add(id(fn))
    if isinstance(fn, functools.partial):
        _callable(fn.func, names, seen)
        for arg in (*fn.args, *fn.keywords.values()):
            _value(arg, names, seen)
        return
    if isinstance(fn, types.MethodType):
        _callable(fn.__func__, names, seen)
        return
    if isinstance(fn, types.FunctionType):
        _code(fn.__code__, names)
        for cell in fn.__closure__ or ():
            try:
                content = cell.cell_contents
            except ValueError:  # an empty cell
                continue
            if isinstance(content, str):
                names.add(content)
            else:
                _value(content, names, seen)
        for default in (*(fn.__defaults__ or ()), *(fn.__kwdefaults__ or {}).values()):
            if isinstance(default, str):
                names.add(default)  # lambda ctx, key="len": ctx[key]
            else:
                _value(default, names, seen)
        for name in fn.__code__.co_names:
            target = fn.__globals__.get(name)
            if isinstance(target, types.FunctionType | functools.partial):
                _callable(target, names, seen)
        return
    if isinstance(fn, _VALUE_FUNCTIONS):
        return  # len, int, bytes...: called with a value by expressions, not a context
    call = next((vars(k)["__call__"] for k in type(fn).__mro__ if "__call__" in vars(k)), None)
    if isinstance(call, types.FunctionType):  # an instance of a Python class with __call__
        _callable(call, names, seen)
        for attr in vars(fn).values() if hasattr(fn, "__dict__") else ():
            _value(attr, names, seen)
        return
    raise _Opaque


def _code(code: types.CodeType, names: set[str]) -> None:
    names.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, str):
            names.add(const)
        elif isinstance(const, types.CodeType):
            _code(const, names)
