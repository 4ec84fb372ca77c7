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
