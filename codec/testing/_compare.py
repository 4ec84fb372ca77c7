"""Comparing decoded messages: strictly (same types) and loosely (a value drawn vs decoded).

``Container.__eq__`` ignores types, key order and private keys, and ``bytes ==
bytearray``; design.md promises more (``decode`` returns exactly what ``schema.parse``
returns, type for type), so the checks compare with these instead of ``==``.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping, Sequence
from typing import Any

import construct as cs

__all__ = ["strict_difference", "value_difference"]

#: private keys construct adds that may differ between two parses of the same bytes
_IGNORED_KEYS = frozenset({"_io"})


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def _show(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 200 else text[:200] + "..."


def strict_difference(expected: Any, got: Any, path: str = "message") -> str | None:
    """The first difference between two parsed values, types included, else ``None``.

    Floats compare by their bits (so NaN equals the same NaN), Containers by their keys in
    order (construct's ``_io`` aside), enum strings by label and integer value.
    """
    if type(expected) is not type(got):
        return (
            f"{path} is {type(got).__name__} {_show(got)}, "
            f"expected {type(expected).__name__} {_show(expected)}"
        )
    if isinstance(expected, Mapping):
        keys_e = [k for k in expected if k not in _IGNORED_KEYS]
        keys_g = [k for k in got if k not in _IGNORED_KEYS]
        if keys_e != keys_g:
            return f"{path} has keys {keys_g}, expected {keys_e}"
        for k in keys_e:
            diff = strict_difference(expected[k], got[k], f"{path}.{k}")
            if diff:
                return diff
        return None
    if isinstance(expected, list | tuple):
        if len(expected) != len(got):
            return f"{path} has {len(got)} items, expected {len(expected)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = strict_difference(e, g, f"{path}[{i}]")
            if diff:
                return diff
        return None
    if isinstance(expected, float):
        if _float_bits(expected) != _float_bits(got):
            return f"{path} is {got!r}, expected {expected!r} (compared bit for bit)"
        return None
    if isinstance(expected, cs.EnumIntegerString) and int(expected) != int(got):
        return f"{path} has integer {int(got)}, expected {int(expected)}"
    if expected != got:
        return f"{path} is {_show(got)}, expected {_show(expected)}"
    return None


def value_difference(expected: Any, got: Any, path: str = "message") -> str | None:
    """How a decoded message differs from the value that was encoded, else ``None``.

    Lenient where encoding legitimately adds information: a mapping needs only the keys of
    the value (construct adds computed fields), an enum label equals its string. Strict
    where a decoder is wrong: ``bytes`` must come back as ``bytes`` (not a bytearray or a
    memoryview), NaN must come back as NaN, ``-0.0`` as ``-0.0``.
    """
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping):
            return f"{path} is {type(got).__name__} {_show(got)}, expected a mapping"
        for k in expected:
            if isinstance(k, str) and k.startswith("_"):
                continue
            if k not in got:
                return f"{path} lacks key {k!r}"
            diff = value_difference(expected[k], got[k], f"{path}.{k}")
            if diff:
                return diff
        return None
    if isinstance(expected, bytes | bytearray):
        if type(got) is not type(expected):
            return (
                f"{path} is {type(got).__name__} {_show(got)}, expected {type(expected).__name__}"
            )
    elif isinstance(expected, Sequence) and not isinstance(expected, str):
        if not isinstance(got, Sequence) or isinstance(got, str | bytes):
            return f"{path} is {type(got).__name__} {_show(got)}, expected a sequence"
        if len(expected) != len(got):
            n, m = len(got), len(expected)
            return f"{path} has {n} items {_show(got)}, expected {m} {_show(expected)}"
        for i, (e, g) in enumerate(zip(expected, got, strict=True)):
            diff = value_difference(e, g, f"{path}[{i}]")
            if diff:
                return diff
        return None
    elif isinstance(expected, float) and isinstance(got, float):
        same = (math.isnan(expected) and math.isnan(got)) or (
            expected == got and math.copysign(1, expected) == math.copysign(1, got)
        )
        return None if same else f"{path} is {got!r}, expected {expected!r}"
    if expected != got:
        return f"{path} is {_show(got)}, expected {_show(expected)}"
    return None
