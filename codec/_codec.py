"""``Codec``: a construct schema analysed once, then used as an incremental decoder/encoder."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator
from typing import Any, Generic

import construct as cs

from ._analysis import infer_framing
from ._batch import HALF, FillFunction, _BadLength, compile_fill
from ._buffer import Buffer, BytesLike
from ._compiler import CompileError, _TooLarge
from ._encoder import Builder, blob_encode_into, compile_builder, compile_encode_into
from ._errors import (
    FOREIGN_DECODE_ERRORS,
    FOREIGN_ENCODE_ERRORS,
    DecodeError,
    EncodeError,
    FrameTooLarge,
    IncompleteFrame,
    as_decode_error,
    as_encode_error,
)
from ._framing import (
    FixedLength,
    Framing,
    LengthField,
    TrialParse,
    VarIntLength,
    parse_context,
)
from ._measure import Measured
from ._source import codec_source
from ._typevars import T

__all__ = ["DEFAULT_MAX_FRAME_SIZE", "Codec", "Decoder"]

#: default upper bound on one frame, header and body (1 MiB)
DEFAULT_MAX_FRAME_SIZE = 1024 * 1024


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
        plain: opt in to plain ``dict``/``list`` values where construct returns
            ``Container``/``ListContainer`` (cheaper to build; the same keys, order and
            items). Fields the generator leaves to construct keep construct's types.

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
        plain: bool = False,
    ) -> None:
        if not isinstance(schema, cs.Construct):
            raise TypeError(f"schema must be a construct.Construct, not {type(schema).__name__}")
        if max_frame_size <= 0:
            raise ValueError("max_frame_size must be positive")
        if plain and not fast:
            raise ValueError("plain=True needs the generated parser (fast=True)")
        self.schema = schema
        self.max_frame_size = max_frame_size
        explicit = framing is not None
        self.framing: Framing = framing if framing is not None else infer_framing(schema)
        self.framing.check(max_frame_size)
        #: whether ``framing`` was given (the schema parses each frame's payload and
        #: ``encode`` adds the framing) rather than inferred from the schema
        self.explicit = explicit
        self._parse = schema.parse
        self._build = schema.build
        self._builder: Builder | None = None
        self._build_note = "fast=False"  # why there is no builder, for source()
        if fast:
            try:
                self._builder = compile_builder(schema)
            except CompileError as exc:
                self._builder = None  # built by construct itself, whole (see _encoder)
                self._build_note = str(exc)
            else:
                self._build = _bytes_builder(self._builder)
                if not explicit:
                    self.encode_into = _fast_encode_into(  # type: ignore[method-assign,assignment]
                        schema, self._builder, max_frame_size
                    )
        self.fast = fast and not isinstance(self.framing, TrialParse)
        if plain and not self.fast:
            raise ValueError(f"plain=True is not available with {self.framing!r}")
        self.plain = plain
        self._batch_fill: FillFunction | None = None
        if self.fast:
            self._batch_fill = compile_fill(
                schema,
                self.framing,
                exact=not explicit,
                generic_measure=not isinstance(
                    self.framing, FixedLength | LengthField | VarIntLength | Measured
                ),
                plain=plain,
            )
            # a plain function on the instance is cheaper to call than a bound method
            self.decode = self._make_fast_decode()  # type: ignore[method-assign,assignment]
            self.decode_many = self._make_fast_decode_many()  # type: ignore[method-assign]

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
        start = buf.start
        end = buf.end
        if start == end:
            return None
        framing = self.framing
        data = buf.storage
        if isinstance(framing, TrialParse):
            value, size = framing.trial(self, buf, self._parse)
            if size < 0:
                return None
            buf.batch = None
            buf.consume_to(start + size)
            return value  # type: ignore[no-any-return]
        size = framing.measure(data, start, end, self.max_frame_size, buf)
        if size < 0 or size > end - start:
            return None
        lo, hi = framing.payload(data, start, size)
        frame = bytes(data[lo:hi])
        try:
            value = self._parse(frame) if self.explicit else self._parse_exact(frame)
        except FOREIGN_DECODE_ERRORS as exc:
            err = as_decode_error(exc, offset=buf.base + start, data=data[start : start + size])
            err.frame_size = size
            raise err from exc
        buf.batch = None
        buf.consume_to(start + size)
        return value

    def _make_fast_decode(self) -> Callable[[Buffer], T | None]:
        """``decode`` over batches: the first call decodes every complete frame in the
        buffer (up to ``BATCH_LIMIT``) in one generated pass; the following calls hand
        them out one per call.

        What a caller can observe is unchanged: one message per call, ``len(buf)`` counts
        only bytes not handed out, a half-packet tail is untouched, an error is raised at
        the bad frame after every good one before it came out, and the batch belongs to
        this codec only (anything else consuming from the buffer discards it).
        """
        batch = self._batch_fill
        assert batch is not None
        failed = self._batch_error
        owner = self

        def decode(buf: Buffer) -> T | None:
            b = buf.batch
            if b is not None and b[0] is owner:
                stack = b[1]
                if stack:
                    value: T = stack.pop()
                    buf.start = stack.pop()
                    return value
                if b[2] == buf.end:
                    return None  # still the half packet the last pass stopped at
            start = buf.start
            end = buf.end
            if start == end:
                return None
            stack, failure = batch(buf.storage, start, end, owner.max_frame_size, buf)
            if failure is HALF:
                # remember it: until bytes arrive, decode answers None without a pass
                buf.batch = (owner, stack or [], end)
            elif not stack:
                if failure is not None:
                    raise failed(buf, *failure)
                buf.batch = None
                return None
            else:
                buf.batch = (owner, stack, -1)
            if not stack:
                return None
            value = stack.pop()
            buf.start = stack.pop()
            return value

        decode.__name__ = "decode"
        decode.__qualname__ = "Codec.decode"
        decode.__doc__ = Codec.decode.__doc__
        return decode

    def _make_fast_decode_many(self) -> Callable[..., list[T]]:
        """``decode_many`` straight over the batch passes: the messages of each pass are
        taken with one slice of the batch stack, never one ``decode`` call each."""
        batch = self._batch_fill
        assert batch is not None
        failed = self._batch_error
        owner = self

        def decode_many(buf: Buffer, limit: int | None = None) -> list[T]:
            b = buf.batch
            if (b is None or (b[0] is owner and not b[1])) and (limit is None or limit > 0):
                # the common case, first: nothing decoded ahead, and one pass takes every
                # complete message (or stops at a half packet) within the limit
                start = buf.start
                end = buf.end
                if start == end or (b is not None and b[2] == end):
                    return []  # (nothing new since the half packet the last pass stopped at)
                stack, failure = batch(buf.storage, start, end, owner.max_frame_size, buf)
                if not stack:
                    if failure is HALF:
                        buf.batch = (owner, [], end)  # (as below)
                        return []
                elif limit is None or len(stack) <= 2 * limit:
                    if failure is None:
                        if stack[0] == end:
                            buf.start = end
                            buf.batch = None
                            return stack[-1::-2]
                    elif failure is HALF:
                        # remember it: until bytes arrive, a pass would stop there again
                        buf.start = stack[0]
                        buf.batch = (owner, [], end)
                        return stack[-1::-2]
                return _decode_many(buf, limit, True, stack, failure)
            return _decode_many(buf, limit, False, None, None)

        def _decode_many(
            buf: Buffer, limit: int | None, passed: bool, stack: list[Any] | None, failure: Any
        ) -> list[T]:
            """The general case; ``passed``: ``stack, failure`` are a pass already made at
            the front of ``buf``."""
            out: list[T] = []
            want = -1 if limit is None else limit
            if want <= 0:
                if want < 0 and limit is not None:
                    raise ValueError("limit must be None or >= 0")
                if not want:
                    return out
            b = buf.batch
            if b is not None and b[0] is owner:
                if b[1]:
                    out, rest = _take(buf, b[1], want)
                    buf.batch = (owner, rest, b[2])
                    if rest or len(out) == want:
                        return out
                if b[2] == buf.end:
                    return out  # still the half packet the last pass stopped at
            while True:
                start = buf.start
                end = buf.end
                if start == end:
                    buf.batch = None
                    return out
                if not passed:
                    stack, failure = batch(buf.storage, start, end, owner.max_frame_size, buf)
                passed = False
                if not stack:
                    if failure is HALF:
                        buf.batch = (owner, [], end)
                        return out
                    buf.batch = None
                    if failure is None or out:
                        return out  # (a bad frame stays at the front for the next call)
                    raise failed(buf, *failure)
                values, rest = _take(buf, stack, want - len(out) if want >= 0 else -1)
                out += values
                if failure is HALF:
                    # remember it: until bytes arrive, a pass would stop at the same place
                    buf.batch = (owner, rest, end)
                    return out
                if rest:  # the limit was reached: the rest stays pre-decoded
                    buf.batch = (owner, rest, -1)
                    return out
                buf.batch = None
                if failure is not None or len(out) == want:
                    return out  # (a bad frame stays at the front for the next call)
                # the pass stopped at its batch or snapshot limit: go on

        decode_many.__name__ = "decode_many"
        decode_many.__qualname__ = "Codec.decode_many"
        decode_many.__doc__ = Codec.decode_many.__doc__
        return decode_many

    def _take_batch(self, buf: Buffer) -> list[T]:
        """Every message this codec already decoded ahead in ``buf``, consumed at once
        (one C-level slice instead of a call per message)."""
        b = buf.batch
        if b is None or b[0] is not self or not b[1]:
            return []
        stack = b[1]
        buf.batch = (self, [], b[2])
        buf.start = stack[0]
        values: list[T] = stack[-1::-2]
        return values

    def _batch_error(self, buf: Buffer, exc: BaseException, at: int) -> DecodeError:
        """The error a batch stopped at, as the :class:`DecodeError` ``decode`` raises."""
        data = buf.storage
        offset = buf.base + at
        if isinstance(exc, DecodeError):
            return exc
        size = -1
        if not isinstance(exc, _TooLarge | _BadLength):
            try:
                size = self.framing.measure(data, at, buf.end, self.max_frame_size, buf)
            except Exception:
                size = -1
        excerpt = data[at : min(buf.end, at + (size if size > 0 else 64))]
        if isinstance(exc, _TooLarge):
            known: int | None = exc.args[0] if exc.args else None
            return FrameTooLarge(known, self.max_frame_size, offset=offset, data=excerpt)
        if isinstance(exc, _BadLength):
            return DecodeError(
                "length field gives a frame shorter than its own header",
                offset=offset,
                data=excerpt,
            )
        err = as_decode_error(exc, offset=offset, data=excerpt)
        if size > 0:
            err.frame_size = size
        return err

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

    def decode_many(self, buf: Buffer, limit: int | None = None) -> list[T]:
        """Every complete message in ``buf`` (at most ``limit`` of them), in order,
        consuming their bytes.

        The bulk form of :meth:`decode` for read loops that handle a whole read at once
        (it skips the per-message call). A half-packet tail stays buffered, and so do the
        messages past ``limit``. A malformed frame after good ones stops the list there,
        with the bad frame left at the front of the buffer; :class:`DecodeError` is raised
        when the bad frame is the first. ``limit`` bounds how many decoded messages are
        alive at once (a read loop over a large buffer of tiny messages would otherwise
        hold thousands, and the cyclic garbage collector would run over them repeatedly).
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must be None or >= 0")
        out: list[T] = []
        decode = self.decode
        take = self._take_batch
        while limit is None or len(out) < limit:
            try:
                msg = decode(buf)
            except DecodeError:
                if out:
                    return out
                raise
            if msg is None:
                return out
            out.append(msg)
            if limit is None:
                out.extend(take(buf))
        return out

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
                out.extend(self._take_batch(buf))
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

    def source(self) -> str:
        """The Python source this codec generated for ``schema``: what the schema became.

        The batch decoder, the builder and ``encode_into``, each under a comment giving the
        pseudo file name it was compiled under (a traceback through generated code names
        that file and shows the line); a part that is not generated (``fast=False``, a
        schema only construct builds) is a comment saying what runs instead. The whole text
        is valid Python. ``wirekit show SCHEMA`` prints it.
        """
        return codec_source(self, self._batch_fill, self._builder, self._build_note)

    # -- encoding -----------------------------------------------------------------------
    def encode(self, msg: T) -> bytes:
        """The bytes of one message: ``schema.build(msg)`` (framed, for explicit framings).

        Raises :class:`EncodeError` on a value the schema cannot build, naming the field.
        """
        try:
            payload: bytes = self._build(msg)
        except FOREIGN_ENCODE_ERRORS as exc:
            raise as_encode_error(exc) from exc
        if self.explicit:
            return self.framing.frame(payload, self.max_frame_size)
        if len(payload) > self.max_frame_size:
            limit = self.max_frame_size
            raise EncodeError(f"encoded frame of {len(payload)} bytes exceeds {limit=}")
        return payload

    def encode_into(self, msg: T, out: bytearray) -> None:
        """Append the bytes of one message to ``out`` (nothing is appended on error)."""
        # A codec with a generated builder and inferred framing replaces this method on the
        # instance with a generated function (``_fast_encode_into``) that encodes in place,
        # behind a shortcut for a bytes body under an integer prefix (``blob_encode_into``).
        out += self.encode(msg)


