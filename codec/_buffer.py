"""A receive buffer whose every operation is amortised O(1) per byte.

Bytes arrive at the end (:meth:`Buffer.extend`, or :meth:`Buffer.reserve` +
:meth:`Buffer.commit` for engines that read straight into it) and decoders consume them from
the front. Consumed bytes are not moved on every consume: the read position advances, and the
storage is compacted only when the dead prefix is at least half the storage, so each byte is
copied a bounded number of times however the stream is chunked. This is the property that
keeps a 1 MiB frame arriving one byte at a time from costing a quadratic amount of copying
(h11 calls the alternative a denial-of-service hole).

The decoders of this package (the codec, its generated batch functions, the framings and
measurers) work on the storage itself, through the buffer's *internal seam*: the attributes
``storage``, ``start``, ``end``, ``base``, ``batch`` and ``hint`` and the method
:meth:`Buffer.consume_to` (see :class:`Buffer`). They are plain slots, not properties, so
on a hot path reading one costs no more than reading a private attribute; they are not for
applications, whose decoders use the methods above them.
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

    **Internal seam.** The codec's decoders (:mod:`codec._codec`, the generated batch
    functions of :mod:`codec._batch`, :mod:`codec._framing`, :mod:`codec._measure`) read
    and move the readable region directly, through the attributes below and
    :meth:`consume_to`. Application decoders use the methods above (:meth:`peek`,
    :meth:`take`, :meth:`consume`...); writing these attributes by hand can break the
    buffer's invariants (``0 <= start <= end <= len(storage)``).

    >>> buf = Buffer(b"abc")
    >>> buf.consume_to(buf.start + 1)
    >>> bytes(buf.storage[buf.start : buf.end]), buf.base + buf.start == buf.offset
    (b'bc', True)
    """

    __slots__ = ("base", "batch", "end", "hint", "start", "storage")

    def __init__(self, data: BytesLike = b"") -> None:
        #: the storage: the readable bytes are ``storage[start:end]``; bytes before
        #: ``start`` are consumed, bytes past ``end`` are reserved space (:meth:`reserve`).
        #: It may be replaced (compaction, growth under a view): read it afresh after
        #: :meth:`extend`, :meth:`reserve` or :meth:`consume_to`
        self.storage = bytearray(data)
        #: index in ``storage`` of the first readable byte. A codec handing out messages it
        #: decoded ahead moves it forward itself, to a frame end within ``[start, end]``
        self.start = 0
        #: index in ``storage`` just past the last readable byte
        self.end = len(self.storage)
        #: absolute stream offset of ``storage[0]`` (so :attr:`offset` is ``base + start``)
        self.base = 0
        #: messages one codec decoded ahead, ``None`` when there are none:
        #: ``(owner, stack, half_end)``, ``stack`` holding ``[end_n, value_n, ..., end_1,
        #: value_1]`` with storage indices (moved with the data by compaction), and
        #: ``half_end`` the ``end`` at which the tail was found to be a half packet (or -1).
        #: Every consuming method but :meth:`consume_to` drops it
        self.batch: Any = None
        #: a framing's progress on the incomplete frame at the front, so that measuring
        #: it again resumes: ``(owner, absolute start, state...)`` (the framing's own
        #: layout after the first two), ``None`` when none. The owner sets and clears it
        self.hint: Any = None

    # -- reading side -------------------------------------------------------------------
    def __len__(self) -> int:
        return self.end - self.start

    def __bool__(self) -> bool:
        return self.end > self.start

    def __bytes__(self) -> bytes:
        return bytes(self.storage[self.start : self.end])

    def __repr__(self) -> str:
        n = self.end - self.start
        head = bytes(self.storage[self.start : self.start + 16]).hex(" ")
        more = " ..." if n > 16 else ""
        return f"<Buffer {n} bytes at offset {self.offset}: {head}{more}>"

    @property
    def offset(self) -> int:
        """Absolute stream offset of the first readable byte (bytes consumed so far)."""
        return self.base + self.start

    def view(self) -> memoryview:
        """The readable bytes as a read-only memoryview, without copying.

        The view reflects the buffer at the time of the call. Release it (``view.release()``
        or ``with buf.view() as v:``) once done: while it is alive the buffer cannot grow in
        place, and the next :meth:`extend` has to move the data to new storage.
        """
        with memoryview(self.storage) as whole:
            return whole[self.start : self.end].toreadonly()

    def peek(self, n: int = -1) -> bytes:
        """Copy of the first ``n`` readable bytes (all of them when ``n`` is negative)."""
        end = self.end if n < 0 else min(self.end, self.start + n)
        return bytes(self.storage[self.start : end])

    def find(self, sub: bytes, start: int = 0) -> int:
        """Index of ``sub`` in the readable bytes at or after ``start``, or -1."""
        i = self.storage.find(sub, self.start + start, self.end)
        return i - self.start if i >= 0 else -1

    def consume(self, n: int) -> None:
        """Drop ``n`` readable bytes from the front (``ValueError`` if fewer are readable)."""
        if n < 0 or n > self.end - self.start:
            raise ValueError(f"cannot consume {n} bytes from a buffer holding {len(self)}")
        self.batch = None
        self.consume_to(self.start + n)

    def take(self, n: int) -> bytes:
        """Remove and return the first ``n`` readable bytes."""
        start = self.start
        if n < 0 or n > self.end - start:
            raise ValueError(f"cannot take {n} bytes from a buffer holding {len(self)}")
        out = bytes(self.storage[start : start + n])
        self.batch = None
        self.consume_to(start + n)
        return out

    def clear(self) -> None:
        """Drop every readable byte."""
        self.batch = None
        self.consume_to(self.end)

    def trim(self, limit: int) -> None:
        """Give the storage of an empty buffer back when it is larger than ``limit`` bytes
        (a read loop whose reads shrank, or after a large frame); a no-op otherwise."""
        if self.start == self.end and len(self.storage) > limit:
            self.base += self.end
            self.start = self.end = 0
            self.batch = None
            self.storage = bytearray()

    def consume_to(self, new_start: int) -> None:
        """Consume every readable byte before storage index ``new_start`` (``start <=
        new_start``; all of them when ``new_start >= end``). Internal seam: unchecked, and
        :attr:`batch` is left to the caller."""
        if new_start >= self.end:
            # Empty: rewind to the front instead of moving anything.
            self.base += self.end
            self.start = self.end = 0
            if len(self.storage) > _SHRINK_ABOVE:
                self.storage = bytearray()
        else:
            self.start = new_start

    # -- writing side -------------------------------------------------------------------
    def extend(self, data: BytesLike) -> None:
        """Append received bytes (``bytes``, ``bytearray``, ``memoryview``...)."""
        n = data.nbytes if isinstance(data, memoryview) else len(data)
        if not n:
            return
        if self.start == self.end and self.start:
            # emptied by a decoder that moved start itself (batch hand-out): rewind
            self.base += self.start
            self.start = self.end = 0
        end = self.end
        store = self.storage
        try:
            if end == len(store):
                if self.start >= _COMPACT_MIN and self.start >= (end >> 1):
                    self._compact()
                    end = self.end
                    store = self.storage
                    store[end:] = data
                else:
                    store += data
            else:
                # Reserved or rewound slack past end: overwrite it (growing if needed).
                store[end : end + n] = data
        except BufferError:
            # Someone still holds a view of the storage: move to fresh storage instead.
            self.storage = bytearray(store[self.start : end])
            self.base += self.start
            self.start = 0
            self.storage += data
            self.end = len(self.storage)
            return
        self.end = end + n

    def reserve(self, n: int) -> memoryview:
        """Writable space for at least ``n`` bytes after the readable ones, for reads that
        fill the buffer directly (``sock.recv_into``, asyncio's ``BufferedProtocol``).

        Write into the returned view, release it, then call :meth:`commit` with the count
        written. Nothing becomes readable until then.
        """
        if n <= 0:
            raise ValueError("reserve() needs a positive size")
        if self.start == self.end and self.start:
            self.base += self.start
            self.start = self.end = 0
        if self.start and self.start >= ((self.end + n) >> 1):
            self._compact()
        need = self.end + n
        if len(self.storage) < need:
            try:
                self.storage.extend(bytes(need - len(self.storage)))
            except BufferError:
                self.storage = bytearray(self.storage[: self.end])
                self.storage.extend(bytes(need - len(self.storage)))
        with memoryview(self.storage) as whole:
            return whole[self.end :]

    def read_space(self, size: int, shrink_above: int | None = None) -> memoryview:
        """Writable space for one read of up to ``size`` bytes: :meth:`reserve` with a read
        loop's common case first, for ``BufferedProtocol.get_buffer`` (called once per
        read). An emptied buffer takes the read at its front, in the storage it already
        has — given back first when it is larger than ``shrink_above`` bytes — without
        growing or zero-filling anything. The view may be larger than ``size``; commit
        what was written with :meth:`commit`."""
        if self.start == self.end:
            data = self.storage
            if len(data) >= size:
                if shrink_above is not None and len(data) > shrink_above:
                    data = self.storage = bytearray(size)
                self.base += self.start
                self.start = self.end = 0
                return memoryview(data)
        return self.reserve(size)

    def commit(self, n: int) -> None:
        """Make ``n`` bytes written into the last :meth:`reserve` view readable."""
        if n < 0 or self.end + n > len(self.storage):
            room = len(self.storage) - self.end
            raise ValueError(f"cannot commit {n} bytes: only {room} reserved")
        self.end += n

    def _compact(self) -> None:
        """Move the readable bytes to the front; only called when that is amortised."""
        start, end = self.start, self.end
        try:
            # same-length slice assignment: the storage keeps its size (and its capacity),
            # so the next reserve() need not allocate and zero-fill it again
            if end - start <= start:
                # source and target do not overlap (the usual case: callers compact when
                # the dead prefix is about half the storage): copy from a view of the
                # storage itself, without a temporary as large as the live bytes
                with memoryview(self.storage) as whole:
                    self.storage[: end - start] = whole[start:end]
            else:
                self.storage[: end - start] = self.storage[start:end]
        except BufferError:
            self.storage = bytearray(self.storage[start:end])
        self.base += start
        self.start = 0
        self.end = end - start
        batch = self.batch
        if batch is not None:
            # a codec's pre-decoded batch: (owner, [end, value, end, value, ...], half_end)
            # with storage offsets at even indices of the stack and in half_end (the end of
            # the buffer when its tail was found to be a half packet, or -1): they move
            # with the data
            owner, stack, half_end = batch
            for i in range(0, len(stack), 2):
                stack[i] -= start
            self.batch = (owner, stack, half_end - start if half_end >= 0 else -1)
