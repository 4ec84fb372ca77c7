"""``Client``: one outgoing connection (TCP, TLS or Unix socket) as a session."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import os
import ssl
from collections.abc import Sequence
from contextlib import AsyncExitStack
from types import TracebackType
from typing import Generic, TypeVar

import anyio
from anyio.abc import ByteStream

from codec import Protocol as CodecProtocol

from ._anyio_engine import StreamEngine, stream_addresses
from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, DEFAULT_READ_SIZE
from ._native_engine import NativeEngine, sock_addresses
from ._options import SessionOptions, SocketOption, check_engine, use_native
from ._processor import Plugin, Processor
from ._reconnect import Reconnect, Reconnecting
from ._session import Inbox, Session, SessionPort
from ._timers import TimerQueue

__all__ = ["Client"]

T = TypeVar("T")


class Client(Generic[T]):
    """Connects once entered and yields the :class:`Session` (the seed's ``AioQuickClient``).

    Push style: give a ``processor``; messages go to its ``process``. Pull style (no
    processor): ``await session.receive()`` or ``async for msg in session``; up to
    ``inbox_size`` received messages wait there, then reading stops (backpressure).

    ``ssl``: ``True`` for a default client context (certificates and host name verified),
    or an ``ssl.SSLContext``; ``server_hostname`` overrides the name checked. Leaving the
    block closes the session gracefully (what was sent is flushed), or at once when the block
    raised.

    Raises ``TimeoutError`` when connecting takes longer than ``connect_timeout`` and
    ``OSError`` (or an ``ssl`` error) when it fails.

    ``engine``: ``"auto"`` (the native ``BufferedProtocol`` engine on asyncio and uvloop,
    the anyio-streams engine on trio), ``"anyio"`` or ``"native"`` to choose one.

    ``reconnect``: a :class:`Reconnect` policy (push style only): when the connection ends
    by anything but leaving the block, the client connects again with backoff, each time
    a new session; the block yields the first session, :attr:`session` is the current
    one, and :class:`ReconnectFailed` is raised from the block when the policy gives up.
    """

    def __init__(
        self,
        protocol: CodecProtocol[T],
        processor: Processor[T] | None = None,
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | os.PathLike[str] | None = None,
        ssl: ssl.SSLContext | bool | None = None,
        server_hostname: str | None = None,
        connect_timeout: float = 10.0,
        read_buffer_size: int = DEFAULT_READ_SIZE,
        max_frame_size: int | None = None,
        nodelay: bool = True,
        socket_options: Sequence[SocketOption] = (),
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        plugins: Sequence[Plugin[T]] = (),
        close_timeout: float = 30.0,
        inbox_size: int = 1024,
        engine: str = "auto",
        reconnect: Reconnect | None = None,
    ) -> None:
        self._engine = check_engine(engine)
        if path is None and (host is None or port is None):
            raise ValueError("give host and port, or path")
        if reconnect is not None and processor is None:
            raise ValueError("reconnect= needs a push-style client: give it a processor")
        self._reconnect = reconnect
        self._reconnecting: Reconnecting[T] | None = None
        self._options: SessionOptions[T] = SessionOptions(
            protocol,
            processor if processor is not None else Inbox(),
            plugins=tuple(plugins),
            read_buffer_size=read_buffer_size,
            max_frame_size=max_frame_size,
            high_water=high_water,
            low_water=low_water,
            nodelay=nodelay,
            socket_options=tuple(socket_options),
            close_timeout=close_timeout,
            inbox_size=inbox_size if processor is None else None,
        )
        self._host = host
        self._port = port
        self._path = os.fspath(path) if path is not None else None
        self._ssl = ssl
        self._server_hostname = server_hostname
        self._connect_timeout = connect_timeout
        self._stack: AsyncExitStack | None = None
        self._session: Session[T] | None = None

    @property
    def session(self) -> Session[T] | None:
        """The current connection's session (``None`` outside the block, and between
        connections of a reconnecting client)."""
        if self._reconnecting is not None:
            return self._reconnecting.session
        return self._session

    def _one_connection(self) -> Client[T]:
        """A client for one connection of a reconnecting one: the same options, its own
        timers (a client's timer queue ends with its connection)."""
        clone = copy.copy(self)
        clone._reconnect = None
        clone._reconnecting = None
        clone._stack = clone._session = None
        clone._options = dataclasses.replace(self._options, timers=TimerQueue())
        return clone

    async def _connect(self) -> ByteStream:
        if self._path is not None:
            return await anyio.connect_unix(self._path)
        assert self._host is not None
        assert self._port is not None
        context = self._ssl
        if context is True:
            context = ssl.create_default_context()
        if isinstance(context, ssl.SSLContext):
            return await anyio.connect_tcp(
                self._host,
                self._port,
                ssl_context=context,
                tls_hostname=self._server_hostname or self._host,
                tls_standard_compatible=False,
            )
        return await anyio.connect_tcp(self._host, self._port)

    def _ssl_context(self) -> ssl.SSLContext | None:
        context = self._ssl
        if context is True:
            return ssl.create_default_context()
        return context if isinstance(context, ssl.SSLContext) else None

    async def _connect_native(self, engine: NativeEngine[T]) -> asyncio.BaseTransport:
        loop = asyncio.get_running_loop()
        if self._path is not None:
            transport, _ = await loop.create_unix_connection(lambda: engine, self._path)
            return transport
        assert self._host is not None
        assert self._port is not None
        context = self._ssl_context()
        if context is not None:
            transport, _ = await loop.create_connection(
                lambda: engine,
                self._host,
                self._port,
                ssl=context,
                server_hostname=self._server_hostname or self._host,
            )
        else:
            transport, _ = await loop.create_connection(lambda: engine, self._host, self._port)
        return transport

    async def _enter_native(self) -> Session[T]:
        options = self._options
        session = options.new_session(None, None)
        engine: NativeEngine[T] = NativeEngine(
            session, read_size=options.read_buffer_size, close_timeout=options.close_timeout
        )
        try:
            with anyio.fail_after(self._connect_timeout):
                transport = await self._connect_native(engine)
        except BaseException:
            SessionPort(session).discard_inbox()
            raise
        async with AsyncExitStack() as stack:
            stack.callback(transport.abort)  # type: ignore[attr-defined]
            sock = transport.get_extra_info("socket")
            options.configure_socket(sock)
            port = SessionPort(session)
            port.set_addresses(*sock_addresses(sock))
            if port.inbox is not None:
                stack.push_async_callback(port.inbox.aclose)
            tg = await stack.enter_async_context(anyio.create_task_group())
            options.timers.bind(tg)
            await tg.start(engine.run)
            self._session = session
            self._stack = stack.pop_all()
        return session

    async def __aenter__(self) -> Session[T]:
        if self._reconnect is not None:
            target = self._path or f"{self._host}:{self._port}"
            reconnecting = Reconnecting(self._one_connection, self._reconnect, target)
            session = await reconnecting.__aenter__()
            self._reconnecting = reconnecting
            return session
        if use_native(self._engine):
            return await self._enter_native()
        options = self._options
        with anyio.fail_after(self._connect_timeout):
            stream = await self._connect()
        async with AsyncExitStack() as stack:
            stack.push_async_callback(anyio.aclose_forcefully, stream)
            options.configure(stream)
            local, remote = stream_addresses(stream)
            session = options.new_session(local, remote)
            inbox = SessionPort(session).inbox
            if inbox is not None:
                stack.push_async_callback(inbox.aclose)
            engine = StreamEngine(
                session,
                stream,
                read_size=options.read_buffer_size,
                close_timeout=options.close_timeout,
            )
            tg = await stack.enter_async_context(anyio.create_task_group())
            options.timers.bind(tg)
            await tg.start(engine.run)
            self._session = session
            self._stack = stack.pop_all()
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        if self._reconnecting is not None:
            reconnecting, self._reconnecting = self._reconnecting, None
            return await reconnecting.__aexit__(exc_type, exc, tb)
        stack, session = self._stack, self._session
        assert stack is not None
        assert session is not None
        self._stack = self._session = None
        try:
            SessionPort(session).close_inbox()  # unblock a reader waiting on a full inbox
            await session.close(immediate=exc_type is not None)
        finally:
            self._options.timers.close()
            # The body's own exception propagates unchanged (not in an exception group).
            await stack.__aexit__(None, None, None)
        return None
