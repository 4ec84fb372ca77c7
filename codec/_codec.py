"""``Codec``: a construct schema analysed once, then used as an incremental decoder/encoder."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

import construct as cs

from ._analysis import infer_framing
from ._buffer import Buffer, BytesLike
from ._compiler import compile_parser
from ._errors import (
    FOREIGN_DECODE_ERRORS,
    DecodeError,
    EncodeError,
    IncompleteFrame,
    as_decode_error,
    mapped_encode_errors,
)
from ._framing import Framing, TrialParse, parse_context

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "Codec", "Decoder"]

T = TypeVar("T")

#: default upper bound on one frame, header and body (1 MiB)
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024

#: most messages decoded ahead in one pass; more keeps enough containers alive to make the
#: cyclic GC run repeatedly during the batch
BATCH_LIMIT = 256


class Codec(Generic[T]):
    """A construct schema compiled into an incremental decoder and an encoder.

    Args:
        schema: the wire format of one message, as a construct ``Construct``.
        max_frame_size: largest frame accepted, header included; a longer one raises
            :class:`FrameTooLarge` as soon as its length is known, before it is buffered.
        framing: how frames are delimited. ``None`` (the default) infers it from the schema;
            pass a :class:`~codec.LengthField`, :class:`~codec.Delimiter` or
            :class:`~codec.FixedLength` when the frame boundary is not part of the schema
            (the schema then parses the frame's payload).
        fast: use the generated parser (the default). ``fast=False`` keeps the reference
            path: construct's own ``parse`` on each frame. Both return the same values.

    ``decode`` returns exactly what ``schema.parse(frame)`` returns for each frame; the codec
    is a faster, incremental way to run the schema, never a different parser.
    """

    def __init__(
        self,
        schema: cs.Construct,
        *,
        max_frame_size: int = DEFAULT_MAX_FRAME_SIZE,
        framing: Framing | None = None,
        fast: bool = True,
    ) -> None:
        if not isinstance(schema, cs.Construct):
            raise TypeError(f"schema must be a construct.Construct, not {type(schema).__name__}")
        if max_frame_size <= 0:
            raise ValueError("max_frame_size must be positive")
        self.schema = schema
        self.max_frame_size = max_frame_size
        explicit = framing is not None
        self.framing: Framing = framing if framing is not None else infer_framing(schema)
        self.framing.check(max_frame_size)
        self._explicit = explicit
        self._parse = schema.parse
        self._build = schema.build
        self.fast = fast and not isinstance(self.framing, TrialParse)
        self._frame_parser: Callable[[bytes, int, int], T] | None = None
        if self.fast:
            self._frame_parser = compile_parser(schema, exact=not explicit)
            # a plain function on the instance is cheaper to call than a bound method
            self.decode = self._make_fast_decode()  # type: ignore[method-assign,assignment]

    def __repr__(self) -> str:
        return (
            f"Codec({self.schema!r}, framing={self.framing!r}, "
            f"max_frame_size={self.max_frame_size})"
        )

    # -- decoding -----------------------------------------------------------------------
    def decode(self, buf: Buffer) -> T | None:
        """Return the next message in ``buf`` and consume its bytes, or ``None``.

        ``None`` means a half packet: nothing is consumed. Each call returns at most one
        message (sticky packets come out one per call). Malformed bytes raise
        :class:`DecodeError` and leave the buffer untouched; when the bad frame's extent is
        known, the error's ``frame_size`` says how many bytes to consume to skip it.
        """
        start = buf._start
        end = buf._end
        if start == end:
            return None
        framing = self.framing
        data = buf._data
        if isinstance(framing, TrialParse):
            value, size = framing.trial(self, buf, self._parse)
            if size < 0:
                return None
            buf._batch = None
            buf._advance(start + size)
            return value  # type: ignore[no-any-return]
        size = framing.measure(data, start, end, self.max_frame_size, buf)
        if size < 0 or size > end - start:
            return None
        lo, hi = framing.payload(data, start, size)
        frame = bytes(data[lo:hi])
        try:
            value = self._parse(frame) if self._explicit else self._parse_exact(frame)
        except FOREIGN_DECODE_ERRORS as exc:
            err = as_decode_error(exc, offset=buf._base + start, data=data[start : start + size])
            err.frame_size = size
            raise err from exc
        buf._batch = None
        buf._advance(start + size)
        return value

    def _make_fast_decode(self) -> Callable[[Buffer], T | None]:
        """``decode`` over batches: the first call decodes every complete frame in the
        buffer (up to :data:`BATCH_LIMIT`) in one pass over one ``bytes`` snapshot; the
        following calls hand them out one per call.

        What a caller can observe is unchanged: one message per call, ``len(buf)`` counts
        only bytes not handed out, a half-packet tail is untouched, an error is raised at
        the bad frame after every good one before it came out, and the batch belongs to
        this codec and this buffer position only (anything else consuming from the buffer
        discards it).
        """
        fill = self._fill
        owner = self

        def decode(buf: Buffer) -> T | None:
            b = buf._batch
            if b is not None and b[0] is owner and b[1] == buf._start:
                i = b[2]
                end = b[4][i]
                value: T = b[3][i]
                i += 1
                if i < b[5]:
                    b[1] = end
                    b[2] = i
                else:
                    buf._batch = None
                buf._start = end
                return value
            return fill(buf)

        return decode

    def _fill(self, buf: Buffer) -> T | None:
        start = buf._start
        end = buf._end
        if start == end:
            return None
        data = buf._data
        framing = self.framing
        limit = self.max_frame_size
        ends: list[int] = []
        error: DecodeError | None = None
        pos = start
        try:
            while pos < end and len(ends) < BATCH_LIMIT:
                size = framing.measure(data, pos, end, limit, buf)
                if size < 0 or size > end - pos:
                    break
                pos += size
                ends.append(pos)
        except DecodeError as exc:
            if not ends:
                raise
            error = exc
        if not ends:
            return None
        snap = bytes(data[start:pos])
        parse = self._frame_parser
        assert parse is not None
        payload = framing.payload
        values: list[T] = []
        lo = 0
        for e in ends:
            rel_end = e - start
            a, b = payload(data, lo + start, rel_end - lo)
            try:
                values.append(parse(snap, a - start, b - start))
            except FOREIGN_DECODE_ERRORS as exc:
                err = as_decode_error(exc, offset=buf._base + start + lo, data=snap[lo:rel_end])
                err.frame_size = rel_end - lo
                if not values:
                    raise err from exc
                error = err
                break
            lo = rel_end
        del error  # raised again, at its frame, by the call that reaches it
        n = len(values)
        first = ends[0]
        if n > 1:
            buf._batch = [self, first, 1, values, ends, n]
        else:
            buf._batch = None
        buf._start = first
        return values[0]

    def _parse_exact(self, frame: bytes) -> T:
        """``schema.parse(frame)``, checking that the schema consumed the whole frame.

        The framing measured the frame; the schema must agree, or the stream would lose
        sync silently. A disagreement is reported as a :class:`DecodeError`.
        """
        stream = io.BytesIO(frame)
        try:
            value: T = self.schema._parsereport(stream, parse_context(), "(parsing)")
        except cs.CancelParsing:
            return None  # type: ignore[return-value]
        used = stream.tell()
        if used != len(frame):
            raise DecodeError(
                f"the framing measured a {len(frame)}-byte frame but the schema consumed {used}"
            )
        return value

    def decode_all(self, data: BytesLike) -> list[T]:
        """Decode a whole byte string into its messages.

        Raises :class:`IncompleteFrame` when the data ends inside a frame, and
        :class:`DecodeError` on malformed bytes (the messages decoded before it are on the
        error's ``messages`` attribute).
        """
        buf = Buffer(data)
        out: list[T] = []
        decode = self.decode
        try:
            while True:
                msg = decode(buf)
                if msg is None:
                    break
                out.append(msg)
        except DecodeError as exc:
            exc.messages = out
            raise
        if buf:
            tail = IncompleteFrame(
                f"data ends inside a frame ({len(buf)} bytes left over)",
                offset=buf.offset,
                data=buf.peek(64),
            )
            tail.messages = out
            raise tail
        return out

    def decoder(self) -> Decoder[T]:
        """A stateful decoder over its own :class:`Buffer`: ``feed`` bytes, get messages."""
        return Decoder(self)

    # -- encoding -----------------------------------------------------------------------
    def encode(self, msg: T) -> bytes:
        """The bytes of one message: ``schema.build(msg)`` (framed, for explicit framings).

        Raises :class:`EncodeError` on a value the schema cannot build, naming the field.
        """
        with mapped_encode_errors():
            payload: bytes = self._build(msg)
        if self._explicit:
            return self.framing.frame(payload, self.max_frame_size)
        if len(payload) > self.max_frame_size:
            limit = self.max_frame_size
            raise EncodeError(f"encoded frame of {len(payload)} bytes exceeds {limit=}")
        return payload

    def encode_into(self, msg: T, out: bytearray) -> None:
        """Append the bytes of one message to ``out``."""
        out += self.encode(msg)


class Decoder(Generic[T]):
    """Feed bytes as they arrive; iterate over the complete messages.

    ``feed`` appends at once and returns an iterator that decodes lazily: messages not
    iterated stay buffered and come out of the next ``feed``. A malformed frame raises
    :class:`DecodeError` from the iterator after every good message before it came out.
    """

    def __init__(self, codec: Codec[T]) -> None:
        self.codec = codec
        self.buffer = Buffer()

    def feed(self, data: BytesLike) -> Iterator[T]:
        """Append ``data`` and iterate over every complete message buffered so far."""
        self.buffer.extend(data)
        return self._drain()

    def _drain(self) -> Iterator[T]:
        decode = self.codec.decode
        buf = self.buffer
        while True:
            msg = decode(buf)
            if msg is None:
                return
            yield msg

    def __len__(self) -> int:
        """Bytes buffered but not yet decoded."""
        return len(self.buffer)

    def close(self) -> None:
        """Declare the end of the stream: :class:`IncompleteFrame` if a frame is cut off."""
        buf = self.buffer
        if buf:
            raise IncompleteFrame(
                f"stream ended inside a frame ({len(buf)} bytes buffered)",
                offset=buf.offset,
                data=buf.peek(64),
            )
