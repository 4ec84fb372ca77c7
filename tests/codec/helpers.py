"""Shared test helpers: type-strict comparison with construct's results, chunked feeding."""

from __future__ import annotations

import math
import struct
from collections.abc import Iterable, Sequence
from typing import Any

import construct as cs

from codec import Buffer, Protocol

#: construct's private key holding the parse stream; the codec may leave it out
PRIVATE_KEYS = frozenset({"_io"})


def assert_same(got: Any, want: Any, path: str = "value") -> None:
    """Assert ``got`` is what construct returned: same types field by field, not just ``==``.

    Container's ``==`` ignores types, order and private keys, so this walks both values:
    bytes is never a bytearray, EnumIntegerString is not a str, Container field order is
    construct's, floats compare by their bits (NaN == NaN).
    """
    assert type(got) is type(want), f"{path}: type {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        gk = [k for k in got if k not in PRIVATE_KEYS]
        wk = [k for k in want if k not in PRIVATE_KEYS]
        assert gk == wk, f"{path}: keys {gk} != {wk}"
        for k in wk:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list | tuple):
        assert len(got) == len(want), f"{path}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    elif isinstance(want, float):
        assert struct.pack("<d", got) == struct.pack("<d", want) or (
            math.isnan(got) and math.isnan(want)
        ), f"{path}: {got!r} != {want!r}"
    elif isinstance(want, cs.EnumIntegerString):
        assert str(got) == str(want), f"{path}: {got!r} != {want!r}"
        assert int(got) == int(want), f"{path}: {int(got)} != {int(want)}"
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def split(data: bytes, cuts: Iterable[int]) -> list[bytes]:
    """``data`` cut at the given offsets (out-of-range and duplicate cuts are ignored)."""
    points = sorted({c for c in cuts if 0 < c < len(data)})
    out = []
    last = 0
    for p in [*points, len(data)]:
        out.append(data[last:p])
        last = p
    return [c for c in out if c]


def decode_chunks(protocol: Protocol[Any], chunks: Sequence[bytes]) -> tuple[list[Any], Buffer]:
    """Feed chunks one at a time, calling ``decode`` until ``None`` after each; every call
    must return one message or ``None`` and ``None`` must consume nothing."""
    buf = Buffer()
    out: list[Any] = []
    for chunk in chunks:
        buf.extend(chunk)
        for _ in range(len(buf) + 1):  # bounded: every message consumes at least one byte
            before = len(buf)
            snapshot = buf.peek()
            msg = protocol.decode(buf)
            if msg is None:
                assert len(buf) == before, "a half packet consumed bytes"
                assert buf.peek() == snapshot, "a half packet changed the buffer"
                break
            assert len(buf) < before, "a message was returned without consuming bytes"
            out.append(msg)
        else:  # pragma: no cover - would mean decode never returned None
            raise AssertionError("decode kept returning messages without consuming")
    return out, buf
