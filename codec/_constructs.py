"""The construct classes the codec supports: one entry per class, every part in one place.

Each entry says how the codec

* ``parse``: compiles the class into the generated parser (``Compiler``'s emitter);
* ``build``: compiles it into the generated builder (``_BuildCompiler``'s emitter), and
  ``build_bits`` inside a ``Bitwise`` region;
* ``measure``: measures it without parsing it (a ``codec._measure`` step);
* ``analysis``: sees it when inferring the framing (``codec._registry.Analysis``).

An emitter may decline a node it cannot express (returning ``None``; a build emitter
raising ``CompileError``): the node is then handled as a class with no entry, by
construct's own ``_parse``/``_build`` for that field, a trial parse to measure it.
A subclass resolves to its nearest registered base (``codec._registry.resolve``).
``docs/codec.md`` ("What is compiled") lists this table for users; a test
(``tests/codec/test_registry.py``) checks that the two agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import construct as cs

from . import _measure as m
from ._analysis import static_size
from ._compiler import Compiler as P
from ._encoder import _BuildCompiler as B
from ._registry import Analysis, register_builtin


def _subcons(node: Any) -> Sequence[Any]:
    return list(node.subcons)


def _subcon(node: Any) -> Sequence[Any]:
    return [node.subcon]


def _branches(node: Any) -> Sequence[Any]:
    return [node.thensubcon, node.elsesubcon]


def _cases(node: Any) -> Sequence[Any]:
    return [*node.cases.values(), node.default]


def _restreamed_data(node: Any) -> Sequence[Any]:
    return [node.datafunc] if isinstance(node.datafunc, cs.Construct) else []


def _length_field(node: Any) -> Sequence[Any]:
    return [node.lengthfield]


def _nothing(node: Any) -> Sequence[Any]:
    return []


def _unsized(node: Any) -> bool:
    return static_size(node) is None


#: reads to the end of its stream, and so past any frame's end
_GREEDY = Analysis(greedy=True, overreads=True)
#: a region of its own, the length field read from the enclosing stream
_BOUNDED = Analysis(bounded=_nothing)
_SEEKS = Analysis(seeks=True)
_FIELDS = Analysis(children=_subcons)

# -- numbers -----------------------------------------------------------------------------
register_builtin(cs.FormatField, parse=P.format_field, build=B.format_field)
register_builtin(
    cs.BytesInteger, parse=P.bytes_integer, build=B.bytes_integer, measure=m.sized_step
)
register_builtin(cs.BitsInteger, build_bits=B.bits_integer)
register_builtin(type(cs.VarInt), parse=P.varint_, build=B.varint, measure=m.varint_step)
register_builtin(type(cs.ZigZag), measure=m.varint_step)
register_builtin(type(cs.Flag), build=B.flag, build_bits=B.flag_bits)

# -- bytes and strings -------------------------------------------------------------------
register_builtin(cs.Bytes, parse=P.bytes_, build=B.bytes_, measure=m.sized_step)
register_builtin(type(cs.GreedyBytes), parse=P.greedy_bytes, build=B.greedy_bytes, analysis=_GREEDY)
register_builtin(cs.StringEncoded, parse=P.string_encoded, build=B.string)
register_builtin(
    cs.Prefixed,
    parse=P.prefixed,
    build=B.prefixed,
    measure=m.prefix_step,
    analysis=Analysis(bounded=_length_field),
)
register_builtin(
    cs.FixedSized, parse=P.fixed_sized, build=B.fixed_sized, measure=m.sized_step, analysis=_BOUNDED
)
register_builtin(cs.NullStripped, parse=P.null_stripped, build=B.null_stripped, analysis=_BOUNDED)
register_builtin(
    cs.NullTerminated, parse=P.null_terminated, measure=m.delim_step, analysis=_BOUNDED
)
register_builtin(
    cs.Padded,
    parse=P.padding,
    build=B.padding,
    build_bits=B.padding_bits,
    measure=m.sized_step,
)

# -- structures, repeaters and choices: the same code inside a BitStruct ------------------
for _cls, _parse, _build, _measure, _analysis in (
    (cs.Struct, P.fields, B.struct, m.fields_step, _FIELDS),
    (cs.Sequence, P.fields, B.sequence, m.fields_step, _FIELDS),
    (cs.FocusedSeq, P.fields, B.focused, m.fields_step, _FIELDS),
    (cs.Array, P.array_, B.array_, m.array_step, Analysis(children=_subcon)),
    (cs.Switch, P.switch, B.switch, m.switch_step, Analysis(children=_cases)),
    (cs.IfThenElse, P.if_then_else, B.if_then_else, m.if_step, Analysis(children=_branches)),
):
    register_builtin(
        _cls,
        parse=_parse,
        build=_build,
        build_bits=_build,
        measure=_measure,
        analysis=_analysis,
    )
register_builtin(cs.GreedyRange, build=B.greedy_range, analysis=_GREEDY)
register_builtin(cs.Select, analysis=Analysis(choice=True))

# -- values and mappings -----------------------------------------------------------------
for _cls, _build in (
    (cs.Const, B.const_),
    (cs.Enum, B.enum),
    (cs.FlagsEnum, B.flags_enum),
):
    register_builtin(_cls, parse=P.mapped_, build=_build, build_bits=_build)
register_builtin(cs.Rebuild, parse=P.subcon, build=B.rebuild, build_bits=B.rebuild)
register_builtin(cs.Default, parse=P.subcon, build=B.default, build_bits=B.default)
register_builtin(cs.Computed, parse=P.computed, build=B.computed, build_bits=B.computed)
register_builtin(type(cs.Pass), parse=P.pass_, build=B.pass_, build_bits=B.pass_)
register_builtin(type(cs.Terminated), build=B.terminated, build_bits=B.terminated, analysis=_GREEDY)
register_builtin(type(cs.Error), build=B.error, build_bits=B.error)

# -- bits ----------------------------------------------------------------------------------
register_builtin(
    (cs.Transformed, cs.Restreamed), parse=P.bitstruct, build=B.bitwise, build_bits=B.bytewise
)

# -- streams the analysis must know about -------------------------------------------------
register_builtin(
    cs.RestreamData, measure=m.restream_step, analysis=Analysis(children=_restreamed_data)
)
register_builtin(
    (cs.Tunnel, cs.ProcessXor, cs.ProcessRotateLeft),
    analysis=Analysis(greedy=_unsized, overreads=True),
)
register_builtin(cs.Peek, analysis=Analysis(overreads=True))
register_builtin((cs.Seek, cs.Pointer, cs.Union, cs.Lazy, cs.LazyStruct), analysis=_SEEKS)
