"""From one captured frame to a TCP segment or UDP datagram, with ``struct`` only.

Link layers: Ethernet (with any number of 802.1Q / 802.1ad tags), Linux cooked capture
(SLL and SLL2), BSD loopback (NULL and LOOP) and raw IP. Network layers: IPv4 (fragments
other than the first are not reassembled and are counted as skipped) and IPv6 (extension
headers walked). Anything else yields ``None``: the caller counts it and goes on.

Headers are read by hand rather than with dpkt's packet classes because this is the hot
path of offline parsing (several times faster) and because a truncated or hostile header
must give ``None``, never an exception.
"""

from __future__ import annotations

import struct
from typing import NamedTuple

__all__ = ["LINKTYPES", "Segment", "dissect"]

# Link types (https://www.tcpdump.org/linktypes.html)
DLT_NULL = 0
DLT_EN10MB = 1
DLT_RAW = 101
DLT_RAW_OPENBSD = 14  # some systems number LINKTYPE_RAW 12 or 14
DLT_RAW_ALT = 12
DLT_LOOP = 108
DLT_LINUX_SLL = 113
DLT_IPV4 = 228
DLT_IPV6 = 229
DLT_LINUX_SLL2 = 276

#: link types this module understands, with a readable name
LINKTYPES = {
    DLT_NULL: "BSD loopback (NULL)",
    DLT_EN10MB: "Ethernet",
    DLT_RAW_ALT: "raw IP",
    DLT_RAW_OPENBSD: "raw IP",
    DLT_RAW: "raw IP",
    DLT_LOOP: "OpenBSD loopback (LOOP)",
    DLT_LINUX_SLL: "Linux cooked capture (SLL)",
    DLT_IPV4: "raw IPv4",
    DLT_IPV6: "raw IPv6",
    DLT_LINUX_SLL2: "Linux cooked capture v2 (SLL2)",
}

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
ETH_VLAN = (0x8100, 0x88A8, 0x9100)

PROTO_TCP = 6
PROTO_UDP = 17

# IPv6 extension headers that have the generic (next header, length) layout
_IPV6_EXT = {0, 43, 60, 135, 139, 140}
_IPV6_FRAGMENT = 44

_H = struct.Struct("!H")
_HH = struct.Struct("!HH")
_IPV4 = struct.Struct("!BBHHHBBH4s4s")
_IPV6 = struct.Struct("!IHBB16s16s")
_TCP = struct.Struct("!HHIIBB")
_NULL_LE = struct.Struct("<I")
_NULL_BE = struct.Struct(">I")


class Segment(NamedTuple):
    """A transport-layer payload with the addresses it travelled between.

    ``src``/``dst`` are packed addresses (4 or 16 bytes); ``seq`` and ``flags`` are 0 for
    UDP. ``payload`` is a zero-copy view into the frame.
    """

    proto: int
    src: bytes
    sport: int
    dst: bytes
    dport: int
    seq: int
    flags: int
    payload: memoryview


# TCP flags
FIN = 0x01
SYN = 0x02
RST = 0x04
ACK = 0x10


def _link(linktype: int, frame: memoryview) -> tuple[int, int] | None:
    """``(ethertype, offset of the network header)`` or ``None``."""
    if linktype == DLT_EN10MB:
        if len(frame) < 14:
            return None
        (etype,) = _H.unpack_from(frame, 12)
        off = 14
        while etype in ETH_VLAN:
            if len(frame) < off + 4:
                return None
            (etype,) = _H.unpack_from(frame, off + 2)
            off += 4
        return etype, off
    if linktype == DLT_LINUX_SLL:
        if len(frame) < 16:
            return None
        (etype,) = _H.unpack_from(frame, 14)
        off = 16
        while etype in ETH_VLAN:  # tags are not stripped on some kernels
            if len(frame) < off + 4:
                return None
            (etype,) = _H.unpack_from(frame, off + 2)
            off += 4
        return etype, off
    if linktype == DLT_LINUX_SLL2:
        if len(frame) < 20:
            return None
        (etype,) = _H.unpack_from(frame, 0)
        return etype, 20
    if linktype in (DLT_NULL, DLT_LOOP):
        if len(frame) < 4:
            return None
        # NULL is in the capturing host's byte order, LOOP in network order
        family = (_NULL_BE if linktype == DLT_LOOP else _NULL_LE).unpack_from(frame, 0)[0]
        if family > 0xFFFF:
            family = _NULL_BE.unpack_from(frame, 0)[0]
        if family == 2:
            return ETH_IPV4, 4
        if family in (10, 24, 28, 30):  # AF_INET6 differs between systems
            return ETH_IPV6, 4
        return None
    if linktype in (DLT_RAW, DLT_RAW_ALT, DLT_RAW_OPENBSD, DLT_IPV4, DLT_IPV6):
        if not len(frame):
            return None
        version = frame[0] >> 4
        if version == 4:
            return ETH_IPV4, 0
        if version == 6:
            return ETH_IPV6, 0
        return None
    return None


