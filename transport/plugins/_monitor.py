"""`MonitorPlugin`: throughput and connection counters, over every session it serves."""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from .._processor import Plugin
from .._session import Session
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
    """

    def __init__(self) -> None:
        self._zero()
        self.active = 0

    def _zero(self) -> None:
        self.accepted = 0
        self.rejected = 0
        self.bytes_read = 0
        self.bytes_written = 0
        self.messages_processed = 0
        self.events: collections.Counter[StateEvent] = collections.Counter()

    def snapshot(self, reset: bool = False) -> MonitorSnapshot:
        snap = MonitorSnapshot(
            accepted=self.accepted,
            rejected=self.rejected,
            active=self.active,
            bytes_read=self.bytes_read,
            bytes_written=self.bytes_written,
            messages_processed=self.messages_processed,
            events=dict(self.events),
        )
        if reset:
            self._zero()
        return snap

    def accept(self, session: Session[Any]) -> bool:
        self.accepted += 1
        return True

    def after_read(self, session: Session[Any], nbytes: int) -> None:
        self.bytes_read += nbytes

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        self.messages_processed += 1
        return True

    def after_write(self, session: Session[Any], nbytes: int) -> None:
        self.bytes_written += nbytes

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        self.events[event] += 1
        if event is StateEvent.NEW_SESSION:
            self.active += 1
        elif event is StateEvent.SESSION_CLOSED:
            self.active -= 1
        elif event is StateEvent.REJECT_ACCEPT:
            self.rejected += 1
