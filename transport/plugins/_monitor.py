"""`MonitorPlugin`: throughput and connection counters, over every session it serves."""

from __future__ import annotations

import collections
import dataclasses
import threading
from typing import Any

from .._processor import Plugin
from .._session import Session, SessionStatistics
from .._state import StateEvent

__all__ = ["MonitorPlugin", "MonitorSnapshot"]


@dataclasses.dataclass(frozen=True)
class MonitorSnapshot:
    """What a :class:`MonitorPlugin` counted, at one instant."""

    accepted: int
    rejected: int
    active: int
    bytes_read: int
    bytes_written: int
    messages_processed: int
    events: dict[StateEvent, int]


class MonitorPlugin(Plugin[Any]):
    """Counts connections, bytes, messages and state events over every session it serves.

    Usable on any number of servers and clients at once; :meth:`snapshot` reads the counters
    and ``snapshot(reset=True)`` starts a new period (the seed's ``MonitorPlugin`` prints one
    such period every few seconds).

    It costs nothing per read, write or message: the sessions count those anyway
    (:meth:`Session.statistics`), so the plugin only keeps the sessions it serves, sums
    their counters when asked, and folds a session's final counters into its totals when it
    closes. ``messages_processed`` is what the sessions handed to ``process``: every message
    decoded but those a plugin's ``before_process`` dropped (wherever that plugin stands in
    the list). :meth:`snapshot` may be called from another thread (a Prometheus scrape).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._live: set[Session[Any]] = set()
        #: the counters of closed sessions, and the ones counted here directly
        self._closed = _Counts()
        self._accepted = 0
        self._rejected = 0
        self._events: collections.Counter[StateEvent] = collections.Counter()
        #: the totals at the last ``snapshot(reset=True)`` (its ``active`` unused)
        self._period_start = MonitorSnapshot(0, 0, 0, 0, 0, 0, {})

    @property
    def active(self) -> int:
        """Sessions between ``NEW_SESSION`` and ``SESSION_CLOSED`` now."""
        return len(self._live)

    def totals(self) -> MonitorSnapshot:
        """Every counter since this plugin was created (a period's start ignored)."""
        with self._lock:
            counts = dataclasses.replace(self._closed)
            for session in list(self._live):
                counts.add(session.statistics())
            return MonitorSnapshot(
                accepted=self._accepted,
                rejected=self._rejected,
                active=len(self._live),
                bytes_read=counts.bytes_read,
                bytes_written=counts.bytes_written,
                messages_processed=counts.messages_processed,
                events=dict(self._events),
            )

    def snapshot(self, reset: bool = False) -> MonitorSnapshot:
        """The counters since the last ``snapshot(reset=True)`` (``active`` is always now's);
        ``reset=True`` then starts a new period."""
        total = self.totals()
        start = self._period_start
        snap = MonitorSnapshot(
            accepted=total.accepted - start.accepted,
            rejected=total.rejected - start.rejected,
            active=total.active,
            bytes_read=total.bytes_read - start.bytes_read,
            bytes_written=total.bytes_written - start.bytes_written,
            messages_processed=total.messages_processed - start.messages_processed,
            events=dict(collections.Counter(total.events) - collections.Counter(start.events)),
        )
        if reset:
            self._period_start = total
        return snap

    def accept(self, session: Session[Any]) -> bool:
        self._accepted += 1
        return True

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        self._events[event] += 1
        if event is StateEvent.NEW_SESSION:
            self._live.add(session)
        elif event is StateEvent.SESSION_CLOSED:
            with self._lock:  # a scrape must not see it in both places
                if session in self._live:
                    self._live.discard(session)
                    self._closed.add(session.statistics())
        elif event is StateEvent.REJECT_ACCEPT:
            self._rejected += 1


@dataclasses.dataclass
class _Counts:
    bytes_read: int = 0
    bytes_written: int = 0
    messages_processed: int = 0

    def add(self, stats: SessionStatistics) -> None:
        self.bytes_read += stats.bytes_received
        self.bytes_written += stats.bytes_sent
        self.messages_processed += stats.messages_received - stats.messages_dropped
