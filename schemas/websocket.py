"""WebSocket frames (RFC 6455).

Specification: RFC 6455 *The WebSocket Protocol*, section 5.2 (base framing: FIN, RSV1-3,
the 4-bit opcode, the MASK bit, a 7-bit payload length extended to 16 or 64 bits, the
masking key, the payload), 5.3 (client-to-server masking), 5.4 (fragmentation), 5.5 (control
frames: close, ping, pong), 7.4 (close status codes) and 4.2.2 (the server's handshake
answer, ``Sec-WebSocket-Accept``).

:data:`FRAME` is one frame. Its ``payload`` is the *unmasked* application data: a masked
frame's bytes are XORed with its ``mask`` while parsing and again while building (section
5.3), so the codec's result equals ``FRAME.parse`` and a user never sees masked bytes.
Build frames with :func:`frame`, which fills in the length fields. ``length`` is the payload
length, whichever of the three encodings carried it.

The parse refuses what section 5.2 forbids whatever the extensions: a length not encoded
in the fewest bytes ("the minimal number of bytes MUST be used"), a 64-bit length with its
most significant bit set, and a control frame (opcode 8 or more) that is fragmented or
longer than 125 bytes (section 5.5). Reserved opcodes and RSV bits are decoded as they come
(``opcode`` is then a plain integer): only the endpoint knows which extensions it agreed to,
so refusing them is its job (the example server fails the connection with 1002).

A WebSocket connection starts with an HTTP/1.1 upgrade (section 4), not with a frame.
:class:`UpgradeStream` is a ready :class:`codec.Protocol` for that: the HTTP head is the
stream's first message, every later message is a frame. ``wirekit parse
schemas.websocket:STREAM capture.pcap`` decodes a captured connection from its first byte.
"""

from __future__ import annotations

import base64
import enum
import hashlib
from dataclasses import dataclass
from typing import Any

import construct as cs
from construct import this

from codec import Buffer, Codec, DecodeError, FrameTooLarge

__all__ = [
    "CLOSE_BODY",
    "CODEC",
    "FRAME",
    "GUID",
    "HEADER",
    "MAX_HEAD_SIZE",
    "OPCODE",
    "STREAM",
    "CloseCode",
    "HttpHead",
    "UpgradeStream",
    "accept_key",
    "close_payload",
    "codec",
    "frame",
    "is_control",
    "mask_bytes",
    "parse_close",
]

#: section 1.3: the GUID appended to Sec-WebSocket-Key before hashing (section 4.2.2)
GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

#: section 5.2: the opcodes RFC 6455 defines; 3-7 and 0xB-0xF are reserved
OPCODE = cs.Enum(
    cs.Nibble,
    CONTINUATION=0x0,
    TEXT=0x1,
    BINARY=0x2,
    CLOSE=0x8,
    PING=0x9,
    PONG=0xA,
)


class CloseCode(enum.IntEnum):
    """Section 7.4.1: the defined status codes of a close frame."""

    NORMAL = 1000
    GOING_AWAY = 1001
    PROTOCOL_ERROR = 1002
    UNSUPPORTED_DATA = 1003
    NO_STATUS = 1005  # never sent: "no status code was present"
    ABNORMAL = 1006  # never sent: the connection closed without a close frame
    INVALID_DATA = 1007  # e.g. a text message that is not UTF-8
    POLICY_VIOLATION = 1008
    MESSAGE_TOO_BIG = 1009
    MANDATORY_EXTENSION = 1010
    INTERNAL_ERROR = 1011


#: the first two bytes of every frame (section 5.2)
HEADER = cs.BitStruct(
    "fin" / cs.Flag,
    "rsv1" / cs.Flag,
    "rsv2" / cs.Flag,
    "rsv3" / cs.Flag,
    "opcode" / OPCODE,
    "masked" / cs.Flag,
    "length7" / cs.BitsInteger(7),
)


def mask_bytes(data: bytes, key: bytes | None) -> bytes:
    """Section 5.3: XOR ``data`` with the 4-byte ``key`` repeated (its own inverse).

    Done on one big integer rather than byte by byte: a 1 MiB payload takes about a
    millisecond instead of a second in a Python loop.
    """
    n = len(data)
    if not key or not n:
        return bytes(data)
    stream = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(stream, "big")).to_bytes(n, "big")


