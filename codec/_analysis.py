"""Schema analysis: walk a construct tree once and infer how its frames are delimited.

The answer is a :class:`~codec._framing.Framing`, from cheapest to most general:

1. ``FixedLength`` - ``schema.sizeof()`` is known without a context;
2. ``LengthField`` / ``VarIntLength`` - the schema is a length prefix around its body
   (``Prefixed``, ``PascalString``, ``PrefixedArray`` of fixed-size items, with any integer
   width/endianness, ``VarInt``, ``includelength=True``);
3. ``Delimiter`` - a terminator (``CString``, ``NullTerminated``);
4. ``SizedStruct`` - a ``Struct``/``Sequence`` measured field by field: fixed fields and
   self-delimiting fields (``VarInt``, prefixes) are read, fields sized by ``this``
   expressions (``Bytes(this.length)``, ``Array(this.count, ...)``) are skipped by size;
5. ``TrialParse`` - anything else (``Switch`` on a body field, nested dynamic fields):
   the schema itself is run on the bytes so far, and not re-run before the bytes it lacked
   have arrived.

Schemas that read "to the end of the stream" (``GreedyBytes``, ``GreedyRange``,
``GreedyString``, ``Terminated``) cannot delimit frames at all: :func:`infer_framing`
refuses them with a message suggesting an explicit framing.
"""

from __future__ import annotations

from typing import Any

import construct as cs

from ._framing import Delimiter, FixedLength, Framing, LengthField, TrialParse, VarIntLength
from ._measure import Measured, TrialField, build_step, is_positional, size_lies
from ._names import read_names
from ._registry import Analysis, resolve

__all__ = [
    "SchemaError",
    "greedy_path",
    "infer_framing",
    "reads_past_bounds",
    "reads_to_end",
    "static_size",
]


class SchemaError(ValueError):
    """The schema cannot be used as given (for example it cannot delimit its frames)."""


def static_size(node: cs.Construct) -> int | None:
    """``node.sizeof()`` when it needs no context, else ``None``."""
    try:
        size = node.sizeof()
    except Exception:
        return None
    if not isinstance(size, int) or size < 0:
        return None
    return None if size_lies(node) else size


def unwrap(node: cs.Construct) -> cs.Construct:
    """Strip wrappers that consume exactly the bytes of what they wrap."""
    while True:
        if isinstance(node, cs.Renamed | cs.Adapter | cs.Rebuild | cs.Default | cs.Const):
            node = node.subcon
        elif isinstance(node, cs.Transformed | cs.Restreamed):
            return node
        elif type(node) is cs.Subconstruct:  # pragma: no cover - bare Subconstruct
            node = node.subcon
        else:
            return node


def int_field(node: cs.Construct) -> tuple[int, str, bool] | None:
    """``(width, byteorder, signed)`` when ``node`` is a plain integer field."""
    node = _strip_names(node)
    if isinstance(node, cs.FormatField):
        fmt = node.fmtstr
        order, code = fmt[0], fmt[1:]
        if code in ("B", "H", "L", "I", "Q", "b", "h", "l", "i", "q"):
            byteorder = "little" if order == "<" else "big"
            if order in ("=", "@"):
                import sys

                byteorder = sys.byteorder
            return node.length, byteorder, code.islower()
    if isinstance(node, cs.BytesInteger) and isinstance(node.length, int) and node.length <= 8:
        swapped = node.swapped
        if callable(swapped):
            return None
        return node.length, "little" if swapped else "big", bool(node.signed)
    return None


def _strip_names(node: cs.Construct) -> cs.Construct:
    while isinstance(node, cs.Renamed | cs.Rebuild | cs.Default):
        node = node.subcon
    return node


def is_varint(node: cs.Construct) -> bool:
    return type(_strip_names(node)) is type(cs.VarInt)


def _analysis(node: cs.Construct) -> Analysis | None:
    """What the registry says about ``node``'s class for the analysis (``codec._registry``)."""
    entry = resolve(type(node))
    return entry.analysis if entry is not None else None


def reads_to_end(node: cs.Construct) -> bool:
    """True when parsing ``node`` from a stream would read to the stream's end."""
    return greedy_path(node) is not None


def greedy_path(node: cs.Construct, path: str = "") -> str | None:
    """Where ``node`` reads to the end of its stream, as ``"ClassName at a -> b"``, or
    ``None`` when it stops by itself (the bodies of ``Prefixed``/``FixedSized`` are bounded)."""
    here = f"{path} -> {node.name}" if path and node.name else (node.name or path)
    node = unwrap(node)
    analysis = _analysis(node)
    if analysis is None:
        return None
    if analysis.is_greedy(node):
        what = "GreedyBytes" if node is cs.GreedyBytes else type(node).__name__
        return f"{what} at {here or '(the top level)'}"
    for child in analysis.children(node) if analysis.children is not None else ():
        found = greedy_path(child, here)
        if found is not None:
            return found
    return None


