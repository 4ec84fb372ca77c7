"""``ClientPool``: many requests over few connections (the seed's multiplexing client).

A request borrows a connection for as long as it needs it (``async with pool.acquire() as
session``: the session is exclusive, pull style), then gives it back. The pool opens a
connection only when no idle one is left and fewer than ``max_size`` exist, closes those
idle for ``idle_timeout``, and never hands out one that is closing or closed: a borrower
always starts on a clean, open connection.

Each connection is a :class:`Client` entered and left by a task of the pool's own (a
client's block must be left by the task that entered it), which also closes it when it has
been idle too long: no extra task or timer per connection beyond that one.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from codec import Protocol as CodecProtocol

from ._client import Client
from ._session import Session, SessionPort
from ._state import SessionState

__all__ = ["ClientPool", "PoolStatistics"]

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class PoolStatistics:
    """A :class:`ClientPool`'s counters at the time of :meth:`ClientPool.statistics`."""

    #: connections open now (idle + in use)
    size: int
    idle: int
    in_use: int
    #: connections opened since the pool was entered
    opened: int
    #: connections closed instead of being reused (broken, idle too long, a request failed)
    discarded: int
    #: requests waiting for a connection now
    waiting: int


class _Conn(Generic[T]):
    """One pooled connection: its session, and the holder task's wake-up call."""

    __slots__ = ("idle_since", "retired", "session", "wake")

    def __init__(self) -> None:
        self.session: Session[T] | None = None
        self.idle_since: float | None = None
        self.retired = False
        self.wake: anyio.Event | None = None

    def poke(self) -> None:
        if self.wake is not None:
            self.wake.set()

    def usable(self) -> bool:
        """Open both ways, nothing of someone else's request left to read."""
        session = self.session
        if session is None or session.state is not SessionState.OPEN:
            return False
        if session.statistics().buffered_read_bytes:
            return False  # part of a reply nobody read
        inbox = SessionPort(session).inbox
        return inbox is None or inbox.statistics().current_buffer_used == 0


