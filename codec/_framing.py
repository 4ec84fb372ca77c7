"""How frames are delimited in a byte stream.

A :class:`Framing` answers one question about the bytes at the front of a buffer: how long
is the frame that starts here? It reads only what it needs (a length field, a delimiter
search that resumes where it stopped) so that finding a frame costs O(its header), not
O(its body), and it refuses a frame longer than ``max_frame_size`` as soon as the length
is known.

Framings are inferred from the schema (:func:`codec._analysis.infer_framing`) or given
explicitly for what no schema expresses, with Netty's vocabulary:

* :class:`LengthField` - Netty's ``LengthFieldBasedFrameDecoder`` (offset, length,
  adjustment, bytes to strip, byte order);
* :class:`Delimiter` - ``DelimiterBasedFrameDecoder`` (one or more delimiters, stripped or
  kept, bounded by ``max_frame_size``);
* :class:`FixedLength` - ``FixedLengthFrameDecoder``.

With an explicit framing the schema parses the frame's *payload* (after stripping), and
``encode`` adds the framing around ``schema.build(value)``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

import construct as cs

from ._errors import FOREIGN_DECODE_ERRORS, DecodeError, EncodeError, FrameTooLarge, as_decode_error
from ._trial import GreedySchemaError, NeedMore, TrialStream

if TYPE_CHECKING:
    from ._buffer import Buffer

__all__ = [
    "Delimiter",
    "FixedLength",
    "Framing",
    "LengthField",
    "TrialParse",
    "VarIntLength",
]

ByteOrder = Literal["big", "little"]


class Framing:
    """Base class: measures the frame at the front of a buffer.

    Subclasses implement :meth:`measure`; an explicit framing also implements
    :meth:`frame` (for encoding) and :meth:`payload` (what the schema parses).
    """

    #: short description of where the framing came from, shown in ``repr``
    origin: str = ""

    def check(self, max_frame_size: int) -> None:
        """Reject at construction a framing that can never fit ``max_frame_size``."""

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        """Length of the frame starting at ``data[start]`` when known (even if not all of it
        has arrived), else ``-need``: the frame needs at least ``need`` bytes before its
        length can be known. Raises :class:`FrameTooLarge` / :class:`DecodeError`.
        """
        raise NotImplementedError

    def payload(self, data: bytearray, start: int, size: int) -> tuple[int, int]:
        """Bounds, in the buffer's storage, of the bytes the schema parses."""
        return start, start + size

    def frame(self, payload: bytes, max_frame_size: int) -> bytes:
        """Wrap an encoded payload in this framing (explicit framings only)."""
        return payload

    def _with_origin(self, text: str) -> str:
        return f"{text} inferred from {self.origin}" if self.origin else text


# -- fixed length --------------------------------------------------------------------------
class FixedLength(Framing):
    """Every frame is exactly ``size`` bytes (Netty's ``FixedLengthFrameDecoder``)."""

    def __init__(self, size: int) -> None:
        if size <= 0:
            raise ValueError("FixedLength needs a positive size")
        self.size = size

    def __repr__(self) -> str:
        return self._with_origin(f"FixedLength({self.size})")

    def check(self, max_frame_size: int) -> None:
        if self.size > max_frame_size:
            raise ValueError(f"fixed frames of {self.size} bytes exceed max_frame_size")

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        return self.size

    def frame(self, payload: bytes, max_frame_size: int) -> bytes:
        if len(payload) != self.size:
            raise EncodeError(f"encoded {len(payload)} bytes; FixedLength needs {self.size}")
        return payload


class _StrippedHeader(Framing):
    """A framing whose first ``strip`` bytes (its header) are not part of the payload."""

    strip = 0

    def payload(self, data: bytearray, start: int, size: int) -> tuple[int, int]:
        return start + self.strip, start + size


# -- length field --------------------------------------------------------------------------
_UNSIGNED = {1: "B", 2: "H", 4: "I", 8: "Q"}


