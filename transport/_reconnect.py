"""``Reconnect``: a push-style ``Client`` that comes back after its connection ends.

Exponential backoff with full jitter (AWS's "Exponential Backoff And Jitter": each wait is
drawn uniformly between 0 and ``min(max_delay, initial_delay * 2**(n-1))``, so a thousand
clients cut off by one server restart do not all come back in the same instant). Every
connection is a new :class:`Session` with its own ``NEW_SESSION`` ... ``SESSION_CLOSED``;
``on_reconnect`` restores what the server forgot (subscriptions) on each one.

The client's ``async with`` block owns a supervisor task that connects, waits for the
session to close, backs off and connects again, until the block is left. When
``max_attempts`` connection attempts in a row fail, the block is cancelled and
:class:`ReconnectFailed` is raised from it.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import anyio
from anyio.abc import TaskStatus

if TYPE_CHECKING:
    from ._client import Client
    from ._session import Session

__all__ = ["Reconnect", "ReconnectAttempt", "ReconnectFailed"]

T = TypeVar("T")

logger = logging.getLogger("transport.reconnect")


@dataclasses.dataclass(frozen=True)
class ReconnectAttempt:
    """One connection attempt, as ``Reconnect(on_attempt=...)`` is told of it (before it
    waits ``delay`` seconds and connects)."""

    #: 1 for the first attempt after a connection ended (or the client's first connect),
    #: then 2, 3, ... while attempts keep failing
    attempt: int
    #: seconds waited before connecting (0 for the client's first connect)
    delay: float
    #: why the previous connection or attempt ended (``None`` for the first connect)
    error: BaseException | None


class ReconnectFailed(ConnectionError):
    """``max_attempts`` connection attempts in a row failed; the last attempt's error is
    the ``__cause__``. Raised from the client's ``async with`` block."""

    def __init__(self, attempts: int, target: str, last: BaseException | None) -> None:
        super().__init__(
            f"gave up connecting to {target} after {attempts} attempt(s) in a row"
            + (f"; last error: {type(last).__name__}: {last}" if last is not None else "")
        )
        self.attempts = attempts
        self.last_error = last


