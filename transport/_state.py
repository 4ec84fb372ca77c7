"""The session lifecycle as data: state events, session states and the transition table.

Rules (the documented order of state events, checked by the conformance suite):

1. A connection that never becomes a session sees exactly one event and nothing else:
   ``REJECT_ACCEPT`` (a plugin refused it), ``ACCEPT_EXCEPTION`` (accepting or the TLS
   handshake failed) or ``INTERNAL_EXCEPTION`` (the session could not be set up). No
   ``NEW_SESSION``, no ``SESSION_CLOSED``.
2. Every other session sees ``NEW_SESSION`` first, before any message is processed, and
   ``SESSION_CLOSED`` last, exactly once.
3. While open, any number of ``PROCESS_EXCEPTION`` (the session goes on), then at most one
   *end cause*: ``INPUT_SHUTDOWN`` (EOF), ``INPUT_EXCEPTION`` (a read failed),
   ``DECODE_EXCEPTION`` (bad bytes) or nothing when the application called ``close()``.
4. Then ``SESSION_CLOSING`` if a graceful close starts with writes pending (they are
   flushed before the socket closes).
5. ``OUTPUT_EXCEPTION`` (a write failed, or a graceful flush timed out) and
   ``INTERNAL_EXCEPTION`` (a bug or a failing plugin hook) abort the session: what is
   pending is dropped, only ``PROCESS_EXCEPTION`` and ``SESSION_CLOSED`` may follow.
6. An event that the table does not allow in the current state is not delivered: it can
   only be a consequence of an earlier one (a read failing after a write failed, say).

The engines ask :func:`next_state` before delivering any event; nothing else decides the
order, so a new engine cannot change it.
"""

from __future__ import annotations

import enum

__all__ = ["TRANSITIONS", "SessionState", "StateEvent", "next_state"]


class StateEvent(enum.Enum):
    """What happened to a session (the seed's ``StateMachineEnum``)."""

    NEW_SESSION = "new_session"
    INPUT_SHUTDOWN = "input_shutdown"
    INPUT_EXCEPTION = "input_exception"
    OUTPUT_EXCEPTION = "output_exception"
    SESSION_CLOSING = "session_closing"
    SESSION_CLOSED = "session_closed"
    PROCESS_EXCEPTION = "process_exception"
    DECODE_EXCEPTION = "decode_exception"
    REJECT_ACCEPT = "reject_accept"
    ACCEPT_EXCEPTION = "accept_exception"
    INTERNAL_EXCEPTION = "internal_exception"


class SessionState(enum.Enum):
    """Where a session is in its life."""

    #: accepted or connected, ``NEW_SESSION`` not yet delivered
    NEW = "new"
    #: reading, processing and writing
    OPEN = "open"
    #: no more input (EOF, read error, decode error); output still flows
    INPUT_CLOSED = "input_closed"
    #: a graceful close is flushing the pending writes
    CLOSING = "closing"
    #: a write failed or an immediate close: pending writes are dropped
    ABORTING = "aborting"
    #: terminal: ``SESSION_CLOSED`` delivered
    CLOSED = "closed"
    #: terminal: the connection never became a session
    REJECTED = "rejected"


E = StateEvent
S = SessionState

_ALIVE = (S.OPEN, S.INPUT_CLOSED, S.CLOSING, S.ABORTING)

#: (state, event) -> state after the event. Missing pairs are not delivered (rule 6).
TRANSITIONS: dict[tuple[SessionState, StateEvent], SessionState] = {
    (S.NEW, E.NEW_SESSION): S.OPEN,
    (S.NEW, E.REJECT_ACCEPT): S.REJECTED,
    (S.NEW, E.ACCEPT_EXCEPTION): S.REJECTED,
    (S.NEW, E.INTERNAL_EXCEPTION): S.REJECTED,
    (S.OPEN, E.INPUT_SHUTDOWN): S.INPUT_CLOSED,
    (S.OPEN, E.INPUT_EXCEPTION): S.INPUT_CLOSED,
    (S.OPEN, E.DECODE_EXCEPTION): S.INPUT_CLOSED,
    (S.OPEN, E.SESSION_CLOSING): S.CLOSING,
    (S.INPUT_CLOSED, E.SESSION_CLOSING): S.CLOSING,
    **{(s, E.PROCESS_EXCEPTION): s for s in _ALIVE},
    **{(s, E.OUTPUT_EXCEPTION): S.ABORTING for s in (S.OPEN, S.INPUT_CLOSED, S.CLOSING)},
    **{(s, E.INTERNAL_EXCEPTION): S.ABORTING for s in (S.OPEN, S.INPUT_CLOSED, S.CLOSING)},
    **{(s, E.SESSION_CLOSED): S.CLOSED for s in _ALIVE},
}

del E, S


def next_state(state: SessionState, event: StateEvent) -> SessionState | None:
    """The state after ``event``, or ``None`` when the event is not delivered in ``state``."""
    return TRANSITIONS.get((state, event))
