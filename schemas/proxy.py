"""The PROXY protocol, versions 1 and 2: the real client's addresses, sent by a load balancer.

Specification: HAProxy's *The PROXY protocol, Versions 1 & 2* (``proxy-protocol.txt``,
2020/03/05), section 2.1 (version 1: one US-ASCII line ``PROXY TCP4|TCP6|UNKNOWN src dst
sport dport`` ending in CRLF, at most 107 bytes), 2.2 (version 2: a 12-byte signature,
version and command, address family and transport protocol, a 2-byte length, the address
block for INET, INET6 or UNIX, then TLVs), 2.2.1-2.2.8 (the TLV types; 2.2.3: the CRC32c).

A balancer sends the header once, first thing on the connection; the application's bytes
follow. So the header is not a framing for a stream of messages but a prefix to strip:

* :func:`parse_header` ``(data) -> (ProxyHeader | None, consumed)`` is what a server needs
  (the transport's ``ProxyProtocol`` plugin, for one): ``(None, 0)`` while the bytes could
  still become a header, a :class:`ProxyHeader` and its size once complete, ``DecodeError``
  as soon as the bytes cannot be a PROXY header ("abort the connection as soon as
  possible", section 2.1);
* :data:`HEADER` is the same as a :class:`codec.Protocol` (either version, decided by the
  signature, section 2.2's end); :data:`V1_CODEC` and :data:`V2_CODEC` decode one version;
* :data:`V1` and :data:`V2` are the construct schemas (``V1`` parses the line without its
  CRLF, which the codec's ``Delimiter`` framing removes).

Addresses are :mod:`ipaddress` objects (UNIX paths: bytes, NUL padding removed by
:class:`ProxyHeader`); TLVs are kept as a list of (type, value) in the order received. The
parse is strict where section 2 says "must": canonical version 1 numbers (no leading
zeroes, ports up to 65535, exactly one space), the version 2 version nibble, command,
family and protocol values, an address block no longer than the announced length, and
the CRC32c when one is present (checked by :data:`HEADER` and :func:`parse_header`).
"""

from __future__ import annotations

import enum
import ipaddress
import re
from dataclasses import dataclass
from typing import Any

import construct as cs
from construct import this

from codec import Buffer, Codec, DecodeError, Delimiter

__all__ = [
    "HEADER",
    "MAX_V1_SIZE",
    "SIGNATURE",
    "TLV",
    "V1",
    "V1_CODEC",
    "V2",
    "V2_CODEC",
    "HeaderProtocol",
    "ProxyHeader",
    "TlvType",
    "crc32c",
    "encode_v1",
    "encode_v2",
    "parse_header",
]

#: section 2.2: the version 2 signature (a NUL at the 5th byte: not a C string)
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: section 2.1: the longest version 1 line, CRLF included
MAX_V1_SIZE = 107


class TlvType(enum.IntEnum):
    """Section 2.2: the registered TLV types."""

    ALPN = 0x01
    AUTHORITY = 0x02
    CRC32C = 0x03
    NOOP = 0x04
    UNIQUE_ID = 0x05
    SSL = 0x20
    NETNS = 0x30


