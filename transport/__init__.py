"""wirekit transport: servers, clients and sessions on anyio (asyncio, uvloop and trio).

A sans-I/O session core (``_core``, ``_state``) is driven by an I/O engine behind the public
names below: ``_native_engine`` (asyncio's ``BufferedProtocol``; the default on asyncio and
uvloop) or ``_anyio_engine`` (anyio's streams; every backend, the one trio uses). See
``docs/transport.md``.
"""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES as _EXTENSION_SUFFIXES

from . import _session as _session
from ._client import Client
from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, DEFAULT_READ_SIZE, SessionCore
from ._pool import ClientPool, PoolStatistics
from ._processor import Plugin, Processor
from ._reconnect import Reconnect, ReconnectAttempt, ReconnectFailed
from ._server import Server, ServerStatistics
from ._session import Session, SessionStatistics
from ._state import SessionState, StateEvent
from ._udp import UdpClient, UdpServer

#: Whether the transport's hot modules (the native engine, ``Session``, ``SessionCore``)
#: run compiled: a wheel built with ``WIREKIT_COMPILE=1`` (docs/performance.md, "Compiled
#: with mypyc"). ``False`` for the pure-Python build, the default and the reference.
COMPILED: bool = str(_session.__file__).endswith(tuple(_EXTENSION_SUFFIXES))

__all__ = [
    "COMPILED",
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
