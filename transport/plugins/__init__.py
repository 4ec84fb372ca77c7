"""Ready-made plugins (smart-socket's set): give them to a ``Server`` or ``Client`` as
``plugins=[...]``; they are called in the order given. See ``docs/plugins.md``.

* :class:`MonitorPlugin`, :class:`PrometheusMonitor`: counters, and their export;
* :class:`IdleTimeout`, :class:`Heartbeat`: idle, half-open and silent peers;
* :class:`BlackList`, :class:`RateLimit`: who is served, and how fast;
* :class:`StreamMonitor`: every byte on the wire;
* :class:`ProxyProtocol`: the real client's address behind a load balancer.

Every plugin follows the one contract of :class:`transport.Plugin`: a hook that raises
(a sink, a predicate) aborts only its session, with ``INTERNAL_EXCEPTION``.
"""

from __future__ import annotations

from ._blacklist import AddressSet, BlackList, peer_ip
from ._heartbeat import Heartbeat, HeartbeatTimeout
from ._idle import IdleTimeout, IdleTimeoutError
from ._monitor import MonitorPlugin, MonitorSnapshot
from ._prometheus import PrometheusMonitor
from ._proxy import ProxyProtocol, ProxyProtocolError
from ._ratelimit import RateLimit, TokenBucket
from ._stream import StreamMonitor, hexdump

__all__ = [
    "AddressSet",
    "BlackList",
    "Heartbeat",
    "HeartbeatTimeout",
    "IdleTimeout",
    "IdleTimeoutError",
    "MonitorPlugin",
    "MonitorSnapshot",
    "PrometheusMonitor",
    "ProxyProtocol",
    "ProxyProtocolError",
    "RateLimit",
    "StreamMonitor",
    "TokenBucket",
    "hexdump",
    "peer_ip",
]