#: Ethernet + IPv4 without options + TCP, the frame most captures are made of, in one go
_ETH_IPV4_TCP = struct.Struct("!12xHBBHHHBBH4s4sHHIIBB")


def dissect(linktype: int, data: bytes | memoryview) -> Segment | None:
    """The TCP segment or UDP datagram in one captured frame, or ``None``.

    ``None`` for non-IP frames, other transports, non-first IPv4 fragments and frames too
    short for their headers. A payload cut by the capture's snap length comes out short;
    the reassembler sees the missing bytes as a gap.
    """
    frame = memoryview(data)
    if linktype == DLT_EN10MB and len(frame) >= 54:
        # the common case with one unpack (was 3 and a call: a tenth of `wirekit parse`);
        # anything unusual (VLAN, IP options, fragments, short or odd lengths) goes the
        # general way below
        (etype, vihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst, sport, dport,
         seq, _ack, doff, flags) = _ETH_IPV4_TCP.unpack_from(frame)  # fmt: skip
        if etype == ETH_IPV4 and vihl == 0x45 and proto == PROTO_TCP and not frag & 0x1FFF:
            hlen = (doff >> 4) * 4
            end = min(len(frame), 14 + total) if total >= 20 else len(frame)
            if hlen >= 20 and end >= 34 + hlen:
                return Segment(
                    PROTO_TCP, src, sport, dst, dport, seq, flags, frame[34 + hlen : end]
                )
    link = _link(linktype, frame)
    if link is None:
        return None
    etype, off = link
    if etype == ETH_IPV4:
        if len(frame) < off + 20:
            return None
        vihl, _tos, total, _ident, frag, _ttl, proto, _csum, src, dst = _IPV4.unpack_from(
            frame, off
        )
        ihl = (vihl & 0x0F) * 4
        if vihl >> 4 != 4 or ihl < 20:
            return None
        if frag & 0x1FFF:  # a later fragment: no transport header here
            return None
        end = min(len(frame), off + total) if total >= ihl else len(frame)
        off += ihl
    elif etype == ETH_IPV6:
        if len(frame) < off + 40:
            return None
        vtcfl, plen, proto, _hop, src, dst = _IPV6.unpack_from(frame, off)
        if vtcfl >> 28 != 6:
            return None
        off += 40
        end = min(len(frame), off + plen) if plen else len(frame)
        while proto in _IPV6_EXT or proto == _IPV6_FRAGMENT:
            if end < off + 8:
                return None
            nxt = frame[off]
            if proto == _IPV6_FRAGMENT:
                (fragoff,) = _H.unpack_from(frame, off + 2)
                if fragoff & 0xFFF8:
                    return None
                size = 8
            else:
                size = (frame[off + 1] + 1) * 8
            proto = nxt
            off += size
    else:
        return None
    if proto == PROTO_TCP:
        if end < off + 20:
            return None
        sport, dport, seq, _ack, doff, flags = _TCP.unpack_from(frame, off)
        hlen = (doff >> 4) * 4
        if hlen < 20 or end < off + hlen:
            return None
        return Segment(PROTO_TCP, src, sport, dst, dport, seq, flags, frame[off + hlen : end])
    if proto == PROTO_UDP:
        if end < off + 8:
            return None
        sport, dport = _HH.unpack_from(frame, off)
        (ulen,) = _H.unpack_from(frame, off + 4)
        stop = min(end, off + ulen) if ulen >= 8 else end
        return Segment(PROTO_UDP, src, sport, dst, dport, 0, 0, frame[off + 8 : stop])
    return None
