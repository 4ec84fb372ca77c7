"""A minimal PROXY protocol header parser for :class:`ProxyProtocol` (private).

HAProxy's *The PROXY protocol, Versions 1 & 2*: section 2.1 (version 1, one US-ASCII line
``PROXY TCP4|TCP6|UNKNOWN src dst sport dport`` ending in CRLF, at most 107 bytes) and 2.2
(version 2: a 12-byte signature, version and command, family and protocol, a 2-byte length,
the addresses, then TLVs, kept in order; 2.2.3: a CRC32c TLV is checked).

``schemas.proxy`` (being written on another branch) will be the project's full schema of
the header; this module provides only what the plugin needs, with the same
``parse_header(data) -> (header | None, consumed)`` shape and the same :class:`ProxyHeader`
fields, so that the plugin can switch to it without a change of behaviour.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re

__all__ = ["MAX_HEADER", "SIGNATURE", "V1_PREFIX", "ProxyHeader", "crc32c", "parse_header"]

#: section 2.2: the version 2 signature
SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
#: section 2.1: how a version 1 line starts
V1_PREFIX = b"PROXY "
#: section 2.1: the longest version 1 line, CRLF included
MAX_V1 = 107
#: the longest version 2 header (16 bytes, then at most 65535)
MAX_HEADER = 16 + 0xFFFF

_DEC = r"(?:0|[1-9][0-9]{0,4})"
_V1 = re.compile(
    rb"PROXY (?:(TCP4) ([0-9.]{7,15}) ([0-9.]{7,15})|(TCP6) ([0-9A-Fa-f:.]{2,45}) "
    rb"([0-9A-Fa-f:.]{2,45})) (" + _DEC.encode() + rb") (" + _DEC.encode() + rb")"
)
_FAMILIES = {0: "UNSPEC", 1: "INET", 2: "INET6", 3: "UNIX"}
_PROTOCOLS = {0: "UNSPEC", 1: "STREAM", 2: "DGRAM"}
_ADDRESS_SIZES = {"INET": 12, "INET6": 36, "UNIX": 216}
_CRC32C_TLV = 0x03

Address = tuple[str, int]


@dataclasses.dataclass(frozen=True)
class ProxyHeader:
    """What a PROXY header says, whichever version carried it.

    ``source``/``destination``: ``(host, port)`` for IPv4/IPv6, a path (``bytes``) for
    UNIX, ``None`` without usable addresses (version 2 ``LOCAL`` or ``UNSPEC``, version 1
    ``UNKNOWN``: the connection's own addresses apply). ``tlvs``: ``(type, value)`` in the
    order received (version 2).
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
        """Whether the connection's own endpoints apply (a health check)."""
        return self.source is None

    def tlv(self, kind: int) -> bytes | None:
        """The value of the first TLV of type ``kind``, or ``None``."""
        for t, value in self.tlvs:
            if t == kind:
                return value
        return None


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
    """CRC32c (Castagnoli), as section 2.2.3 (RFC 4960 appendix B) defines it."""
    crc = 0xFFFFFFFF
    for b in data:
        crc = _CRC_TABLE[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def parse_header(data: bytes) -> tuple[ProxyHeader | None, int]:
    """The PROXY header at the start of ``data`` and its size; ``(None, 0)`` while more
    bytes are needed; ``ValueError`` (saying what is wrong) when ``data`` does not start
    with a valid header."""
    if data.startswith(SIGNATURE):
        return _parse_v2(data)
    if data.startswith(V1_PREFIX):
        return _parse_v1(data)
    if SIGNATURE.startswith(data) or V1_PREFIX.startswith(data):
        return None, 0
    raise ValueError(f"not a PROXY protocol header: {data[:16]!r}")


def _parse_v1(data: bytes) -> tuple[ProxyHeader | None, int]:
    end = data.find(b"\r\n", 0, MAX_V1)
    if end < 0:
        if len(data) >= MAX_V1 or b"\n" in data[:MAX_V1]:
            raise ValueError(f"v1 (2.1): no CRLF within {MAX_V1} bytes: {data[:MAX_V1]!r}")
        return None, 0
    line = data[:end]
    if line == b"PROXY UNKNOWN" or line.startswith(b"PROXY UNKNOWN "):
        return ProxyHeader(1, "PROXY", "UNSPEC", "UNSPEC", None, None), end + 2
    m = _V1.fullmatch(line)
    if m is None:
        raise ValueError(f"v1 (2.1): not a PROXY line: {line!r}")
    v6 = m[4] is not None
    try:
        cls = ipaddress.IPv6Address if v6 else ipaddress.IPv4Address
        src, dst = cls((m[5] if v6 else m[2]).decode()), cls((m[6] if v6 else m[3]).decode())
    except ValueError as exc:
        raise ValueError(f"v1 (2.1): {exc}") from None
    sport, dport = int(m[7]), int(m[8])
    if sport > 0xFFFF or dport > 0xFFFF:
        raise ValueError(f"v1 (2.1): a port is above 65535: {line!r}")
    family = "INET6" if v6 else "INET"
    return ProxyHeader(1, "PROXY", family, "STREAM", (str(src), sport), (str(dst), dport)), end + 2


def _parse_v2(data: bytes) -> tuple[ProxyHeader | None, int]:
    if len(data) < 16:
        return None, 0
    ver_cmd, fam, length = data[12], data[13], int.from_bytes(data[14:16], "big")
    if ver_cmd >> 4 != 2:
        raise ValueError(f"v2 (2.2): version {ver_cmd >> 4}, not 2")
    command = {0: "LOCAL", 1: "PROXY"}.get(ver_cmd & 0xF)
    family, protocol = _FAMILIES.get(fam >> 4), _PROTOCOLS.get(fam & 0xF)
    if command is None or family is None or protocol is None:
        raise ValueError(f"v2 (2.2): unknown command or family/protocol byte {data[12:14]!r}")
    size = 16 + length
    if len(data) < size:
        return None, 0
    body = data[16:size]
    asize = _ADDRESS_SIZES.get(family, 0)
    if len(body) < asize:
        raise ValueError(f"v2 (2.2): {length} bytes cannot hold {family} addresses")
    source: Address | bytes | None = None
    destination: Address | bytes | None = None
    if command == "PROXY" and family in ("INET", "INET6"):
        n = 4 if family == "INET" else 16
        src = ipaddress.ip_address(body[:n])
        dst = ipaddress.ip_address(body[n : 2 * n])
        sport = int.from_bytes(body[2 * n : 2 * n + 2], "big")
        dport = int.from_bytes(body[2 * n + 2 : 2 * n + 4], "big")
        source, destination = (str(src), sport), (str(dst), dport)
    elif command == "PROXY" and family == "UNIX":
        source, destination = body[:108].rstrip(b"\0"), body[108:216].rstrip(b"\0")
    tlvs = []
    pos = asize
    while pos < len(body):
        if pos + 3 > len(body):
            raise ValueError("v2 (2.2): a TLV is cut short by the header's length")
        kind, n = body[pos], int.from_bytes(body[pos + 1 : pos + 3], "big")
        if pos + 3 + n > len(body):
            raise ValueError("v2 (2.2): a TLV is cut short by the header's length")
        value = bytes(body[pos + 3 : pos + 3 + n])
        if kind == _CRC32C_TLV and n == 4:
            at = 16 + pos + 3
            zeroed = data[:at] + b"\0\0\0\0" + data[at + 4 : size]
            if crc32c(zeroed) != int.from_bytes(value, "big"):
                raise ValueError("v2 (2.2.3): the CRC32c does not match")
        tlvs.append((kind, value))
        pos += 3 + n
    header = ProxyHeader(2, command, family, protocol, source, destination, tuple(tlvs))
    return header, size
