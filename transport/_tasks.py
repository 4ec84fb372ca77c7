"""The tasks a session's processor hands slow work to (``Session.start_soon``).

Each engine runs them in a task group of the session's own, so they end with the session:
a graceful close waits for them (within ``close_timeout``) before it flushes the last
output, an immediate close cancels them. They count as the session's own tasks, so a
``close()`` called from one only requests the close, as from ``process``.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

import anyio
from anyio.abc import TaskGroup

__all__ = ["SessionTasks"]


class SessionTasks:
    """Started work of one session: a task group lent by its engine, and a count."""

    __slots__ = ("_idle", "_running", "_tg", "ids")

    def __init__(self) -> None:
        self._tg: TaskGroup | None = None
        self._running = 0
        self._idle: anyio.Event | None = None
        #: the ids of the tasks running now (the engine's ``owns_current_task`` asks)
        self.ids: set[int] = set()

    def bind(self, tg: TaskGroup | None) -> None:
        """Run started work in ``tg`` from now on (``None``: the session is ending)."""
        self._tg = tg

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        tg = self._tg
        if tg is None:
            raise anyio.ClosedResourceError
        self._running += 1
        tg.start_soon(self._run, func)

    async def _run(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        task_id = anyio.get_current_task().id
        self.ids.add(task_id)
        try:
            await func()
        finally:
            self.ids.discard(task_id)
            self._running -= 1
            idle = self._idle
            if not self._running and idle is not None:
                self._idle = None
                idle.set()

    @property
    def running(self) -> int:
        """How many started tasks run now."""
        return self._running

    async def wait_idle(self) -> None:
        """Wait until no started work runs (callers bound it: ``close_timeout``)."""
        while self._running:
            if self._idle is None:
                self._idle = anyio.Event()
            await self._idle.wait()
