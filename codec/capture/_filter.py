"""Which packets of a capture to decode: by transport, port, host or flow."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from ._dissect import PROTO_TCP, PROTO_UDP, Segment

__all__ = ["PacketFilter", "parse_endpoint"]

_PROTOS = {"tcp": PROTO_TCP, "udp": PROTO_UDP}


def _packed(host: str) -> bytes:
    try:
        return ipaddress.ip_address(host.strip("[]")).packed
    except ValueError as exc:
        raise ValueError(f"not an IP address: {host!r}") from exc


def parse_endpoint(text: str) -> tuple[bytes, int]:
    """``"10.0.0.1:502"`` or ``"[::1]:502"`` -> (packed address, port)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT (IPv6 as [ADDR]:PORT), got {text!r}")
    value = int(port)
    if not 0 <= value <= 0xFFFF:
        raise ValueError(f"port out of range in {text!r}")
    return _packed(host), value


class PacketFilter:
    """Keep a packet when it matches every criterion given (an empty filter keeps all).

    Args:
        ports: keep packets whose source or destination port is one of these.
        hosts: keep packets whose source or destination address is one of these.
        flows: keep packets between the two endpoints of one of these pairs, in either
            direction; endpoints are ``"HOST:PORT"`` strings (IPv6 as ``"[ADDR]:PORT"``).
        proto: ``"tcp"`` or ``"udp"`` to keep only one transport.
    """

    def __init__(
        self,
        *,
        ports: Iterable[int] = (),
        hosts: Iterable[str] = (),
        flows: Iterable[tuple[str, str]] = (),
        proto: str | None = None,
    ) -> None:
        self.ports = frozenset(ports)
        self.hosts = frozenset(_packed(h) for h in hosts)
        self.flows = frozenset(frozenset((parse_endpoint(a), parse_endpoint(b))) for a, b in flows)
        if proto is not None and proto not in _PROTOS:
            raise ValueError(f"proto must be 'tcp' or 'udp', not {proto!r}")
        self.proto = _PROTOS[proto] if proto is not None else None
        self.empty = not (self.ports or self.hosts or self.flows or self.proto is not None)

    def __repr__(self) -> str:
        return (
            f"PacketFilter(ports={sorted(self.ports)}, hosts={len(self.hosts)}, "
            f"flows={len(self.flows)}, proto={self.proto})"
        )

    def __call__(self, seg: Segment) -> bool:
        if self.empty:
            return True
        if self.proto is not None and seg.proto != self.proto:
            return False
        if self.ports and seg.sport not in self.ports and seg.dport not in self.ports:
            return False
        if self.hosts and seg.src not in self.hosts and seg.dst not in self.hosts:
            return False
        return not (
            self.flows and frozenset(((seg.src, seg.sport), (seg.dst, seg.dport))) not in self.flows
        )
