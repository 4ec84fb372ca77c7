"""`RateLimit`: token buckets that slow a greedy peer down without losing a byte of it.

A limit is enforced by holding the session's input (:meth:`Session.pause_input`: the
messages of a read already buffered wait, the connection is not read, TCP's flow control
then slows the peer) and resuming it from a timer when the bucket has refilled. Nothing is
dropped, nothing fails: a client over its limit is slowed, not cut.
"""

from __future__ import annotations

from functools import partial
from time import monotonic
from typing import Any

from .._processor import Plugin
from .._session import Session
from .._state import StateEvent
from .._timers import Timer
from ._blacklist import peer_ip

__all__ = ["RateLimit", "TokenBucket"]

#: sweep the buckets of departed addresses once this many were made since the last sweep
_SWEEP_EVERY = 1024


class TokenBucket:
    """``capacity`` tokens, refilled at ``rate`` per second; :meth:`take` may go into debt
    and says how long until ``need`` tokens are there again."""

    __slots__ = ("capacity", "rate", "stamp", "tokens", "users")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate = rate
        self.capacity = capacity
        self.tokens = capacity
        self.stamp = now
        #: sessions sharing the bucket (``per="address"``)
        self.users = 0

    def refill(self, now: float) -> None:
        tokens = self.tokens + (now - self.stamp) * self.rate
        self.tokens = tokens if tokens < self.capacity else self.capacity
        self.stamp = now

    def take(self, n: float, now: float, need: float) -> float:
        """Take ``n`` tokens (always: the caller already has what they pay for); return the
        seconds to wait until the bucket holds ``need`` again (0: no wait)."""
        self.refill(now)
        self.tokens -= n
        short = need - self.tokens
        return short / self.rate if short > 0 else 0.0

    def full(self, now: float) -> bool:
        return self.tokens + (now - self.stamp) * self.rate >= self.capacity


class _Limited:
    """One session's buckets and the timer that will resume its input."""

    __slots__ = ("bytes", "due", "key", "messages", "timer")

    def __init__(self, key: Any, messages: TokenBucket | None, bytes_: TokenBucket | None) -> None:
        self.key = key
        self.messages = messages
        self.bytes = bytes_
        self.timer: Timer | None = None
        self.due = 0.0


