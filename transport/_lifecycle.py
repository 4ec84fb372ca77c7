"""One session lifecycle, shared by every engine: the stream engines (native asyncio and
anyio) and the UDP endpoint's datagram sessions.

Every engine runs a session the same way; only how bytes move differs. This module holds
the part that is the same — the order of the state events, the graceful close and its time
limits, what an output failure and an internal failure do, the shielded end with
``SESSION_CLOSED`` last and the detach — so that no engine can get it subtly different.

:class:`SessionLifecycle` is the part every engine shares; an engine provides four steps:

``_stop_reading()``
    input is over: read nothing more for the session (a stream leaves the rest in the
    kernel until the lingering close drains it).
``_output_pending() -> bool``
    whether any output is queued or being written (``SESSION_CLOSING`` is due).
``_drain_output() -> bool``
    write everything pending, waiting for the peer as needed; ``False`` when writing failed
    (the engine has reported it through :meth:`SessionLifecycle._output_failed`).
``_close_connection()``
    close the connection: at once when the session was aborted, else gracefully (a
    stream's lingering close, within ``close_timeout``; nothing for a datagram session,
    whose socket is its endpoint's).

and says with ``_cancel()`` how to stop serving the session at once (a stream cancels the
session's task group; a datagram session has no task of its own). The shared steps:

* ``_finish()``, the graceful part of a close: the ``fail_input`` reason, then
  ``SESSION_CLOSING`` when output is pending, then the flush within ``close_timeout``
  (running out of it is an ``OUTPUT_EXCEPTION`` carrying a ``TimeoutError``);
* ``_output_failed(exc)``: ``OUTPUT_EXCEPTION``, the session aborted and stopped;
* ``_internal_failure(exc)``: ``INTERNAL_EXCEPTION`` (a bug, or a plugin hook that raised),
  that session only aborted and stopped;
* ``_end(clean)``, always, shielded from cancellation: the connection is closed, a failure
  applied earlier is delivered, ``SESSION_CLOSED`` last (its handlers get ``FINAL_GRACE``),
  and the session is detached from its engine (no reference cycle outlives it).

:class:`StreamLifecycle` runs a connection's whole life in one task (``run``); a stream
engine adds ``_read_loop()`` — read, process and write until the input ends or a close is
requested, delivering the end cause (``INPUT_SHUTDOWN`` / ``INPUT_EXCEPTION`` /
``DECODE_EXCEPTION``) itself:

1. ``NEW_SESSION``;
2. in a task group of the session's own (``Session.start_soon`` runs its tasks there):
   the read loop, then waiting for the started tasks, then ``_finish``, each within
   ``close_timeout``; an exception from any of it is an internal failure;
3. ``_end``.

A datagram session (``transport/_udp.py``) has no read loop and no task of its own: its
endpoint's tasks hand it each datagram, and call ``_finish`` and ``_end`` when it closes.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Generic, TypeVar

import anyio
from anyio.abc import TaskGroup, TaskStatus

from ._session import Engine, Session, SessionPort
from ._state import StateEvent
from ._tasks import SessionTasks

__all__ = ["FINAL_GRACE", "SessionLifecycle", "StreamLifecycle"]

T = TypeVar("T")

#: how long the SESSION_CLOSED handlers may take at the very end
FINAL_GRACE = 5.0


class SessionLifecycle(Generic[T]):
    """What every engine's session lifecycle shares; see the module's docstring."""

    def __init__(self, session: Session[T], engine: Engine, *, close_timeout: float) -> None:
        #: the engine's way to the session (its ``send``/``close`` now talk to ``engine``)
        self._port: SessionPort[T] = SessionPort(session, engine)
        self._close_timeout = close_timeout

    # -- what an engine provides -----------------------------------------------------------
    def _stop_reading(self) -> None:
        raise NotImplementedError

    def _output_pending(self) -> bool:
        """Whether any output is queued or being written (``SESSION_CLOSING`` is due)."""
        raise NotImplementedError

    async def _drain_output(self) -> bool:
        raise NotImplementedError

    async def _close_connection(self) -> None:
        raise NotImplementedError

    def _cancel(self) -> None:
        """Stop serving the session at once (after an output or internal failure)."""

    # -- shared ----------------------------------------------------------------------------
    def _output_failed(self, exc: BaseException) -> None:
        """A write failed (or the graceful flush ran out of time): ``OUTPUT_EXCEPTION``,
        the session is aborted and stopped."""
        self._port.fail(StateEvent.OUTPUT_EXCEPTION, exc)
        self._cancel()

    def _internal_failure(self, exc: BaseException) -> None:
        """A bug or a plugin hook that raised while serving the session:
        ``INTERNAL_EXCEPTION`` (delivered by :meth:`_end`), that session aborted and
        stopped; no other session is disturbed."""
        self._port.fail(StateEvent.INTERNAL_EXCEPTION, exc)
        self._cancel()

    async def _finish(self) -> None:
        """The graceful part of closing: the ``fail_input`` reason, ``SESSION_CLOSING``,
        the flush, within ``close_timeout``."""
        port = self._port
        await port.end_input()
        self._stop_reading()
        if port.aborted:
            return
        if self._output_pending():
            await port.emit(StateEvent.SESSION_CLOSING)
        with anyio.move_on_after(self._close_timeout) as scope:
            if not await self._drain_output():
                return
        if scope.cancelled_caught:
            self._output_failed(TimeoutError("graceful close: the peer did not read in time"))

    async def _end(self, clean: bool) -> None:
        """The end of every session, shielded from cancellation: the connection closed
        (at once unless ``clean``), a failure applied earlier delivered, ``SESSION_CLOSED``
        last, and the session detached from its engine."""
        port = self._port
        with anyio.CancelScope(shield=True):
            port.close_requested = True
            if not clean:
                port.abort()
            await self._close_connection()
            with anyio.move_on_after(FINAL_GRACE):
                await port.deliver_late()
                await port.emit(StateEvent.SESSION_CLOSED)
        port.detach()  # no session <-> engine cycle outlives the connection


class StreamLifecycle(SessionLifecycle[T]):
    """The lifecycle of one connection's session, run in one task; see the module's
    docstring."""

    def __init__(self, session: Session[T], engine: Engine, *, close_timeout: float) -> None:
        super().__init__(session, engine, close_timeout=close_timeout)
        #: cancels the session's task group: an immediate close, a failed write
        self._scope: anyio.CancelScope | None = None
        #: work the processor handed off with Session.start_soon
        self._started = SessionTasks()
        #: the session's task group while it is served (for an engine's helper tasks)
        self._tg: TaskGroup | None = None

    # -- what a stream engine provides -----------------------------------------------------
    async def _read_loop(self) -> None:
        raise NotImplementedError

    def _on_serving(self) -> None:
        """The task group is up (an engine starts helper tasks here)."""

    def _on_served(self) -> None:
        """The graceful part is done, cleanly (an engine lets its helper tasks end)."""

    # -- shared ----------------------------------------------------------------------------
    def owns_task(self, task_id: int) -> bool:
        """Whether ``task_id`` is one of the session's started tasks."""
        return task_id in self._started.ids

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        self._started.start_soon(func)

    def _cancel(self) -> None:
        if self._scope is not None:
            self._scope.cancel()

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Deliver NEW_SESSION, serve the session, and always end with SESSION_CLOSED."""
        port = self._port
        started = False
        clean = False
        try:
            await port.emit(StateEvent.NEW_SESSION)
            async with anyio.create_task_group() as tg:
                self._scope = tg.cancel_scope
                self._tg = tg
                self._started.bind(tg)
                if port.aborted:  # close(immediate=True) during NEW_SESSION
                    tg.cancel_scope.cancel()
                self._on_serving()
                task_status.started()
                started = True
                try:
                    await self._read_loop()
                    with anyio.move_on_after(self._close_timeout):
                        await self._started.wait_idle()
                    await self._finish()
                except Exception as exc:  # a bug or a failing plugin hook (logged as the event)
                    self._internal_failure(exc)
                else:
                    clean = True
                    self._on_served()
                    if self._started.running:
                        tg.cancel_scope.cancel()  # started work that outlived close_timeout
        except Exception as exc:  # a bug in the engine itself
            port.fail(StateEvent.INTERNAL_EXCEPTION, exc)
            clean = False
        finally:
            # a cancelled task's frame (in its CancelledError's traceback) may refer to the
            # engine: the engine must not refer back to the task group's scope
            self._scope = None
            self._tg = None
            self._started.bind(None)
            await self._end(clean)
            if not started:
                task_status.started()