class LengthField(_StrippedHeader):
    """A length field somewhere in a fixed header (Netty's ``LengthFieldBasedFrameDecoder``).

    The frame is ``offset + length + value + adjustment`` bytes long, where ``value`` is the
    integer in the ``length`` bytes found ``offset`` bytes into the frame; ``strip`` bytes are
    removed from the front before the schema parses the rest.

    Args:
        offset: where the length field starts.
        length: its width in bytes (1 to 8).
        adjustment: added to the value to get the bytes after the field (``-length`` when the
            value counts the field itself, ``-(offset + length)`` when it counts the header).
        strip: bytes removed from the front of each frame before parsing.
        byteorder: ``"big"`` (network order, the default) or ``"little"``.
        signed: whether the field is a signed integer (a negative length is an error).
    """

    def __init__(
        self,
        offset: int = 0,
        length: int = 4,
        *,
        adjustment: int = 0,
        strip: int = 0,
        byteorder: ByteOrder = "big",
        signed: bool = False,
    ) -> None:
        if offset < 0 or not 1 <= length <= 8:
            raise ValueError("LengthField needs offset >= 0 and 1 <= length <= 8")
        if strip < 0:
            raise ValueError("strip must be >= 0")
        if byteorder not in ("big", "little"):
            raise ValueError("byteorder must be 'big' or 'little'")
        self.offset = offset
        self.length = length
        self.adjustment = adjustment
        self.strip = strip
        self.byteorder: ByteOrder = byteorder
        self.signed = signed
        self.header = offset + length
        code = _UNSIGNED.get(length)
        #: ``unpack_from(data, pos) -> (value,)`` reading the length field when it is 1, 2, 4
        #: or 8 bytes wide (a ``struct`` format), else ``None``; generated batch functions
        #: (:mod:`codec._batch`) call it directly
        self.unpack_from: Callable[..., tuple[int]] | None = None
        if code is not None:
            fmt = (">" if byteorder == "big" else "<") + (code.lower() if signed else code)
            self.unpack_from = struct.Struct(fmt).unpack_from

    def __repr__(self) -> str:
        parts = [f"offset={self.offset}", f"length={self.length}"]
        if self.adjustment:
            parts.append(f"adjustment={self.adjustment}")
        if self.strip:
            parts.append(f"strip={self.strip}")
        parts.append(f"byteorder={self.byteorder!r}")
        if self.signed:
            parts.append("signed=True")
        return self._with_origin(f"LengthField({', '.join(parts)})")

    def check(self, max_frame_size: int) -> None:
        if self.header > max_frame_size:
            raise ValueError("the length field's header alone exceeds max_frame_size")

    def value_at(self, data: bytearray, pos: int) -> int:
        if self.unpack_from is not None:
            return self.unpack_from(data, pos)[0]
        return int.from_bytes(data[pos : pos + self.length], self.byteorder, signed=self.signed)

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        header = self.header
        if end - start < header:
            return -header
        value = self.value_at(data, start + self.offset)
        size = header + value + self.adjustment
        if size < max(header, self.strip):
            raise DecodeError(
                f"length field value {value} gives a frame of {size} bytes, "
                f"shorter than its {max(header, self.strip)}-byte header",
                offset=buf.base + start,
                data=data[start : start + header],
            )
        if size > max_frame_size:
            raise FrameTooLarge(
                size, max_frame_size, offset=buf.base + start, data=data[start : start + header]
            )
        return size

    def frame(self, payload: bytes, max_frame_size: int) -> bytes:
        if self.strip == 0:
            return _check_size(payload, max_frame_size)
        if self.offset != 0 or self.strip != self.length:
            raise EncodeError(
                "cannot encode with this LengthField: only a stripped length field at offset 0 "
                "(strip == length) can be prepended; otherwise let the schema build the header"
            )
        value = len(payload) - self.adjustment
        try:
            head = value.to_bytes(self.length, self.byteorder, signed=self.signed)
        except OverflowError as exc:
            raise EncodeError(
                f"payload of {len(payload)} bytes does not fit a {self.length}-byte length field"
            ) from exc
        return _check_size(head + payload, max_frame_size)


def _check_size(frame: bytes, max_frame_size: int) -> bytes:
    if len(frame) > max_frame_size:
        raise EncodeError(f"encoded frame of {len(frame)} bytes exceeds {max_frame_size=}")
    return frame