class _Masked(cs.Adapter):  # type: ignore[misc]
    """The payload as the application sent it: unmasked with the frame's ``mask`` (or as is
    when the frame carries none), masked again when built."""

    def _decode(self, obj: bytes, context: Any, path: str) -> bytes:
        return mask_bytes(obj, context.mask)

    def _encode(self, obj: bytes, context: Any, path: str) -> bytes:
        return mask_bytes(obj, context.mask)


class _Rule(cs.Check):  # type: ignore[misc]
    """A ``Check`` whose failure says which rule of the specification the bytes broke."""

    def __init__(self, func: Any, message: str) -> None:
        super().__init__(func)
        self.message = message

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        if not cs.evaluate(self.func, context):
            raise cs.CheckError(self.message, path=path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> None:
        if not cs.evaluate(self.func, context):
            raise cs.CheckError(self.message, path=path)


def _opcode_int(op: Any) -> int:
    """The opcode's number, whether construct parsed its name (``EnumIntegerString``, whose
    ``int()`` is the number), a reserved value (a plain integer), or a name being built."""
    if isinstance(op, cs.EnumIntegerString):
        return int(op)
    if isinstance(op, str):
        return int(OPCODE.encmapping.get(op, -1))
    return int(op)


def is_control(opcode: Any) -> bool:
    """Section 5.5: opcodes 0x8-0xF are control frames."""
    return _opcode_int(opcode) >= 0x8


def _payload_length(ctx: Any) -> int:
    n7: int = ctx.header.length7
    return int(ctx.extended_length) if n7 >= 126 else n7


def _minimal_length(ctx: Any) -> bool:
    n7, ext = ctx.header.length7, ctx.extended_length
    if n7 == 126:
        return bool(ext >= 126)
    if n7 == 127:
        return bool(0x10000 <= ext < 1 << 63)
    return True


def _control_ok(ctx: Any) -> bool:
    return not is_control(ctx.header.opcode) or (ctx.header.fin and ctx.header.length7 <= 125)


#: one frame (section 5.2)
FRAME = cs.Struct(
    "header" / HEADER,
    # The extended length: 2 bytes after 126, 8 bytes after 127, absent otherwise. Each case
    # repeats the field's name: construct ignores a case's own name, but the codec's
    # measurer (codec/_measure.py, SwitchStep) stores a Switch's value only under the name
    # of the case it walks, and "length" below needs it to size the payload.
    "extended_length"
    / cs.Switch(
        this.header.length7,
        {126: "extended_length" / cs.Int16ub, 127: "extended_length" / cs.Int64ub},
    ),
    "length" / cs.Computed(_payload_length),
    _Rule(
        _minimal_length,
        "RFC 6455 5.2: the payload length must use the fewest bytes, with the top bit clear",
    ),
    _Rule(_control_ok, "RFC 6455 5.5: a control frame must not be fragmented nor exceed 125 bytes"),
    "mask" / cs.If(this.header.masked, cs.Bytes(4)),
    "payload" / _Masked(cs.Bytes(this.length)),
)

#: the payload of a close frame (section 5.5.1): a status code, then a UTF-8 reason
CLOSE_BODY = cs.Struct("code" / cs.Int16ub, "reason" / cs.GreedyString("utf8"))

#: the frame header's most bytes: 2 + 8 (64-bit length) + 4 (masking key)
_MAX_HEADER = 14


def codec(max_payload: int = 1 << 20) -> Codec[cs.Container]:
    """A frame codec refusing frames whose payload exceeds ``max_payload`` bytes
    (``FrameTooLarge`` as soon as the header announces it, before the payload is buffered)."""
    return Codec(FRAME, max_frame_size=max_payload + _MAX_HEADER)


#: frames with payloads up to 1 MiB (the ``websockets`` library's default ``max_size``)
CODEC = codec()


def frame(
    opcode: str | int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    mask: bytes | None = None,
    rsv1: bool = False,
    rsv2: bool = False,
    rsv3: bool = False,
) -> cs.Container:
    """A frame value for :data:`FRAME` (or :data:`CODEC`), with its length fields filled in.

    ``opcode`` is a name (``"TEXT"``, ``"PING"``...) or a number; ``mask`` is the 4-byte
    masking key a client must use (section 5.3), ``None`` for a server's unmasked frame.
    """
    n = len(payload)
    n7 = n if n < 126 else 126 if n < 0x10000 else 127
    return cs.Container(
        header=cs.Container(
            fin=fin,
            rsv1=rsv1,
            rsv2=rsv2,
            rsv3=rsv3,
            opcode=opcode,
            masked=mask is not None,
            length7=n7,
        ),
        extended_length=n if n7 >= 126 else None,
        length=n,
        mask=mask,
        payload=payload,
    )


def close_payload(code: int | None = CloseCode.NORMAL, reason: str = "") -> bytes:
    """Section 5.5.1: a close frame's payload (empty when ``code`` is ``None``)."""
    if code is None:
        return b""
    return bytes(CLOSE_BODY.build({"code": int(code), "reason": reason}))


def parse_close(payload: bytes) -> tuple[int | None, str]:
    """Section 5.5.1: ``(code, reason)`` of a close frame's payload; ``(None, "")`` when it
    is empty. A one-byte payload or a reason that is not UTF-8 raises ``DecodeError``."""
    if not payload:
        return None, ""
    try:
        body = CLOSE_BODY.parse(payload)
    except cs.ConstructError as exc:
        raise DecodeError(f"RFC 6455 5.5.1: bad close frame payload ({exc})", data=payload) from exc
    return int(body.code), str(body.reason)


def accept_key(key: str | bytes) -> str:
    """Section 4.2.2: the ``Sec-WebSocket-Accept`` value answering ``Sec-WebSocket-Key``."""
    if isinstance(key, bytes):
        key = key.decode("ascii")
    digest = hashlib.sha1((key.strip() + GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


# -- a whole connection: the HTTP upgrade, then frames ---------------------------------------
#: most bytes an HTTP head may take before the upgrade is refused (h11's default limit)
MAX_HEAD_SIZE = 16 * 1024


@dataclass(frozen=True)
class HttpHead:
    """The opening handshake's HTTP head (request line or status line, and headers), as
    received, through the blank line that ends it. Parsing it is left to an HTTP library
    (the example server uses h11); this type only delimits it."""

    raw: bytes

    def __str__(self) -> str:
        return self.raw.decode("latin-1")


class UpgradeStream:
    """A WebSocket connection's byte stream as one :class:`codec.Protocol`: the HTTP head
    (section 4.1's request or 4.2.2's response) first, then frames.

    The position in the stream is the only state: at stream offset 0
    (``Buffer.offset``: nothing consumed yet) the bytes up to the first blank line are the
    HTTP head; after it, every message is a frame. So one instance serves every connection
    of a server (the transport gives each session its own ``Buffer``) and reads captures of
    either direction.

    ``encode`` sends an :class:`HttpHead` or ``bytes`` as they are (the handshake answer)
    and a frame value through the frame codec.
    """

    def __init__(self, frames: Codec[cs.Container] = CODEC, max_head: int = MAX_HEAD_SIZE):
        self.frames = frames
        self.max_head = max_head
        #: most bytes a session may buffer without completing a message
        self.max_frame_size = max(frames.max_frame_size, max_head)

    def decode(self, buf: Buffer) -> HttpHead | cs.Container | None:
        if buf.offset:
            return self.frames.decode(buf)
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            if len(buf) > self.max_head:
                raise FrameTooLarge(None, self.max_head, offset=0, data=buf.peek(32))
            return None
        if end + 4 > self.max_head:
            raise FrameTooLarge(end + 4, self.max_head, offset=0, data=buf.peek(32))
        return HttpHead(buf.take(end + 4))

    def encode(self, msg: HttpHead | bytes | cs.Container | dict[str, Any]) -> bytes:
        if isinstance(msg, HttpHead):
            return msg.raw
        if isinstance(msg, bytes | bytearray):
            return bytes(msg)
        return self.frames.encode(msg)


#: a captured or live connection, from its first byte (HTTP head, then frames)
STREAM = UpgradeStream()
