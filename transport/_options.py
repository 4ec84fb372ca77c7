"""Options shared by servers and clients, and the socket set-up they imply."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from anyio.abc import ByteStream, SocketAttribute

from codec import Protocol as CodecProtocol

from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, DEFAULT_READ_SIZE
from ._processor import Plugin, Processor
from ._session import Session
from ._timers import TimerQueue

__all__ = ["ENGINES", "SessionOptions", "SocketOption", "check_engine", "use_native"]

T = TypeVar("T")

#: ``(level, option, value)`` as for ``socket.setsockopt``
SocketOption = tuple[int, int, "int | bytes"]

#: what the ``engine`` option of servers and clients accepts
ENGINES = ("auto", "native", "anyio")


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    return engine


def use_native(engine: str) -> bool:
    """Whether ``engine`` means the native asyncio engine in the running event loop."""
    from ._native_engine import on_asyncio

    if engine == "anyio":
        return False
    native = on_asyncio()
    if engine == "native" and not native:
        raise RuntimeError('engine="native" needs asyncio (or uvloop); this is not asyncio')
    return native


@dataclasses.dataclass
class SessionOptions(Generic[T]):
    """How sessions are built; one instance per server or client."""

    protocol: CodecProtocol[T]
    processor: Processor[T]
    plugins: Sequence[Plugin[T]] = ()
    read_buffer_size: int = DEFAULT_READ_SIZE
    max_frame_size: int | None = None
    high_water: int = DEFAULT_HIGH_WATER
    low_water: int = DEFAULT_LOW_WATER
    nodelay: bool = True
    socket_options: Sequence[SocketOption] = ()
    close_timeout: float = 30.0
    inbox_size: int | None = None
    #: the timers of every session built here (``Session.call_later``); run by the owner
    timers: TimerQueue = dataclasses.field(default_factory=TimerQueue)

    def __post_init__(self) -> None:
        # refused where the options are given, not at the first connection (where it
        # would surface inside the server's task group)
        if not 0 <= self.low_water <= self.high_water:
            raise ValueError(
                f"water marks need 0 <= low_water <= high_water, got low_water="
                f"{self.low_water} and high_water={self.high_water}"
            )
        if self.read_buffer_size <= 0:
            raise ValueError(f"read_buffer_size must be positive, got {self.read_buffer_size}")

    def new_session(self, local: Any, remote: Any, *, datagram: bool = False) -> Session[T]:
        return Session(
            self.protocol,
            self.processor,
            self.plugins,
            local_address=local,
            remote_address=remote,
            high_water=self.high_water,
            low_water=self.low_water,
            max_buffered=self.max_frame_size,
            inbox_size=self.inbox_size,
            datagram=datagram,
            timers=self.timers,
        )

    def configure(self, stream: ByteStream) -> None:
        """Apply TCP_NODELAY and the socket options to a freshly connected stream."""
        self.configure_socket(stream.extra(SocketAttribute.raw_socket, None))

    def configure_socket(self, sock: Any) -> None:
        """Apply TCP_NODELAY and the socket options to a connected socket (or the socket
        object an asyncio transport gives as ``get_extra_info("socket")``)."""
        if sock is None:
            return
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, int(self.nodelay))
        for level, option, value in self.socket_options:
            sock.setsockopt(level, option, value)
