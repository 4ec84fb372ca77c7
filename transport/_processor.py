"""What applications and extensions implement: :class:`Processor` and :class:`Plugin`."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Generic, TypeVar

from ._state import StateEvent

if TYPE_CHECKING:
    from ._session import Session

__all__ = ["Plugin", "Processor"]

T = TypeVar("T")

logger = logging.getLogger("transport")


class Processor(Generic[T]):
    """Handles a session's messages and state events (the seed's ``MessageProcessor``).

    Both methods run inside the session's reader task, one call at a time per session, so
    anyio calls, timeouts and cancellation work in them; while they run, that session reads
    nothing more (a slow processor slows its own peer down, nobody else).
    """

    async def process(self, session: Session[T], msg: T) -> None:
        """Handle one decoded message. The default drops it.

        An exception (not a cancellation) fires ``PROCESS_EXCEPTION`` and the session goes
        on with the next message. Replies sent here are written together after the read
        batch (one write for all the messages decoded from one read).
        """

    async def state_event(
        self, session: Session[T], event: StateEvent, exc: BaseException | None
    ) -> None:
        """Observe a state event (see ``docs/transport.md`` for the order).

        The default logs the ``*_EXCEPTION`` events at debug level. An exception raised here
        is logged and otherwise ignored.
        """
        if exc is not None:
            logger.debug("%s on %r", event.name, session, exc_info=exc)


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
