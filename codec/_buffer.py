"""A receive buffer whose every operation is amortised O(1) per byte.

Bytes arrive at the end (:meth:`Buffer.extend`, or :meth:`Buffer.reserve` +
:meth:`Buffer.commit` for engines that read straight into it) and decoders consume them from
the front. Consumed bytes are not moved on every consume: the read position advances, and the
storage is compacted only when the dead prefix is at least half the storage, so each byte is
copied a bounded number of times however the stream is chunked. This is the property that
keeps a 1 MiB frame arriving one byte at a time from costing a quadratic amount of copying
(h11 calls the alternative a denial-of-service hole).

Codecs in this package read ``_data``, ``_start`` and ``_end`` directly: the readable bytes
are ``_data[_start:_end]``.
"""

from __future__ import annotations

from typing import Any, TypeAlias

#: anything the buffer accepts as input
BytesLike: TypeAlias = bytes | bytearray | memoryview

__all__ = ["Buffer", "BytesLike"]

#: consumed bytes are moved out of the way only past this many (and half the storage):
#: compacting a few bytes on every read costs more in calls than it saves
_COMPACT_MIN = 4096

#: storage above this size is released when the buffer empties (a large frame has gone).
#: Well above what a read loop keeps reserved (the transport reads up to 256 KiB at a time
#: into the free space past the live bytes): releasing that storage whenever a hand-written
#: decoder's ``take`` empties the buffer would make every read allocate it again
_SHRINK_ABOVE = 1024 * 1024


