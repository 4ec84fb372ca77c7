"""The sans-I/O session core: bytes and EOF in; messages, state and bytes to write out.

Nothing here touches a socket or awaits. An I/O engine (``_anyio_engine``; later one on
asyncio's ``BufferedProtocol``) feeds received bytes with :meth:`SessionCore.receive_data`
(or :meth:`~SessionCore.get_buffer` + :meth:`~SessionCore.buffer_updated` to read straight
into the receive buffer), pulls messages with :meth:`~SessionCore.next_message`, queues
encoded replies with :meth:`~SessionCore.queue`, and takes everything queued in one piece
with :meth:`~SessionCore.data_to_send`, so one read batch costs one write.

The outgoing side keeps two water marks. ``pending`` counts bytes queued plus bytes handed
to the engine but not yet reported written; above ``high_water`` senders must wait, and they
may go on once ``pending`` is back at or below ``low_water``.
"""

from __future__ import annotations

from typing import Generic, TypeVar

from codec import Buffer, DecodeError, FrameTooLarge
from codec import Protocol as CodecProtocol

from ._state import SessionState, StateEvent, next_state

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LOW_WATER",
    "DEFAULT_READ_SIZE",
    "MIN_READ_SIZE",
    "ReadSizer",
    "SessionCore",
]

T = TypeVar("T")

#: pending output over which ``send`` waits; as large as the largest read by default, so
#: the replies to one read batch go out in one write (smaller marks split them: measured,
#: 4 KiB frames pipelined reached 0.55x a raw asyncio echo with 64 KiB, 0.75x with 256 KiB)
DEFAULT_HIGH_WATER = 256 * 1024
#: pending output under which waiting senders go on
DEFAULT_LOW_WATER = 64 * 1024

#: the largest read by default (``read_buffer_size``)
DEFAULT_READ_SIZE = 256 * 1024
#: where reads start, and the smallest they shrink to
INITIAL_READ_SIZE = 64 * 1024
MIN_READ_SIZE = 4 * 1024


