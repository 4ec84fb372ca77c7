"""UDP: each datagram is decoded with the same protocol, one session per remote address.

A datagram may carry several messages; bytes left over after the last whole message (a
partial one) are a :class:`codec.DecodeError`: ``DECODE_EXCEPTION``, and that remote's
session closes (its next datagram starts a new session). The replies produced while
processing one datagram go out together, packed into as few datagrams as fit
``max_datagram_size`` (never splitting a message). UDP has no EOF: sessions end with
``close()``, a decode error, or the endpoint's exit.
"""

from __future__ import annotations

import asyncio
import collections
import socket
from collections.abc import Callable, Coroutine, Sequence
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.abc import SocketAttribute, TaskGroup

from codec import IncompleteFrame
from codec import Protocol as CodecProtocol

from ._native_engine import _convert
from ._options import SessionOptions, check_engine, use_native
from ._processor import Plugin, Processor
from ._session import Inbox, Session, SessionPort
from ._state import SessionState, StateEvent

__all__ = ["UdpClient", "UdpServer"]

T = TypeVar("T")

#: the largest UDP payload over IPv4
MAX_DATAGRAM = 65507

#: datagrams a native endpoint holds while its task is busy; beyond, the oldest are dropped
#: (UDP's own answer to a slow receiver; anyio's asyncio UDP socket does the same)
NATIVE_QUEUE = 1024


class _DatagramSocket(Protocol):
    """What an endpoint needs from its socket (anyio's ``UDPSocket`` has it too)."""

    async def receive(self) -> tuple[bytes, Any]: ...

    async def sendto(self, data: bytes, host: str, port: int) -> None: ...

    async def aclose(self) -> None: ...


class _NativeDatagramSocket(asyncio.DatagramProtocol):
    """A UDP socket straight on asyncio's ``DatagramProtocol`` (the native engine)."""

    def __init__(self) -> None:
        self._queue: collections.deque[tuple[bytes, Any]] = collections.deque(maxlen=NATIVE_QUEUE)
        self._waiter: asyncio.Future[None] | None = None
        self._transport: asyncio.DatagramTransport | None = None
        self._lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @classmethod
    async def open(cls, host: str, port: int) -> _NativeDatagramSocket:
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_datagram_endpoint(cls, local_addr=(host, port))
        return protocol

    @property
    def local_address(self) -> Any:
        assert self._transport is not None
        return _convert(self._transport.get_extra_info("sockname"))

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: Any) -> None:
        self._queue.append((data, _convert(addr)))
        self._wake()

    def error_received(self, exc: Exception) -> None:
        pass  # an ICMP error for an earlier datagram: UDP sends are fire and forget

    def connection_lost(self, exc: Exception | None) -> None:
        if not self._lost.done():
            self._lost.set_result(None)
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def receive(self) -> tuple[bytes, Any]:
        queue = self._queue
        while not queue:
            if self._lost.done():
                raise anyio.ClosedResourceError
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            await waiter
        return queue.popleft()

    async def sendto(self, data: bytes, host: str, port: int) -> None:
        assert self._transport is not None
        self._transport.sendto(data, (host, port))

    async def aclose(self) -> None:
        if self._transport is not None:
            self._transport.close()
            await self._lost


class _DatagramEngine(Generic[T]):
    """The :class:`~transport._session.Engine` of one remote address's session."""

    def __init__(self, endpoint: _Endpoint[T], session: Session[T], address: Any) -> None:
        self.endpoint = endpoint
        self.session = session
        self.address = address
        #: the engine's way to the session (its send/close now talk to this engine)
        self.port: SessionPort[T] = SessionPort(session, self)

    def wake_writer(self) -> None:
        self.endpoint.schedule(self)

    async def write_pending(self) -> None:
        self.endpoint.schedule(self)  # the endpoint's writer sends datagrams in order

    def request_close(self, immediate: bool) -> None:
        self.endpoint.schedule(self)

    def owns_current_task(self) -> bool:
        return anyio.get_current_task().id in self.endpoint.tasks

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        # a datagram session's work runs in its endpoint's task group (its close does
        # not wait for it: a UDP session has no connection to keep open meanwhile)
        tg = self.endpoint.tg
        if tg is None:
            raise anyio.ClosedResourceError
        tg.start_soon(func)


