"""Timers for sessions and plugins: one heap and one task per server or client.

An idle timeout must not cost a task or a timer object per session per read (Netty's
``IdleStateHandler`` re-arms one timer per period, not per read). Here a plugin arms one
:class:`Timer` per period with :meth:`transport.Session.call_later`; reads only store a
time stamp, and when the timer fires the plugin decides, from that stamp, whether to act
or to arm the next timer. Every timer of a server (or client) lives in one
:class:`TimerQueue`, served by one task that sleeps until the earliest deadline, on every
anyio backend.
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Callable

import anyio
from anyio.abc import TaskGroup

__all__ = ["Timer", "TimerQueue"]


class Timer:
    """One armed callback; :meth:`cancel` disarms it (it is dropped lazily)."""

    __slots__ = ("callback", "cancelled", "when")

    def __init__(self, when: float, callback: Callable[[], object]) -> None:
        #: when it fires, on ``anyio.current_time()``'s clock
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Do not fire (a no-op once fired)."""
        self.cancelled = True
        self.callback = _nothing  # let go of what the callback refers to


def _nothing() -> None:
    pass


class TimerQueue:
    """The timers of one server or client, fired in deadline order by :meth:`run`.

    Callbacks run in the queue's task, one after the other: they must not block, and an
    exception from one is the callback's own business (``Session.call_later`` turns it into
    the session's ``INTERNAL_EXCEPTION``); one that escapes is not allowed to stop the
    others, so it is swallowed here after being handed to ``on_error``.
    """

    def __init__(self, on_error: Callable[[BaseException], object] | None = None) -> None:
        self._heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._wake: anyio.Event | None = None
        self._running = False
        self._stopped = False
        self._tg: TaskGroup | None = None
        self._on_error = on_error

    def bind(self, tg: TaskGroup) -> None:
        """Run :meth:`run` in ``tg`` once the first timer is armed (a server or client that
        never arms one never starts the task)."""
        self._tg = tg
        self._stopped = False

    def close(self) -> None:
        """Stop firing: the task returns (rather than being cancelled, which would leave a
        reference cycle behind) and armed timers are dropped."""
        self._stopped = True
        self._heap.clear()
        self._tg = None
        if self._wake is not None:
            self._wake.set()

    def __len__(self) -> int:
        """Armed timers, cancelled ones not yet dropped included."""
        return len(self._heap)

    def call_at(self, when: float, callback: Callable[[], object]) -> Timer:
        """Fire ``callback()`` at ``when`` (``anyio.current_time()``'s clock)."""
        if self._stopped:
            raise RuntimeError("the timer queue is closed (its server or client has exited)")
        timer = Timer(when, callback)
        tg = self._tg
        if not self._running and tg is not None:
            self._running = True
            tg.start_soon(self._run)
        heap = self._heap
        earliest = heap[0][0] if heap else math.inf
        heapq.heappush(heap, (when, next(self._seq), timer))
        if when < earliest and self._wake is not None:
            self._wake.set()
        return timer

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Fire ``callback()`` in ``delay`` seconds."""
        return self.call_at(anyio.current_time() + delay, callback)

    async def run(self) -> None:
        """Fire timers as they fall due until :meth:`close` (or cancelled): one task per
        queue. (:meth:`bind` starts it by itself when needed.)"""
        if self._running:
            raise RuntimeError("a TimerQueue is run by one task")
        self._running = True
        await self._run()

    async def _run(self) -> None:
        heap = self._heap
        try:
            while not self._stopped:
                wake = self._wake = anyio.Event()
                if heap:
                    delay = heap[0][0] - anyio.current_time()
                    if delay > 0:
                        with anyio.move_on_after(delay):
                            await wake.wait()
                else:
                    await wake.wait()
                now = anyio.current_time()
                while heap and heap[0][0] <= now:
                    timer = heapq.heappop(heap)[2]
                    if timer.cancelled:
                        continue
                    timer.cancelled = True  # fired: cancel() is a no-op from now on
                    try:
                        timer.callback()
                    except Exception as exc:
                        if self._on_error is not None:
                            self._on_error(exc)
                    timer.callback = _nothing
        finally:
            self._running = False
            self._wake = None