def reads_past_bounds(node: cs.Construct, _seen: set[int] | None = None) -> bool:
    """True when something in ``node`` reads until its stream ends, or past what it
    consumes (``Peek``), and no construct around it bounds that stream (``Prefixed``,
    ``FixedSized`` and terminators do; ``Padded`` and ``Aligned`` do not: construct parses
    their subcon on the outer stream).

    Such a schema may still have a size (``Padded(24, GreedyRange(item))``, a ``Peek`` at
    the end of a fixed frame): its frame then bounds the read, so it must be parsed against
    the frame's end, never against the end of the bytes received so far (the next frame's).
    """
    seen = _seen if _seen is not None else set()
    if id(node) in seen:
        return False
    seen.add(id(node))
    analysis = _analysis(node)
    if analysis is not None and analysis.overreads:
        return True
    if analysis is not None and analysis.bounded is not None:
        return any(reads_past_bounds(c, seen) for c in analysis.bounded(node))
    children: list[Any] = [
        getattr(node, a, None) for a in ("subcon", "thensubcon", "elsesubcon", "default")
    ]
    children.extend(getattr(node, "subcons", ()) or ())
    cases = getattr(node, "cases", None)
    if isinstance(cases, dict):
        children.extend(cases.values())
    return any(isinstance(c, cs.Construct) and reads_past_bounds(c, seen) for c in children)


def ends_in_choice(node: cs.Construct) -> bool:
    """True when the last thing ``node`` parses is a ``Select``/``Optional``: in a stream the
    next byte may belong to it or to the next frame, and nothing says which."""
    return choice_path(node) is not None


def choice_path(node: cs.Construct, path: str = "") -> str | None:
    """Where ``node`` ends with a ``Select``/``Optional``, as ``"Select at a -> b"``."""
    here = f"{path} -> {node.name}" if path and node.name else (node.name or path)
    node = unwrap(node)
    analysis = _analysis(node)
    if analysis is not None and analysis.choice:
        return f"{type(node).__name__} at {here or '(the top level)'}"
    if isinstance(node, cs.Struct | cs.Sequence | cs.FocusedSeq):
        tail = [sc for sc in node.subcons if static_size(sc) != 0]
        return choice_path(tail[-1], here) if tail else None
    return None


def infer_framing(schema: cs.Construct) -> Framing:
    """The cheapest framing that delimits ``schema``'s frames in a stream."""
    choice = choice_path(schema)
    if choice is not None:
        raise SchemaError(
            f"{schema!r} ends with an Optional/Select ({choice}): in a stream the next byte "
            "may belong to "
            "it or to the next frame, so frames cannot be delimited; put a length prefix "
            "around the schema (Prefixed), use If(flag, ...), or give an explicit framing"
        )
    greedy = greedy_path(schema)
    if greedy is not None:
        raise SchemaError(
            f"{schema!r} reads to the end of the stream ({greedy}), so a stream of them has "
            "no frame boundaries; wrap that field in Prefixed/FixedSized, or give "
            "Codec(framing=LengthField(...)/Delimiter(...))"
        )
    size = static_size(schema)
    if size is not None:
        if size == 0:
            raise SchemaError(f"{schema!r} consumes no bytes: it cannot delimit frames")
        framing: Framing = FixedLength(size)
        framing.origin = "sizeof()"
        return framing
    node = unwrap(schema)
    if is_positional(schema):
        trial = TrialParse("the schema seeks in the stream")
        trial.origin = type(node).__name__
        return trial
    framing_or_none = _prefix_framing(node)
    if framing_or_none is not None:
        return framing_or_none
    root = build_step(schema, read_names(schema))
    if isinstance(root, TrialField):
        trial = TrialParse()
        trial.origin = type(node).__name__
        return trial
    measured = Measured(schema, root)
    return measured


def _prefix_framing(node: cs.Construct) -> Framing | None:
    """A top-level ``Prefixed`` (``PascalString``...) becomes a length field."""
    if isinstance(node, cs.Prefixed):
        field = int_field(node.lengthfield)
        what = f"Prefixed({_name(node.lengthfield)}, includelength={node.includelength})"
        if field is not None:
            width, byteorder, signed = field
            lf = LengthField(
                0,
                width,
                adjustment=-width if node.includelength else 0,
                byteorder=byteorder,  # type: ignore[arg-type]
                signed=signed,
            )
            lf.origin = what
            return lf
        if is_varint(node.lengthfield) and not node.includelength:
            vl = VarIntLength()
            vl.origin = what
            return vl
    if (
        isinstance(node, cs.NullTerminated)
        and node.consume
        and len(node.term) == 1  # longer terms are matched aligned to their width
        and (reads_to_end(node.subcon) or static_size(node.subcon) is None)
    ):
        d = Delimiter(node.term, strip=False)
        d.origin = f"NullTerminated(term={node.term!r})"
        return d
    return None


def _name(node: cs.Construct) -> str:
    node = _strip_names(node)
    if isinstance(node, cs.FormatField):
        return f"FormatField({node.fmtstr!r})"
    return type(node).__name__
