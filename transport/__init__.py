"""wirekit transport: servers, clients and sessions on anyio (asyncio, uvloop and trio).

A sans-I/O session core (``_core``, ``_state``) is driven by an I/O engine behind the public
names below: ``_native_engine`` (asyncio's ``BufferedProtocol``; the default on asyncio and
uvloop) or ``_anyio_engine`` (anyio's streams; every backend, the one trio uses). See
``docs/transport.md``.
"""

from __future__ import annotations

from ._client import Client
from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, DEFAULT_READ_SIZE, SessionCore
from ._pool import ClientPool, PoolStatistics
from ._processor import Plugin, Processor
from ._reconnect import Reconnect, ReconnectAttempt, ReconnectFailed
from ._server import Server, ServerStatistics
from ._session import Session, SessionStatistics
from ._state import SessionState, StateEvent
from ._udp import UdpClient, UdpServer

__all__ = [
    "DEFAULT_HIGH_WATER",
    "DEFAULT_LOW_WATER",
    "DEFAULT_READ_SIZE",
    "Client",
    "ClientPool",
    "Plugin",
    "PoolStatistics",
    "Processor",
    "Reconnect",
    "ReconnectAttempt",
    "ReconnectFailed",
    "Server",
    "ServerStatistics",
    "Session",
    "SessionCore",
    "SessionState",
    "SessionStatistics",
    "StateEvent",
    "UdpClient",
    "UdpServer",
]
