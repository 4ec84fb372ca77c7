"""Hypothesis helpers to fuzz any decoder: wirekit's :class:`~codec.Codec` or a hand-written
:class:`~codec.Protocol`.

* :func:`from_schema` - a strategy of values a construct schema builds;
* :func:`chunked` - the ways a byte stream can arrive, cut anywhere;
* :func:`mutated` / :func:`huge_lengths` - valid frames broken on purpose;
* :func:`check_codec` - one call that runs every property (round trip, half packets,
  sticky packets under any chunking, garbage and mutated input, bounded memory).

Needs hypothesis (``pip install wirekit[testing]``); ``import codec`` does not.

>>> import construct as cs
>>> from codec import Codec
>>> check_codec(Codec(cs.PascalString(cs.Int8ub, "utf8")), max_examples=10)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._check import PROPERTIES, CheckFailure, check_codec
    from ._chunking import chunked, feed_chunks, split_at
    from ._compare import strict_difference, value_difference
    from ._mutations import Mutation, huge_lengths, mutated
    from ._strategies import UnsupportedConstruct, from_schema

__all__ = [
    "PROPERTIES",
    "CheckFailure",
    "Mutation",
    "UnsupportedConstruct",
    "check_codec",
    "chunked",
    "feed_chunks",
    "from_schema",
    "huge_lengths",
    "mutated",
    "split_at",
    "strict_difference",
    "value_difference",
]

# Names are imported on first use (PEP 562), so that importing the pytest plugin module
# ``codec.testing.pytest_plugin`` - which pytest does at start-up through the entry
# point - does not import hypothesis.
_HOMES = {
    "PROPERTIES": "_check",
    "CheckFailure": "_check",
    "check_codec": "_check",
    "chunked": "_chunking",
    "feed_chunks": "_chunking",
    "split_at": "_chunking",
    "strict_difference": "_compare",
    "value_difference": "_compare",
    "Mutation": "_mutations",
    "huge_lengths": "_mutations",
    "mutated": "_mutations",
    "UnsupportedConstruct": "_strategies",
    "from_schema": "_strategies",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{home}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
