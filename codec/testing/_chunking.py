"""Byte streams cut at arbitrary points, as the network delivers them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, TypeVar

from hypothesis import strategies as st

from .._buffer import Buffer
from .._protocol import Protocol

__all__ = ["chunked", "feed_chunks", "split_at"]

T = TypeVar("T")


def split_at(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (sorted, deduplicated, 0 < cut < len(data))."""
    out = []
    prev = 0
    for cut in sorted(set(cuts)):
        if 0 < cut < len(data):
            out.append(data[prev:cut])
            prev = cut
    out.append(data[prev:])
    return [c for c in out if c]


def chunked(data: bytes) -> st.SearchStrategy[list[bytes]]:
    """A strategy of ways to cut ``data`` into non-empty chunks, in order.

    Every split is possible, one byte at a time included. Failures shrink toward the fewest
    cuts at the earliest offsets, so the reported chunking is the simplest one that fails.

    >>> from hypothesis import given
    >>> @given(chunked(b"\\x03abc"))
    ... def test(chunks):
    ...     assert b"".join(chunks) == b"\\x03abc"
    >>> test()
    """
    data = bytes(data)
    n = len(data)
    if n <= 1:
        return st.just([data] if data else [])
    return _chunked(data)


@st.composite
def _chunked(draw: Any, data: bytes) -> list[bytes]:
    n = len(data)
    # a regular step first (shrinks toward one chunk; reaches one byte at a time), then
    # arbitrary extra cuts (shrink toward none)
    step = n - draw(st.integers(0, n - 1))
    extra = draw(st.lists(st.integers(1, n - 1), unique=True, max_size=n - 1))
    return split_at(data, [*range(step, n, step), *extra])


def feed_chunks(
    protocol: Protocol[T], chunks: Sequence[bytes], buffer: Buffer | None = None
) -> list[T]:
    """Feed ``chunks`` into a buffer one at a time, decoding after each; return the messages.

    The decode loop is bounded: a ``decode`` that returns a message without consuming bytes
    (a caller would loop forever) raises ``AssertionError``. Decode errors propagate.
    """
    buf = Buffer() if buffer is None else buffer
    out: list[T] = []
    for chunk in chunks:
        buf.extend(chunk)
        while True:
            before = len(buf)
            msg: Any = protocol.decode(buf)
            if msg is None:
                break
            if len(buf) >= before:
                raise AssertionError(
                    f"{protocol!r}.decode returned {msg!r} without consuming any bytes"
                )
            out.append(msg)
    return out
