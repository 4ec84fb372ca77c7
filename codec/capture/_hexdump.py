"""Hex dumps back into bytes: plain hex, ``xxd`` output, Wireshark / ``hexdump -C`` style.

Accepted, line by line (``#`` starts a comment line, blank lines are ignored):

* plain hex: ``0c 73 6d 61`` or ``0c736d61``, also ``0x0c, 0x73`` (C arrays);
* ``xxd``: ``00000000: 0c73 6d61 7274 2d73  .smart-s`` - an offset ending in ``:``, groups
  of hex digits, then the ASCII column;
* Wireshark "Copy as Hex Dump" / "Export Packet Dissections" bytes, ``od``-like and
  ``hexdump -C``: ``0000  0c 73 6d 61 ...   .sma`` - an offset column, hex pairs (an extra
  space in the middle is fine), then an optional ASCII column (``|...|`` too).

A ``*`` line (``hexdump`` and ``od`` squeeze repeated lines into it) repeats the line
above up to the next offset. An offset that jumps past the bytes of the line before it is
an error: bytes would be missing. Text lines before the first dump line and between offset
lines (Wireshark's dissection text in "Export Packet Dissections") are skipped. The ASCII
column is told apart from the bytes by the next line's offset, or on a last line by its
length (one character per byte), so a column that happens to look like hex (``ab``) is not
misread.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

__all__ = ["HexDumpError", "looks_like_hexdump", "parse_hex_lines"]

_HEX = frozenset("0123456789abcdefABCDEF")
_OFFSET_RE = re.compile(r"^\s*([0-9a-fA-F]{4,16})(:\s*|\s{2,})(?=\S)")
_TOKEN_RE = re.compile(r"\S+")
_END_RE = re.compile(r"([0-9a-fA-F]{4,16}):?")  # hexdump's closing line: the end offset


class HexDumpError(ValueError):
    """A line of a hex dump that is not hex; says which line (``line``, counted from 1)."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


def _is_hex(tok: str) -> bool:
    return bool(tok) and len(tok) % 2 == 0 and all(c in _HEX for c in tok)


def _clean(tok: str) -> str:
    tok = tok.rstrip(",")
    if tok[:2] in ("0x", "0X"):
        tok = tok[2:]
    return tok


def _hex_tokens(text: str) -> list[tuple[int, int, str]]:
    """``(start, end, token)`` of the hex tokens at the start of ``text``."""
    out = []
    for m in _TOKEN_RE.finditer(text):
        tok = m.group()
        if not _is_hex(tok):
            break
        out.append((m.start(), m.end(), tok))
    return out