def _take(buf: Buffer, stack: list[Any], room: int) -> tuple[list[Any], list[Any]]:
    """The first ``room`` messages of a batch stack (all of them when ``room`` is
    negative), consumed from ``buf``, and the part of the stack that stays.

    The stack is ``[end_n, value_n, ..., end_1, value_1]`` (see ``_batch``): the values
    come out of one slice, and the read position moves to the last taken frame's end."""
    n = len(stack)
    if room < 0 or 2 * room >= n:
        buf.start = stack[0]
        return stack[-1::-2], []
    cut = n - 2 * room
    buf.start = stack[cut]
    return stack[: cut - 1 : -2], stack[:cut]


def _fast_encode_into(
    schema: cs.Construct, builder: Builder, max_frame_size: int
) -> Callable[[object, bytearray], None]:
    """``Codec.encode_into`` for a generated builder: the builder's body inlined into one
    generated function where it can be (see ``compile_encode_into``), else a closure over
    it (called once per message sent: no attribute lookups, no branches on the codec's
    configuration); behind a shortcut for a bytes body under an integer length prefix
    (``blob_encode_into``)."""
    general = compile_encode_into(builder, max_frame_size)
    if general is None:

        def general(msg: object, out: bytearray) -> None:
            mark = len(out)
            try:
                builder(msg, out)
            except FOREIGN_ENCODE_ERRORS as exc:
                del out[mark:]
                raise as_encode_error(exc) from exc
            if len(out) - mark > max_frame_size:
                size = len(out) - mark
                del out[mark:]
                raise EncodeError(f"encoded frame of {size} bytes exceeds limit={max_frame_size}")

    encode_into = blob_encode_into(schema, general, max_frame_size) or general
    encode_into.__name__ = "encode_into"
    encode_into.__qualname__ = "Codec.encode_into"
    encode_into.__doc__ = Codec.encode_into.__doc__
    return encode_into


def _bytes_builder(builder: Builder) -> Callable[[object], bytes]:
    def build(msg: object) -> bytes:
        out = bytearray()
        builder(msg, out)
        return bytes(out)

    return build


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
        codec = self.codec
        decode = codec.decode
        buf = self.buffer
        while True:
            msg = decode(buf)
            if msg is None:
                return
            yield msg
            b = buf.batch
            if b is not None and b[0] is codec:
                # hand out the rest of the batch one by one, but without a call each: a
                # consumer that stops iterating leaves the rest buffered, as promised
                stack = b[1]
                while stack:
                    value = stack.pop()
                    buf.start = stack.pop()
                    yield value

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
