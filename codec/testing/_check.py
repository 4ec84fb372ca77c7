"""``check_codec``: every property a decoder owes its callers, in one call.

The properties (names as they appear in failure messages):

``round-trip``
    ``decode(Buffer(encode(v)))`` gives back ``v``, consuming the whole frame; for a
    :class:`~codec.Codec`, exactly what ``schema.parse`` gives for that frame, type for type.
``half-packet``
    every proper prefix of a frame gives ``None`` and leaves the buffer untouched.
``chunking``
    a stream of several frames, cut anywhere and fed chunk by chunk, gives the same messages,
    one per call, each call consuming exactly its frame; no ``None`` while a whole frame is
    buffered (sticky packets).
``garbage``
    random bytes, cut anywhere, give messages or ``None`` or :class:`~codec.DecodeError`,
    never another exception, and every call that returns a message consumes bytes.
``mutation``
    the same for valid frames truncated, bit-flipped, spliced or with huge length fields.
``bounded-memory``
    a frame whose length field says "huge", followed by a flood of bytes, raises
    ``DecodeError`` (``FrameTooLarge``) before more than ``max_frame_size`` bytes are held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, cast

import hypothesis
from hypothesis import HealthCheck, assume, given
from hypothesis import strategies as st

from .._buffer import Buffer
from .._codec import DEFAULT_MAX_FRAME_SIZE, Codec
from .._errors import DecodeError, EncodeError
from .._protocol import Protocol
from ._chunking import chunked
from ._compare import strict_difference, value_difference
from ._mutations import huge_lengths, mutated
from ._strategies import from_schema

__all__ = ["PROPERTIES", "CheckFailure", "check_codec"]

PROPERTIES = ("round-trip", "half-packet", "chunking", "bounded-memory", "garbage", "mutation")

#: examples per property when neither ``max_examples`` nor ``settings`` says otherwise
DEFAULT_MAX_EXAMPLES = 50
#: longest random byte string the garbage property feeds
GARBAGE_BYTES = 512
#: proper prefixes tried exhaustively up to this frame length, sampled above it
ALL_PREFIXES_UP_TO = 512
#: messages after which a flooded decoder counts as making progress (not hoarding bytes)
FLOOD_MESSAGES = 16
#: hex shown in a failure message
SHOW_BYTES = 256


#: random bytes, half of them small: small values make plausible lengths and counts, so
#: length-prefixed decoders get past their header into the body often enough
_GARBAGE = st.lists(st.integers(0, 255) | st.integers(0, 16), max_size=GARBAGE_BYTES).map(bytes)


#: what ``untrusted_call`` returns after a DecodeError
_STOP = object()


class CheckFailure(AssertionError):
    """A property of :func:`check_codec` does not hold; ``property`` names which."""

    def __init__(self, prop: str, protocol: object, what: str, details: dict[str, str]) -> None:
        self.property = prop
        self.what = what
        self.details = details
        lines = [f"check_codec: property {prop!r} failed for {protocol!r}", f"  {what}"]
        lines += [f"  {k}: {v}" for k, v in details.items()]
        super().__init__("\n".join(lines))


def _hex(data: bytes) -> str:
    text = data[:SHOW_BYTES].hex(" ")
    if len(data) > SHOW_BYTES:
        text += f" ... (+{len(data) - SHOW_BYTES} bytes)"
    return f"({len(data)} bytes) {text or '<empty>'}"


def _exc_name(exc: BaseException) -> str:
    cls = type(exc)
    return (
        cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"
    )


def _show(x: Any) -> str:
    text = repr(x)
    return text if len(text) <= 300 else text[:300] + "..."


def _chunks(chunks: Sequence[bytes]) -> str:
    sizes = [len(c) for c in chunks]
    if len(sizes) > 40:
        return f"{len(sizes)} chunks of sizes {sizes[:40]}..."
    return f"{len(sizes)} chunks of sizes {sizes}"


class _Shown:
    """How a protocol is named in failure messages: its repr, or its class when the repr
    is the default ``<module.Class object at 0x...>``."""

    def __init__(self, protocol: object) -> None:
        self.protocol = protocol

    def __repr__(self) -> str:
        text = repr(self.protocol)
        if " object at 0x" in text:
            return type(self.protocol).__qualname__
        return text


class _Checker:
    def __init__(
        self,
        make: Callable[[], Protocol[Any]],
        shown: object,
        values: st.SearchStrategy[Any],
        limit: int,
    ) -> None:
        self.make = make
        self.shown = shown
        self.values = values
        self.limit = limit

    # -- helpers -------------------------------------------------------------------------
    def fail(self, prop: str, what: str, **details: Any) -> None:
        raise CheckFailure(prop, self.shown, what, {k: str(v) for k, v in details.items()})

    def encode(self, prop: str, proto: Protocol[Any], value: Any) -> bytes:
        try:
            frame = proto.encode(value)
        except EncodeError as exc:
            if isinstance(proto, Codec) and "exceeds" in str(exc):
                assume(False)  # a drawn value larger than max_frame_size: not an example
            self.fail(prop, f"encode raised {exc!r} on a value to check", value=_show(value))
            raise  # pragma: no cover
        except Exception as exc:
            self.fail(prop, f"encode raised {exc!r}", value=_show(value))
            raise  # pragma: no cover
        if type(frame) is not bytes:
            self.fail(prop, f"encode returned {type(frame).__name__}, expected bytes", value=value)
        if not frame:
            self.fail(
                prop, "encode returned no bytes: an empty frame cannot be delimited", value=value
            )
        return frame

    def decode(self, prop: str, proto: Protocol[Any], buf: Buffer, **details: Any) -> Any:
        """One decode call; only ``DecodeError`` may escape (the caller decides on it)."""
        try:
            return proto.decode(buf)
        except DecodeError:
            raise
        except Exception as exc:
            self.fail(
                prop,
                f"decode raised {_exc_name(exc)}: {exc} "
                "(only DecodeError and its subclasses may escape decode)",
                **details,
            )

    def reference(self, proto: Protocol[Any], frame: bytes) -> Any:
        """What ``schema.parse`` gives for a Codec's frame (raises what parse raises)."""
        assert isinstance(proto, Codec)
        lo, hi = proto.framing.payload(bytearray(frame), 0, len(frame))
        return proto.schema.parse(frame[lo:hi])

    def compare(
        self, prop: str, proto: Protocol[Any], value: Any, got: Any, frame: bytes, **d: Any
    ) -> None:
        diff = value_difference(value, got)
        if diff:
            self.fail(
                prop,
                f"decoded message differs from the encoded value: {diff}",
                frame=_hex(frame),
                expected=_show(value),
                got=_show(got),
                **d,
            )
        if isinstance(proto, Codec):
            try:
                ref = self.reference(proto, frame)
            except Exception as exc:
                self.fail(
                    prop,
                    f"schema.parse cannot parse the frame encode made: {exc!r} "
                    "(the schema does not round-trip this value)",
                    frame=_hex(frame),
                    value=_show(value),
                )
            diff = strict_difference(ref, got)
            if diff:
                self.fail(
                    prop,
                    f"decode differs from schema.parse of the same frame: {diff}",
                    frame=_hex(frame),
                    expected=_show(ref),
                    got=_show(got),
                    **d,
                )

    # -- properties ----------------------------------------------------------------------
    def round_trip(self, value: Any) -> None:
        prop = "round-trip"
        proto = self.make()
        frame = self.encode(prop, proto, value)
        buf = Buffer(frame)
        try:
            got = self.decode(prop, proto, buf, frame=_hex(frame), value=_show(value))
        except DecodeError as exc:
            self.fail(
                prop,
                f"decode raised {exc!r} on a valid frame",
                frame=_hex(frame),
                value=_show(value),
            )
        if got is None:
            self.fail(
                prop,
                "decode returned None on a whole frame",
                frame=_hex(frame),
                value=_show(value),
                buffered=len(buf),
            )
        if len(buf):
            self.fail(
                prop,
                f"decode consumed {len(frame) - len(buf)} bytes of a {len(frame)}-byte frame",
                frame=_hex(frame),
                value=_show(value),
                got=_show(got),
            )
        self.compare(prop, proto, value, got, frame)
        after = {"frame": _hex(frame), "call": "#2, on the buffer emptied by call #1"}
        try:
            again = self.decode(prop, proto, buf, **after)
        except DecodeError as exc:
            self.fail(prop, f"decode raised {exc!r} on an empty buffer", **after)
        if again is not None:
            self.fail(prop, f"decode returned {_show(again)} from an empty buffer", **after)

    def half_packet(self, value: Any) -> None:
        prop = "half-packet"
        proto = self.make()
        frame = self.encode(prop, proto, value)
        n = len(frame)
        cuts: Iterable[int] = range(n)
        if n > ALL_PREFIXES_UP_TO:
            step = n // 64
            cuts = sorted({*range(64), *range(n - 64, n), *range(0, n, step)})
        for cut in cuts:
            prefix = frame[:cut]
            buf = Buffer(prefix)
            details = {"frame": _hex(frame), "prefix": f"the first {cut} of {n} bytes"}
            try:
                got = self.decode(prop, proto, buf, **details)
            except DecodeError as exc:
                self.fail(
                    prop, f"decode raised {exc!r} on a half packet (it must return None)", **details
                )
            if got is not None:
                self.fail(
                    prop,
                    f"decode returned {_show(got)} from a half packet (expected None)",
                    **details,
                )
            if len(buf) != cut or bytes(buf) != prefix:
                self.fail(
                    prop,
                    f"decode returned None but consumed {cut - len(buf)} bytes of a "
                    "half packet (it must leave the buffer untouched)",
                    **details,
                )

    def chunking(self, values: list[Any], data: st.DataObject) -> None:
        prop = "chunking"
        proto = self.make()
        frames = [self.encode(prop, proto, v) for v in values]
        stream = b"".join(frames)
        chunks = data.draw(chunked(stream), label="chunks")
        bounds = [len(f) for f in frames]
        buf = Buffer()
        idx = 0
        calls = 0
        for chunk in chunks:
            buf.extend(chunk)
            while True:
                before = len(buf)
                calls += 1
                details = {
                    "stream": _hex(stream),
                    "frames": f"{len(frames)} frames of sizes {bounds}",
                    "chunking": _chunks(chunks),
                    "call": f"#{calls}, {before} bytes buffered",
                }
                try:
                    got = self.decode(prop, proto, buf, **details)
                except DecodeError as exc:
                    self.fail(prop, f"decode raised {exc!r} on a stream of valid frames", **details)
                if got is None:
                    if len(buf) != before:
                        self.fail(
                            prop,
                            f"decode returned None but consumed {before - len(buf)} bytes",
                            **details,
                        )
                    if idx < len(frames) and before >= bounds[idx]:
                        self.fail(
                            prop,
                            f"decode returned None although frame #{idx} "
                            f"({bounds[idx]} bytes) was whole in the buffer: sticky packets "
                            "must come out one per call",
                            **details,
                        )
                    break
                consumed = before - len(buf)
                if idx >= len(frames):
                    self.fail(
                        prop,
                        f"decode returned a message beyond the last frame: {_show(got)}",
                        **details,
                    )
                if consumed != bounds[idx]:
                    self.fail(
                        prop,
                        f"decode returned message #{idx} but consumed {consumed} bytes; "
                        f"frame #{idx} is {bounds[idx]} bytes (one message per call, "
                        "exactly its frame)",
                        got=_show(got),
                        **details,
                    )
                self.compare(prop, proto, values[idx], got, frames[idx], **details)
                idx += 1
        if idx != len(frames) or len(buf):
            self.fail(
                prop,
                f"{idx} of {len(frames)} messages came out; {len(buf)} bytes left",
                stream=_hex(stream),
                chunking=_chunks(chunks),
            )

    def untrusted_call(
        self, prop: str, proto: Protocol[Any], buf: Buffer, details: dict[str, Any]
    ) -> Any:
        """One ``decode`` call on bytes that may be malformed. Returns the message, ``None``
        for a half packet (checked to consume nothing and hold no more than the limit), or
        ``_STOP`` after a DecodeError (the end of the stream for these properties); a
        message that consumed nothing fails the property."""
        before = len(buf)
        try:
            got = self.decode(prop, proto, buf, **details)
        except DecodeError:
            return _STOP
        if got is None:
            if len(buf) != before:
                self.fail(
                    prop, f"decode returned None but consumed {before - len(buf)} bytes", **details
                )
            self.check_limit(prop, buf, **details)
            return None
        if len(buf) >= before:
            self.fail(
                prop,
                f"decode returned {_show(got)} without consuming any bytes: a "
                "caller looping on decode would never stop",
                **details,
            )
        return got

    def untrusted(
        self, prop: str, proto: Protocol[Any], stream: bytes, chunks: Sequence[bytes], **info: Any
    ) -> None:
        """Feed bytes that may be malformed: only messages, None or DecodeError may come out."""
        buf = Buffer()
        calls = 0
        for chunk in chunks:
            buf.extend(chunk)
            while True:
                before = len(buf)
                start = buf.offset
                calls += 1
                details = {
                    **info,
                    "stream": _hex(stream),
                    "chunking": _chunks(chunks),
                    "call": f"#{calls}, {before} bytes buffered",
                }
                got = self.untrusted_call(prop, proto, buf, details)
                if got is _STOP:
                    return
                if got is None:
                    break
                consumed = before - len(buf)
                if isinstance(proto, Codec):
                    frame = stream[start : start + consumed]
                    try:
                        ref = self.reference(proto, frame)
                    except Exception as exc:
                        self.fail(
                            prop,
                            f"decode returned {_show(got)} from bytes that "
                            f"schema.parse rejects ({exc!r})",
                            frame=_hex(frame),
                            **details,
                        )
                    diff = strict_difference(ref, got)
                    if diff:
                        self.fail(
                            prop,
                            f"decode differs from schema.parse of the same frame: {diff}",
                            frame=_hex(frame),
                            **details,
                        )

    def check_limit(self, prop: str, buf: Buffer, **details: Any) -> None:
        if len(buf) > self.limit:
            self.fail(
                prop,
                f"decode returned None while holding {len(buf)} bytes, more than "
                f"max_frame_size={self.limit}: a frame that cannot fit must raise "
                "DecodeError (FrameTooLarge) as soon as its length is known, not be "
                "buffered without bound",
                **details,
            )

    def garbage(self, raw: bytes, data: st.DataObject) -> None:
        chunks = data.draw(chunked(raw), label="chunks")
        self.untrusted("garbage", self.make(), raw, chunks)

    def mutation(self, values: list[Any], data: st.DataObject) -> None:
        prop = "mutation"
        proto = self.make()
        frames = [self.encode(prop, proto, v) for v in values]
        m = data.draw(mutated(frames[0]), label="mutation")
        stream = m.data + b"".join(frames[1:])
        chunks = data.draw(chunked(stream), label="chunks")
        self.untrusted(prop, proto, stream, chunks, mutation=str(m), original=_hex(frames[0]))

    def bounded_memory(self, value: Any, data: st.DataObject) -> None:
        prop = "bounded-memory"
        proto = self.make()
        frame = self.encode(prop, proto, value)
        m = data.draw(huge_lengths(frame), label="mutation")
        fill = data.draw(st.sampled_from([0xFF, 0x00, 0x41, 0x80]), label="flood byte")
        step = self.limit // 2 + 1
        buf = Buffer(m.data)
        fed = len(m.data)
        messages = 0
        while fed <= 2 * self.limit + len(frame) + step:
            details = {
                "frame": _hex(frame),
                "mutation": str(m),
                "flood": f"{fed - len(m.data)} bytes of {fill:#04x} fed after it "
                f"in chunks of {step}",
            }
            while True:
                got = self.untrusted_call(prop, proto, buf, details)
                if got is _STOP:
                    return
                if got is None:
                    break
                messages += 1
                if messages >= FLOOD_MESSAGES:
                    return  # it makes progress through the flood: not hoarding
            buf.extend(bytes([fill]) * step)
            fed += step


