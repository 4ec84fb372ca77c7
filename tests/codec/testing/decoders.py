"""Hand-written decoders for the seed's wire format (a 1-byte length, then UTF-8 bytes).

``StringProtocol`` is correct. Every other class carries one deliberate bug of the kind
people write by hand; ``check_codec`` must catch each of them.
"""

from __future__ import annotations

import struct

from codec import Buffer, DecodeError, EncodeError, FrameTooLarge


class StringProtocol:
    """The seed's ``StringProtocol``, written by hand and correctly."""

    def __init__(self, max_frame_size: int = 256) -> None:
        self.max_frame_size = max_frame_size

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if 1 + n > self.max_frame_size:
            raise FrameTooLarge(1 + n, self.max_frame_size, offset=buf.offset, data=buf.peek(1))
        if len(buf) < 1 + n:
            return None
        body = buf.peek(1 + n)[1:]
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(f"bad UTF-8: {exc}", offset=buf.offset, data=body) from exc
        buf.consume(1 + n)
        return text

    def encode(self, msg: str) -> bytes:
        body = msg.encode("utf-8")
        if 1 + len(body) > self.max_frame_size:
            raise EncodeError(f"message of {len(body)} bytes is too long")
        return bytes([len(body)]) + body


class OffByOne(StringProtocol):
    """Counts the length byte in the body: the last character is lost."""

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) < n:  # bug: should be 1 + n
            return None
        frame = buf.take(max(n, 1))
        try:
            return frame[1:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(exc)) from exc


class ConsumesHalfPacket(StringProtocol):
    """Takes the length byte before knowing whether the body has arrived."""

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.take(1)[0]  # bug: consumed even when the body is not there yet
        if len(buf) < n:
            return None
        try:
            return buf.take(n).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(exc)) from exc


class Unbounded(StringProtocol):
    """Announces ``max_frame_size`` but never enforces it: a huge length is waited for."""

    def __init__(self) -> None:
        super().__init__(max_frame_size=32)

    def encode(self, msg: str) -> bytes:
        body = msg.encode("utf-8")
        return bytes([len(body)]) + body

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) < 1 + n:  # bug: no FrameTooLarge check, the buffer grows to 256 bytes
            return None
        try:
            return buf.take(1 + n)[1:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(exc)) from exc


class CrashesOnGarbage(StringProtocol):
    """Lets ``UnicodeDecodeError`` escape instead of raising ``DecodeError``."""

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) < 1 + n:
            return None
        body = buf.peek(1 + n)[1:]
        text = body.decode("utf-8")  # bug: UnicodeDecodeError on bad bytes
        buf.consume(1 + n)
        return text


class IndexErrorOnEmpty(StringProtocol):
    """Reads the length byte without checking that there is one."""

    def decode(self, buf: Buffer) -> str | None:
        data = bytes(buf)
        n = data[0]  # bug: IndexError on an empty buffer
        if len(data) < 1 + n:
            return None
        buf.consume(1 + n)
        try:
            return data[1 : 1 + n].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(exc)) from exc


class StructErrorOnShortHeader:
    """A 2-byte big-endian length; unpacks the header before checking it has arrived."""

    max_frame_size = 1024

    def decode(self, buf: Buffer) -> bytes | None:
        (n,) = struct.unpack(">H", buf.peek(2))  # bug: struct.error on 0 or 1 byte
        if len(buf) < 2 + n:
            return None
        if 2 + n > self.max_frame_size:
            raise FrameTooLarge(2 + n, self.max_frame_size)
        return buf.take(2 + n)[2:]

    def encode(self, msg: bytes) -> bytes:
        return struct.pack(">H", len(msg)) + msg


class DrainsEverything(StringProtocol):
    """Decodes every frame buffered but returns only the first: sticky packets lose messages."""

    def decode(self, buf: Buffer) -> str | None:
        first = None
        while True:
            msg = super().decode(buf)  # bug: keeps going after the first message
            if msg is None:
                return first
            if first is None:
                first = msg


class ReturnsAll(StringProtocol):
    """Returns a list of every message buffered: two messages' worth in one call."""

    def decode(self, buf: Buffer) -> str | None:
        out = []
        while (msg := super().decode(buf)) is not None:
            out.append(msg)
        if not out:
            return None
        return out[0] if len(out) == 1 else out  # type: ignore[return-value]


class WaitsForOneMore(StringProtocol):
    """Returns None until a byte beyond the frame arrives (``<=`` instead of ``<``)."""

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) <= 1 + n:  # bug: a frame alone at the end of the buffer never comes out
            return None
        return super().decode(buf)


class NeverConsumes(StringProtocol):
    """Peeks the message but forgets to consume it: a caller's decode loop never ends."""

    def decode(self, buf: Buffer) -> str | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) < 1 + n:
            return None
        return buf.peek(1 + n)[1:].decode("utf-8", errors="replace")  # bug: no consume


class BytearrayBody:
    """A byte-string protocol that hands out ``bytearray`` (design.md: bytes, never that)."""

    max_frame_size = 256

    def decode(self, buf: Buffer) -> bytes | None:
        if not buf:
            return None
        n = buf.peek(1)[0]
        if len(buf) < 1 + n:
            return None
        frame = buf.take(1 + n)
        return bytearray(frame[1:])  # type: ignore[return-value]  # bug: not bytes

    def encode(self, msg: bytes) -> bytes:
        return bytes([len(msg)]) + msg


class StatefulHalfPacket(StringProtocol):
    """Keeps a half packet in its own storage: consumes bytes and returns None."""

    def __init__(self) -> None:
        super().__init__()
        self._pending = bytearray()

    def decode(self, buf: Buffer) -> str | None:
        self._pending += buf.take(len(buf))  # bug: the buffer is the place for half packets
        if not self._pending:
            return None
        n = self._pending[0]
        if len(self._pending) < 1 + n:
            return None
        frame = bytes(self._pending[: 1 + n])
        del self._pending[: 1 + n]
        try:
            return frame[1:].decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DecodeError(str(exc)) from exc