class RateLimit(Plugin[Any]):
    """Limits how fast a session's messages are processed and its bytes read.

    ``messages_per_second``: messages handed to ``process``; ``bytes_per_second``: bytes
    read. ``burst``: how many may pass at once before the rate applies (the bucket's
    size), in messages when a message rate is given, else in bytes; by default one second's
    worth. With both rates, the byte bucket holds one second's worth of bytes.
    ``per="session"`` gives every session its buckets; ``per="address"`` shares them among
    every session from one IP address (a client cannot multiply its rate by opening more
    connections, nor reset it by reconnecting: a departed address keeps its bucket until it
    refills). Peers without an IP address (Unix sockets) share a bucket per address value.

    How it slows a peer: the message over the limit is still processed (nothing is
    dropped), then the session holds its input (:meth:`Session.pause_input`) until the
    bucket has refilled: the rest of the read batch waits, the connection is not read, and
    TCP's flow control slows the sender. Bytes are counted when read, a read at a time (up
    to the server's ``read_buffer_size``): the byte rate is an average over reads; lower
    ``read_buffer_size`` for a finer grain. Hold-ups are counted in :attr:`holds`.
    """

    def __init__(
        self,
        messages_per_second: float | None = None,
        bytes_per_second: float | None = None,
        burst: float | None = None,
        per: str = "session",
    ) -> None:
        if messages_per_second is None and bytes_per_second is None:
            raise ValueError("give messages_per_second=, bytes_per_second= or both")
        for name, rate in (
            ("messages_per_second", messages_per_second),
            ("bytes_per_second", bytes_per_second),
        ):
            if rate is not None and not rate > 0:
                raise ValueError(f"{name} must be positive, not {rate!r}")
        if burst is not None and not burst >= 1:
            raise ValueError(f"burst must be at least 1, not {burst!r}")
        if per not in ("session", "address"):
            raise ValueError(f'per must be "session" or "address", not {per!r}')
        self.messages_per_second = messages_per_second
        self.bytes_per_second = bytes_per_second
        self.per = per
        self._message_burst = 0.0
        self._byte_burst = 0.0
        if messages_per_second is not None:
            self._message_burst = float(
                burst if burst is not None else max(1.0, messages_per_second)
            )
        if bytes_per_second is not None:
            self._byte_burst = float(
                burst if burst is not None and messages_per_second is None else bytes_per_second
            )
        self._sessions: dict[Session[Any], _Limited] = {}
        #: per="address": address -> (message bucket, byte bucket)
        self._shared: dict[Any, tuple[TokenBucket | None, TokenBucket | None]] = {}
        self._made = 0
        #: how many times a session's input was held by this plugin
        self.holds = 0

    def __repr__(self) -> str:
        return (
            f"RateLimit(messages_per_second={self.messages_per_second}, "
            f"bytes_per_second={self.bytes_per_second}, per={self.per!r})"
        )

    def _buckets(self, now: float) -> tuple[TokenBucket | None, TokenBucket | None]:
        m = (
            None
            if self.messages_per_second is None
            else TokenBucket(self.messages_per_second, self._message_burst, now)
        )
        b = (
            None
            if self.bytes_per_second is None
            else TokenBucket(self.bytes_per_second, self._byte_burst, now)
        )
        return m, b

    def _shared_buckets(
        self, key: Any, now: float
    ) -> tuple[TokenBucket | None, TokenBucket | None]:
        pair = self._shared.get(key)
        if pair is None:
            self._made += 1
            if self._made >= _SWEEP_EVERY:
                self._sweep(now)
            pair = self._shared[key] = self._buckets(now)
        for bucket in pair:
            if bucket is not None:
                bucket.users += 1
        return pair

    def _sweep(self, now: float) -> None:
        """Forget the buckets of addresses with no session left and a full bucket again."""
        self._made = 0
        for key, pair in list(self._shared.items()):
            if all(b is None or (b.users == 0 and b.full(now)) for b in pair):
                del self._shared[key]

    # -- hooks --------------------------------------------------------------------------------
    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            now = monotonic()
            if self.per == "address":
                ip = peer_ip(session.remote_address)
                key = ip if ip is not None else session.remote_address
                m, b = self._shared_buckets(key, now)
            else:
                key = None
                m, b = self._buckets(now)
            self._sessions[session] = _Limited(key, m, b)
        elif event is StateEvent.SESSION_CLOSED:
            st = self._sessions.pop(session, None)
            if st is not None:
                if st.timer is not None:
                    st.timer.cancel()
                for bucket in (st.messages, st.bytes):
                    if bucket is not None and self.per == "address":
                        bucket.users -= 1

    def after_read(self, session: Session[Any], nbytes: int) -> None:
        st = self._sessions.get(session)
        if st is not None and st.bytes is not None:
            now = monotonic()
            wait = st.bytes.take(nbytes, now, 0.0)
            if wait:
                self._hold(session, st, now, wait)

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        st = self._sessions.get(session)
        if st is not None and st.messages is not None:
            now = monotonic()
            wait = st.messages.take(1, now, 1.0)
            if wait:
                self._hold(session, st, now, wait)
        return True

    def _hold(self, session: Session[Any], st: _Limited, now: float, wait: float) -> None:
        """Hold the session's input for ``wait`` seconds (or longer, if held already)."""
        due = now + wait
        if st.timer is not None:
            if st.due >= due:
                return
            st.timer.cancel()
        else:
            self.holds += 1
        st.due = due
        session.pause_input(self)
        st.timer = session.call_later(wait, partial(self._resume, session))

    def _resume(self, session: Session[Any]) -> None:
        st = self._sessions.get(session)
        if st is not None:
            st.timer = None
        session.resume_input(self)
