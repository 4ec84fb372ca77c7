"""A hand-written batch function for length-prefixed ``bytes`` bodies (experiment).

``Prefixed(<unsigned int>, GreedyBytes)`` (inferred framing) and ``GreedyBytes`` under an
explicit :class:`~codec.LengthField` need no generated parser: the message *is* the frame's
body. :class:`LengthSplitter` is the generated ``fill`` of :mod:`codec._batch` for those
schemas written out by hand and typed, so that ``bench/build_mypyc.py`` can compile it.
It returns what the generated function returns, call for call: the same ``(stack, error)``
(``stack`` holds ``value, frame_end`` pairs reversed; ``error`` is ``HALF``, ``None`` or
``(exception, offset)``), the same frame-size checks and the same window and batch limits,
so ``Codec.decode`` / ``decode_many`` and the buffer's bookkeeping are unchanged. The one
difference: the values are copied out of the storage, not sliced out of a snapshot (the
same ``bytes``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Final

__all__ = ["LengthSplitter"]

#: ``measure``'s answers that are not a frame's end
_NEED: Final = -1
_BAD: Final = -2
_LARGE: Final = -3

#: a read this short is copied to ``bytes`` whole before it is split (see ``__call__``)
SMALL: Final = 2048  # (Final: compiled, a constant, not a module-dict lookup)


class LengthSplitter:
    """``fill(data, bstart, end, maxsize, buf)`` for one length-field layout.

    ``exact``: the schema is ``Prefixed(...)`` (inferred framing: a half packet after the
    batch is reported as ``HALF``, no batch limit); otherwise an explicit ``LengthField``
    (the generated single-pass shape: at most ``limit`` frames, a half packet after the
    batch is not reported).
    """

    def __init__(
        self,
        *,
        offset: int,
        length: int,
        adjustment: int,
        strip: int,
        big: bool,
        signed: bool,
        exact: bool,
        half: object,
        too_large: Callable[[int], BaseException],
        bad_length: Callable[[int], BaseException],
        limit: int,
        window: int,
        blob_direct: int,
    ) -> None:
        self.offset = offset
        self.length = length
        self.header = offset + length
        self.adjustment = adjustment
        self.big = big
        self.signed = signed
        self.exact = exact
        #: where the value starts in the frame
        self.blob = self.header if exact else strip
        self.minimum = max(self.header, strip)
        self.check_bad = signed or adjustment < 0 or strip > self.header
        self.half = half
        self.too_large = too_large
        self.bad_length = bad_length
        self.limit = limit
        self.window = window
        self.blob_direct = blob_direct

    def value_at(self, data: bytearray, at: int) -> int:
        """The length field's integer at ``at`` (its bytes are there)."""
        n = self.length
        if self.big:
            if n == 4:
                v = (data[at] << 24) | (data[at + 1] << 16) | (data[at + 2] << 8) | data[at + 3]
            elif n == 2:
                v = (data[at] << 8) | data[at + 1]
            elif n == 1:
                v = data[at]
            else:
                v = 0
                for i in range(n):
                    v = (v << 8) | data[at + i]
        else:
            if n == 4:
                v = (data[at + 3] << 24) | (data[at + 2] << 16) | (data[at + 1] << 8) | data[at]
            elif n == 2:
                v = (data[at + 1] << 8) | data[at]
            elif n == 1:
                v = data[at]
            else:
                v = 0
                for i in range(n - 1, -1, -1):
                    v = (v << 8) | data[at + i]
        if self.signed and v >> (8 * n - 1):
            v -= 1 << (8 * n)
        return v

    def value_in(self, s: bytes, at: int) -> int:
        """``value_at`` on a ``bytes`` snapshot (compiled: no call per byte)."""
        n = self.length
        if self.big:
            if n == 4:
                v = (s[at] << 24) | (s[at + 1] << 16) | (s[at + 2] << 8) | s[at + 3]
            elif n == 2:
                v = (s[at] << 8) | s[at + 1]
            elif n == 1:
                v = s[at]
            else:
                v = 0
                for i in range(n):
                    v = (v << 8) | s[at + i]
        else:
            if n == 4:
                v = (s[at + 3] << 24) | (s[at + 2] << 16) | (s[at + 1] << 8) | s[at]
            elif n == 2:
                v = (s[at + 1] << 8) | s[at]
            elif n == 1:
                v = s[at]
            else:
                v = 0
                for i in range(n - 1, -1, -1):
                    v = (v << 8) | s[at + i]
        if self.signed and v >> (8 * n - 1):
            v -= 1 << (8 * n)
        return v

    def measure_in(self, s: bytes, pos: int, end: int, maxsize: int) -> int:
        """``measure`` on a ``bytes`` snapshot."""
        header = self.header
        if end - pos < header:
            return _NEED
        size = self.value_in(s, pos + self.offset) + header + self.adjustment
        if self.check_bad and size < self.minimum:
            return _BAD
        if size > maxsize:
            return _LARGE
        fend = pos + size
        if fend > end:
            return _NEED
        return fend

    def measure(self, data: bytearray, pos: int, end: int, maxsize: int) -> int:
        """The end of the frame at ``pos``, or ``_NEED`` / ``_BAD`` / ``_LARGE``; the
        checks in the generated code's order."""
        header = self.header
        if end - pos < header:
            return _NEED
        size = self.value_at(data, pos + self.offset) + header + self.adjustment
        if self.check_bad and size < self.minimum:
            return _BAD
        if size > maxsize:
            return _LARGE
        fend = pos + size
        if fend > end:
            return _NEED
        return fend

    def error(self, data: bytearray, pos: int, code: int) -> BaseException:
        """The exception the generated code raises for ``measure``'s ``code`` at ``pos``."""
        size = self.value_at(data, pos + self.offset) + self.header + self.adjustment
        if code == _BAD:
            return self.bad_length(size)
        return self.too_large(size)

    def __call__(
        self, data: bytearray, bstart: int, end: int, maxsize: int, buf: object
    ) -> tuple[list[Any] | None, object]:
        if end - bstart <= SMALL and end - bstart <= maxsize:
            # a short read (the common case): one bytes copy, then every header read and
            # every value slice is a C primitive on it (a bytearray's are generic calls)
            return self.small(bytes(data[bstart:end]), bstart, maxsize)
        fend = self.measure(data, bstart, end, maxsize)
        if fend < 0:
            if fend == _NEED:
                return None, self.half
            return None, (self.error(data, bstart, fend), bstart)
        blob = self.blob
        if fend == end:
            return [fend, bytes(data[bstart + blob : fend])], None
        if fend - bstart >= self.blob_direct:
            out: list[Any] = []
            err: object = None
            pos = bstart
            window = self.window
            while True:
                out.append(bytes(data[pos + blob : fend]))
                out.append(fend)
                pos = fend
                if pos >= end or pos - bstart >= window:
                    break
                fend = self.measure(data, pos, end, maxsize)
                if fend < 0:
                    err = self.half if fend == _NEED else (self.error(data, pos, fend), pos)
                    break
            out.reverse()
            return out, err
        # the generated code's snapshot: a bounded window, and at most max_frame_size
        whole = True
        stop = end
        window = self.window
        if end - bstart > window or end - bstart > maxsize:
            cut = bstart + (window if window < maxsize else maxsize)
            if cut < fend:
                cut = fend
            if cut < end:
                whole = False
                stop = cut
        return self.frames(bytes(data[bstart:stop]), bstart, fend - bstart, whole, maxsize)

    def small(self, s: bytes, bstart: int, maxsize: int) -> tuple[list[Any] | None, object]:
        """``__call__`` on a copy ``s`` of the whole read (no longer than the frame limit,
        nor than ``SMALL``: every frame in it is within the limit, there is no window)."""
        end = len(s)
        fend = self.measure_in(s, 0, end, maxsize)
        if fend < 0:
            if fend == _NEED:
                return None, self.half
            return None, (self.error_in(s, 0, fend), bstart)
        if fend == end:
            return [fend + bstart, s[self.blob :]], None
        if fend >= self.blob_direct:
            # (the generated code copies such frames one by one: the same values, the
            # same stopping rule; no window within SMALL bytes)
            blob = self.blob
            out: list[Any] = []
            err: object = None
            pos = 0
            while True:
                out.append(s[pos + blob : fend])
                out.append(fend + bstart)
                pos = fend
                if pos >= end:
                    break
                fend = self.measure_in(s, pos, end, maxsize)
                if fend < 0:
                    err = (
                        self.half if fend == _NEED else (self.error_in(s, pos, fend), pos + bstart)
                    )
                    break
            out.reverse()
            return out, err
        return self.frames(s, bstart, fend, True, maxsize)

    def frames(
        self, s: bytes, bstart: int, fend: int, whole: bool, maxsize: int
    ) -> tuple[list[Any] | None, object]:
        """The generated snapshot loop: ``s`` is the snapshot (from ``bstart``), ``fend``
        the end of its first frame, ``whole`` whether it reaches the last byte received."""
        blob = self.blob
        stop = len(s)
        limit = self.limit if not self.exact else -1
        out: list[Any] = []
        err: object = None
        n = 0
        pos = 0
        while True:
            out.append(s[pos + blob : fend])
            out.append(fend + bstart)
            n += 1
            pos = fend
            if pos >= stop or n == limit:
                break
            fend = self.measure_in(s, pos, stop, maxsize)
            if fend < 0:
                if fend == _NEED:
                    if whole and self.exact:
                        err = self.half
                else:
                    err = (self.error_in(s, pos, fend), pos + bstart)
                break
        out.reverse()
        return out, err

    def error_in(self, s: bytes, pos: int, code: int) -> BaseException:
        """``error`` on a ``bytes`` snapshot."""
        size = self.value_in(s, pos + self.offset) + self.header + self.adjustment
        if code == _BAD:
            return self.bad_length(size)
        return self.too_large(size)
