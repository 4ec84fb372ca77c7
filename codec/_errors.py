"""The codec's one error tree, and the single place where foreign errors are translated.

Rules (design.md):

* every malformed input raises :class:`DecodeError` or a subclass and nothing else, so one
  ``except DecodeError`` catches all bad bytes; ``struct.error``, ``UnicodeDecodeError``,
  ``IndexError`` and construct's own exceptions never escape a decode;
* :class:`FrameTooLarge` and :class:`IncompleteFrame` are decode errors too;
* :class:`EncodeError` stands apart: it is about bad *values* handed to ``encode``.

Every decode error carries the absolute stream offset where the offending frame starts and an
excerpt of the bytes, and every error carries construct's field path when there is one.
"""

from __future__ import annotations

import re
import struct
from typing import Any

import construct as cs

__all__ = [
    "DecodeError",
    "EncodeError",
    "FrameTooLarge",
    "IncompleteFrame",
]

#: how many bytes of the offending input an error message shows
EXCERPT_BYTES = 32

_PATH_RE = re.compile(r"^Error in path (?P<path>[^\n]*)\n", re.DOTALL)


class DecodeError(ValueError):
    """Bytes that cannot be decoded with the protocol.

    Attributes:
        offset: absolute stream offset of the start of the offending frame (bytes handed out
            before it plus bytes consumed by earlier frames), or ``None`` when unknown.
        data: a copy of (a prefix of) the offending bytes, at most a few dozen.
        path: construct's field path such as ``"(parsing) -> header -> length"``, if known.
        reason: the short explanation, without offset and bytes.
        frame_size: the bad frame's length when the framing knew it (consume that many bytes
            to skip the frame and go on), else ``None``.
        messages: for ``Codec.decode_all``, the messages decoded before the error.
    """

    frame_size: int | None = None
    messages: list[Any]

    def __init__(
        self,
        reason: str,
        *,
        offset: int | None = None,
        data: bytes | bytearray | memoryview = b"",
        path: str | None = None,
    ) -> None:
        self.reason = reason
        self.offset = offset
        self.data = bytes(data[:EXCERPT_BYTES])
        self._total = len(data)
        self.path = path
        self.messages = []
        super().__init__(self._render())

    def _render(self) -> str:
        parts = [self.reason]
        if self.path:
            parts.append(f"field {self.path}")
        if self.offset is not None:
            parts.append(f"at stream offset {self.offset}")
        if self._total:
            shown = self.data.hex(" ")
            if self._total > len(self.data):
                shown += f" ... (+{self._total - len(self.data)} bytes)"
            parts.append(f"bytes: {shown}")
        return "; ".join(parts)


class FrameTooLarge(DecodeError):
    """A frame is (or would become) larger than the codec's ``max_frame_size``.

    Raised as soon as the frame's length is known, before its body is buffered; for a
    delimiter search, as soon as ``max_frame_size`` bytes have arrived without a delimiter.
    """

    def __init__(
        self,
        size: int | None,
        limit: int,
        *,
        offset: int | None = None,
        data: bytes | bytearray | memoryview = b"",
    ) -> None:
        self.size = size
        self.limit = limit
        what = f"frame of {size} bytes" if size is not None else "frame"
        super().__init__(
            f"{what} exceeds max_frame_size={limit}",
            offset=offset,
            data=data,
        )


class IncompleteFrame(DecodeError):
    """The byte stream ended inside a frame (``Decoder.close()``, ``Codec.decode_all``)."""


class EncodeError(ValueError):
    """A value the schema cannot build; ``path`` says which field, when construct knows."""

    def __init__(self, reason: str, *, path: str | None = None) -> None:
        self.reason = reason
        self.path = path
        super().__init__(f"{reason}; field {path}" if path else reason)


def split_construct_message(exc: BaseException) -> tuple[str, str | None]:
    """Separate construct's ``"Error in path X\\n"`` preamble from the message itself."""
    text = str(exc)
    path = getattr(exc, "path", None)
    m = _PATH_RE.match(text)
    if m:
        text = text[m.end() :]
        path = path or m.group("path")
    return text.strip() or type(exc).__name__, path


#: errors a schema's parse can raise on hostile bytes; all become DecodeError
FOREIGN_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    cs.ConstructError,
    struct.error,
    UnicodeError,
    IndexError,
    KeyError,
    ValueError,
    TypeError,
    OverflowError,
    ArithmeticError,
    AttributeError,
    LookupError,
    RecursionError,
    MemoryError,
)


def as_decode_error(
    exc: BaseException,
    *,
    offset: int | None,
    data: bytes | bytearray | memoryview,
) -> DecodeError:
    """Translate one foreign exception into a :class:`DecodeError` (kept as ``__cause__``)."""
    if isinstance(exc, DecodeError):
        return exc
    reason, path = split_construct_message(exc)
    err = DecodeError(f"{type(exc).__name__}: {reason}", offset=offset, data=data, path=path)
    err.__cause__ = exc
    return err


#: errors building a value can raise; all become EncodeError
FOREIGN_ENCODE_ERRORS: tuple[type[BaseException], ...] = (
    cs.ConstructError,
    struct.error,
    UnicodeError,
    ValueError,
    TypeError,
    KeyError,
    AttributeError,
    IndexError,
    OverflowError,
    StopIteration,
)


def as_encode_error(exc: BaseException) -> EncodeError:
    """Translate one failure while building a value into :class:`EncodeError` with its path."""
    if isinstance(exc, EncodeError):
        return exc
    reason, path = split_construct_message(exc)
    if isinstance(exc, KeyError | AttributeError | IndexError | StopIteration):
        reason = f"missing or invalid value: {type(exc).__name__}: {reason}"
    else:
        reason = f"{type(exc).__name__}: {reason}"
    err = EncodeError(reason, path=path)
    err.__cause__ = exc
    return err
