"""`IdleTimeout`: close sessions that read, write or complete nothing for too long.

Netty's ``IdleStateHandler`` idea, without a hook on the hot path: each session has ONE
timer in its server's (or client's) timer queue; when it fires, the session's own counters
(bytes read and written, messages decoded: ``Session.statistics()``) say whether anything
happened since the last look, and a deadline that passed with nothing happening fails the
session's input. The timer looks every quarter of the shortest limit at most, so a limit
fires between 1 and 1.25 times its length after the last activity. No task per session, no
timer per read, and nothing at all per read, write or message.
"""

from __future__ import annotations

from functools import partial
from time import monotonic
from typing import Any

from .._processor import Plugin
from .._session import Session
from .._state import StateEvent
from .._timers import Timer

__all__ = ["IDLE_KINDS", "IdleTimeout", "IdleTimeoutError"]

#: what each kind of idle timeout watches
IDLE_KINDS = {
    "read": "no byte read",
    "write": "no byte written",
    "both": "no byte read or written",
    "message": "no complete message",
}


class IdleTimeoutError(TimeoutError):
    """Why :class:`IdleTimeout` ended a session: ``kind`` is ``"read"``, ``"write"``,
    ``"both"`` or ``"message"``, ``seconds`` the limit that was reached. Delivered as the
    exception of ``INPUT_EXCEPTION``."""

    def __init__(self, kind: str, seconds: float) -> None:
        super().__init__(f"{IDLE_KINDS[kind]} for {seconds:g} s ({kind} idle timeout)")
        self.kind = kind
        self.seconds = seconds

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.kind, self.seconds))


#: looks per shortest limit: a limit fires at most a quarter late
_LOOKS = 4


class _Stamps:
    """One session's last activity seen, on ``time.monotonic``'s clock, and the counters
    it was seen by."""

    __slots__ = (
        "bytes_read",
        "bytes_written",
        "message",
        "messages",
        "paused",
        "read",
        "timer",
        "write",
    )

    def __init__(self, now: float) -> None:
        self.read = self.write = self.message = now
        self.bytes_read = self.bytes_written = self.messages = 0
        #: whether the session holds its own input (nothing is read then, by our choice)
        self.paused = False
        self.timer: Timer | None = None


class IdleTimeout(Plugin[Any]):
    """Ends a session that stayed idle too long, with ``INPUT_EXCEPTION`` carrying an
    :class:`IdleTimeoutError` that says which limit fired, then a graceful close.

    Each limit is in seconds, ``None`` to leave it out:

    * ``read``: no byte arrived (a half-open peer: the machine vanished, no FIN, no RST);
    * ``write``: no byte could be written (a peer that stopped reading);
    * ``both``: neither (Netty's ``ALL_IDLE``);
    * ``message``: no complete message arrived, however many bytes did: a client trickling
      a byte every half second of a frame it never finishes (slowloris) is idle.

    While the session holds its own input (output over the high-water mark, or
    :meth:`Session.pause_input` by a :class:`RateLimit`) the peer is not blamed for the
    silence: ``read`` and ``message`` restart when input resumes.

    Precision: the session's counters are looked at every quarter of the shortest limit
    at most, so a limit fires between 1 and 1.25 times its length after the last activity
    (a Netty-style stamp per read would be exact, at a cost on every read and write).

    One plugin instance serves any number of sessions, servers and clients; each session
    costs one armed timer (the server's timer queue: no task per session) and nothing per
    read, write or message.
    """

    def __init__(
        self,
        read: float | None = None,
        write: float | None = None,
        both: float | None = None,
        message: float | None = None,
    ) -> None:
        limits = {"read": read, "write": write, "both": both, "message": message}
        for kind, seconds in limits.items():
            if seconds is not None and not seconds > 0:
                raise ValueError(f"{kind}= must be a positive number of seconds, not {seconds!r}")
        #: (kind, seconds) of every limit given
        self._limits = tuple((k, float(s)) for k, s in limits.items() if s is not None)
        if not self._limits:
            raise ValueError("give at least one of read=, write=, both=, message=")
        self._look = min(s for _, s in self._limits) / _LOOKS
        self._sessions: dict[Session[Any], _Stamps] = {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={s:g}" for k, s in self._limits)
        return f"IdleTimeout({args})"

    # -- holding the input is ours, not the peer's silence -----------------------------------
    def input_paused(self, session: Session[Any]) -> None:
        st = self._sessions.get(session)
        if st is not None:
            st.paused = True

    def input_resumed(self, session: Session[Any]) -> None:
        st = self._sessions.get(session)
        if st is not None:
            st.paused = False
            st.read = st.message = monotonic()

    # -- the one timer per session -----------------------------------------------------------
    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            st = self._sessions[session] = _Stamps(monotonic())
            st.timer = session.call_later(self._look, partial(self._check, session))
        elif event is StateEvent.SESSION_CLOSED:
            st2 = self._sessions.pop(session, None)
            if st2 is not None and st2.timer is not None:
                st2.timer.cancel()

    def _check(self, session: Session[Any]) -> None:
        """The session's timer fired: fail it if a limit passed, else re-arm."""
        st = self._sessions.get(session)
        if st is None:
            return
        st.timer = None
        now = monotonic()
        seen = session.statistics()
        if seen.bytes_received != st.bytes_read:
            st.bytes_read, st.read = seen.bytes_received, now
        if seen.bytes_sent != st.bytes_written:
            st.bytes_written, st.write = seen.bytes_sent, now
        if seen.messages_received != st.messages:
            st.messages, st.message = seen.messages_received, now
        soonest = self._look
        for kind, seconds in self._limits:
            if kind == "read":
                last = now if st.paused else st.read
            elif kind == "write":
                last = st.write
            elif kind == "both":
                last = max(now if st.paused else st.read, st.write)
            else:
                last = now if st.paused else st.message
            left = last + seconds - now
            if left <= 0:
                session.fail_input(IdleTimeoutError(kind, seconds))
                return
            soonest = min(soonest, left)
        st.timer = session.call_later(soonest, partial(self._check, session))

    def idle_sessions(self) -> int:
        """How many sessions this plugin watches now (for tests and monitoring)."""
        return len(self._sessions)