# -- VarInt length -------------------------------------------------------------------------
class VarIntLength(_StrippedHeader):
    """A base-128 little-endian VarInt length prefix (construct's ``VarInt``, protobuf's
    varint), optionally after a fixed ``offset``; frame = offset + varint + value + adjustment.
    """

    #: longest VarInt accepted (10 bytes hold any 64-bit value)
    MAX_BYTES = 10

    def __init__(self, offset: int = 0, *, adjustment: int = 0, strip: int = 0) -> None:
        self.offset = offset
        self.adjustment = adjustment
        self.strip = strip

    def __repr__(self) -> str:
        parts = [f"offset={self.offset}"] if self.offset else []
        if self.adjustment:
            parts.append(f"adjustment={self.adjustment}")
        if self.strip:
            parts.append(f"strip={self.strip}")
        return self._with_origin(f"VarIntLength({', '.join(parts)})")

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        pos = start + self.offset
        value = 0
        shift = 0
        limit = min(end, pos + self.MAX_BYTES)
        while pos < limit:
            b = data[pos]
            value |= (b & 0x7F) << shift
            pos += 1
            if not b & 0x80:
                break
            shift += 7
        else:
            if pos - start - self.offset >= self.MAX_BYTES:
                raise DecodeError(
                    f"VarInt length longer than {self.MAX_BYTES} bytes",
                    offset=buf.base + start,
                    data=data[start:pos],
                )
            return -(pos - start + 1)
        size = (pos - start) + value + self.adjustment
        if size > max_frame_size:
            raise FrameTooLarge(size, max_frame_size, offset=buf.base + start, data=data[start:pos])
        if size < pos - start:
            raise DecodeError(
                f"VarInt length {value} gives a negative body",
                offset=buf.base + start,
                data=data[start:pos],
            )
        return size

    def frame(self, payload: bytes, max_frame_size: int) -> bytes:
        if self.strip == 0:
            return _check_size(payload, max_frame_size)
        if self.offset != 0:
            raise EncodeError("cannot prepend a VarInt length after other header bytes")
        value = len(payload) - self.adjustment
        out = bytearray()
        while True:
            b = value & 0x7F
            value >>= 7
            if value:
                out.append(b | 0x80)
            else:
                out.append(b)
                break
        if len(out) != self.strip:
            raise EncodeError(
                "VarIntLength(strip=N) can only encode when the VarInt is N bytes long; "
                "use strip=0 and let the schema build the length"
            )
        return _check_size(bytes(out) + payload, max_frame_size)


# -- delimiter -----------------------------------------------------------------------------
class Delimiter(Framing):
    """Frames end with a delimiter (Netty's ``DelimiterBasedFrameDecoder``).

    Args:
        *delimiters: one or more non-empty byte strings; the earliest match ends the frame.
        strip: remove the delimiter from what the schema parses (default), or keep it.

    The search resumes where the previous one stopped, so a long frame arriving in small
    pieces is scanned once; ``max_frame_size`` bytes without a delimiter raise
    :class:`FrameTooLarge`.
    """

    def __init__(self, *delimiters: bytes, strip: bool = True) -> None:
        if not delimiters or not all(isinstance(d, bytes) and d for d in delimiters):
            raise ValueError("Delimiter needs one or more non-empty bytes delimiters")
        self.delimiters = delimiters
        self.strip = strip
        self._longest = max(len(d) for d in delimiters)

    def __repr__(self) -> str:
        dl = ", ".join(repr(d) for d in self.delimiters)
        return self._with_origin(f"Delimiter({dl}, strip={self.strip})")

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:
        hint = buf.hint
        origin = buf.base + start
        scan_from = start
        if hint is not None and hint[0] is self and hint[1] == origin:
            scan_from = max(start, start + hint[2] - self._longest + 1)
        limit = min(end, start + max_frame_size)
        best = -1
        best_at = limit
        for d in self.delimiters:
            i = data.find(d, scan_from, limit)
            if 0 <= i < best_at or (i == best_at and i + len(d) > best):
                best_at = i
                best = i + len(d)
        if best >= 0:
            if buf.hint is not None and buf.hint[0] is self:
                buf.hint = None
            return best - start
        if end - start >= max_frame_size:
            raise FrameTooLarge(None, max_frame_size, offset=origin, data=data[start : start + 64])
        buf.hint = (self, origin, end - start)
        return -(end - start + 1)

    def payload(self, data: bytearray, start: int, size: int) -> tuple[int, int]:
        end = start + size
        if not self.strip:
            return start, end
        # the longest delimiter ending the frame is the one that matched (earliest start)
        cut = max(len(d) for d in self.delimiters if data.endswith(d, start, end))
        return start, end - cut

    def frame(self, payload: bytes, max_frame_size: int) -> bytes:
        if not self.strip:
            return _check_size(payload, max_frame_size)
        d = self.delimiters[0]
        if d in payload:
            raise EncodeError(f"payload contains the delimiter {d!r}")
        return _check_size(payload + d, max_frame_size)