class Buffer:
    """Bytes received but not yet decoded.

    ``len(buf)`` is the number of readable bytes. Decoders look at the readable region and
    consume whole frames; a decoder that finds only part of a frame consumes nothing (the
    seed's half-packet rule), so the buffer is transactional by construction.

    >>> buf = Buffer(b"\\x0csmart")
    >>> len(buf), bytes(buf)
    (6, b'\\x0csmart')
    >>> buf.extend(b"-socket")
    >>> buf.take(1), buf.take(12)
    (b'\\x0c', b'smart-socket')
    """

    __slots__ = ("_base", "_batch", "_data", "_end", "_hint", "_start")

    def __init__(self, data: BytesLike = b"") -> None:
        self._data = bytearray(data)
        self._start = 0
        self._end = len(self._data)
        #: absolute stream offset of ``_data[0]``
        self._base = 0
        #: pre-decoded messages owned by one codec (see codec._codec); None when empty
        self._batch: Any = None
        #: a framing's progress on the frame at the front: (owner, absolute start, state)
        self._hint: Any = None

    # -- reading side -------------------------------------------------------------------
    def __len__(self) -> int:
        return self._end - self._start

    def __bool__(self) -> bool:
        return self._end > self._start

    def __bytes__(self) -> bytes:
        return bytes(self._data[self._start : self._end])

    def __repr__(self) -> str:
        n = self._end - self._start
        head = bytes(self._data[self._start : self._start + 16]).hex(" ")
        more = " ..." if n > 16 else ""
        return f"<Buffer {n} bytes at offset {self.offset}: {head}{more}>"

    @property
    def offset(self) -> int:
        """Absolute stream offset of the first readable byte (bytes consumed so far)."""
        return self._base + self._start

    def view(self) -> memoryview:
        """The readable bytes as a read-only memoryview, without copying.

        The view reflects the buffer at the time of the call. Release it (``view.release()``
        or ``with buf.view() as v:``) once done: while it is alive the buffer cannot grow in
        place, and the next :meth:`extend` has to move the data to new storage.
        """
        with memoryview(self._data) as whole:
            return whole[self._start : self._end].toreadonly()

    def peek(self, n: int = -1) -> bytes:
        """Copy of the first ``n`` readable bytes (all of them when ``n`` is negative)."""
        end = self._end if n < 0 else min(self._end, self._start + n)
        return bytes(self._data[self._start : end])

    def find(self, sub: bytes, start: int = 0) -> int:
        """Index of ``sub`` in the readable bytes at or after ``start``, or -1."""
        i = self._data.find(sub, self._start + start, self._end)
        return i - self._start if i >= 0 else -1

    def consume(self, n: int) -> None:
        """Drop ``n`` readable bytes from the front (``ValueError`` if fewer are readable)."""
        if n < 0 or n > self._end - self._start:
            raise ValueError(f"cannot consume {n} bytes from a buffer holding {len(self)}")
        self._batch = None
        self._advance(self._start + n)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` readable bytes."""
        start = self._start
        if n < 0 or n > self._end - start:
            raise ValueError(f"cannot take {n} bytes from a buffer holding {len(self)}")
        out = bytes(self._data[start : start + n])
        self._batch = None
        self._advance(start + n)
        return out

    def clear(self) -> None:
        """Drop every readable byte."""
        self._batch = None
        self._advance(self._end)

    def trim(self, limit: int) -> None:
        """Give the storage of an empty buffer back when it is larger than ``limit`` bytes
        (a read loop whose reads shrank, or after a large frame); a no-op otherwise."""
        if self._start == self._end and len(self._data) > limit:
            self._base += self._end
            self._start = self._end = 0
            self._batch = None
            self._data = bytearray()

    def _advance(self, new_start: int) -> None:
        if new_start >= self._end:
            # Empty: rewind to the front instead of moving anything.
            self._base += self._end
            self._start = self._end = 0
            if len(self._data) > _SHRINK_ABOVE:
                self._data = bytearray()
        else:
            self._start = new_start

    # -- writing side -------------------------------------------------------------------
    def extend(self, data: BytesLike) -> None:
        """Append received bytes (``bytes``, ``bytearray``, ``memoryview``...)."""
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if not n:
            return
        if self._start == self._end and self._start:
            # emptied by a decoder that moved _start itself (batch hand-out): rewind
            self._base += self._start
            self._start = self._end = 0
        end = self._end
        store = self._data
        try:
            if end == len(store):
                if self._start >= _COMPACT_MIN and self._start >= (end >> 1):
                    self._compact()
                    end = self._end
                    store = self._data
                    store[end:] = data
                else:
                    store += data
            else:
                # Reserved or rewound slack past _end: overwrite it (growing if needed).
                store[end : end + n] = data
        except BufferError:
            # Someone still holds a view of the storage: move to fresh storage instead.
            self._data = bytearray(store[self._start : end])
            self._base += self._start
            self._start = 0
            self._data += data
            self._end = len(self._data)
            return
        self._end = end + n

    def reserve(self, n: int) -> memoryview:
        """Writable space for at least ``n`` bytes after the readable ones, for reads that
        fill the buffer directly (``sock.recv_into``, asyncio's ``BufferedProtocol``).

        Write into the returned view, release it, then call :meth:`commit` with the count
        written. Nothing becomes readable until then.
        """
        if n <= 0:
            raise ValueError("reserve() needs a positive size")
        if self._start == self._end and self._start:
            self._base += self._start
            self._start = self._end = 0
        if self._start and self._start >= ((self._end + n) >> 1):
            self._compact()
        need = self._end + n
        if len(self._data) < need:
            try:
                self._data.extend(bytes(need - len(self._data)))
            except BufferError:
                self._data = bytearray(self._data[: self._end])
                self._data.extend(bytes(need - len(self._data)))
        with memoryview(self._data) as whole:
            return whole[self._end :]

    def read_space(self, size: int, shrink_above: int | None = None) -> memoryview:
        """Writable space for one read of up to ``size`` bytes: :meth:`reserve` with a read
        loop's common case first, for ``BufferedProtocol.get_buffer`` (called once per
        read). An emptied buffer takes the read at its front, in the storage it already
        has — given back first when it is larger than ``shrink_above`` bytes — without
        growing or zero-filling anything. The view may be larger than ``size``; commit
        what was written with :meth:`commit`."""
        if self._start == self._end:
            data = self._data
            if len(data) >= size:
                if shrink_above is not None and len(data) > shrink_above:
                    data = self._data = bytearray(size)
                self._base += self._start
                self._start = self._end = 0
                return memoryview(data)
        return self.reserve(size)

    def commit(self, n: int) -> None:
        """Make ``n`` bytes written into the last :meth:`reserve` view readable."""
        if n < 0 or self._end + n > len(self._data):
            room = len(self._data) - self._end
            raise ValueError(f"cannot commit {n} bytes: only {room} reserved")
        self._end += n

    def _compact(self) -> None:
        """Move the readable bytes to the front; only called when that is amortised."""
        start, end = self._start, self._end
        try:
            # same-length slice assignment: the storage keeps its size (and its capacity),
            # so the next reserve() need not allocate and zero-fill it again
            if end - start <= start:
                # source and target do not overlap (the usual case: callers compact when
                # the dead prefix is about half the storage): copy from a view of the
                # storage itself, without a temporary as large as the live bytes
                with memoryview(self._data) as whole:
                    self._data[: end - start] = whole[start:end]
            else:
                self._data[: end - start] = self._data[start:end]
        except BufferError:
            self._data = bytearray(self._data[start:end])
        self._base += start
        self._start = 0
        self._end = end - start
        batch = self._batch
        if batch is not None:
            # a codec's pre-decoded batch: (owner, [end, value, end, value, ...], half_end)
            # with storage offsets at even indices of the stack and in half_end (the end of
            # the buffer when its tail was found to be a half packet, or -1): they move
            # with the data
            owner, stack, half_end = batch
            for i in range(0, len(stack), 2):
                stack[i] -= start
            self._batch = (owner, stack, half_end - start if half_end >= 0 else -1)