@dataclasses.dataclass(frozen=True)
class Reconnect:
    """How a push-style ``Client(..., reconnect=Reconnect(...))`` comes back.

    * ``initial_delay``, ``max_delay``: the backoff before attempt *n* is drawn uniformly
      in ``[0, min(max_delay, initial_delay * multiplier ** (n - 1))]`` (full jitter;
      ``jitter=False`` waits the bound itself);
    * ``max_attempts``: failed attempts in a row before giving up with
      :class:`ReconnectFailed` (``None``: never give up); a connection that succeeds
      starts the count again;
    * ``on_reconnect(session)``, plain or ``async``: called on every new session, the
      first one included, before anything else uses it: subscribe or log in again there.
      If it raises, that connection counts as a failed attempt (closed, logged, retried);
    * ``on_attempt(ReconnectAttempt)``: called for every connection attempt, before its
      wait (the same is logged at INFO under ``"transport.reconnect"``; the error of a
      failed attempt at WARNING). It observes: if it raises, that is logged and ignored.

    The client's first connect is an attempt like the others: a server not up yet is
    retried (and ``max_attempts`` bounds how long the ``async with`` waits for it).
    What ends a connection does not matter (the peer closed, a reset, an idle timeout, the
    application's ``session.close()``): only leaving the client's block stops it.
    """

    initial_delay: float = 0.1
    max_delay: float = 30.0
    max_attempts: int | None = None
    on_reconnect: Callable[[Session[Any]], Awaitable[None] | None] | None = None
    on_attempt: Callable[[ReconnectAttempt], object] | None = None
    multiplier: float = 2.0
    jitter: bool = True

    def __post_init__(self) -> None:
        if self.initial_delay < 0 or self.max_delay < self.initial_delay:
            raise ValueError("need 0 <= initial_delay <= max_delay")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1 (or None)")
        if self.multiplier < 1:
            raise ValueError("multiplier must be at least 1")

    def backoff(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (1, 2, ...)."""
        bound = min(self.max_delay, self.initial_delay * self.multiplier ** min(attempt - 1, 64))
        return random.uniform(0.0, bound) if self.jitter else bound


class Reconnecting(Generic[T]):
    """The supervisor behind ``Client(reconnect=...)``: enter, then leave, in one task."""

    def __init__(self, connect: Callable[[], Client[T]], policy: Reconnect, target: str) -> None:
        self._connect = connect
        self._policy = policy
        self._target = target
        self._stack: AsyncExitStack | None = None
        self._scope: anyio.CancelScope | None = None
        self._stopping = False
        self._failure: ReconnectFailed | None = None
        self._supervisor_scope: anyio.CancelScope | None = None
        #: the session of the current connection (``None`` between connections)
        self.session: Session[T] | None = None

    async def __aenter__(self) -> Session[T]:
        async with AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            session: Session[T] | None = await tg.start(self._supervise)
            if session is not None:
                self._stack = stack.pop_all()
        if session is None:  # the first connect never succeeded (raised out of the group)
            assert self._failure is not None
            raise self._failure
        # the body runs in this scope: a supervisor that gives up cancels it
        self._scope = anyio.CancelScope()
        self._scope.__enter__()
        return session

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        scope, stack = self._scope, self._stack
        assert scope is not None
        assert stack is not None
        self._scope = self._stack = None
        self._stopping = True
        swallowed = bool(scope.__exit__(exc_type, exc, tb))  # our cancellation, if ours
        try:
            session = self.session
            if session is not None:
                with anyio.CancelScope(shield=True):
                    await session.close(immediate=exc_type is not None and not swallowed)
        finally:
            if self._supervisor_scope is not None:
                self._supervisor_scope.cancel()  # backing off or connecting: stop there
            await stack.aclose()
        if self._failure is not None:
            raise self._failure
        return True if swallowed else None

    async def _emit(self, attempt: ReconnectAttempt) -> None:
        if attempt.error is None:
            logger.info("connecting to %s (attempt %d)", self._target, attempt.attempt)
        else:
            logger.info(
                "reconnecting to %s in %.3f s (attempt %d): %s: %s",
                self._target,
                attempt.delay,
                attempt.attempt,
                type(attempt.error).__name__,
                attempt.error,
            )
        if self._policy.on_attempt is not None:
            try:
                self._policy.on_attempt(attempt)
            except Exception:  # an observer: like a failing state_event, logged and ignored
                logger.exception("on_attempt failed for %r", attempt)

    async def _supervise(self, *, task_status: TaskStatus[Session[T] | None]) -> None:
        policy = self._policy
        started = False
        failures = 0
        error: BaseException | None = None
        with anyio.CancelScope() as scope:
            self._supervisor_scope = scope
            while not self._stopped():
                delay = 0.0 if not started and not failures else policy.backoff(failures + 1)
                await self._emit(ReconnectAttempt(failures + 1, delay, error))
                if delay:
                    await anyio.sleep(delay)
                try:
                    async with self._connect() as session:
                        try:
                            await self._restore(session)
                        except Exception as exc:
                            logger.warning("on_reconnect failed on %r", session, exc_info=exc)
                            error = exc
                            failures += 1
                            await session.close(immediate=True)
                        else:
                            failures = 0
                            error = None
                            self.session = session
                            if not started:
                                started = True
                                task_status.started(session)
                            await session.wait_closed()
                            self.session = None
                            error = ConnectionResetError(f"the connection to {self._target} ended")
                except (OSError, TimeoutError) as exc:  # (ssl.SSLError is an OSError)
                    logger.warning(
                        "connecting to %s failed: %s: %s", self._target, type(exc).__name__, exc
                    )
                    error = exc
                    failures += 1
                if self._stopped():
                    return
                if policy.max_attempts is not None and failures >= policy.max_attempts:
                    failure = ReconnectFailed(failures, self._target, error)
                    failure.__cause__ = error
                    self._failure = failure
                    if not started:
                        task_status.started(None)  # __aenter__ raises the failure
                        return
                    if self._scope is not None:
                        self._scope.cancel()  # the body: __aexit__ raises the failure
                    return

    def _stopped(self) -> bool:
        """Whether the client's block was left (set by another task: a method, so that no
        type checker narrows it to a constant inside the loop)."""
        return self._stopping

    async def _restore(self, session: Session[T]) -> None:
        hook = self._policy.on_reconnect
        if hook is not None:
            result = hook(session)
            if inspect.isawaitable(result):
                await result