class ReadSizer:
    """How many bytes to ask for in the next read, adapted to the traffic.

    The idea of Netty's ``AdaptiveRecvByteBufAllocator``, fast up and slow down: a read
    that fills all the space it was offered makes the next one four times larger, up to
    ``maximum``; two reads in a row that use at most a quarter of it halve it, down to
    ``minimum``. A bulk transfer then moves in few large reads (fewer system calls and loop
    iterations per byte: see ``docs/performance.md``), a burst after a quiet spell needs at
    most a few reads to get there, and a quiet connection asks for, and keeps, little.
    """

    __slots__ = ("maximum", "minimum", "size", "small_below", "small_reads")

    def __init__(
        self,
        maximum: int = DEFAULT_READ_SIZE,
        *,
        minimum: int = MIN_READ_SIZE,
        initial: int = INITIAL_READ_SIZE,
    ) -> None:
        if maximum <= 0 or minimum <= 0:
            raise ValueError("read sizes must be positive")
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        #: small reads in a row so far (two halve the size): a read loop that skips
        #: :meth:`record` for reads that change nothing must not skip while this counts
        self.small_reads = 0
        self._resize(max(self.minimum, min(initial, maximum)))

    def __repr__(self) -> str:
        return f"<ReadSizer {self.size} in [{self.minimum}, {self.maximum}]>"

    def _resize(self, size: int) -> None:
        #: the size of the next read
        self.size = size
        #: a read of fewer bytes counts as small (-1 at the minimum: nothing to count). A
        #: read loop calls :meth:`record` only for a read that fills its space, a small
        #: one, or while small ones are being counted: any other read changes nothing.
        self.small_below = size // 4 + 1 if size > self.minimum else -1

    def record(self, nbytes: int, offered: int) -> None:
        """A read returned ``nbytes`` into ``offered`` bytes of space."""
        if nbytes >= offered:
            self.small_reads = 0
            if self.size < self.maximum:
                self._resize(min(self.maximum, self.size * 4))
        elif nbytes < self.small_below:
            self.small_reads += 1
            if self.small_reads >= 2:
                self.small_reads = 0
                self._resize(max(self.minimum, self.size // 2))
        else:
            self.small_reads = 0


class SessionCore(Generic[T]):
    """One connection's protocol state, independent of any I/O library."""

    __slots__ = (
        "_ends",
        "_state",
        "aborted",
        "buffer",
        "bytes_received",
        "bytes_sent",
        "close_requested",
        "decode_function",
        "high_water",
        "inflight",
        "low_water",
        "max_buffered",
        "messages_dropped",
        "messages_received",
        "messages_sent",
        "out",
        "protocol",
        "reading",
        "writable",
    )

    def __init__(
        self,
        protocol: CodecProtocol[T],
        *,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        max_buffered: int | None = None,
        datagram: bool = False,
    ) -> None:
        if not 0 <= low_water <= high_water:
            raise ValueError("water marks need 0 <= low_water <= high_water")
        self.protocol = protocol
        #: the protocol's ``decode``, bound once (read by the session's batch loop)
        self.decode_function = protocol.decode
        self.buffer = Buffer()
        #: received bytes that may wait for a frame's end before a DecodeError (None: no cap)
        self.max_buffered = max_buffered
        self.high_water = high_water
        self.low_water = low_water
        #: the encoded bytes queued and not yet handed out (appended to in place: an encoder's
        #: ``encode_into`` may write here directly, see ``Session.send``)
        self.out = bytearray()
        #: datagram sessions only: where each queued message ends in :attr:`out`
        self._ends: list[int] | None = [] if datagram else None
        #: bytes handed to the engine by :meth:`data_to_send` and not yet reported written
        #: with :meth:`sent` (an attribute, not a property: read on every send)
        self.inflight = 0
        #: a close was asked for: read and process nothing more (set by the session, read
        #: by the engines on every read)
        self.close_requested = False
        #: pending output was dropped and no more is accepted (an abort)
        self.aborted = False
        self.state = SessionState.NEW
        self.bytes_received = 0
        self.bytes_sent = 0
        self.messages_received = 0
        #: messages a plugin's ``before_process`` kept from the processor (counted only
        #: then, so the messages handed to ``process`` cost no second counter)
        self.messages_dropped = 0
        self.messages_sent = 0

    # -- state ---------------------------------------------------------------------------
    @property
    def state(self) -> SessionState:
        return self._state

    @state.setter
    def state(self, state: SessionState) -> None:
        self._state = state
        #: whether input is still wanted (read on every batch: a plain attribute)
        self.reading = state is SessionState.OPEN
        #: whether :meth:`queue` is still allowed (read on every send: a plain attribute)
        self.writable = state in (SessionState.NEW, SessionState.OPEN, SessionState.INPUT_CLOSED)

    def fire(self, event: StateEvent) -> bool:
        """Apply ``event`` to the state; ``False`` means the event must not be delivered."""
        new = next_state(self.state, event)
        if new is None:
            return False
        self.state = new
        if new is SessionState.ABORTING:
            self.discard_output()
        return True

    # -- input ---------------------------------------------------------------------------
    def receive_data(self, data: bytes | bytearray | memoryview) -> None:
        """Append received bytes to the receive buffer."""
        self.buffer.extend(data)
        self.bytes_received += len(data)

    def get_buffer(self, size: int) -> memoryview:
        """Writable space for at least ``size`` bytes (``BufferedProtocol.get_buffer``)."""
        return self.buffer.reserve(size)

    def buffer_updated(self, nbytes: int) -> None:
        """``nbytes`` were written into the last :meth:`get_buffer` view."""
        self.buffer.commit(nbytes)
        self.bytes_received += nbytes

    def next_message(self) -> T | None:
        """The next complete message, or ``None`` until more bytes arrive.

        Raises :class:`codec.DecodeError` on malformed bytes, and :class:`FrameTooLarge`
        when more than ``max_buffered`` bytes wait without completing a message (a cap on
        half packets that holds for hand-written protocols too).
        """
        try:
            msg = self.decode_function(self.buffer)
        except Exception as exc:
            raise self.decode_error(exc) from None
        if msg is None:
            err = self.half_packet_error()
            if err is not None:
                raise err
            return None
        self.messages_received += 1
        return msg

    def decode_error(self, exc: Exception) -> DecodeError:
        """What the protocol's ``decode`` raising ``exc`` means: a :class:`DecodeError`
        (a foreign exception from a hand-written decoder broke the contract and is wrapped,
        with ``exc`` as its cause)."""
        if isinstance(exc, DecodeError):
            return exc
        err = DecodeError(f"{type(exc).__name__}: {exc}", offset=self.buffer.offset)
        err.__cause__ = exc
        return err

    def half_packet_error(self) -> FrameTooLarge | None:
        """After ``decode`` returned ``None``: the error when more than ``max_buffered``
        bytes wait without completing a message, else ``None``."""
        if self.max_buffered is not None and len(self.buffer) > self.max_buffered:
            return FrameTooLarge(
                None, self.max_buffered, offset=self.buffer.offset, data=self.buffer.peek(32)
            )
        return None

    # -- output --------------------------------------------------------------------------
    def queue(self, data: bytes | bytearray) -> bool:
        """Append one encoded message to the outgoing bytes; ``True`` when pending output is
        now over the high-water mark (:attr:`over_high_water`)."""
        out = self.out
        out += data
        if self._ends is not None:
            self._ends.append(len(out))
        self.messages_sent += 1
        return len(out) + self.inflight > self.high_water

    @property
    def has_output(self) -> bool:
        """Whether :meth:`data_to_send` has anything."""
        return len(self.out) > 0

    @property
    def pending(self) -> int:
        """Bytes queued or being written."""
        return len(self.out) + self.inflight

    @property
    def over_high_water(self) -> bool:
        return len(self.out) + self.inflight > self.high_water

    @property
    def under_low_water(self) -> bool:
        return len(self.out) + self.inflight <= self.low_water

    def data_to_send(self) -> bytearray:
        """Everything queued, in one piece; it counts as pending until :meth:`sent`.

        The piece is never touched again by the core (a fresh buffer takes its place), so a
        transport may keep a reference to it instead of copying."""
        data = self.out
        self.out = bytearray()
        self.inflight += len(data)
        if self._ends is not None:
            self._ends.clear()
        return data

    def parts_to_send(self) -> list[bytes]:
        """Everything queued, one encoded message per item (for datagram engines, which must
        not split a message; needs ``datagram=True``); it counts as pending until
        :meth:`sent`."""
        ends = self._ends
        if ends is None:
            raise RuntimeError("parts_to_send needs a datagram session core")
        data = self.out
        view = memoryview(data)
        parts = []
        start = 0
        for end in ends:
            parts.append(bytes(view[start:end]))
            start = end
        view.release()
        ends.clear()
        self.out = bytearray()
        self.inflight += len(data)
        return parts

    def sent(self, nbytes: int) -> None:
        """The engine wrote ``nbytes`` handed out by :meth:`data_to_send`."""
        self.inflight -= nbytes
        self.bytes_sent += nbytes

    def discard_output(self) -> None:
        """Drop everything pending (an abort)."""
        self.out = bytearray()
        if self._ends is not None:
            self._ends.clear()
        self.inflight = 0