class _Endpoint(Generic[T]):
    """One UDP socket serving the sessions of every remote address that writes to it."""

    def __init__(
        self,
        options: SessionOptions[T],
        max_datagram_size: int,
        peer: Any = None,
        engine: str = "auto",
    ) -> None:
        self.options = options
        self.max_datagram_size = max_datagram_size
        self.peer = peer  # a client's one remote address; None for a server
        self.engine = check_engine(engine)
        self.sock: _DatagramSocket | None = None
        self.local_address: Any = None
        self.sessions: dict[Any, _DatagramEngine[T]] = {}
        self.tasks: set[int] = set()
        self.dirty: dict[_DatagramEngine[T], None] = {}
        self.wake: anyio.Event | None = None
        self.tg: TaskGroup | None = None

    async def open(self, host: str, port: int) -> None:
        if use_native(self.engine):
            native = await _NativeDatagramSocket.open(host, port)
            self.sock, self.local_address = native, native.local_address
        else:
            udp = await anyio.create_udp_socket(local_host=host, local_port=port)
            self.sock = udp
            self.local_address = udp.extra(SocketAttribute.local_address)
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self.tg = tg
        self.options.timers.bind(tg)
        self.wake = anyio.Event()
        tg.start_soon(self._receive_loop)
        tg.start_soon(self._writer)

    async def aclose(self) -> None:
        tg = self.tg
        assert tg is not None
        self.options.timers.close()
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True):
            for engine in list(self.sessions.values()):
                await self._finish(engine)
            if self.sock is not None:
                await self.sock.aclose()

    def schedule(self, engine: _DatagramEngine[T]) -> None:
        self.dirty[engine] = None
        if self.wake is not None:
            self.wake.set()

    async def session_for(self, address: Any) -> _DatagramEngine[T]:
        engine = self.sessions.get(address)
        if engine is None:
            session = self.options.new_session(self.local_address, address, datagram=True)
            engine = _DatagramEngine(self, session, address)
            self.sessions[address] = engine
            await engine.port.emit(StateEvent.NEW_SESSION)
        return engine

    async def _receive_loop(self) -> None:
        self.tasks.add(anyio.get_current_task().id)
        sock = self.sock
        assert sock is not None
        while True:
            data, address = await sock.receive()
            if self.peer is not None:
                if address[1] != self.peer[1]:
                    continue  # a client only listens to its server
                address = self.peer
            engine = await self.session_for(address)
            port = engine.port
            core = port.core
            core.receive_data(data)
            for plugin in port.after_read_hooks:
                plugin.after_read(port.session, len(data))
            if port.read_hooks:
                port.data_read(len(data))
            ok = await port.batch_processor()()
            if ok and len(core.buffer):
                partial = IncompleteFrame(
                    "datagram ends inside a frame",
                    offset=core.buffer.offset,
                    data=core.buffer.peek(32),
                )
                core.buffer.clear()
                await port.emit(StateEvent.DECODE_EXCEPTION, partial)
                ok = False
            if not ok or port.close_requested:
                await self._finish(engine)
            else:
                await self._flush(engine)

    async def _writer(self) -> None:
        self.tasks.add(anyio.get_current_task().id)
        while True:
            assert self.wake is not None
            await self.wake.wait()
            self.wake = anyio.Event()
            while self.dirty:
                engine = next(iter(self.dirty))
                del self.dirty[engine]
                if engine.port.close_requested:
                    await self._finish(engine)
                else:
                    await self._flush(engine)

    async def _flush(self, engine: _DatagramEngine[T]) -> bool:
        port = engine.port
        core = port.core
        sock = self.sock
        assert sock is not None
        host, peer_port = engine.address[:2]
        while core.has_output:
            parts = core.parts_to_send()
            try:
                for datagram in _pack(parts, self.max_datagram_size):
                    if port.write_hooks and not port.data_written(datagram):
                        return False
                    await sock.sendto(datagram, host, peer_port)
            except Exception as exc:
                if port.fire(StateEvent.OUTPUT_EXCEPTION):
                    await port.deliver(StateEvent.OUTPUT_EXCEPTION, exc)
                port.abort()
                return False
            port.wrote(sum(map(len, parts)))
        return True

    async def _finish(self, engine: _DatagramEngine[T]) -> None:
        """Close one session: flush (SESSION_CLOSING first if needed), SESSION_CLOSED."""
        port = engine.port
        session = port.session
        if self.sessions.get(engine.address) is not engine:
            return
        del self.sessions[engine.address]
        self.dirty.pop(engine, None)
        port.close_requested = True
        await port.end_input()
        if not port.aborted and port.core.has_output:
            await port.emit(StateEvent.SESSION_CLOSING)
            await self._flush(engine)
        if session.state is not SessionState.CLOSED:
            await port.emit(StateEvent.SESSION_CLOSED)


