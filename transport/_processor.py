"""What applications and extensions implement: :class:`Processor` and :class:`Plugin`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._state import StateEvent

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["Plugin", "Processor", "log_event"]

T = TypeVar("T")

logger = logging.getLogger("transport")


class Processor(Generic[T]):
    """Handles a session's messages and state events (the seed's ``MessageProcessor``).

    Each method may be a plain ``def`` or an ``async def``; the shape is detected once per
    session, not per message, and a processor may mix them.

    * A plain ``def process`` is the seed's shape and the fastest: it runs inline in the
      session's read loop for every message of a read batch (no task switch, no coroutine)
      and replies with :meth:`Session.write`; the batch's replies leave in one write after
      it. It must not block: hand slow work to :meth:`Session.start_soon`.
    * An ``async def process`` may await (``await session.send(msg)``, locks, timeouts,
      other services); each message costs a coroutine.

    Both run in the session's own task, one call at a time per session, so while they run
    that session reads nothing more (a slow processor slows its own peer down, nobody
    else).
    """

    def process(self, session: Session[T], msg: T) -> Awaitable[None] | None:
        """Handle one decoded message. The default drops it.

        An exception (not a cancellation) fires ``PROCESS_EXCEPTION`` and the session goes
        on with the next message. Replies written here are written together after the read
        batch (one write for all the messages decoded from one read).
        """
        return None

    def state_event(
        self, session: Session[T], event: StateEvent, exc: BaseException | None
    ) -> Awaitable[None] | None:
        """Observe a state event (see ``docs/transport.md`` for the order).

        The default makes failures visible without any logging set-up: under the logger
        ``"transport"``, ``PROCESS_EXCEPTION`` and ``INTERNAL_EXCEPTION`` are logged at
        ERROR with their traceback, the other ``*_EXCEPTION`` events at WARNING, once per
        event. Override it to handle them yourself (and call ``super().state_event(...)``
        to keep the logging). An exception raised here is logged and otherwise ignored.
        """
        if exc is not None:
            log_event(session, event, exc)
        return None


#: events logged at ERROR with a traceback by the default ``state_event`` (the others with
#: an exception at WARNING, with the exception's one-line description)
_ERRORS = (StateEvent.PROCESS_EXCEPTION, StateEvent.INTERNAL_EXCEPTION)


def log_event(session: Session[Any], event: StateEvent, exc: BaseException) -> None:
    """Log a state event's exception the way the default ``Processor.state_event`` does."""
    if event in _ERRORS:
        logger.error("%s on %r", event.name, session, exc_info=exc)
    else:
        logger.warning("%s on %r: %s: %s", event.name, session, type(exc).__name__, exc)


class Plugin(Generic[T]):
    """Hooks around a session's life, called in the order plugins were given.

    Every hook is synchronous and cheap by contract (it runs on the hot path); the defaults
    do nothing. A hook that raises aborts the session with ``INTERNAL_EXCEPTION``
    (``accept`` raising means the session could not be set up).
    """

    def accept(self, session: Session[T]) -> bool:
        """A connection was accepted (addresses known, nothing read). ``False`` rejects it
        with ``REJECT_ACCEPT``."""
        return True

    def after_read(self, session: Session[T], nbytes: int) -> None:
        """``nbytes`` were just read into the session's receive buffer."""

    def before_process(self, session: Session[T], msg: T) -> bool:
        """A message was decoded; ``False`` drops it instead of processing it (the plugins
        after this one are not asked)."""
        return True

    def after_write(self, session: Session[T], nbytes: int) -> None:
        """``nbytes`` were just written to the peer."""

    def state_event(
        self, session: Session[T], event: StateEvent, exc: BaseException | None
    ) -> None:
        """Observe a state event, before the processor sees it."""
