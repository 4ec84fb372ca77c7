"""`BlackList`: refuse peers by address or CIDR network, IPv4 and IPv6, before any work.

A check costs one set look-up per distinct prefix length in the list (an address masked to
``/24`` is looked up among the ``/24`` networks), not one comparison per entry, so a list
of thousands of addresses stays cheap on every accept.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from .._processor import Plugin
from .._session import Session

__all__ = ["AddressSet", "BlackList", "peer_ip"]

logger = logging.getLogger("transport.plugins")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def peer_ip(address: Any) -> IPAddress | None:
    """The IP address of a session's ``remote_address`` (``(host, port, ...)``), or
    ``None`` for a peer without one (a Unix socket). An IPv4-mapped IPv6 address
    (``::ffff:192.0.2.1``, from a dual-stack listener) is returned as the IPv4 address, so
    IPv4 lists apply to it; an IPv6 scope (``fe80::1%eth0``) is dropped."""
    if not isinstance(address, tuple) or not address or not isinstance(address[0], str):
        return None
    host = address[0].split("%", 1)[0]
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def _network(entry: str | IPAddress | IPNetwork) -> IPNetwork:
    """``"192.0.2.7"``, ``"192.0.2.0/24"``, ``"2001:db8::/32"`` or an ``ipaddress`` object
    as a network (an address is its own ``/32`` or ``/128``); host bits are ignored."""
    if isinstance(entry, (ipaddress.IPv4Network, ipaddress.IPv6Network)):
        return entry
    if isinstance(entry, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
        return ipaddress.ip_network(entry)
    try:
        return ipaddress.ip_network(str(entry).strip(), strict=False)
    except ValueError:
        raise ValueError(f"not an IP address or CIDR network: {entry!r}") from None


class AddressSet:
    """A set of IPv4 and IPv6 networks with a fast ``ip in set`` (see the module doc)."""

    def __init__(self, entries: Iterable[str | IPAddress | IPNetwork] = ()) -> None:
        #: (version, prefix length) -> network addresses as integers
        self._nets: dict[tuple[int, int], set[int]] = {}
        for entry in entries:
            self.add(entry)

    def add(self, entry: str | IPAddress | IPNetwork) -> None:
        net = _network(entry)
        key = (net.version, net.prefixlen)
        self._nets.setdefault(key, set()).add(int(net.network_address))

    def discard(self, entry: str | IPAddress | IPNetwork) -> None:
        """Remove exactly this network (an entry of the same address and prefix length)."""
        net = _network(entry)
        key = (net.version, net.prefixlen)
        nets = self._nets.get(key)
        if nets is not None:
            nets.discard(int(net.network_address))
            if not nets:
                del self._nets[key]

    def clear(self) -> None:
        self._nets.clear()

    def __contains__(self, ip: object) -> bool:
        if not isinstance(ip, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return False
        value = int(ip)
        bits = ip.max_prefixlen
        version = ip.version
        for (v, prefix), nets in self._nets.items():
            if v == version and (value >> (bits - prefix)) << (bits - prefix) in nets:
                return True
        return False

    def __iter__(self) -> Iterator[IPNetwork]:
        for (version, prefix), nets in sorted(self._nets.items()):
            cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
            for value in sorted(nets):
                yield cls((value, prefix))

    def __len__(self) -> int:
        return sum(len(nets) for nets in self._nets.values())

    def __repr__(self) -> str:
        return f"AddressSet({[str(n) for n in self]!r})"


class BlackList(Plugin[Any]):
    """Refuses connections by the peer's address: a refused peer is closed before
    ``NEW_SESSION`` and fires ``REJECT_ACCEPT`` (nothing is read from it, no processor
    work), and ``session.attributes["reject_reason"]`` says why.

    ``deny``: addresses or CIDR networks refused. ``allow``: when given, only these are
    served (an allow-list), minus what ``deny`` refuses. Entries are strings
    (``"192.0.2.7"``, ``"198.51.100.0/24"``, ``"2001:db8::/32"``) or ``ipaddress``
    objects; an IPv4-mapped IPv6 peer is checked as its IPv4 address.

    Peers without an IP address (Unix domain sockets) are not in any network: they are
    served unless ``allow`` is given (an allow-list admits only what it lists).

    Both lists change at run time (:meth:`deny_address`, :meth:`allow_address`,
    :meth:`remove`), for connections accepted afterwards; sessions already open are left
    alone (close them with ``server.sessions`` if you must).
    """

    def __init__(
        self,
        deny: Iterable[str | IPAddress | IPNetwork] = (),
        allow: Iterable[str | IPAddress | IPNetwork] | None = None,
    ) -> None:
        self.denied = AddressSet(deny)
        #: ``None``: no allow-list (everyone not denied is served)
        self.allowed: AddressSet | None = None if allow is None else AddressSet(allow)

    def __repr__(self) -> str:
        return f"BlackList(deny={len(self.denied)}, allow={self.allowed!r})"

    def deny_address(self, entry: str | IPAddress | IPNetwork) -> None:
        """Refuse this address or network from now on."""
        self.denied.add(entry)

    def allow_address(self, entry: str | IPAddress | IPNetwork) -> None:
        """Admit this address or network (it starts an allow-list if there was none)."""
        if self.allowed is None:
            self.allowed = AddressSet()
        self.allowed.add(entry)

    def remove(self, entry: str | IPAddress | IPNetwork) -> None:
        """Take this exact entry off both lists (an empty allow-list still admits nobody:
        set :attr:`allowed` to ``None`` to drop it)."""
        self.denied.discard(entry)
        if self.allowed is not None:
            self.allowed.discard(entry)

    def reason(self, address: Any) -> str | None:
        """Why a peer at ``address`` (a ``remote_address``) is refused, or ``None``."""
        ip = peer_ip(address)
        if ip is not None and ip in self.denied:
            return f"{ip} is denied"
        if self.allowed is not None and (ip is None or ip not in self.allowed):
            return f"{ip if ip is not None else repr(address)} is not allowed"
        return None

    def is_allowed(self, address: Any) -> bool:
        """Whether a peer at ``address`` would be served."""
        return self.reason(address) is None

    def accept(self, session: Session[Any]) -> bool:
        reason = self.reason(session.remote_address)
        if reason is None:
            return True
        session.attributes["reject_reason"] = f"BlackList: {reason}"
        logger.info("refused %r: %s", session.remote_address, reason)
        return False