class ClientPool(Generic[T]):
    """Up to ``max_size`` pull-style connections to one server, shared by requests.

    ``async with ClientPool(codec, host=..., port=...) as pool:`` owns the connections'
    tasks; leaving it closes every connection gracefully (at once if the block raised).
    ``async with pool.acquire() as session:`` borrows one exclusively: ``send`` a request,
    ``receive`` its reply; on leaving, the connection goes back to the pool.

    Guarantees:

    * at most ``max_size`` connections exist; a request finding none free waits, at most
      ``acquire_timeout`` seconds (or :meth:`acquire`'s ``timeout``), then gets a
      ``TimeoutError``; connecting counts in that time too;
    * a connection handed out is open both ways with nothing buffered from an earlier
      request; one that closed, broke, or was returned with a reply unread (or part of
      one), or whose borrower's block raised, is closed and replaced, never reused;
    * idle connections are reused most-recently-used first and closed after
      ``idle_timeout`` seconds unused, so a burst's extra connections go away again.

    ``client_options`` are :class:`Client`'s (``ssl``, ``connect_timeout``, ``plugins``,
    ``engine``, ``inbox_size``, ...); ``processor`` and ``reconnect`` do not apply.
    """

    def __init__(
        self,
        protocol: CodecProtocol[T],
        *,
        host: str | None = None,
        port: int | None = None,
        path: str | os.PathLike[str] | None = None,
        max_size: int = 10,
        idle_timeout: float = 60.0,
        acquire_timeout: float = 30.0,
        **client_options: Any,
    ) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be at least 1, not {max_size!r}")
        if not idle_timeout > 0 or not acquire_timeout > 0:
            raise ValueError("idle_timeout and acquire_timeout must be positive")
        for option in ("processor", "reconnect"):
            if option in client_options:
                raise ValueError(f"a pool's connections are pull style: no {option}=")
        if path is None and (host is None or port is None):
            raise ValueError("give host and port, or path")
        self._protocol = protocol
        self._target: dict[str, Any] = {"host": host, "port": port, "path": path}
        self._client_options = client_options
        self.max_size = max_size
        self.idle_timeout = float(idle_timeout)
        self.acquire_timeout = float(acquire_timeout)
        self._tg: TaskGroup | None = None
        self._slots = anyio.Semaphore(max_size)
        self._all: set[_Conn[T]] = set()
        #: idle connections, the most recently used last
        self._idle: list[_Conn[T]] = []
        self._closing = False
        self._opened = 0
        self._discarded = 0
        self._waiting = 0

    def statistics(self) -> PoolStatistics:
        size = len(self._all)
        return PoolStatistics(
            size=size,
            idle=len(self._idle),
            in_use=size - len(self._idle),
            opened=self._opened,
            discarded=self._discarded,
            waiting=self._waiting,
        )

    async def __aenter__(self) -> ClientPool[T]:
        tg = anyio.create_task_group()
        await tg.__aenter__()
        self._tg = tg
        self._closing = False
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        tg = self._tg
        assert tg is not None
        self._closing = True
        for conn in list(self._all):
            self._retire(conn, immediate=exc_type is not None)
        self._idle.clear()
        if exc_type is not None:
            tg.cancel_scope.cancel()
        self._tg = None
        # The body's own exception propagates unchanged (not in an exception group).
        await tg.__aexit__(None, None, None)
        return None

    @asynccontextmanager
    async def acquire(
        self,
        timeout: float | None = None,  # noqa: ASYNC109 (bounds the wait, not the block)
    ) -> AsyncIterator[Session[T]]:
        """Borrow a connection for the block (see the class doc for the guarantees).

        Raises ``TimeoutError`` when no connection could be had within ``timeout``
        (default: the pool's ``acquire_timeout``), ``OSError`` when connecting failed,
        ``RuntimeError`` when the pool is not entered or is closing."""
        conn = await self._lease(self.acquire_timeout if timeout is None else timeout)
        session = conn.session
        assert session is not None
        failed = True
        try:
            yield session
            failed = False
        finally:
            self._release(conn, failed)

    # -- internals ------------------------------------------------------------------------
    def _check_open(self) -> TaskGroup:
        if self._tg is None or self._closing:
            raise RuntimeError("the pool is not open (use it inside `async with ClientPool(...)`)")
        return self._tg

    async def _lease(self, patience: float) -> _Conn[T]:
        tg = self._check_open()
        self._waiting += 1
        try:
            with anyio.fail_after(patience):
                await self._slots.acquire()
        except TimeoutError:
            raise TimeoutError(
                f"no pooled connection free within {patience:g} s (max_size={self.max_size})"
            ) from None
        finally:
            self._waiting -= 1
        try:
            tg = self._check_open()
            while self._idle:
                conn = self._idle.pop()
                if conn.usable():
                    conn.idle_since = None
                    return conn
                self._retire(conn)
            conn = _Conn()
            with anyio.fail_after(patience):
                await tg.start(self._hold, conn)
            return conn
        except BaseException:
            self._slots.release()
            raise

    def _release(self, conn: _Conn[T], failed: bool) -> None:
        self._slots.release()
        if failed or self._closing or not conn.usable():
            self._retire(conn, immediate=failed)
        else:
            conn.idle_since = anyio.current_time()
            self._idle.append(conn)
            conn.poke()

    def _retire(self, conn: _Conn[T], immediate: bool = False) -> None:
        if conn.retired:
            return
        conn.retired = True
        self._discarded += not self._closing
        if immediate and conn.session is not None:
            conn.session.close_nowait(immediate=True)
        conn.poke()

    async def _hold(self, conn: _Conn[T], *, task_status: TaskStatus[None]) -> None:
        """Connect, hand the connection over, keep it until retired or idle too long."""
        options = {**self._target, **self._client_options}
        async with Client(self._protocol, **options) as session:
            conn.session = session
            self._all.add(conn)
            self._opened += 1
            task_status.started()
            try:
                while not conn.retired:
                    conn.wake = anyio.Event()
                    if conn.idle_since is None:
                        await conn.wake.wait()
                        continue
                    left = conn.idle_since + self.idle_timeout - anyio.current_time()
                    if left <= 0:
                        if conn in self._idle:
                            self._idle.remove(conn)
                        self._retire(conn)
                        break
                    with anyio.move_on_after(left):
                        await conn.wake.wait()
            finally:
                self._all.discard(conn)
                if conn in self._idle:
                    self._idle.remove(conn)