# -- trial parse ---------------------------------------------------------------------------
class TrialParse(Framing):
    """The general fallback: run the schema's parser on the bytes received so far.

    Used when the analysis cannot see where a frame ends without parsing it. Still linear in
    the sense that matters: after a half packet the parser is not run again until the bytes
    it was known to lack have arrived.
    """

    def __init__(self, reason: str = "") -> None:
        self.reason = reason

    def __repr__(self) -> str:
        why = f" ({self.reason})" if self.reason else ""
        return self._with_origin(f"TrialParse{why}")

    def measure(
        self, data: bytearray, start: int, end: int, max_frame_size: int, buf: Buffer
    ) -> int:  # pragma: no cover - the codec calls trial() instead
        raise NotImplementedError

    def trial(self, owner: object, buf: Buffer, parse: Callable[[bytes], Any]) -> tuple[Any, int]:
        """Parse the frame at the front of ``buf``: ``(value, size)`` or ``(None, -1)``."""
        data = buf.storage
        start = buf.start
        end = buf.end
        origin = buf.base + start
        hint = buf.hint
        if hint is not None and hint[0] is owner and hint[1] == origin and end - start < hint[2]:
            return None, -1
        max_frame_size: int = owner.max_frame_size  # type: ignore[attr-defined]
        stream = TrialStream(bytes(data[start : min(end, start + max_frame_size)]))
        schema = owner.schema  # type: ignore[attr-defined]
        try:
            value = schema._parsereport(stream, parse_context(), "(parsing)")
        except cs.CancelParsing:
            value = None
        except NeedMore as more:
            need = more.need
            if need > max_frame_size:
                raise FrameTooLarge(
                    None, max_frame_size, offset=origin, data=data[start : start + 64]
                ) from None
            buf.hint = (owner, origin, need)
            return None, -1
        except GreedySchemaError:
            raise DecodeError(
                "the schema reads to the end of the stream, so it cannot delimit frames; "
                "wrap it in Prefixed/FixedSized or give an explicit framing",
                offset=origin,
                data=data[start : start + 64],
            ) from None
        except FOREIGN_DECODE_ERRORS as exc:
            raise as_decode_error(exc, offset=origin, data=data[start:end]) from exc
        size = stream.tell()
        if size == 0:  # pragma: no cover - infer_framing rejects such schemas up front
            raise DecodeError(
                "the schema consumed no bytes: it cannot delimit frames",
                offset=origin,
                data=data[start : start + 64],
            )
        if buf.hint is not None and buf.hint[0] is owner:
            buf.hint = None
        return value, size


def parse_context(*, building: bool = False) -> Any:
    """The context construct's ``parse_stream`` (or ``build_stream``) starts from."""
    # keys set as items, in construct's order: Container's attribute setter costs ~120 ns
    context = cs.Container(_parsing=not building, _building=building, _sizing=False)
    context["_params"] = context
    return context


def struct_context(parent: Any, subcons: Any, *, index: Any = None, building: bool = False) -> Any:
    """The context construct's ``Struct``/``Sequence`` gives its fields, under ``parent``.

    The codec rebuilds it wherever construct code or a callable needs one (measuring,
    fallback fields, expressions), so it must stay construct's to the key.
    """
    ctx = cs.Container(
        _=parent,
        _params=parent.get("_params"),
        _root=None,
        _parsing=not building,
        _building=building,
        _sizing=False,
        _subcons=subcons,
        _io=None,
        _index=index,
    )
    ctx["_root"] = parent.get("_root", ctx)
    return ctx
