"""What applications and extensions implement: :class:`Processor` and :class:`Plugin`."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._state import StateEvent

if TYPE_CHECKING:
    from codec import Buffer

    from ._session import Session

__all__ = ["Plugin", "Processor", "log_event", "overrides"]

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
        logger.warning("%s on %r: %s", event.name, session, describe(exc))


def describe(exc: BaseException) -> str:
    """``exc`` in one line, with its cause when it says nothing itself: anyio's
    ``BrokenResourceError`` carries no message, the ``OSError`` behind it does
    (``BrokenResourceError (ConnectionResetError: [Errno 104] Connection reset by peer)``)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    cause = exc.__cause__ or (None if exc.__suppress_context__ else exc.__context__)
    if not str(exc) and cause is not None:
        text += f" ({describe(cause)})"
    return text


class Plugin(Generic[T]):
    """Hooks around a session's life, called in the order plugins were given.

    Every hook is synchronous and cheap by contract (most run on the hot path); the
    defaults do nothing, and a hook a plugin does not override costs nothing (the session
    looks once which plugins override which hook). The exception contract, the same for
    every hook: a hook that raises aborts that session with ``INTERNAL_EXCEPTION`` carrying
    the exception (pending output dropped, ``SESSION_CLOSED`` last); ``accept`` raising means
    the session could not be set up (``INTERNAL_EXCEPTION`` alone); ``state_event`` raising
    is logged and otherwise ignored (the session is ending or the event is an error
    already). Other sessions are never disturbed.

    Plugins that act later (idle timeouts, rate limits) arm timers with
    :meth:`Session.call_later` and pause a session with :meth:`Session.pause_input`.
    """

    def accept(self, session: Session[T]) -> bool:
        """A connection was accepted (addresses known, nothing read). ``False`` rejects it
        with ``REJECT_ACCEPT``."""
        return True

    def after_read(self, session: Session[T], nbytes: int) -> None:
        """``nbytes`` were just read into the session's receive buffer."""

    def data_read(self, session: Session[T], data: memoryview) -> None:
        """The bytes just read, before anything decodes them. ``data`` is valid during the
        call only (copy what you keep); an engine may report several reads at once."""

    def before_decode(self, session: Session[T], buffer: Buffer) -> bool:
        """Before messages are decoded from the receive ``buffer``: a plugin may consume
        bytes that are not the protocol's (a PROXY protocol header). ``False`` means
        "not yet": nothing is decoded until more bytes arrive."""
        return True

    def before_process(self, session: Session[T], msg: T) -> bool:
        """A message was decoded; ``False`` drops it instead of processing it (the plugins
        after this one are not asked)."""
        return True

    def after_write(self, session: Session[T], nbytes: int) -> None:
        """``nbytes`` were just written to the peer."""

    def data_written(self, session: Session[T], data: memoryview) -> None:
        """The bytes just handed to the connection, in order (valid during the call only)."""

    def input_paused(self, session: Session[T]) -> None:
        """The session stopped processing and reading its input: output over the high-water
        mark, or :meth:`Session.pause_input`."""

    def input_resumed(self, session: Session[T]) -> None:
        """The session processes and reads its input again."""

    def state_event(
        self, session: Session[T], event: StateEvent, exc: BaseException | None
    ) -> None:
        """Observe a state event, before the processor sees it."""


def overrides(plugin: Plugin[Any], hook: str) -> bool:
    """Whether ``plugin`` overrides the hook named ``hook`` (else calling it is pointless)."""
    return getattr(type(plugin), hook) is not getattr(Plugin, hook)
