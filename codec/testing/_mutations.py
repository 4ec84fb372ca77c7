"""Valid frames made invalid: truncations, bit flips, length fields made huge, splices."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

__all__ = ["Mutation", "huge_lengths", "mutated"]

#: header bytes a "huge length" mutation may overwrite (length fields live near the front)
HEADER_REACH = 16


@dataclass(frozen=True)
class Mutation:
    """A mutated frame and the list of edits that made it (for failure messages)."""

    data: bytes
    edits: tuple[str, ...]

    def __str__(self) -> str:
        return ", ".join(self.edits) or "unchanged"


def _truncate(draw: Any, data: bytes) -> tuple[bytes, str]:
    cut = draw(st.integers(0, max(0, len(data) - 1)))
    return data[:cut], f"truncated to {cut} bytes"


def _flip(draw: Any, data: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "no bit to flip"
    pos = draw(st.integers(0, len(data) - 1))
    bit = draw(st.integers(0, 7))
    out = bytearray(data)
    out[pos] ^= 1 << bit
    return bytes(out), f"flipped bit {bit} of byte {pos}"


def _huge(draw: Any, data: bytes) -> tuple[bytes, str]:
    pos = draw(st.integers(0, max(0, min(len(data), HEADER_REACH) - 1)))
    width = draw(st.integers(1, 8))
    fill = draw(st.sampled_from([0xFF, 0x7F, 0x80]))
    out = data[:pos] + bytes([fill]) * width + data[pos + width :]
    return out, f"bytes {pos}..{pos + width - 1} set to {fill:#04x}"


def _insert(draw: Any, data: bytes) -> tuple[bytes, str]:
    pos = draw(st.integers(0, len(data)))
    extra = draw(st.binary(min_size=1, max_size=8))
    return data[:pos] + extra + data[pos:], f"inserted {extra.hex()} at {pos}"


def _delete(draw: Any, data: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "nothing to delete"
    pos = draw(st.integers(0, len(data) - 1))
    n = draw(st.integers(1, max(1, min(8, len(data) - pos))))
    return data[:pos] + data[pos + n :], f"deleted {n} bytes at {pos}"


def _replace(draw: Any, data: bytes) -> tuple[bytes, str]:
    if not data:
        return data, "nothing to replace"
    pos = draw(st.integers(0, len(data) - 1))
    value = draw(st.integers(0, 255))
    return data[:pos] + bytes([value]) + data[pos + 1 :], f"byte {pos} set to {value:#04x}"


_EDITS = (_truncate, _flip, _huge, _insert, _delete, _replace)


@st.composite
def _mutated(draw: Any, frame: bytes, max_edits: int) -> Mutation:
    data = frame
    edits = []
    for _ in range(draw(st.integers(1, max_edits))):
        edit = _EDITS[draw(st.integers(0, len(_EDITS) - 1))]
        data, what = edit(draw, data)
        edits.append(what)
    return Mutation(data, tuple(edits))


@st.composite
def _huge_lengths(draw: Any, frame: bytes) -> Mutation:
    data, what = _huge(draw, frame)
    return Mutation(data, (what,))


def mutated(frame: bytes, max_edits: int = 3) -> st.SearchStrategy[Mutation]:
    """A strategy of ``frame`` with 1 to ``max_edits`` edits; shrinks toward one edit."""
    return _mutated(bytes(frame), max_edits)


def huge_lengths(frame: bytes) -> st.SearchStrategy[Mutation]:
    """``frame`` with a run of header bytes set high: any length field there becomes huge."""
    return _huge_lengths(bytes(frame))