class _Rule(cs.Check):  # type: ignore[misc]
    """A ``Check`` whose failure names the rule of the specification that was broken."""

    def __init__(self, func: Any, message: str) -> None:
        super().__init__(func)
        self.message = message

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        if not cs.evaluate(self.func, context):
            raise cs.CheckError(self.message, path=path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> None:
        self._parse(stream, context, path)


class _IP(cs.Adapter):  # type: ignore[misc]
    """4 or 16 bytes in network order as an :mod:`ipaddress` object (a string builds too)."""

    def _decode(self, obj: bytes, context: Any, path: str) -> Any:
        return ipaddress.ip_address(obj)

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        return bytes(ipaddress.ip_address(obj).packed)


# -- version 2 (section 2.2) -------------------------------------------------------------------
#: one TLV: a type byte, a 2-byte length, the value (section 2.2)
TLV = cs.Struct(
    "type" / cs.Enum(cs.Int8ub, TlvType),
    "value" / cs.Prefixed(cs.Int16ub, cs.GreedyBytes),
)

_INET = cs.Struct(
    "source" / _IP(cs.Bytes(4)),
    "destination" / _IP(cs.Bytes(4)),
    "source_port" / cs.Int16ub,
    "destination_port" / cs.Int16ub,
)
_INET6 = cs.Struct(
    "source" / _IP(cs.Bytes(16)),
    "destination" / _IP(cs.Bytes(16)),
    "source_port" / cs.Int16ub,
    "destination_port" / cs.Int16ub,
)
_UNIX = cs.Struct("source" / cs.Bytes(108), "destination" / cs.Bytes(108))

_COMMAND = cs.Enum(cs.Nibble, LOCAL=0x0, PROXY=0x1)
_FAMILY = cs.Enum(cs.Nibble, UNSPEC=0x0, INET=0x1, INET6=0x2, UNIX=0x3)
_PROTOCOL = cs.Enum(cs.Nibble, UNSPEC=0x0, STREAM=0x1, DGRAM=0x2)


def _known(value: Any) -> bool:
    """An enum value construct could name (a number outside the table stays an int)."""
    return isinstance(value, str)


#: one version 2 header (section 2.2), TLVs included
V2 = cs.Struct(
    "signature" / cs.Const(SIGNATURE),
    "ver_cmd" / cs.BitStruct("version" / cs.Const(2, cs.Nibble), "command" / _COMMAND),
    "fam" / cs.BitStruct("family" / _FAMILY, "protocol" / _PROTOCOL),
    _Rule(
        lambda this: _known(this.ver_cmd.command),
        "PROXY v2 (2.2): the command must be LOCAL (0) or PROXY (1)",
    ),
    _Rule(
        lambda this: _known(this.fam.family) and _known(this.fam.protocol),
        "PROXY v2 (2.2): family must be 0-3 and protocol 0-2",
    ),
    "length" / cs.Int16ub,
    "body"
    / cs.FixedSized(
        this.length,
        cs.Struct(
            "addresses"
            / cs.Switch(
                this._.fam.family,
                {"INET": _INET, "INET6": _INET6, "UNIX": _UNIX},
                default=cs.Pass,
            ),
            "tlvs" / cs.GreedyRange(TLV),
            cs.Terminated,  # a TLV cut short by the length is malformed, not ignored
        ),
    ),
)

#: version 2 headers, one per ``decode``
V2_CODEC: Codec[cs.Container] = Codec(V2, max_frame_size=16 + 0xFFFF)


# -- version 1 (section 2.1) -------------------------------------------------------------------
_DEC = r"(?:0|[1-9][0-9]{0,4})"  # no leading zeroes (section 2.1)
_IPV4 = rf"{_DEC}\.{_DEC}\.{_DEC}\.{_DEC}"
_IPV6 = r"[0-9A-Fa-f:.]{2,45}"
_V1_LINE = re.compile(
    rf"PROXY (?:(?P<proto>TCP4) (?P<s4>{_IPV4}) (?P<d4>{_IPV4})"
    rf"|(?P<proto6>TCP6) (?P<s6>{_IPV6}) (?P<d6>{_IPV6})) (?P<sp>{_DEC}) (?P<dp>{_DEC})"
)
_V1_UNKNOWN = re.compile(r"PROXY UNKNOWN(?: [^\r\n]*)?")


class _V1Line(cs.Adapter):  # type: ignore[misc]
    """Section 2.1's line (without its CRLF) as a Container, and back."""

    def _decode(self, obj: str, context: Any, path: str) -> cs.Container:
        if _V1_UNKNOWN.fullmatch(obj):  # "the receiver must ignore anything" after UNKNOWN
            return cs.Container(
                version=1,
                protocol="UNKNOWN",
                source=None,
                destination=None,
                source_port=None,
                destination_port=None,
            )
        m = _V1_LINE.fullmatch(obj)
        if m is None:
            raise cs.ValidationError(f"PROXY v1 (2.1): not a PROXY line: {obj[:60]!r}", path=path)
        v6 = m["proto6"] is not None
        try:
            source = (ipaddress.IPv6Address if v6 else ipaddress.IPv4Address)(
                m["s6"] if v6 else m["s4"]
            )
            destination = (ipaddress.IPv6Address if v6 else ipaddress.IPv4Address)(
                m["d6"] if v6 else m["d4"]
            )
        except ValueError as exc:
            raise cs.ValidationError(f"PROXY v1 (2.1): {exc}", path=path) from None
        sport, dport = int(m["sp"]), int(m["dp"])
        if sport > 0xFFFF or dport > 0xFFFF:
            raise cs.ValidationError("PROXY v1 (2.1): a port is above 65535", path=path)
        return cs.Container(
            version=1,
            protocol="TCP6" if v6 else "TCP4",
            source=source,
            destination=destination,
            source_port=sport,
            destination_port=dport,
        )

    def _encode(self, obj: Any, context: Any, path: str) -> str:
        if obj["protocol"] == "UNKNOWN":
            return "PROXY UNKNOWN"
        return (
            f"PROXY {obj['protocol']} {ipaddress.ip_address(obj['source'])} "
            f"{ipaddress.ip_address(obj['destination'])} "
            f"{int(obj['source_port'])} {int(obj['destination_port'])}"
        )


#: a version 1 line without its CRLF (the codec's framing strips and adds it)
V1 = _V1Line(cs.GreedyString("ascii"))

#: version 1 headers: the line up to CRLF, at most 107 bytes (section 2.1)
V1_CODEC: Codec[cs.Container] = Codec(V1, framing=Delimiter(b"\r\n"), max_frame_size=MAX_V1_SIZE)


# -- either version ----------------------------------------------------------------------------
_V1_START = b"PROXY "


class HeaderProtocol:
    """A PROXY header of either version, told apart by its first bytes (section 2.2's end):
    the 12-byte signature means version 2, ``PROXY`` version 1, anything else is refused
    at once (while the bytes are still a prefix of either, ``decode`` waits).

    ``decode`` returns the version's Container (:data:`V1` or :data:`V2`) and checks a
    version 2 header's CRC32c TLV (2.2.3); ``encode`` takes either Container, or a
    :class:`ProxyHeader`.
    """

    #: at most a version 2 header with the longest length
    max_frame_size = 16 + 0xFFFF

    def decode(self, buf: Buffer) -> cs.Container | None:
        head = buf.peek(len(SIGNATURE))
        if head.startswith(SIGNATURE):
            if len(buf) > 12 and buf.peek(13)[12] >> 4 != 2:
                raise DecodeError(
                    "PROXY v2 (2.2): the version must be 2", offset=buf.offset, data=buf.peek(16)
                )
            if len(buf) < 16:
                return None
            size = 16 + int.from_bytes(buf.peek(16)[14:16], "big")
            if len(buf) < size:
                return None
            start, raw = buf.offset, buf.peek(size)  # the header's bytes, for its CRC32c
            msg = V2_CODEC.decode(buf)
            if msg is not None:
                _check_crc(msg, raw, start)
            return msg
        if head.startswith(_V1_START):
            line = buf.peek(MAX_V1_SIZE)
            lf, cr = line.find(b"\n"), line.find(b"\r")
            # the first LF must follow the first CR at once, and that CR be followed by LF
            if (lf >= 0 and cr != lf - 1) or (0 <= cr < len(line) - 1 and line[cr + 1] != 0x0A):
                raise DecodeError(
                    "PROXY v1 (2.1): a lone CR or LF; the line must end with CRLF",
                    offset=buf.offset,
                    data=line,
                )
            return V1_CODEC.decode(buf)
        if SIGNATURE.startswith(head) or _V1_START.startswith(head):
            return None  # still a prefix of one of the signatures
        raise DecodeError(
            "not a PROXY protocol header (2.2: neither the v2 signature nor 'PROXY ')",
            offset=buf.offset,
            data=buf.peek(16),
        )

    def encode(self, msg: ProxyHeader | cs.Container | dict[str, Any]) -> bytes:
        if isinstance(msg, ProxyHeader):
            return encode_v1(msg) if msg.version == 1 else encode_v2(msg)
        if msg.get("version") == 1:
            return V1_CODEC.encode(msg)
        return V2_CODEC.encode(msg)


#: either version, as a :class:`codec.Protocol` (``wirekit parse schemas.proxy:HEADER``)
HEADER = HeaderProtocol()


# -- the CRC32c of section 2.2.3 (RFC 4960 appendix B: Castagnoli, reflected) ------------------
def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC_TABLE = _crc_table()


def crc32c(data: bytes) -> int:
    """CRC32c (Castagnoli) of ``data``, as section 2.2.3 and RFC 4960 appendix B define it."""
    crc = 0xFFFFFFFF
    table = _CRC_TABLE
    for b in data:
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _check_crc(msg: cs.Container, raw: bytes, offset: int) -> None:
    """Section 2.2.3: with a CRC32C TLV, the header with that TLV's value zeroed must hash
    to it ("the receiver MUST treat the TCP connection ... as invalid" otherwise)."""
    pos = 16 + _address_size(msg)
    for tlv in msg.body.tlvs:
        if tlv.type == "CRC32C" and len(tlv.value) == 4:
            zeroed = raw[: pos + 3] + b"\0\0\0\0" + raw[pos + 7 :]
            if crc32c(zeroed) != int.from_bytes(tlv.value, "big"):
                raise DecodeError(
                    "PROXY v2 (2.2.3): the CRC32c does not match", offset=offset, data=raw
                )
        pos += 3 + len(tlv.value)


#: section 2.2: the address block's size per family
_ADDRESS_SIZES = {"INET": 12, "INET6": 36, "UNIX": 216}


def _address_size(msg: cs.Container) -> int:
    return _ADDRESS_SIZES.get(str(msg.fam.family), 0)


# -- the application's view --------------------------------------------------------------------
Address = tuple[str, int]


@dataclass(frozen=True)
class ProxyHeader:
    """What a PROXY header says, whichever version carried it.

    ``source`` and ``destination`` are ``(host, port)`` for TCP/UDP over IPv4/IPv6, a path
    (``bytes``) for UNIX sockets, and ``None`` when the header carries no usable address
    (version 2 LOCAL or UNSPEC, version 1 UNKNOWN): the receiver then uses the connection's
    own addresses (sections 2.1 and 2.2).
    """

    version: int
    command: str  # "PROXY" or "LOCAL" (version 1 is always "PROXY")
    family: str  # "INET", "INET6", "UNIX" or "UNSPEC"
    protocol: str  # "STREAM", "DGRAM" or "UNSPEC"
    source: Address | bytes | None
    destination: Address | bytes | None
    tlvs: tuple[tuple[int, bytes], ...] = ()

    @property
    def is_local(self) -> bool:
        """Whether the receiver must use the connection's real endpoints (a health check)."""
        return self.source is None

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of type ``kind``, or ``None``."""
        for t, value in self.tlvs:
            if t == kind:
                return value
        return None

    @classmethod
    def from_message(cls, msg: cs.Container) -> ProxyHeader:
        """From a :data:`V1` or :data:`V2` Container."""
        if msg.get("version") == 1:
            if msg.protocol == "UNKNOWN":
                return cls(1, "PROXY", "UNSPEC", "UNSPEC", None, None)
            return cls(
                1,
                "PROXY",
                "INET6" if msg.protocol == "TCP6" else "INET",
                "STREAM",
                (str(msg.source), msg.source_port),
                (str(msg.destination), msg.destination_port),
            )
        family, command = str(msg.fam.family), str(msg.ver_cmd.command)
        tlvs = tuple((int(t.type), bytes(t.value)) for t in msg.body.tlvs)
        a = msg.body.addresses
        source: Address | bytes | None = None
        destination: Address | bytes | None = None
        if command == "PROXY" and a is not None:
            if family == "UNIX":
                source, destination = a.source.rstrip(b"\0"), a.destination.rstrip(b"\0")
            else:
                source = (str(a.source), a.source_port)
                destination = (str(a.destination), a.destination_port)
        return cls(2, command, family, str(msg.fam.protocol), source, destination, tlvs)


def parse_header(data: bytes | bytearray | memoryview) -> tuple[ProxyHeader | None, int]:
    """The PROXY header at the start of ``data``, and how many bytes it takes.

    ``(None, 0)`` while ``data`` is a prefix of a header (wait for more bytes); raises
    :class:`codec.DecodeError` when ``data`` cannot start with a PROXY header, or the
    header breaks the specification. The bytes after ``consumed`` are the application's.
    """
    buf = Buffer(data)
    msg = HEADER.decode(buf)
    if msg is None:
        return None, 0
    return ProxyHeader.from_message(msg), buf.offset


def encode_v1(header: ProxyHeader) -> bytes:
    """Section 2.1's line for ``header`` (UNKNOWN without addresses or a UNIX family)."""
    if header.family not in ("INET", "INET6") or not isinstance(header.source, tuple):
        return V1_CODEC.encode({"protocol": "UNKNOWN"})
    assert isinstance(header.destination, tuple)
    return V1_CODEC.encode(
        {
            "protocol": "TCP6" if header.family == "INET6" else "TCP4",
            "source": header.source[0],
            "destination": header.destination[0],
            "source_port": header.source[1],
            "destination_port": header.destination[1],
        }
    )


def encode_v2(header: ProxyHeader) -> bytes:
    """Section 2.2's binary header for ``header``, TLVs in order. A CRC32C TLV (type 3) is
    filled in with the checksum of the header, whatever value it was given (2.2.3)."""
    addresses: dict[str, Any] | None = None
    if header.family in ("INET", "INET6") and isinstance(header.source, tuple):
        assert isinstance(header.destination, tuple)
        addresses = {
            "source": header.source[0],
            "destination": header.destination[0],
            "source_port": header.source[1],
            "destination_port": header.destination[1],
        }
    elif header.family == "UNIX" and isinstance(header.source, bytes):
        assert isinstance(header.destination, bytes)
        addresses = {
            "source": header.source.ljust(108, b"\0"),
            "destination": header.destination.ljust(108, b"\0"),
        }
    elif header.family != "UNSPEC":
        raise ValueError(f"a {header.family} header needs its addresses")
    values = [b"\0\0\0\0" if t == TlvType.CRC32C else v for t, v in header.tlvs]
    tlvs = [{"type": t, "value": v} for (t, _), v in zip(header.tlvs, values, strict=True)]
    body = {"addresses": addresses, "tlvs": tlvs}
    size = _ADDRESS_SIZES.get(header.family, 0) + sum(3 + len(v) for v in values)
    msg = {
        "ver_cmd": {"command": header.command},
        "fam": {"family": header.family, "protocol": header.protocol},
        "length": size,
        "body": body,
    }
    wire = V2_CODEC.encode(msg)
    if any(t == TlvType.CRC32C for t, _ in header.tlvs):
        pos = 16 + _address_size(V2.parse(wire))
        for t, v in header.tlvs:
            if t == TlvType.CRC32C:
                crc = crc32c(wire).to_bytes(4, "big")
                wire = wire[: pos + 3] + crc + wire[pos + 7 :]
                break
            pos += 3 + len(v)
    return wire
