"""Which fields a construct expression reads: ``this.len``, ``len_(this.data)``, lambdas.

:func:`from_schema` draws a Struct's fields in order; a field that a later field uses as a
size (``Bytes(this.len)``, ``Array(this.count, ...)``) is drawn small, and a field used as a
``Switch`` key is drawn from the switch's cases. To know which fields those are, every
expression in the later fields is evaluated once against a recording context.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import construct as cs

__all__ = ["Ref", "Refs", "collect_refs", "references"]

#: a path into the context, such as ``("header", "length")`` for ``this.header.length``
Ref = tuple[str, ...]


class _Probe:
    """Stands for any value read from the context; remembers the path it was read at."""

    __slots__ = ("_path", "_seen")

    def __init__(self, path: Ref, seen: list[Ref]) -> None:
        self._path = path
        self._seen = seen
        seen.append(path)

    def __getitem__(self, key: Any) -> _Probe:
        return _Probe((*self._path, str(key)), self._seen)

    def __getattr__(self, name: str) -> _Probe:
        if name.startswith("__"):
            raise AttributeError(name)
        return self[name]

    # anything a size or condition expression may do with a value
    def _same(self, *args: Any) -> _Derived:
        return _Derived()

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _same
    __floordiv__ = __rfloordiv__ = __truediv__ = __rtruediv__ = __mod__ = __rmod__ = _same
    __and__ = __rand__ = __or__ = __ror__ = __xor__ = __rxor__ = _same
    __lshift__ = __rlshift__ = __rshift__ = __rrshift__ = __neg__ = __pos__ = _same
    __pow__ = __rpow__ = __abs__ = __invert__ = _same

    def __len__(self) -> int:
        return 1

    def __int__(self) -> int:
        return 1

    __index__ = __int__

    def __bool__(self) -> bool:
        return True

    def __iter__(self) -> Iterator[Any]:
        return iter(())

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return True

    def __lt__(self, other: object) -> bool:
        return True

    __le__ = __gt__ = __ge__ = __lt__

    def __hash__(self) -> int:
        return 0


class _Derived(_Probe):
    """The result of an operation on a probe: not a plain field reference."""

    def __init__(self) -> None:
        super().__init__((), [])


class Refs:
    """The context paths read by one expression, and whether it is exactly one field."""

    def __init__(self, paths: list[Ref], direct: Ref | None) -> None:
        self.paths = paths
        #: set when the expression is a bare field reference like ``this.kind``
        self.direct = direct


def references(expr: Any) -> Refs:
    """What ``expr`` (a construct expression, a lambda or a constant) reads from the context."""
    if not callable(expr):
        return Refs([], None)
    seen: list[Ref] = []
    root = _Probe((), seen)
    seen.clear()
    try:
        result = expr(root)
    except Exception:
        result = None
    paths = [p for p in seen if p and p[0] not in ("_", "_root", "_params", "_index")]
    direct = None
    if isinstance(result, _Probe) and not isinstance(result, _Derived) and result._path:
        direct = result._path
    return Refs(paths, direct)


def collect_refs(node: cs.Construct, on: Callable[[str, Any, cs.Construct], None]) -> None:
    """Call ``on(role, expression, node)`` for each context expression in ``node``'s tree.

    Roles: ``"size"`` (byte lengths, counts), ``"key"`` (Switch keys), ``"cond"`` (If
    conditions). Nested Struct/Sequence/FocusedSeq are not entered: their ``this`` is their
    own context.
    """
    if isinstance(node, cs.Struct | cs.Sequence | cs.FocusedSeq):
        return
    if isinstance(node, cs.Bytes | cs.BytesInteger | cs.BitsInteger):
        on("size", node.length, node)
        return
    if isinstance(node, cs.Array):
        on("size", node.count, node)
    elif isinstance(node, cs.FixedSized | cs.Padded):
        on("size", node.length, node)
    elif isinstance(node, cs.Switch):
        on("key", node.keyfunc, node)
        for case in [*node.cases.values(), node.default]:
            collect_refs(case, on)
        return
    elif isinstance(node, cs.IfThenElse):
        on("cond", node.condfunc, node)
        collect_refs(node.thensubcon, on)
        collect_refs(node.elsesubcon, on)
        return
    elif isinstance(node, cs.Select):
        for sc in node.subcons:
            collect_refs(sc, on)
        return
    sub = getattr(node, "subcon", None)
    if isinstance(sub, cs.Construct):
        collect_refs(sub, on)
