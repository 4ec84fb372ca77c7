"""What offline parsing produces: records, flows, directions, errors and counters."""

from __future__ import annotations

import enum
import socket
from dataclasses import dataclass, field
from typing import Any

from .._errors import DecodeError

__all__ = [
    "CaptureDecodeError",
    "Direction",
    "Flow",
    "ParseStats",
    "Record",
    "StreamGap",
    "format_address",
    "make_record",
]


def format_address(packed: bytes) -> str:
    """``b"\\x7f\\0\\0\\1"`` -> ``"127.0.0.1"``; 16 bytes -> IPv6 text."""
    return socket.inet_ntop(socket.AF_INET6 if len(packed) == 16 else socket.AF_INET, packed)


class Direction(str, enum.Enum):
    """Which way the bytes of a record travelled."""

    #: from the client (the side that sent the SYN, or the first datagram)
    C2S = "c2s"
    #: from the server back to the client
    S2C = "s2c"

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True, slots=True)
class Flow:
    """A connection (TCP) or an address pair (UDP), oriented client -> server.

    For TCP the client is the side that sent the SYN; when the capture starts mid-connection
    the side with the unprivileged port (or, failing that, the first sender) is the client.
    """

    proto: str
    client: str
    client_port: int
    server: str
    server_port: int

    def __str__(self) -> str:
        return f"{self.proto} {_hostport(self.client, self.client_port)} <-> " + _hostport(
            self.server, self.server_port
        )

    def describe(self, direction: Direction | None) -> str:
        """``"tcp 10.0.0.1:4000 -> 10.0.0.2:502"`` for one direction."""
        a = _hostport(self.client, self.client_port)
        b = _hostport(self.server, self.server_port)
        if direction is Direction.S2C:
            a, b = b, a
        return f"{self.proto} {a} -> {b}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "proto": self.proto,
            "client": self.client,
            "client_port": self.client_port,
            "server": self.server,
            "server_port": self.server_port,
        }


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


@dataclass(frozen=True, slots=True)
class Record:
    """One decoded message.

    Attributes:
        message: what the protocol's ``decode`` returned.
        offset: stream offset of the message's first byte in its direction of its flow
            (for UDP, the offset inside its datagram; for raw files, in the file's bytes).
        timestamp: capture time (seconds since the epoch) of the packet that completed the
            message; ``None`` for raw files and hex dumps.
        flow: the connection or address pair; ``None`` for raw files and hex dumps.
        direction: which way the message went; ``None`` for raw files and hex dumps.
    """

    message: Any
    offset: int
    timestamp: float | None = None
    flow: Flow | None = None
    direction: Direction | None = None


def _record_maker() -> Any:
    """A constructor of :class:`Record` for the decoding loop: the same object, faster.

    A frozen dataclass's ``__init__`` sets each field through ``object.__setattr__``
    (1.8 us a record); setting the slots through their descriptors gives the same
    immutable record in 1.1 us, a twentieth of ``wirekit parse`` on short messages.
    """
    new = object.__new__
    set_message, set_offset, set_timestamp, set_flow, set_direction = (
        vars(Record)[name].__set__
        for name in ("message", "offset", "timestamp", "flow", "direction")
    )

    def make(
        message: Any,
        offset: int,
        timestamp: float | None,
        flow: Flow | None,
        direction: Direction | None,
    ) -> Record:
        rec: Record = new(Record)
        set_message(rec, message)
        set_offset(rec, offset)
        set_timestamp(rec, timestamp)
        set_flow(rec, flow)
        set_direction(rec, direction)
        return rec

    return make


#: ``Record(message, offset, timestamp, flow, direction)``, for hot loops
make_record = _record_maker()


class CaptureDecodeError(DecodeError):
    """A stream in a capture cannot be decoded; says which flow, direction and when.

    ``__cause__`` is the codec's own :class:`~codec.DecodeError` when there is one.
    """

    def __init__(
        self,
        reason: str,
        *,
        flow: Flow | None = None,
        direction: Direction | None = None,
        timestamp: float | None = None,
        offset: int | None = None,
        data: bytes | bytearray | memoryview = b"",
        path: str | None = None,
    ) -> None:
        self.flow = flow
        self.direction = direction
        self.timestamp = timestamp
        where = []
        if flow is not None:
            where.append(flow.describe(direction))
        if timestamp is not None:
            where.append(f"packet time {timestamp:.6f}")
        prefix = f"{', '.join(where)}: " if where else ""
        super().__init__(prefix + reason, offset=offset, data=data, path=path)

    @classmethod
    def wrap(
        cls,
        err: DecodeError,
        flow: Flow | None,
        direction: Direction | None,
        timestamp: float | None,
        shift: int = 0,
    ) -> CaptureDecodeError:
        """``err`` with where it happened; ``shift`` is added to its stream offset."""
        new = cls(
            err.reason,
            flow=flow,
            direction=direction,
            timestamp=timestamp,
            offset=None if err.offset is None else err.offset + shift,
            data=err.data,
            path=err.path,
        )
        new.frame_size = err.frame_size
        new.__cause__ = err
        return new


class StreamGap(CaptureDecodeError):
    """Bytes of a TCP stream are missing from the capture, so framing is lost after them."""


@dataclass(slots=True)
class ParseStats:
    """Counters for one parse; ``problems`` keeps the first few skipped errors as text."""

    packets: int = 0
    #: frames that were not TCP/UDP over IP (or not of a supported link type)
    skipped_packets: int = 0
    #: packets left out by the filter
    filtered_packets: int = 0
    tcp_segments: int = 0
    udp_datagrams: int = 0
    flows: int = 0
    bytes: int = 0
    messages: int = 0
    #: bad frames skipped (with ``skip_errors``)
    errors: int = 0
    #: directions abandoned because a frame's extent was unknown or bytes were missing
    abandoned_streams: int = 0
    gaps: int = 0
    gap_bytes: int = 0
    retransmissions: int = 0
    #: streams that ended (capture end or RST) with part of a frame buffered
    truncated_streams: int = 0
    problems: list[str] = field(default_factory=list)

    #: how many problem descriptions are kept
    MAX_PROBLEMS = 20

    def problem(self, text: str) -> None:
        if len(self.problems) < self.MAX_PROBLEMS:
            self.problems.append(text)

    def summary(self) -> str:
        """One readable paragraph of the counters that matter."""
        parts = [f"{self.messages} messages"]
        if self.packets:
            parts.append(f"{self.packets} packets")
            parts.append(f"{self.flows} flows")
        for name in (
            "errors",
            "abandoned_streams",
            "gaps",
            "retransmissions",
            "truncated_streams",
            "skipped_packets",
            "filtered_packets",
        ):
            value = getattr(self, name)
            if value:
                parts.append(f"{value} {name.replace('_', ' ')}")
        return ", ".join(parts)
