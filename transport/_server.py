"""``Server``: listens (TCP, TLS or Unix socket) and runs one session per connection."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

import anyio
from anyio.abc import ByteStream, SocketAttribute, SocketListener, TaskGroup
from anyio.streams.tls import TLSStream

from codec import Protocol as CodecProtocol

from ._anyio_engine import StreamEngine, stream_addresses
from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, DEFAULT_READ_SIZE
from ._lifecycle import FINAL_GRACE
from ._native_engine import NativeEngine, is_ip, sock_addresses
from ._options import SessionOptions, SocketOption, check_engine, use_native
from ._processor import Plugin, Processor
from ._session import Engine, Session, SessionPort
from ._state import StateEvent

__all__ = ["Server", "ServerStatistics"]

T = TypeVar("T")

logger = logging.getLogger("transport")


class ServerStatistics:
    """A server's counters (live object; read its attributes)."""

    __slots__ = ("accept_errors", "accepted", "active", "rejected")

    def __init__(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.accept_errors = 0
        self.active = 0

    def __repr__(self) -> str:
        return (
            f"ServerStatistics(accepted={self.accepted}, active={self.active}, "
            f"rejected={self.rejected}, accept_errors={self.accept_errors})"
        )


class Server(Generic[T]):
    """A stream server (the seed's ``AioQuickServer``), listening once entered.

    ``async with Server(codec, processor, host="127.0.0.1", port=0) as server:`` binds and
    listens before the body runs (``server.port`` gives an ephemeral port). Leaving the block
    shuts down gracefully: stop accepting, close every session gracefully (their pending
    writes are flushed), wait up to ``shutdown_timeout`` seconds, then cancel what is left.

    Args:
        protocol: any :class:`codec.Protocol` (a :class:`codec.Codec` or hand-written).
        processor: the :class:`Processor` every session uses.
        host: where to listen (``None``: every interface).
        port: the port to listen on (``0``: an ephemeral one, read it from ``server.port``).
        path: listen on this Unix domain socket instead (removed again on exit).
        ssl_context: serve TLS with this server-side context (handshake per connection).
        backlog: the listen queue length.
        read_buffer_size: the most bytes one read takes (256 KiB). Reads adapt to the
            traffic below it: they start at 64 KiB, grow fourfold when they fill all the
            space they are given, and halve (down to 4 KiB) when they stay small; it is also
            how far input may run ahead of a busy processor.
        max_frame_size: the most received bytes a session buffers while waiting for the end
            of a message (``FrameTooLarge``, so ``DECODE_EXCEPTION``, beyond it); ``None``
            leaves the limit to the protocol.
        nodelay: TCP_NODELAY (on by default).
        socket_options: ``(level, option, value)`` triples applied to every accepted socket.
        high_water: a session's pending output above which ``send`` waits (backpressure).
        low_water: the pending output below which waiting ``send`` calls go on.
        plugins: :class:`Plugin` instances, called in order.
        shutdown_timeout: how long a graceful shutdown waits for sessions to finish.
        handshake_timeout: the most a TLS handshake may take.
        close_timeout: the most a session's graceful close may spend flushing.
        engine: ``"auto"`` (the default: the native ``BufferedProtocol`` engine on asyncio
            and uvloop, the anyio-streams engine on trio), ``"anyio"`` to force the
            anyio-streams engine, ``"native"`` to insist on the native one.
        reuse_port: set ``SO_REUSEPORT`` on the listening sockets, so that several
            processes (``wirekit serve --workers N``) listen on the same port and the kernel
            spreads the connections among them. TCP only; ``ValueError`` where the platform
            has no ``SO_REUSEPORT`` (Windows) or with ``path``.
    """

    def __init__(
        self,
        protocol: CodecProtocol[T],
        processor: Processor[T],
        *,
        host: str | None = None,
        port: int = 0,
        path: str | os.PathLike[str] | None = None,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
        read_buffer_size: int = DEFAULT_READ_SIZE,
        max_frame_size: int | None = None,
        nodelay: bool = True,
        socket_options: Sequence[SocketOption] = (),
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        plugins: Sequence[Plugin[T]] = (),
        shutdown_timeout: float = 10.0,
        handshake_timeout: float = 10.0,
        close_timeout: float = 30.0,
        engine: str = "auto",
        reuse_port: bool = False,
    ) -> None:
        self._engine = check_engine(engine)
        if reuse_port and path is not None:
            raise ValueError("reuse_port applies to TCP listeners, not to a Unix socket path")
        if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
            raise ValueError("reuse_port: this platform has no SO_REUSEPORT")
        self._reuse_port = reuse_port
        self._native = False
        self._options: SessionOptions[T] = SessionOptions(
            protocol,
            processor,
            plugins=tuple(plugins),
            read_buffer_size=read_buffer_size,
            max_frame_size=max_frame_size,
            high_water=high_water,
            low_water=low_water,
            nodelay=nodelay,
            socket_options=tuple(socket_options),
            close_timeout=close_timeout,
        )
        self._host = host
        self._port = port
        self._path = os.fspath(path) if path is not None else None
        self._ssl_context = ssl_context
        self._backlog = backlog
        self._shutdown_timeout = shutdown_timeout
        self._handshake_timeout = handshake_timeout
        self._listeners: list[SocketListener] = []
        self._tg: TaskGroup | None = None
        self._accept_scope: anyio.CancelScope | None = None
        self._sessions: dict[Session[T], Engine] = {}
        self._all_closed: anyio.Event | None = None
        self._stats = ServerStatistics()

    # -- public --------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port listened on (the real one when ``port=0`` was asked)."""
        for listener in self._listeners:
            address = listener.extra(SocketAttribute.local_address)
            if isinstance(address, tuple):
                return int(address[1])
        raise RuntimeError("not listening on TCP")

    @property
    def addresses(self) -> list[Any]:
        """Every address listened on."""
        return [lst.extra(SocketAttribute.local_address) for lst in self._listeners]

    @property
    def sessions(self) -> list[Session[T]]:
        """The sessions alive now."""
        return list(self._sessions)

    def statistics(self) -> ServerStatistics:
        return self._stats

    async def serve_forever(self) -> None:
        """Wait until cancelled (sessions are served in the background since ``__aenter__``)."""
        await anyio.sleep_forever()

    async def __aenter__(self) -> Server[T]:
        self._native = use_native(self._engine)
        if self._path is not None:
            self._listeners = [await anyio.create_unix_listener(self._path, backlog=self._backlog)]
        else:
            multi = await anyio.create_tcp_listener(
                local_host=self._host,
                local_port=self._port,
                backlog=self._backlog,
                reuse_port=self._reuse_port,
            )
            self._listeners = [cast(SocketListener, lst) for lst in multi.listeners]
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._options.timers.bind(tg)
        tg.start_soon(self._accept_all)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        if self._accept_scope is not None:
            self._accept_scope.cancel()
        if exc_type is None:
            with anyio.CancelScope(shield=True):
                await self._drain_sessions()
        self._options.timers.close()
        tg.cancel_scope.cancel()
        try:
            # The body's own exception propagates unchanged (not in an exception group).
            await tg.__aexit__(None, None, None)
        finally:
            await self._close_listeners()
        return None

    # -- internals -----------------------------------------------------------------------
    async def _drain_sessions(self) -> None:
        self._all_closed = anyio.Event()
        for session in list(self._sessions):
            session.close_nowait()
        with anyio.move_on_after(self._shutdown_timeout):
            if self._sessions:
                await self._all_closed.wait()
        if self._sessions:
            # the deadline ran out: what is left closes at once, its pending output dropped
            # and said so (OUTPUT_EXCEPTION), lingering closes cut short
            reason = TimeoutError(
                f"server shutdown: shutdown_timeout ({self._shutdown_timeout} s) ran out"
            )
            for session in list(self._sessions):
                SessionPort(session).expire(reason)
            with anyio.move_on_after(FINAL_GRACE):
                await self._all_closed.wait()

    async def _close_listeners(self) -> None:
        for listener in self._listeners:
            await anyio.aclose_forcefully(listener)
        if self._path is not None:
            try:
                os.unlink(self._path)
            except OSError:
                pass

    async def _accept_all(self) -> None:
        with anyio.CancelScope() as scope:
            self._accept_scope = scope
            async with anyio.create_task_group() as tg:
                for listener in self._listeners:
                    if self._native:
                        tg.start_soon(self._accept_loop_native, listener)
                    else:
                        tg.start_soon(self._accept_loop, listener)

    async def _accept_loop(self, listener: SocketListener) -> None:
        tg = self._tg
        assert tg is not None
        while True:
            try:
                stream = await listener.accept()
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                return
            except OSError as exc:  # EMFILE and friends: report, back off, go on
                await self._accept_failed(None, exc)
                await anyio.sleep(0.05)
                continue
            tg.start_soon(self._serve_connection, stream)

    async def _serve_connection(self, stream: ByteStream) -> None:
        options = self._options
        local, remote = stream_addresses(stream)
        session = options.new_session(local, remote)
        if not await self._admit(session, lambda: options.configure(stream)):
            await anyio.aclose_forcefully(stream)
            return
        if self._ssl_context is not None:
            try:
                with anyio.fail_after(self._handshake_timeout):
                    stream = await TLSStream.wrap(
                        stream,
                        server_side=True,
                        ssl_context=self._ssl_context,
                        standard_compatible=False,
                    )
            except Exception as exc:
                await self._accept_failed(session, exc)
                await anyio.aclose_forcefully(stream)
                return
        engine = StreamEngine(
            session,
            stream,
            read_size=options.read_buffer_size,
            close_timeout=options.close_timeout,
        )
        await self._run(session, engine)

    # -- the native engine (asyncio and uvloop) ------------------------------------------
    async def _admit(self, session: Session[T], configure: Callable[[], None]) -> bool:
        """Set a new connection's socket up and ask the plugins (both accept paths):
        ``False`` when it must be closed — a plugin refused it (``REJECT_ACCEPT``), or the
        set-up or a plugin raised (``INTERNAL_EXCEPTION``)."""
        try:
            configure()
            accepted = all(plugin.accept(session) for plugin in self._options.plugins)
        except Exception as exc:
            await SessionPort(session).emit(StateEvent.INTERNAL_EXCEPTION, exc)
            return False
        if not accepted:
            self._stats.rejected += 1
            await SessionPort(session).emit(StateEvent.REJECT_ACCEPT)
            return False
        return True

    async def _accept_failed(self, session: Session[T] | None, exc: BaseException) -> None:
        """Accepting a connection, or its TLS handshake, failed: ``ACCEPT_EXCEPTION`` (on a
        placeholder session when there is none yet: EMFILE and friends)."""
        self._stats.accept_errors += 1
        if session is None:
            session = self._options.new_session(None, None)
        await SessionPort(session).emit(StateEvent.ACCEPT_EXCEPTION, exc)

    async def _run(self, session: Session[T], engine: StreamEngine[T] | NativeEngine[T]) -> None:
        """Run one accepted session to its end, tracked for graceful shutdown."""
        self._stats.accepted += 1
        self._stats.active += 1
        self._sessions[session] = engine
        if self._all_closed is not None:  # shutting down already
            session.close_nowait()
        try:
            await engine.run()
        finally:
            self._stats.active -= 1
            del self._sessions[session]
            if not self._sessions and self._all_closed is not None:
                self._all_closed.set()

    async def _accept_loop_native(self, listener: SocketListener) -> None:
        tg = self._tg
        assert tg is not None
        raw: socket.socket = listener.extra(SocketAttribute.raw_socket)
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, _ = await loop.sock_accept(raw)
            except asyncio.CancelledError:
                try:  # https://bugs.python.org/issue41317 (a cancelled accept's reader)
                    loop.remove_reader(raw)
                except (ValueError, NotImplementedError):
                    pass
                raise
            except OSError as exc:  # EMFILE and friends: report, back off, go on
                if raw.fileno() == -1:
                    return  # the listener was closed
                await self._accept_failed(None, exc)
                await anyio.sleep(0.05)
                continue
            tg.start_soon(self._serve_native, sock)

    async def _serve_native(self, sock: socket.socket) -> None:
        options = self._options
        local, remote = sock_addresses(sock)
        session = options.new_session(local, remote)
        if not await self._admit(session, lambda: options.configure_socket(sock)):
            sock.close()
            return
        engine: NativeEngine[T] = NativeEngine(
            session, read_size=options.read_buffer_size, close_timeout=options.close_timeout
        )
        loop = asyncio.get_running_loop()
        try:
            if self._ssl_context is not None:
                with anyio.fail_after(self._handshake_timeout):
                    transport, _ = await loop.connect_accepted_socket(
                        lambda: engine,
                        sock,
                        ssl=self._ssl_context,
                        ssl_handshake_timeout=self._handshake_timeout,
                    )
            else:
                transport, _ = await loop.connect_accepted_socket(lambda: engine, sock)
            if not options.nodelay and is_ip(sock):  # asyncio turns TCP_NODELAY on
                transport.get_extra_info("socket").setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_NODELAY, 0
                )
        except Exception as exc:
            await self._accept_failed(session, exc)
            sock.close()
            return
        await self._run(session, engine)
