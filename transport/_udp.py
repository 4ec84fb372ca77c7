"""UDP: each datagram is decoded with the same protocol, one session per remote address.

A datagram may carry several messages; bytes left over after the last whole message (a
partial one) are a :class:`codec.DecodeError`: ``DECODE_EXCEPTION``, and that remote's
session closes (on a server its next datagram starts a new session; a client, which is its
one session, reads nothing more). The replies produced while
processing one datagram go out together, packed into as few datagrams as fit
``max_datagram_size`` (never splitting a message). UDP has no EOF: sessions end with
``close()``, a decode error, a failure, or the endpoint's exit.

Each session runs on the lifecycle every engine shares (``SessionLifecycle``, see
``transport/_lifecycle.py``): its endpoint's tasks drive it instead of a read loop of its own.
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

from ._lifecycle import SessionLifecycle
from ._native_engine import _convert
from ._options import SessionOptions, check_engine, use_native
from ._processor import Plugin, Processor
from ._session import Inbox, Session, SessionPort
from ._state import StateEvent

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


class _DatagramEngine(SessionLifecycle[T]):
    """The engine of one remote address's session, and its lifecycle: the shared one
    (``transport/_lifecycle.py``), driven by its endpoint's tasks.

    What differs from a stream's: the session has no read loop and no task of its own (the
    endpoint's receive task hands it each datagram, in arrival order with every other
    peer's), no connection to half-close or linger on (the socket is the endpoint's), and
    its ``start_soon`` work runs in the endpoint's task group (its close does not wait for
    it: the close runs in the endpoint's task, which every peer shares).
    """

    def __init__(self, endpoint: _Endpoint[T], session: Session[T], address: Any) -> None:
        super().__init__(session, self, close_timeout=endpoint.options.close_timeout)
        self.endpoint = endpoint
        self.session = session
        self.address = address
        #: whether ``close`` began (it runs once)
        self._ending = False

    # -- Engine protocol -----------------------------------------------------------------
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

    # -- the session's life, driven by the endpoint --------------------------------------
    async def open(self) -> None:
        """The session begins: ``NEW_SESSION``."""
        await self._port.emit(StateEvent.NEW_SESSION)

    async def receive(self, data: bytes) -> None:
        """Serve one datagram from the peer: the read hooks, every message in it processed,
        the replies sent together; a decode error or a close requested meanwhile closes the
        session, and an exception from a plugin hook fails this session only."""
        try:
            if (
                await self._process(data)
                and not self._port.close_requested
                and await self._drain_output()
            ):
                return
        except Exception as exc:  # a bug or a failing plugin hook (logged as the event)
            self._internal_failure(exc)
        await self.close()

    async def _process(self, data: bytes) -> bool:
        """Decode and process the messages of one datagram; ``False`` on a decode error."""
        port = self._port
        core = port.core
        core.receive_data(data)
        for plugin in port.after_read_hooks:
            plugin.after_read(port.session, len(data))
        if port.read_hooks:
            port.data_read(len(data))
        if not await port.batch_processor()():
            return False
        if len(core.buffer) and not port.close_requested:
            partial = IncompleteFrame(
                "datagram ends inside a frame",
                offset=core.buffer.offset,
                data=core.buffer.peek(32),
            )
            core.buffer.clear()
            await port.emit(StateEvent.DECODE_EXCEPTION, partial)
            return False
        return True

    async def flush(self) -> None:
        """Send what was queued outside a datagram's batch, or close if that was asked."""
        try:
            if not self._port.close_requested and await self._drain_output():
                return
        except Exception as exc:
            self._internal_failure(exc)
        await self.close()

    async def close(self) -> None:
        """Close the session (once): the shared graceful part (``SESSION_CLOSING`` and the
        flush when output is pending), then ``SESSION_CLOSED``. The peer's next datagram
        starts a new session."""
        if self._ending:
            return
        self._ending = True
        self.endpoint.forget(self)
        clean = False
        try:
            await self._finish()
            clean = True
        except Exception as exc:
            self._internal_failure(exc)
        finally:
            await self._end(clean)

    # -- the lifecycle's steps -----------------------------------------------------------
    def _stop_reading(self) -> None:
        pass  # the endpoint forgot the session: the peer's next datagram starts a new one

    def _output_pending(self) -> bool:
        return self._port.core.pending > 0

    async def _drain_output(self) -> bool:
        """Send everything queued, packed into datagrams. ``False`` on failure."""
        port = self._port
        core = port.core
        sock = self.endpoint.sock
        assert sock is not None
        host, peer_port = self.address[:2]
        limit = self.endpoint.max_datagram_size
        lock = self.endpoint.send_lock
        assert lock is not None
        while core.pending and not core.aborted:
            # shielded: the parts taken are sent (a UDP send does not wait for the peer)
            # before a cancellation (the endpoint's exit) is seen, so none is lost between
            # the session's queue and the socket; one task sends at a time (the receive
            # task and the writer share the socket), each session's datagrams in order
            with anyio.CancelScope(shield=True):
                async with lock:
                    if not core.has_output:
                        break  # what was pending, another task has sent while this waited
                    parts = core.parts_to_send()
                    try:
                        for datagram in _pack(parts, limit):
                            if port.write_hooks and not port.data_written(datagram):
                                return False
                            await sock.sendto(datagram, host, peer_port)
                    except Exception as exc:
                        self._output_failed(exc)
                        return False
                    port.wrote(sum(map(len, parts)))
        return True

    async def _close_connection(self) -> None:
        pass  # the socket is the endpoint's: nothing of the peer's own to close


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
        #: a client's one session has ended: the server's later datagrams are dropped (a new
        #: session would be one the user never sees)
        self.peer_session_ended = False
        self.engine = check_engine(engine)
        self.sock: _DatagramSocket | None = None
        self.local_address: Any = None
        self.sessions: dict[Any, _DatagramEngine[T]] = {}
        self.tasks: set[int] = set()
        self.dirty: dict[_DatagramEngine[T], None] = {}
        self.wake: anyio.Event | None = None
        self.tg: TaskGroup | None = None
        #: held while a task sends: the receive task and the writer share the socket
        self.send_lock: anyio.Lock | None = None

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
        self.send_lock = anyio.Lock()
        tg.start_soon(self._receive_loop)
        tg.start_soon(self._writer)

    async def aclose(self) -> None:
        tg = self.tg
        assert tg is not None
        self.options.timers.close()
        tg.cancel_scope.cancel()
        await tg.__aexit__(None, None, None)
        with anyio.CancelScope(shield=True):
            await self._close_sessions()
            if self.sock is not None:
                await self.sock.aclose()

    async def _close_sessions(self) -> None:
        """Close every session gracefully, all within ``close_timeout`` (the endpoint's
        shutdown deadline): sessions still closing then close at once, their pending output
        dropped with ``OUTPUT_EXCEPTION`` carrying a ``TimeoutError``, as a stream server's
        ``shutdown_timeout`` does."""
        engines = list(self.sessions.values())
        timeout = self.options.close_timeout
        async with anyio.create_task_group() as tg:

            async def close_all() -> None:
                for engine in engines:
                    await engine.close()
                tg.cancel_scope.cancel()  # all closed in time

            tg.start_soon(close_all)
            await anyio.sleep(timeout)
            reason = TimeoutError(f"UDP endpoint exit: close_timeout ({timeout} s) ran out")
            for engine in engines:
                if not engine.session.closed:
                    SessionPort(engine.session).expire(reason)
            tg.cancel_scope.cancel()
        for engine in engines:
            await engine.close()  # (those the deadline did not reach: at once, aborted)

    def schedule(self, engine: _DatagramEngine[T]) -> None:
        self.dirty[engine] = None
        if self.wake is not None:
            self.wake.set()

    def forget(self, engine: _DatagramEngine[T]) -> None:
        """``engine``'s session is closing: the address's next datagram starts a new one
        (a server's; a client reads nothing more)."""
        if self.sessions.get(engine.address) is engine:
            del self.sessions[engine.address]
        self.dirty.pop(engine, None)
        if self.peer is not None:
            self.peer_session_ended = True

    async def session_for(self, address: Any) -> _DatagramEngine[T]:
        engine = self.sessions.get(address)
        if engine is None:
            session = self.options.new_session(self.local_address, address, datagram=True)
            engine = _DatagramEngine(self, session, address)
            self.sessions[address] = engine
            await engine.open()
        return engine

    async def _receive_loop(self) -> None:
        self.tasks.add(anyio.get_current_task().id)
        sock = self.sock
        assert sock is not None
        while True:
            data, address = await sock.receive()
            if self.peer is not None:
                if address[1] != self.peer[1] or self.peer_session_ended:
                    continue  # a client only listens to its server, while its session lasts
                address = self.peer
            # (no local keeps the engine while the loop waits: a cancelled wait's traceback
            # would keep a closed session alive until the cyclic collector runs)
            await (await self.session_for(address)).receive(data)

    async def _writer(self) -> None:
        self.tasks.add(anyio.get_current_task().id)
        while True:
            assert self.wake is not None
            await self.wake.wait()
            self.wake = anyio.Event()
            while self.dirty:
                engine = next(iter(self.dirty))
                del self.dirty[engine]
                await engine.flush()
                del engine  # (as in _receive_loop)


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
    when entered (``server.port``). Leaving the block closes every session gracefully (what
    was written is sent), all within ``close_timeout`` seconds; sessions still closing then
    close at once (``OUTPUT_EXCEPTION`` when output was dropped). ``engine`` as for
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
        close_timeout: float = 30.0,
    ) -> None:
        self._host = host
        self._port = port
        options = SessionOptions(
            protocol, processor, plugins=tuple(plugins), close_timeout=close_timeout
        )
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
    """A UDP session with one server: push style (a processor) or pull style.

    The client is the one session ``async with`` returns: once it has ended (``close()``,
    a decode error, a failure), the server's later datagrams are dropped; open another
    ``UdpClient`` to talk again."""

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
        close_timeout: float = 30.0,
    ) -> None:
        options = SessionOptions(
            protocol,
            processor if processor is not None else Inbox(),
            plugins=tuple(plugins),
            inbox_size=inbox_size if processor is None else None,
            close_timeout=close_timeout,
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
