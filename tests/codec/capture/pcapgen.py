"""Crafted captures for the tests: Ethernet/SLL/NULL/raw frames around TCP and UDP, written
with dpkt's pcap and pcapng writers. Each packet is built by dpkt (so checksums, lengths
and headers are what a real stack would put there) and tshark reads them as real captures.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
from dataclasses import dataclass, field
from pathlib import Path

import dpkt

LINKTYPES = {"eth": 1, "null": 0, "raw": 101, "sll": 113}


def _ip(src: str, dst: str, proto: int, payload: dpkt.Packet) -> dpkt.Packet:
    if ipaddress.ip_address(src).version == 6:
        ip6 = dpkt.ip6.IP6(
            src=socket.inet_pton(socket.AF_INET6, src),
            dst=socket.inet_pton(socket.AF_INET6, dst),
            nxt=proto,
            hlim=64,
            data=payload,
        )
        ip6.plen = len(bytes(payload))
        return ip6
    return dpkt.ip.IP(
        src=socket.inet_aton(src), dst=socket.inet_aton(dst), p=proto, ttl=64, data=payload
    )


@dataclass
class Capture:
    """Frames in capture order; ``link`` is one of ``LINKTYPES``; ``vlan`` adds 802.1Q."""

    link: str = "eth"
    vlan: int | None = None
    t0: float = 1_700_000_000.0
    frames: list[tuple[float, bytes]] = field(default_factory=list)

    def frame(self, ip: dpkt.Packet) -> bytes:
        raw = bytes(ip)
        v6 = isinstance(ip, dpkt.ip6.IP6)
        etype = 0x86DD if v6 else 0x0800
        if self.link == "raw":
            return raw
        if self.link == "null":
            return struct.pack("<I", 30 if v6 else 2) + raw
        if self.link == "sll":
            return struct.pack("!HHH8sH", 0, 772, 6, b"\0" * 8, etype) + raw
        head = b"\x02\x00\x00\x00\x00\x02" + b"\x02\x00\x00\x00\x00\x01"
        if self.vlan is not None:
            head += struct.pack("!HH", 0x8100, self.vlan)
        return head + struct.pack("!H", etype) + raw

    def add(self, frame: bytes, ts: float | None = None) -> None:
        self.frames.append((self.t0 + len(self.frames) * 0.001 if ts is None else ts, frame))

    def udp(self, src: str, sport: int, dst: str, dport: int, payload: bytes) -> bytes:
        u = dpkt.udp.UDP(sport=sport, dport=dport, data=payload)
        u.ulen = 8 + len(payload)
        return self.frame(_ip(src, dst, 17, u))

    def write(self, path: Path, fmt: str = "pcap") -> Path:
        with open(path, "wb") as f:
            if fmt == "pcap":
                w = dpkt.pcap.Writer(f, linktype=LINKTYPES[self.link])
            else:
                w = dpkt.pcapng.Writer(f, linktype=LINKTYPES[self.link])
            for ts, frame in self.frames:
                w.writepkt(frame, ts=ts)
        return path


class Tcp:
    """One TCP connection's segments (frames), with sequence numbers tracked per side."""

    def __init__(
        self,
        cap: Capture,
        client: tuple[str, int],
        server: tuple[str, int],
        isn_c: int = 1000,
        isn_s: int = 5000,
    ) -> None:
        self.cap = cap
        self.ends = {"c": client, "s": server}
        self.seq = {"c": isn_c, "s": isn_s}

    def seg(
        self, side: str, payload: bytes = b"", flags: int = dpkt.tcp.TH_ACK, seq: int | None = None
    ) -> bytes:
        """A segment from ``side`` ("c" or "s"); advances that side's sequence number
        unless ``seq`` is given (for retransmissions and overlaps)."""
        other = "s" if side == "c" else "c"
        (src, sport), (dst, dport) = self.ends[side], self.ends[other]
        s = self.seq[side] if seq is None else seq
        t = dpkt.tcp.TCP(
            sport=sport,
            dport=dport,
            seq=s % (1 << 32),
            ack=self.seq[other] % (1 << 32),
            flags=flags,
            win=65535,
            data=payload,
        )
        if seq is None:
            self.seq[side] += len(payload) + bool(flags & (dpkt.tcp.TH_SYN | dpkt.tcp.TH_FIN))
        return self.cap.frame(_ip(src, dst, 6, t))

    def handshake(self) -> list[bytes]:
        return [
            self.seg("c", flags=dpkt.tcp.TH_SYN),
            self.seg("s", flags=dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK),
            self.seg("c"),
        ]

    def data(self, side: str, payload: bytes, mss: int = 1460) -> list[bytes]:
        return [
            self.seg(side, payload[i : i + mss], dpkt.tcp.TH_ACK | dpkt.tcp.TH_PUSH)
            for i in range(0, len(payload), mss)
        ]

    def close(self) -> list[bytes]:
        fin = dpkt.tcp.TH_FIN | dpkt.tcp.TH_ACK
        return [self.seg("c", flags=fin), self.seg("s", flags=fin), self.seg("c")]
