"""Decoded messages as JSON-ready values (what ``wirekit parse`` prints)."""

from __future__ import annotations

import datetime
import enum
import math
from collections.abc import Mapping
from typing import Any

import construct as cs

__all__ = ["to_jsonable"]


def to_jsonable(value: Any) -> Any:
    """A construct value as plain JSON types.

    ``Container`` -> object (private keys such as ``_io`` left out), ``ListContainer`` and
    other sequences -> array, ``bytes`` -> hex string, ``EnumIntegerString`` -> its name,
    ``EnumInteger`` -> its number, Python enums -> their name, non-finite floats -> strings,
    anything else unknown -> ``str(value)``.
    """
    t = type(value)
    if t is int or t is str or value is None or t is bool:  # the common cases, first
        return value
    if t is bytes:
        return value.hex()
    if t is cs.Container:
        return {
            k: v if type(v) is int else to_jsonable(v)
            for k, v in value.items()
            if not (type(k) is str and k[:1] == "_")
        }
    return _slow(value)


def _slow(value: Any) -> Any:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, cs.EnumIntegerString):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.name
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {
            str(k): to_jsonable(v)
            for k, v in value.items()
            if not (isinstance(k, str) and k.startswith("_"))
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    if isinstance(value, datetime.datetime | datetime.date | datetime.time):
        return value.isoformat()
    return str(value)