def check_codec(
    protocol: Protocol[Any] | Callable[[], Protocol[Any]],
    values: st.SearchStrategy[Any] | Iterable[Any] | None = None,
    *,
    max_frame_size: int | None = None,
    max_examples: int | None = None,
    settings: hypothesis.settings | None = None,
    properties: Iterable[str] = PROPERTIES,
) -> None:
    """Fuzz a decoder/encoder pair: run every property in :data:`PROPERTIES` with hypothesis.

    Args:
        protocol: a :class:`~codec.Codec`, any object with ``decode(buf)``/``encode(msg)``
            (a hand-written :class:`~codec.Protocol`), or a zero-argument factory of one
            (for a decoder that keeps state, so that each example starts afresh).
        values: the messages to encode: a hypothesis strategy or an iterable of samples.
            For a Codec, defaults to ``from_schema(codec.schema)``.
        max_frame_size: the largest frame the decoder should hold; default: the protocol's
            ``max_frame_size`` attribute, else ``codec.DEFAULT_MAX_FRAME_SIZE``.
        max_examples: examples per property (default: the current hypothesis profile's,
            at most 50).
        settings: hypothesis settings to start from (``max_examples`` still applies).
        properties: a subset of :data:`PROPERTIES` to run.

    Raises:
        CheckFailure: (an ``AssertionError``) naming the property that does not hold, with
            the input bytes in hex, the chunking, and what was expected against what came.
    """
    make: Callable[[], Protocol[Any]]
    if (
        not isinstance(protocol, type)
        and hasattr(protocol, "decode")
        and hasattr(protocol, "encode")
    ):
        instance = cast("Protocol[Any]", protocol)

        def make() -> Protocol[Any]:
            return instance

    elif callable(protocol):
        make = protocol
    else:
        raise TypeError(f"{protocol!r} is not a Protocol (no decode/encode methods)")
    sample = make()
    if not (hasattr(sample, "decode") and hasattr(sample, "encode")):
        raise TypeError(f"{protocol!r}() made {sample!r}, which has no decode/encode")
    shown = _Shown(sample)

    strategy = _values_strategy(sample, values)
    limit = (
        max_frame_size if max_frame_size is not None else getattr(sample, "max_frame_size", None)
    )
    if not isinstance(limit, int) or limit <= 0:
        limit = DEFAULT_MAX_FRAME_SIZE
    checker = _Checker(make, shown, strategy, limit)

    base = settings if settings is not None else hypothesis.settings(database=None)
    n = max_examples
    if n is None:
        n = (
            base.max_examples
            if settings is not None
            else min(base.max_examples, DEFAULT_MAX_EXAMPLES)
        )
    suppressed = [
        *base.suppress_health_check,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.large_base_example,
    ]
    conf = hypothesis.settings(
        base,
        max_examples=n,
        deadline=None,
        suppress_health_check=suppressed,
        report_multiple_bugs=False,  # one CheckFailure (an AssertionError), not a group
        print_blob=False,  # @reproduce_failure cannot decorate check_codec's inner tests
        # the "explain" phase re-runs a failure hundreds of times to annotate it; the
        # failure message already says what matters
        phases=[p for p in base.phases if p is not hypothesis.Phase.explain],
    )
    few = hypothesis.settings(conf, max_examples=max(1, n // 10))
    several = st.lists(strategy, min_size=1, max_size=4)

    runs: dict[str, Callable[[], None]] = {
        "round-trip": conf(given(strategy)(checker.round_trip)),
        "half-packet": conf(given(strategy)(checker.half_packet)),
        "chunking": conf(given(several, st.data())(checker.chunking)),
        "garbage": conf(given(_GARBAGE, st.data())(checker.garbage)),
        "mutation": conf(given(several, st.data())(checker.mutation)),
        "bounded-memory": few(given(strategy, st.data())(checker.bounded_memory)),
    }
    chosen = list(properties)
    unknown = [p for p in chosen if p not in runs]
    if unknown:
        raise ValueError(f"unknown properties {unknown}; choose from {list(PROPERTIES)}")
    for name in chosen:
        runs[name]()


def _values_strategy(protocol: object, values: Any) -> st.SearchStrategy[Any]:
    if values is None:
        if isinstance(protocol, Codec):
            return from_schema(protocol.schema)
        raise TypeError(
            "check_codec needs values= (a strategy or sample messages) for a protocol that is "
            "not a Codec; for a construct schema, values=from_schema(schema)"
        )
    if isinstance(values, st.SearchStrategy):
        return values
    samples = list(values)
    if not samples:
        raise ValueError("values= is an empty iterable")
    return st.sampled_from(samples)