def _pack(pieces: list[bytes], limit: int) -> list[bytes]:
    """Join encoded messages into datagrams of at most ``limit`` bytes (a bigger message
    goes alone)."""
    out: list[bytes] = []
    batch: list[bytes] = []
    size = 0
    for piece in pieces:
        if batch and size + len(piece) > limit:
            out.append(b"".join(batch))
            batch, size = [], 0
        batch.append(piece)
        size += len(piece)
    if batch:
        out.append(b"".join(batch))
    return out


class UdpServer(Generic[T]):
    """Serves a protocol over UDP; one :class:`Session` per remote address.

    ``async with UdpServer(codec, processor, host="127.0.0.1", port=0) as server:`` is bound
    when entered (``server.port``). Leaving the block closes every session. ``engine`` as for
    :class:`Server` (``"auto"``: asyncio's ``DatagramProtocol`` on asyncio and uvloop).
    """

    def __init__(
        self,
        protocol: CodecProtocol[T],
        processor: Processor[T],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        plugins: Sequence[Plugin[T]] = (),
        max_datagram_size: int = MAX_DATAGRAM,
        engine: str = "auto",
    ) -> None:
        self._host = host
        self._port = port
        options = SessionOptions(protocol, processor, plugins=tuple(plugins))
        self._endpoint: _Endpoint[T] = _Endpoint(options, max_datagram_size, engine=engine)

    @property
    def port(self) -> int:
        return int(self._endpoint.local_address[1])

    @property
    def sessions(self) -> list[Session[T]]:
        return [engine.session for engine in self._endpoint.sessions.values()]

    async def __aenter__(self) -> UdpServer[T]:
        await self._endpoint.open(self._host, self._port)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._endpoint.aclose()


class UdpClient(Generic[T]):
    """A UDP session with one server: push style (a processor) or pull style."""

    def __init__(
        self,
        protocol: CodecProtocol[T],
        processor: Processor[T] | None = None,
        *,
        host: str,
        port: int,
        plugins: Sequence[Plugin[T]] = (),
        max_datagram_size: int = MAX_DATAGRAM,
        inbox_size: int = 1024,
        engine: str = "auto",
    ) -> None:
        options = SessionOptions(
            protocol,
            processor if processor is not None else Inbox(),
            plugins=tuple(plugins),
            inbox_size=inbox_size if processor is None else None,
        )
        self._remote = (host, port)
        self._endpoint: _Endpoint[T] = _Endpoint(
            options, max_datagram_size, peer=self._remote, engine=engine
        )
        self._session: Session[T] | None = None

    async def __aenter__(self) -> Session[T]:
        family = socket.AF_INET6 if ":" in self._remote[0] else socket.AF_INET
        local = "::1" if family == socket.AF_INET6 else "127.0.0.1"
        if self._remote[0] not in ("127.0.0.1", "::1", "localhost"):
            local = "::" if family == socket.AF_INET6 else "0.0.0.0"
        await self._endpoint.open(local, 0)
        engine = await self._endpoint.session_for(self._remote)
        self._session = engine.session
        return engine.session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        session = self._session
        assert session is not None
        await self._endpoint.aclose()
        SessionPort(session).close_inbox()
