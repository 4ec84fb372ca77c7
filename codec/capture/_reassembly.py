"""TCP stream reassembly for one direction of one connection (sans-I/O).

Rules:

* Sequence numbers are 32-bit and wrap; each one is mapped to an unbounded *stream offset*
  relative to the first data byte (the byte after the SYN, or the first byte seen when the
  capture starts mid-connection), by taking the signed 32-bit distance from the next
  expected byte. Wrap-around is therefore invisible above this module.
* Bytes are delivered once and in order. A retransmission or an overlap delivers only its
  new bytes: the first copy of a byte wins (what the receiver's stack would have kept).
* Segments beyond the next expected byte wait in a bounded out-of-order store. When more
  than ``window`` bytes wait, or the stream ends with a hole, the hole becomes a
  :class:`Gap`: the bytes after it are delivered and the caller learns the stream lost
  ``size`` bytes at ``offset``.
* FIN marks the end of the stream at its sequence number; the stream is finished once every
  byte before it has been delivered. RST finishes it at once.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass

__all__ = ["DEFAULT_WINDOW", "Gap", "HalfStream"]

#: default cap on bytes held out of order per direction (4 MiB)
DEFAULT_WINDOW = 4 * 1024 * 1024

_MOD = 1 << 32
_HALF = 1 << 31


@dataclass(frozen=True, slots=True)
class Gap:
    """``size`` bytes of the stream, starting at stream ``offset``, were never captured."""

    offset: int
    size: int


class HalfStream:
    """One direction of a TCP connection: segments in, ordered bytes and gaps out.

    :meth:`segment` returns a list whose items are ``bytes`` (the next bytes of the stream,
    in order) or :class:`Gap` (bytes lost before the next item).
    """

    __slots__ = (
        "_heap",
        "base",
        "fin_at",
        "finished",
        "isn",
        "midstream",
        "next",
        "pending",
        "retransmitted",
        "started",
        "window",
    )

    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        self.window = window
        #: whether the first data byte's sequence number is known
        self.started = False
        #: initial sequence number when a SYN was seen, else None
        self.isn: int | None = None
        #: the capture began after the SYN (the stream may start mid-message)
        self.midstream = False
        #: 32-bit sequence number of stream offset 0
        self.base = 0
        #: stream offset of the next byte to deliver
        self.next = 0
        #: stream offset the FIN sits at, once seen
        self.fin_at: int | None = None
        self.finished = False
        #: bytes waiting out of order
        self.pending = 0
        #: segments that brought no new byte
        self.retransmitted = 0
        self._heap: list[tuple[int, bytes]] = []

    def __repr__(self) -> str:
        return (
            f"<HalfStream next={self.next} pending={self.pending} "
            f"fin_at={self.fin_at} finished={self.finished}>"
        )

    def syn(self, seq: int) -> bool:
        """Record a SYN; ``False`` when it starts a different connection (a new ISN)."""
        if self.isn is not None:
            return self.isn == seq
        if self.started and (self.next or self._heap):
            return False
        self.isn = seq
        self.started = True
        self.midstream = False
        self.base = (seq + 1) % _MOD
        self.next = 0
        return True

    def offset_of(self, seq: int) -> int:
        """The stream offset of a sequence number, unwrapped near the next expected byte."""
        d = (seq - self.base - self.next) % _MOD
        if d >= _HALF:
            d -= _MOD
        return self.next + d

    def segment(self, seq: int, payload: bytes | memoryview, fin: bool) -> list[bytes | Gap]:
        """Add one segment's payload (``seq`` of its first byte) and its FIN flag."""
        if self.finished:
            return []
        if not self.started:
            self.started = True
            self.midstream = True
            self.base = seq
        out: list[bytes | Gap] = []
        start = self.offset_of(seq)
        n = len(payload)
        if fin:
            end = start + n
            if self.fin_at is None or end < self.fin_at:
                self.fin_at = end
        if n:
            stop = start + n
            if stop <= self.next:
                self.retransmitted += 1
            elif start <= self.next:
                out.append(bytes(payload[self.next - start :]))
                self.next = stop
                if self._heap:
                    self._drain(out)
            else:
                heapq.heappush(self._heap, (start, bytes(payload)))
                self.pending += n
                if self.pending > self.window:
                    self._skip_hole(out)
        if self.fin_at is not None and self.next >= self.fin_at and not self._heap:
            self.finished = True
        return out

    def _drain(self, out: list[bytes | Gap]) -> None:
        heap = self._heap
        while heap and heap[0][0] <= self.next:
            start, data = heapq.heappop(heap)
            self.pending -= len(data)
            stop = start + len(data)
            if stop <= self.next:
                self.retransmitted += 1
                continue
            out.append(data[self.next - start :])
            self.next = stop

    def _skip_hole(self, out: list[bytes | Gap]) -> None:
        """Give up on the hole before the earliest waiting segment."""
        start = self._heap[0][0]
        out.append(Gap(self.next, start - self.next))
        self.next = start
        self._drain(out)

    def flush(self) -> list[bytes | Gap]:
        """The capture ended (or the connection was reset): deliver what waits, past holes."""
        out: list[bytes | Gap] = []
        while self._heap:
            self._skip_hole(out)
        self.finished = True
        return out

    def abort(self) -> None:
        """The connection was reset: drop what waits out of order, deliver nothing more."""
        self._heap.clear()
        self.pending = 0
        self.finished = True
