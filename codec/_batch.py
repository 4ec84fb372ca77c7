"""Batch decoding: one generated function finds and parses every complete frame in a buffer.

``fill(data, start, end, maxsize, buf)`` runs two tight loops over the buffer's storage:

1. *measure*: the framing's arithmetic inlined (a length field unpacked in place, a fixed
   size, a VarInt, or a measurer compiled from the schema that reads only what sizes the
   frame), collecting frame ends until a half packet, an error or :data:`BATCH_LIMIT`;
2. *parse*: one ``bytes`` snapshot of the complete frames (so every field slice is a cheap
   ``bytes`` slice), and the schema's generated parser body inlined once per frame.

It returns ``(stack, error)``: ``stack`` holds ``value, frame_end`` pairs reversed, so the
codec hands out one message per call with two ``list.pop()``; ``error`` is the first bad
frame's exception and offset, raised only when the caller reaches it.

A frame whose compiled measurement runs past the received bytes is handed to the framing's
resumable measurer, which remembers its progress in the buffer; from then on, until that
frame is complete, each call costs O(new bytes), not O(frame).
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from typing import Any

import construct as cs

from . import _splitter as _splitter_module
from ._analysis import reads_past_bounds
from ._compiler import CompileError, Compiler, Scope, _fmt, _Need, _strip_renamed, _TooLarge
from ._framing import FixedLength, Framing, LengthField, VarIntLength
from ._measure import Measured
from ._names import read_names
from ._native import is_compiled
from ._source import exec_generated
from ._splitter import LengthSplitter
from ._trial import NeedMore

__all__ = ["BATCH_LIMIT", "HALF", "FillFunction", "compile_fill"]

#: most messages decoded ahead in one pass; more keeps enough containers alive to make the
#: cyclic GC run repeatedly during the batch
BATCH_LIMIT = 256


class _Half:
    """Returned in place of an error: the bytes after the batch are a half packet."""

    def __repr__(self) -> str:
        return "HALF"


#: ``fill`` stopped because the rest of the buffer is an incomplete frame
HALF = _Half()

#: bytes copied into one batch's snapshot (or the first frame, if longer)
SNAPSHOT_WINDOW = 64 * 1024

#: a batch whose first frame is a length-prefixed blob (``Prefixed(..., GreedyBytes)``) at
#: least this long copies each frame straight out of the buffer as its value: one copy
#: instead of a snapshot and a slice of it. Below this, slicing ``bytes`` out of a shared
#: snapshot costs less than a ``memoryview`` slice per frame (``bench/blob_batch.py``,
#: CPython 3.11: direct is -5% at 2 KiB frames, -15% at 4 KiB, -25% at 8 KiB, +4% at 1 KiB).
BLOB_DIRECT = 2 * 1024

FillFunction = Callable[[bytearray, int, int, int, Any], tuple[list[Any] | None, Any]]

_INDENT = "    "


#: what the measuring code does when the frame is not complete yet: raise to a caller that
#: catches ``_Need`` (a batch's later frames, a resumable first frame), or return at once
RAISE_NEED = "raise _Need"
RETURN_HALF = "return None, HALF"


def _plus(expr: str, n: int) -> str:
    """Source of ``expr + n``, without adding zero."""
    return f"{expr} + {n}" if n > 0 else f"{expr} - {-n}" if n else expr


def _measure_lines(
    framing: Framing, schema: cs.Construct, halt: str
) -> tuple[list[str], dict[str, Any]]:
    """Source computing ``fend`` for the frame at ``pos`` (raising ``_TooLarge``); ``halt``
    (:data:`RAISE_NEED` or :data:`RETURN_HALF`) runs when the frame is not complete."""
    if isinstance(framing, FixedLength):
        return [f"fend = pos + {framing.size}", "if fend > end:", f"    {halt}"], {}
    if isinstance(framing, LengthField):
        consts: dict[str, Any] = {}
        hdr = framing.header
        # one byte is always there: the loop only measures when pos < end
        lines = [f"if end - pos < {hdr}:", f"    {halt}"] if hdr > 1 else []
        at = f"pos + {framing.offset}" if framing.offset else "pos"
        if framing.length == 1 and not framing.signed:
            lines.append(f"ln = data[{at}]")
        elif framing.unpack_from is not None:
            consts["LF"] = framing.unpack_from
            lines.append(f"ln, = LF(data, {at})")
        else:
            lines.append(
                f"ln = int.from_bytes(data[{at}:{at} + {framing.length}], "
                f"{framing.byteorder!r}, signed={framing.signed})"
            )
        lines.append(f"size = {_plus('ln', hdr + framing.adjustment)}")
        minimum = max(hdr, framing.strip)
        if framing.signed or framing.adjustment < 0 or framing.strip > hdr:
            lines += [f"if size < {minimum}:", "    raise _BadLength(size)"]
        lines += [
            "if size > maxsize:",
            "    raise _TooLarge(size)",
            "fend = pos + size",
            "if fend > end:",
            f"    {halt}",
        ]
        return lines, consts
    if isinstance(framing, VarIntLength):
        off = framing.offset
        lines = [
            f"p = {_plus('pos', off)}",
            "ln = 0",
            "sh = 0",
            "while True:",
            "    if p >= end:",
            f"        {halt}",
            "    b = data[p]",
            "    p += 1",
            "    ln |= (b & 0x7F) << sh",
            "    if not b & 0x80:",
            "        break",
            "    sh += 7",
            f"    if sh >= {7 * VarIntLength.MAX_BYTES}:",
            "        raise _BadLength(-1)",
            f"size = {_plus('p - pos + ln', framing.adjustment)}",
            "if size < p - pos:",
            "    raise _BadLength(size)",
            "if size > maxsize:",
            "    raise _TooLarge(size)",
            "fend = pos + size",
            "if fend > end:",
            f"    {halt}",
        ]
        return lines, {}
    if isinstance(framing, Measured):
        comp = Compiler(schema, measuring=True, read=read_names(schema))
        comp.e.soft = "end"
        comp.e.halt = halt
        comp.e.depth = 0
        comp.parse(schema, "end", Scope(None, None, None), "(measuring)")
        lines = [
            *comp.body(),
            "fend = pos",
            "if fend - fstart > maxsize:",
            "    raise _TooLarge(fend - fstart)",
            "if fend > end:",
            f"    {halt}",
        ]
        return lines, comp.e.consts
    raise CompileError(f"no inline measurer for {type(framing).__name__}")


class _BadLength(Exception):
    """A length field that gives a frame shorter than its own header."""


def compile_fill(
    schema: cs.Construct,
    framing: Framing,
    *,
    exact: bool,
    generic_measure: bool = False,
    plain: bool = False,
) -> FillFunction:
    """Generate the batch function for ``schema`` framed by ``framing``.

    Three shapes, from fastest:

    * inferred framing with an inline measurer: the first frame is measured on the
      storage, then the *parser itself* measures the following ones, reading against the
      end of the received bytes (a short read there means "not complete yet");
    * explicit framing with an inline measurer: measure then parse each frame, in one loop;
    * ``generic_measure`` (framings with no inline form, such as delimiters): the framing's
      own ``measure`` finds the frames, then they are parsed.
    """
    splitter = _length_splitter(schema, framing, exact) if not generic_measure else None
    if splitter is not None:
        return splitter
    namespace: dict[str, Any] = {
        "_Need": _Need,
        "_TooLarge": _TooLarge,
        "_BadLength": _BadLength,
        "NeedMore": NeedMore,
        "HALF": HALF,
        "FRAMING": framing,
        "LIMIT": BATCH_LIMIT,
        "WINDOW": SNAPSHOT_WINDOW,
        "BLOB_DIRECT": BLOB_DIRECT,
        "struct": struct,
    }
    # frames that are measured by scanning (delimiters, variable items) resume in the
    # framing's own walk while incomplete; header-sized ones are re-measured in O(header)
    resumable = isinstance(framing, Measured) and framing.scans
    #: the inline measuring source for each ``halt`` statement, generated when first needed
    measures: dict[str, list[str]] = {}

    def measure(halt: str) -> list[str]:
        if halt not in measures:
            measures[halt], consts = _measure_lines(framing, schema, halt)
            namespace.update(consts)
        return measures[halt]

    # the first frame returns at once on a half packet, unless the framing resumes it
    first_halt = RAISE_NEED if resumable else RETURN_HALF
    inline = not generic_measure
    if inline:
        try:
            measure(first_halt)
        except CompileError:
            inline = False
    records = _fixed_records(schema, framing, plain) if inline and exact else None
    if records is not None:
        src, consts = records
        namespace.update(consts)
        return _exec_fill(src, namespace, schema)
    parser = Compiler(schema, plain=plain)
    parser.e.depth = 0
    blob = _blob_offset(schema, framing, exact)
    # the parser measures the frames itself, against the end of the bytes received, unless
    # the schema reads until its stream ends: only the frame's own end bounds it then
    if inline and exact and not reads_past_bounds(schema):
        parser.e.soft = "end"
        parser.e.frame_start = len(parser.e.lines)
        parser.bases["end"] = "start"
        value = parser.parse(schema, "end", Scope(None, None, None), "(parsing)")
        frame = _FrameCode(parser, value, "start" in parser.used_bases)
        again = measure(RAISE_NEED) if blob is not None else []
        src = _parse_measures(measure(first_halt), again, frame, resumable, blob)
    else:
        value = parser.parse(schema, "limit", Scope(None, None, None), "(parsing)")
        frame = _FrameCode(parser, value, exact or "start" in parser.used_bases)
        if exact:
            frame.body += [
                "if pos != limit:",
                "    raise StreamError('the framing measured %d bytes but the schema "
                "consumed %d' % (limit - start, pos - start))",
            ]
        strip = (
            getattr(framing, "strip", 0) if isinstance(framing, LengthField | VarIntLength) else 0
        )
        src = (
            _single_pass(measure(first_halt), measure(RAISE_NEED), frame, strip, resumable, blob)
            if inline
            else _two_pass(_GENERIC_MEASURE, frame)
        )
    namespace.update(parser.e.consts)
    return _exec_fill(src, namespace, schema)


#: whether :func:`compile_fill` hands length-prefixed ``bytes`` bodies to
#: :class:`~codec._splitter.LengthSplitter`: by default only when that module is compiled
#: (``bench/build_mypyc.py``); as Python it costs more than the generated function
#: (``bench/SPLITTER.md``). ``WIREKIT_SPLITTER=1`` / ``=0`` in the environment force it.
USE_SPLITTER = os.environ.get("WIREKIT_SPLITTER", "") == "1" or (
    os.environ.get("WIREKIT_SPLITTER", "") != "0" and is_compiled(_splitter_module)
)


def _length_splitter(schema: cs.Construct, framing: Framing, exact: bool) -> LengthSplitter | None:
    """The hand-written batch function (:mod:`codec._splitter`) when the message is the
    frame's body as ``bytes``: ``Prefixed(<unsigned FormatField>, GreedyBytes)`` (inferred),
    or ``GreedyBytes`` under an explicit ``LengthField``; ``None`` otherwise."""
    if not USE_SPLITTER or not isinstance(framing, LengthField):
        return None
    if _blob_offset(schema, framing, exact) is None:
        return None
    if exact:
        core, _ = _strip_renamed(schema)
        field, _ = _strip_renamed(core.lengthfield)
        if (
            not isinstance(field, cs.FormatField)
            or field.length != framing.length
            or framing.signed
            or framing.adjustment
        ):
            return None
    return LengthSplitter(
        offset=framing.offset,
        length=framing.length,
        adjustment=framing.adjustment,
        strip=framing.strip,
        big=framing.byteorder == "big",
        signed=framing.signed,
        exact=exact,
        half=HALF,
        too_large=_TooLarge,
        bad_length=_BadLength,
        limit=BATCH_LIMIT,
        window=SNAPSHOT_WINDOW,
        blob_direct=BLOB_DIRECT,
    )


#: frames measured by the framing's own method (delimiters...), for :func:`_two_pass`
_GENERIC_MEASURE = [
    "size = FRAMING.measure(data, pos, end, maxsize, buf)",
    "if size < 0 or size > end - pos:",
    "    raise _Need",
    "fend = pos + size",
    "lo, hi = FRAMING.payload(data, pos, size)",
    "bounds.append(hi)",
]


class _FrameCode:
    """The generated parse of one frame: its lines, the variable holding its value, whether
    they read ``start`` (the frame's first byte) and build objects the cyclic GC tracks."""

    def __init__(self, parser: Compiler, value: str, uses_start: bool) -> None:
        self.body = parser.body()
        self.value = value
        self.uses_start = uses_start
        self.tracked = parser.e.tracked


def _exec_fill(src: list[str], namespace: dict[str, Any], schema: cs.Construct) -> FillFunction:
    """Compile the generated ``fill``; its source stays readable on ``__wirekit_source__``
    and in tracebacks (see :mod:`codec._source`)."""
    text = "\n".join(src) + "\n"
    fill: FillFunction = exec_generated(text, "decode", type(schema).__name__, namespace, "fill")
    return fill


def _blob_offset(schema: cs.Construct, framing: Framing, exact: bool) -> int | None:
    """Where the value starts in the frame when the message *is* the frame's body as
    ``bytes``: ``Prefixed(<int>, GreedyBytes)`` (inferred framing), or ``GreedyBytes`` under
    an explicit ``LengthField``; ``None`` for any other schema."""
    if not isinstance(framing, LengthField):
        return None
    core, _ = _strip_renamed(schema)
    if exact:
        if not isinstance(core, cs.Prefixed) or framing.offset or framing.strip:
            return None
        body, _ = _strip_renamed(core.subcon)
        return framing.header if body is cs.GreedyBytes else None
    return framing.strip if core is cs.GreedyBytes else None


def _first_frame(
    first: list[str], again: list[str], resumable: bool, blob: int | None = None
) -> list[str]:
    """Measure the first frame on the storage itself (``first``): a half packet copies
    nothing; a blob alone in the buffer, or a large one (see :data:`BLOB_DIRECT`) and the
    frames after it (each measured by ``again``), are copied out as values at once."""
    src = ["def fill(data, bstart, end, maxsize, buf):"]
    if resumable:
        src += _indent(
            [
                "h = buf.hint",
                "if h is not None and h[0] is FRAMING and h[1] == buf.base + bstart:",
                "    size = FRAMING.measure(data, bstart, end, maxsize, buf)",
                "    if size < 0 or size > end - bstart:",
                "        return None, HALF",
            ],
            1,
        )
    src += _indent(["pos = fstart = bstart", "try:"], 1)
    src += _indent(first, 2)
    src += _indent(["except _Need:"], 1)
    if resumable:
        src += _indent(
            [
                "size = FRAMING.measure(data, bstart, end, maxsize, buf)",
                "if size < 0 or size > end - bstart:",
                "    return None, HALF",
                "fend = bstart + size",
            ],
            2,
        )
    else:
        src += _indent(["return None, HALF"], 2)
    src += _indent(["except Exception as exc:", "    return None, (exc, bstart)"], 1)
    if blob is not None:
        # frames this large are each copied straight out of the storage, in one loop: one
        # copy per frame instead of the snapshot's two; the loop measures each frame the way
        # the first one was (the frame limit included) and stops after a window's worth
        src += _indent(
            [
                "if fend == end:",
                f"    return [fend, memoryview(data)[bstart + {blob}:fend].tobytes()], None",
                "if fend - bstart >= BLOB_DIRECT:",
                "    out = []",
                "    app = out.append",
                "    err = None",
                "    with memoryview(data) as view:",
                "        while True:",
                f"            app(view[pos + {blob}:fend].tobytes())",
                "            app(fend)",
                "            pos = fend",
                "            if pos >= end or pos - bstart >= WINDOW:",
                "                break",
                "            try:",
                *_indent(again, 4),  # (a blob's framing never resumes: raises _Need)
                "            except _Need:",
                "                err = HALF",
                "                break",
                "            except Exception as exc:",
                "                err = (exc, pos)",
                "                break",
                "    out.reverse()",
                "    return out, err",
            ],
            1,
        )
    src += _indent(
        [
            # a bounded window: a batch consumes at most LIMIT frames, so copying more
            # than a window per call would make a long buffer cost quadratic copying
            # ...and at most max_frame_size: then every later frame that fits in the
            # window is within the limit too, and needs no check of its own
            # (comparisons, not min()/max(): on a read of a few frames those builtins
            # cost as much as parsing a frame)
            "if end - bstart > WINDOW or end - bstart > maxsize:",
            "    cut = bstart + (WINDOW if WINDOW < maxsize else maxsize)",
            "    if cut < fend:",
            "        cut = fend",
            "    whole = cut >= end  # the snapshot reaches the last byte received",
            "    if not whole:",
            "        end = cut",
            "else:",
            "    whole = True",
            "data = memoryview(data)[bstart:end].tobytes()",
            "end -= bstart",
            "fend -= bstart",
        ],
        1,
    )
    return src


def _parse_measures(
    first: list[str], again: list[str], frame: _FrameCode, resumable: bool, blob: int | None
) -> list[str]:
    """The parser measures: after the first frame, each frame is parsed against the end of
    the snapshot; a read past it stops the batch at that frame's start."""
    src = _first_frame(first, again, resumable, blob)
    # values that are not containers are not tracked by the cyclic GC: no batch cap needed
    capped = frame.tracked
    src += _indent(
        [
            "out = []",
            "app = out.append",
            "pos = fstart = 0",
            "err = None",
            *(["n = 0"] if capped else []),
            "try:",
            "    while True:",
            "        start = fstart = pos" if frame.uses_start else "        fstart = pos",
        ],
        1,
    )
    src += _indent(frame.body, 3)
    src += _indent(
        [
            f"app({frame.value})",
            "app(pos + bstart)",
            *(["n += 1", "if pos >= end or n >= LIMIT:"] if capped else ["if pos >= end:"]),
            "    break",
        ],
        3,
    )
    src += _indent(
        [
            "except (_Need, NeedMore):",
            "    if whole:",
            "        err = HALF  # what is left is a half packet",
            "except Exception as exc:",
            "    err = (exc, fstart + bstart)",
            "out.reverse()",
            "return out, err",
        ],
        1,
    )
    return src


def _fixed_records(
    schema: cs.Construct, framing: Framing, plain: bool
) -> tuple[list[str], dict[str, Any]] | None:
    """Fixed-size frames that are one run of numbers (a Struct of ints, floats and padding
    in one byte order): every complete frame of the region goes through one
    ``Struct.iter_unpack`` (a C loop), as the fastest hand decoder does it."""
    if not isinstance(framing, FixedLength):
        return None
    core, _ = _strip_renamed(schema)
    if not isinstance(core, cs.Struct) or not core.subcons:
        return None
    fields: list[str | None] = []
    #: (key, source of its value) in construct's order: a named Padding is a None value
    keys: list[tuple[str, str]] = []
    order = ""
    fmt = ""
    for sc in core.subcons:
        inner, _ = _strip_renamed(sc)
        f = _fmt(inner)
        if f is not None:
            if order and f[0] != order:
                return None
            order = f[0]
            fmt += f[1]
            if sc.name:
                keys.append((sc.name, f"v{len(fields)}"))
            fields.append(sc.name)
        elif (
            isinstance(inner, cs.Padded)
            and inner.subcon is cs.Pass
            and isinstance(inner.length, int)
        ):
            fmt += f"{inner.length}x"
            if sc.name:
                keys.append((sc.name, "None"))
        else:
            return None
    record = struct.Struct((order or ">") + fmt)
    if record.size != framing.size or not fields:
        return None
    names = [f"v{i}" for i in range(len(fields))]
    target = ", ".join(names) + ("," if len(names) == 1 else "")
    size = record.size
    src = [
        "def fill(data, bstart, end, maxsize, buf):",
        f"    count = (end - bstart) // {size}",
        "    if not count:",
        "        return None, HALF",
        "    if count > LIMIT:",
        "        count = LIMIT",
        f"    stop = bstart + count * {size}",
        "    with memoryview(data) as view:",
    ]
    if plain:
        items = ", ".join(f"{n!r}: {v}" for n, v in keys)
        src.append(
            f"        values = [{{{items}}} for {target} in RECORD.iter_unpack(view[bstart:stop])]"
        )
    else:
        src += [
            "        values = []",
            "        app = values.append",
            f"        for {target} in RECORD.iter_unpack(view[bstart:stop]):",
            "            obj = Container()",
            *[f"            obj[{n!r}] = {v}" for n, v in keys],
            "            app(obj)",
        ]
    # the batch stack, [end_n, value_n, ..., end_1, value_1], filled by slice assignment
    src += [
        "    values.reverse()",
        "    out = [None] * (2 * count)",
        "    out[1::2] = values",
        f"    out[0::2] = range(stop, bstart, -{size})",
        "    return out, (HALF if end > stop and count < LIMIT else None)",
    ]
    return src, {"RECORD": record, "Container": cs.Container}


def _indent(lines: list[str], depth: int) -> list[str]:
    return [_INDENT * depth + line for line in lines]


def _single_pass(
    first: list[str],
    again: list[str],
    frame: _FrameCode,
    strip: int,
    resumable: bool,
    blob: int | None,
) -> list[str]:
    """Explicit framings: measure each frame, then parse its payload, in one loop over the
    snapshot (the frame's extent comes from the framing, not from the schema)."""
    src = _first_frame(first, again, resumable, blob)
    starts = "start = pos" if frame.uses_start else "pos"
    src += _indent(
        [
            "out = []",
            "app = out.append",
            "fstart = 0",
            "err = None",
            "n = 0",
            "try:",
            "    while True:",
            "        limit = fend",
            f"        {starts} = {_plus('fstart', strip)}",
        ],
        1,
    )
    src += _indent(frame.body, 3)
    src += _indent(
        [
            f"app({frame.value})",
            "app(fend + bstart)",
            "n += 1",
            "pos = fstart = fend",
            "if pos >= end or n >= LIMIT:",
            "    break",
        ],
        3,
    )
    src += _indent(again, 3)
    src += _indent(
        [
            "except _Need:",
            "    pass",
            "except Exception as exc:",
            "    err = (exc, fstart + bstart)",
            "out.reverse()",
            "return out, err",
        ],
        1,
    )
    return src


def _two_pass(measure: list[str], frame: _FrameCode) -> list[str]:
    """For framings measured by their own method (delimiters...): find the frames on the
    storage first, then parse them from one snapshot of the complete ones."""
    src = ["def fill(data, bstart, end, maxsize, buf):"]
    src += _indent(
        [
            "ends = []",
            "bounds = []",
            "pos = fstart = bstart",
            "err = None",
            "try:",
            "    while pos < end and len(ends) < LIMIT:",
            "        fstart = pos",
        ],
        1,
    )
    src += _indent(measure, 3)
    src += _indent(
        [
            "        ends.append(fend)",
            "        pos = fend",
            "except _Need:",
            "    pass",
            "except Exception as exc:",
            "    err = (exc, fstart)",
            "if not ends:",
            "    return None, err",
            "data = memoryview(data)[bstart:pos].tobytes()",
            "out = []",
            "app = out.append",
            "p0 = 0",
            "i = 0",
            "try:",
            "    for fend in ends:",
            "        limit = bounds[i] - bstart",
            "        i += 1",
            "        start = pos = p0" if frame.uses_start else "        pos = p0",
        ],
        1,
    )
    src += _indent(frame.body, 3)
    src += _indent(
        [
            f"        app({frame.value})",
            "        app(fend)",
            "        p0 = fend - bstart",
            "except Exception as exc:",
            "    err = (exc, p0 + bstart)",
            "out.reverse()",
            "return out, err",
        ],
        1,
    )
    return src
