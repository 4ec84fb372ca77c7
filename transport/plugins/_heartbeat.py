"""`Heartbeat`: keep a quiet peer talking, and give up on one that stopped answering.

The seed's ``HeartPlugin``: after ``interval`` seconds with nothing read, send ``message``;
the peer's replies (``is_reply``) are taken out of the message stream; after
``max_missed`` heartbeats in a row with nothing read back, the session is failed. Like
:class:`IdleTimeout`, one timer per session in the server's timer queue, re-armed from a
time stamp that reads only store.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from time import monotonic
from typing import Any, Generic, TypeVar

import anyio

from .._processor import Plugin
from .._session import Session
from .._state import StateEvent
from .._timers import Timer

__all__ = ["Heartbeat", "HeartbeatTimeout"]

T = TypeVar("T")


class HeartbeatTimeout(TimeoutError):
    """Why :class:`Heartbeat` ended a session: ``missed`` heartbeats in a row, sent every
    ``interval`` seconds, got nothing back. Delivered as ``INPUT_EXCEPTION``'s exception."""

    def __init__(self, missed: int, interval: float) -> None:
        super().__init__(
            f"{missed} heartbeat(s) sent {interval:g} s apart got no answer (heartbeat timeout)"
        )
        self.missed = missed
        self.interval = interval

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.missed, self.interval))


class _Beat:
    __slots__ = ("last", "missed", "timer")

    def __init__(self, now: float) -> None:
        self.last = now
        self.missed = 0
        self.timer: Timer | None = None


class Heartbeat(Plugin[T], Generic[T]):
    """Sends ``message`` on a session that read nothing for ``interval`` seconds, and
    fails it (``INPUT_EXCEPTION`` with :class:`HeartbeatTimeout`, then a graceful close)
    when ``max_missed`` heartbeats in a row went unanswered.

    Any byte read counts as an answer (the peer is alive; a peer busy sending a large
    frame is not pinged). Messages for which ``is_reply(msg)`` is true are the peer's
    replies: they are dropped before :meth:`Processor.process` (the processor never sees
    them); every other message is processed as usual. Put ``Heartbeat`` before plugins that
    act on messages, so they do not count the replies.

    Faults follow the plugin contract: ``is_reply`` raising aborts that session with
    ``INTERNAL_EXCEPTION`` carrying the exception; so does a ``message`` the protocol
    cannot encode (``codec.EncodeError``, at the first heartbeat).
    """

    def __init__(
        self,
        interval: float,
        message: T,
        is_reply: Callable[[T], bool],
        max_missed: int = 3,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"interval must be a positive number of seconds, not {interval!r}")
        if max_missed < 1:
            raise ValueError(f"max_missed must be at least 1, not {max_missed!r}")
        self.interval = float(interval)
        self.message = message
        self.is_reply = is_reply
        self.max_missed = max_missed
        self._sessions: dict[Session[T], _Beat] = {}

    def __repr__(self) -> str:
        return f"Heartbeat(interval={self.interval:g}, max_missed={self.max_missed})"

    def after_read(self, session: Session[T], nbytes: int) -> None:
        beat = self._sessions.get(session)
        if beat is not None:
            beat.last = monotonic()
            beat.missed = 0

    def before_process(self, session: Session[T], msg: T) -> bool:
        return not self.is_reply(msg)

    def input_resumed(self, session: Session[T]) -> None:
        # the session held its own input: the silence was ours, not the peer's
        beat = self._sessions.get(session)
        if beat is not None:
            beat.last = monotonic()

    def state_event(
        self, session: Session[T], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            beat = self._sessions[session] = _Beat(monotonic())
            beat.timer = session.call_later(self.interval, partial(self._tick, session))
        elif event is StateEvent.SESSION_CLOSED:
            gone = self._sessions.pop(session, None)
            if gone is not None and gone.timer is not None:
                gone.timer.cancel()

    def _tick(self, session: Session[T]) -> None:
        beat = self._sessions.get(session)
        if beat is None:
            return
        beat.timer = None
        quiet = monotonic() - beat.last
        if quiet < self.interval:  # something was read since: wait for the rest
            beat.timer = session.call_later(self.interval - quiet, partial(self._tick, session))
            return
        if beat.missed >= self.max_missed:
            session.fail_input(HeartbeatTimeout(beat.missed, self.interval))
            return
        try:
            session.write(self.message)
        except anyio.ClosedResourceError:
            return  # closing already: nothing to keep alive
        beat.missed += 1
        beat.timer = session.call_later(self.interval, partial(self._tick, session))