def _last_line(text: str, has_ascii: bool | None) -> tuple[bytes, bool]:
    """Bytes of an offset line whose length no following offset gives.

    Returns the bytes and whether an ASCII column was seen after them.
    """
    stripped = text.rstrip()
    if stripped.endswith("|") and "|" in stripped[:-1]:  # hexdump -C's |ascii| column
        stripped = stripped[: stripped.index("|")]
        return bytes.fromhex("".join(t for _, _, t in _hex_tokens(stripped))), True
    toks = _hex_tokens(stripped)
    rest_all = stripped[toks[-1][1] :].strip() if toks else stripped
    if has_ascii is False:
        return bytes.fromhex("".join(t for _, _, t in toks)), bool(rest_all)
    # An ASCII column holds one character per byte: find the split that fits it,
    # so that an ASCII column that looks like hex ("ab") is not read as bytes.
    fallback = None
    count = sum(len(t) // 2 for _, _, t in toks)
    for k in range(len(toks), 0, -1):
        rest = stripped[toks[k - 1][1] :].strip()
        # unsure there is a column at all: it must stand apart by two spaces or more
        apart = has_ascii or stripped[toks[k - 1][1] : toks[k - 1][1] + 2] == "  "
        if rest and apart and len(rest) in (count, count + 1):
            return bytes.fromhex("".join(t for _, _, t in toks[:k])), True
        if has_ascii and rest and fallback is None and len(rest) <= count:
            fallback = k
        count -= len(toks[k - 1][2]) // 2
    k = fallback if fallback is not None else len(toks)
    return bytes.fromhex("".join(t for _, _, t in toks[:k])), bool(rest_all)


def _counted_line(text: str, n: int) -> tuple[bytes, bool] | None:
    """The first ``n`` bytes of an offset line (its length is known from the next offset)."""
    toks = _hex_tokens(text)
    digits = "".join(t for _, _, t in toks)
    if len(digits) < 2 * n:
        return None
    used = 0
    end = 0
    for _, stop, tok in toks:
        if used >= 2 * n:
            break
        used += len(tok)
        end = stop
    return bytes.fromhex(digits[: 2 * n]), bool(text[end:].strip())


def parse_hex_lines(lines: Iterable[str]) -> Iterator[bytes]:
    """The bytes of a hex dump, one chunk per line (lines without bytes yield nothing).

    The style (with or without an offset column) is decided on the first line with
    content and kept for the whole dump. Raises :class:`HexDumpError` on a line that is
    not hex, naming it.
    """
    with_offsets: bool | None = None
    has_ascii: bool | None = None
    held: tuple[int, int, str] | None = None  # (line number, offset, text after offset)
    first_text: tuple[int, str] | None = None
    squeezed = False
    for lineno, raw in enumerate(lines, 1):
        line = raw.rstrip("\r\n")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if with_offsets is None:
            m = _OFFSET_RE.match(line)
            if m is None and not all(_is_hex(_clean(t)) for t in stripped.split()):
                first_text = first_text or (lineno, stripped)
                continue  # text before the first dump line (Wireshark's frame summary)
            with_offsets = m is not None and (
                m.group(2).startswith(":") or int(m.group(1), 16) == 0
            )
        if not with_offsets:
            toks = [_clean(t) for t in stripped.replace(",", " ").split()]
            bad = next((t for t in toks if not _is_hex(t)), None)
            if bad is not None:
                raise HexDumpError(lineno, f"{bad!r} is not hex bytes")
            data = bytes.fromhex("".join(toks))
            if data:
                yield data
            continue
        if stripped == "*":  # hexdump/od: the line above repeats up to the next offset
            squeezed = True
            continue
        m = _OFFSET_RE.match(line)
        end_only = _END_RE.fullmatch(stripped)
        if m is None and end_only is None:
            if all(_is_hex(t) for t in stripped.split()):
                raise HexDumpError(lineno, f"missing offset column: {stripped!r}")
            continue  # a dissection text line between packets (Wireshark export)
        offset = int((m or end_only).group(1), 16)  # type: ignore[union-attr]
        if held is not None:
            counted = None
            if offset > held[1] and not squeezed:
                counted = _counted_line(held[2], offset - held[1])
            if counted is None:
                data, seen = _last_line(held[2], has_ascii)
            else:
                data, seen = counted
            if has_ascii is None:
                has_ascii = seen
            if not data and offset > held[1]:
                raise HexDumpError(held[0], "no hex bytes after the offset")
            end = held[1] + len(data)
            if squeezed and data and offset > end and (offset - end) % len(data) == 0:
                data *= 1 + (offset - end) // len(data)
            elif offset > end:
                if data:
                    yield data  # whole messages before the hole still count
                # (a new dump starting again at a lower offset is fine: Wireshark's export)
                raise HexDumpError(
                    lineno,
                    f"offset {offset:#x} does not follow line {held[0]} ({len(data)} bytes "
                    f"from {held[1]:#x}): {offset - end} bytes are missing",
                )
            if data:
                yield data
        squeezed = False
        held = None if m is None else (lineno, offset, line[m.end() :])
    if held is not None:
        data, _ = _last_line(held[2], has_ascii)
        if data:
            yield data
        elif held[2].strip():
            raise HexDumpError(held[0], "no hex bytes after the offset")
    elif with_offsets is None and first_text is not None:
        raise HexDumpError(first_text[0], f"not a hex dump: {first_text[1][:40]!r}")


def looks_like_hexdump(sample: bytes) -> bool:
    """Whether a file's first bytes read as a hex dump (used to auto-detect ``--format``)."""
    try:
        text = sample.decode("ascii")
    except UnicodeDecodeError:
        return False
    lines = text.splitlines()
    if len(sample) >= 4096 and lines and not text.endswith("\n"):
        lines = lines[:-1]  # the sample may cut the last line
    try:
        return any(True for _ in parse_hex_lines(lines))
    except (HexDumpError, ValueError):
        return False
