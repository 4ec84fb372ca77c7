"""``Session``: the application's handle on one connection, shared by every I/O engine.

The engine seam is :class:`Engine` (four methods). Everything a user can observe — send
and its backpressure, close, the decode/process loop, state-event delivery, pull-style
receive — lives here or in the sans-I/O :class:`~transport._core.SessionCore`, so a second
engine cannot behave differently.
"""

from __future__ import annotations

import dataclasses
import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any, Generic, Protocol, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from codec import Codec
from codec import Protocol as CodecProtocol

from ._core import DEFAULT_HIGH_WATER, DEFAULT_LOW_WATER, SessionCore
from ._processor import Plugin, Processor, overrides
from ._state import SessionState, StateEvent
from ._timers import Timer, TimerQueue

__all__ = ["Engine", "Session", "SessionPort", "SessionStatistics"]

T = TypeVar("T")

logger = logging.getLogger("transport")

_ENDED = (SessionState.ABORTING, SessionState.CLOSED, SessionState.REJECTED)

#: most messages decoded ahead of the processor at once (``decode_many``'s limit): enough
#: to skip the per-message decode call, few enough that the cyclic garbage collector does
#: not keep walking a long list of decoded containers
_BULK_LIMIT = 256


class Engine(Protocol):
    """What a :class:`Session` needs from the I/O engine that drives it."""

    def wake_writer(self) -> None:
        """Output was queued outside a read batch (or is over the high-water mark): write it
        soon, from a task the engine owns."""

    def request_close(self, immediate: bool) -> None:
        """Stop reading; flush then close (``immediate=False``) or drop everything now."""

    def owns_current_task(self) -> bool:
        """Whether the caller runs in one of the session's own tasks (process/state_event)."""

    async def write_pending(self) -> None:
        """Output went over the high-water mark inside a read batch: write what is queued
        now, from the calling task where the engine can (no hand-off to a writer task and
        back), else wake the writer."""

    def start_soon(self, func: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        """Run ``func()`` in a task of the session's own: the graceful close waits for it
        (within ``close_timeout``), an immediate close cancels it."""


@dataclasses.dataclass(frozen=True)
class SessionStatistics:
    """A session's counters at the time of :meth:`Session.statistics`."""

    bytes_received: int
    bytes_sent: int
    messages_received: int
    messages_sent: int
    #: received messages a plugin's ``before_process`` dropped (never reached ``process``)
    messages_dropped: int
    #: encoded bytes queued or being written
    pending_write_bytes: int
    #: received bytes not yet decoded (a half packet)
    buffered_read_bytes: int
    state: SessionState


class Session(Generic[T]):
    """One connection (or, for UDP, one remote address), as the application sees it.

    ``attributes`` is a free dict for the application. Counters are in :meth:`statistics`.
    """

    def __init__(
        self,
        protocol: CodecProtocol[T],
        processor: Processor[T],
        plugins: Sequence[Plugin[T]] = (),
        *,
        local_address: Any = None,
        remote_address: Any = None,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int = DEFAULT_LOW_WATER,
        max_buffered: int | None = None,
        inbox_size: int | None = None,
        datagram: bool = False,
        timers: TimerQueue | None = None,
    ) -> None:
        self._core: SessionCore[T] = SessionCore(
            protocol,
            high_water=high_water,
            low_water=low_water,
            max_buffered=max_buffered,
            datagram=datagram,
        )
        self._encode = protocol.encode
        #: ``encode_into(msg, bytearray)`` when the protocol has it (``codec.Codec`` does):
        #: ``send`` then encodes straight into the outgoing buffer (not for datagrams, which
        #: keep each message's bounds)
        self._encode_into: Callable[[T, bytearray], None] | None = (
            None if datagram else _atomic_encode_into(protocol)
        )
        #: a ``codec.Codec``'s ``decode_many(buf, limit)``: the read loop takes its messages
        #: a batch at a time (a hand-written protocol is called once per message)
        self._decode_many: Callable[[Any, int], list[T]] | None = (
            protocol.decode_many if isinstance(protocol, Codec) else None
        )
        self._processor = processor
        #: the processor's shapes, detected once: a plain ``def process`` is called inline
        #: for every message of a batch, no coroutine made (the seed's ``readFromChannel``)
        self._sync_process = not inspect.iscoroutinefunction(processor.process)
        self._sync_state_event = not inspect.iscoroutinefunction(processor.state_event)
        #: set by :meth:`write` when pending output went over the high-water mark inside a
        #: batch: the batch stops until output drains (see :meth:`_relieve`)
        self._over_high_water = False
        self._plugins = tuple(plugins)
        #: the plugins that override each data hook (most plugins override none: a hook
        #: nobody overrides costs one false test per read, batch or write)
        self._read_hooks = tuple(p for p in self._plugins if overrides(p, "data_read"))
        self._decode_hooks = tuple(p for p in self._plugins if overrides(p, "before_decode"))
        self._write_hooks = tuple(p for p in self._plugins if overrides(p, "data_written"))
        self._after_read_hooks = tuple(p for p in self._plugins if overrides(p, "after_read"))
        self._process_hooks = tuple(p for p in self._plugins if overrides(p, "before_process"))
        self._after_write_hooks = tuple(p for p in self._plugins if overrides(p, "after_write"))
        self._pause_hooks = tuple(
            p
            for p in self._plugins
            if overrides(p, "input_paused") or overrides(p, "input_resumed")
        )
        self._timers = timers
        #: whether the batch loop must stop after the current message: output over the
        #: high-water mark (``_over_high_water``) or :meth:`pause_input` (``_pausers``)
        self._hold = False
        #: who holds the input paused (:meth:`pause_input`); made on first use
        self._pausers: set[object] | None = None
        self._resumed: anyio.Event | None = None
        #: why :meth:`fail_input` ended the input (delivered by :meth:`_end_input`)
        self._input_failure: BaseException | None = None
        #: messages decoded by :meth:`_process_inline` and left for the task's batch loop
        self._backlog: list[T] | None = None
        #: whether an engine may process a read's messages right where the read lands
        #: (:meth:`_process_inline`): every call the batch makes is a plain function
        self.inline = self._sync_process and self._sync_state_event
        self._local_address = local_address
        self._remote_address = remote_address
        self.attributes: dict[str, Any] = {}
        self._engine: Engine | None = None
        self._in_batch = False
        #: a fatal engine failure applied but not yet delivered (see _fail)
        self._late: tuple[StateEvent, BaseException] | None = None
        self._drain: anyio.Event | None = None
        self._closed = anyio.Event()
        self._inbox_send: MemoryObjectSendStream[T] | None = None
        self._inbox_recv: MemoryObjectReceiveStream[T] | None = None
        if inbox_size is not None:
            self._inbox_send, self._inbox_recv = anyio.create_memory_object_stream[T](inbox_size)

    def __repr__(self) -> str:
        return f"<Session {self._remote_address!r} {self._core.state.value}>"

    # -- public API ----------------------------------------------------------------------
    @property
    def local_address(self) -> Any:
        """This end's address: ``(host, port, ...)`` for IP, a path for Unix sockets."""
        return self._local_address

    @property
    def remote_address(self) -> Any:
        """The peer's address: ``(host, port, ...)`` for IP, a path for Unix sockets."""
        return self._remote_address

    @property
    def state(self) -> SessionState:
        return self._core.state

    @property
    def closed(self) -> bool:
        """Whether ``SESSION_CLOSED`` was delivered (or the connection was never a session)."""
        return self._core.state in (SessionState.CLOSED, SessionState.REJECTED)

    def statistics(self) -> SessionStatistics:
        core = self._core
        return SessionStatistics(
            bytes_received=core.bytes_received,
            bytes_sent=core.bytes_sent,
            messages_received=core.messages_received,
            messages_sent=core.messages_sent,
            messages_dropped=core.messages_dropped,
            pending_write_bytes=core.pending,
            buffered_read_bytes=len(core.buffer),
            state=core.state,
        )

    def write(self, msg: T) -> None:
        """Encode ``msg`` and queue it for writing, after everything written before it;
        never waits (the seed's ``session.writeBuffer()``).

        This is the call for a plain ``def process``: what one read batch writes leaves in
        one write after the batch. When pending output passes the high-water mark inside a
        batch, the session stops processing the rest of the batch and stops reading the
        connection until output drains under the low-water mark, so a thousand requests
        in one read never make a thousand replies in memory, and nothing is dropped.
        Outside a batch (a timer, another task) the output is written soon but nothing
        waits for it: use ``await send()`` there to be slowed down by a slow peer.

        Raises :class:`codec.EncodeError` for a value the protocol cannot encode (nothing is
        queued) and :class:`anyio.ClosedResourceError` once ``close()`` was called, input
        ended with an error, or the session was aborted.
        """
        core = self._core
        if not core.writable:
            raise anyio.ClosedResourceError
        encode_into = self._encode_into
        if encode_into is not None:
            # SessionCore.queue, inlined: encode straight into the outgoing buffer
            out = core.out
            encode_into(msg, out)  # (appends nothing when it raises: see _atomic_encode_into)
            core.messages_sent += 1
            over = len(out) + core.inflight > core.high_water
        else:
            over = core.queue(self._encode(msg))
        if self._in_batch:
            if over:
                self._over_high_water = self._hold = True
        else:
            engine = self._engine
            if engine is not None:
                engine.wake_writer()

    async def send(self, msg: T) -> None:
        """Encode ``msg`` and queue it for writing, after everything sent before it.

        Returns at once unless the session's pending output is over its high-water mark;
        then it waits until the peer has taken enough to bring it to the low-water mark
        (backpressure: a slow peer slows its senders down, memory stays bounded). Replies
        sent from :meth:`Processor.process` go out together, in one write per read batch.

        Raises :class:`codec.EncodeError` for a value the protocol cannot encode (nothing is
        queued), :class:`anyio.ClosedResourceError` once ``close()`` was called or input
        ended with an error, and :class:`anyio.BrokenResourceError` when the session was
        aborted before the data could be written.
        """
        core = self._core
        if not core.writable:
            raise anyio.ClosedResourceError
        encode_into = self._encode_into
        if encode_into is not None:
            # SessionCore.queue, inlined: encode straight into the outgoing buffer
            out = core.out
            encode_into(msg, out)  # (appends nothing when it raises: see _atomic_encode_into)
            core.messages_sent += 1
            over = len(out) + core.inflight > core.high_water
        else:
            over = core.queue(self._encode(msg))
        if over:  # over the high-water mark
            engine = self._engine
            if engine is not None:
                if self._in_batch:
                    await engine.write_pending()
                else:
                    engine.wake_writer()
            await self._wait_drain()
        elif not self._in_batch:
            engine = self._engine
            if engine is not None:
                engine.wake_writer()

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``await func(*args)`` in a task of this session's own.

        The sanctioned way for a plain ``def process`` to hand slow work off (a database
        call, a request to another service) without blocking the read loop and without
        turning every message into a coroutine: the task may ``await session.send()`` or
        call :meth:`write`; its writes are ordered after what was written before them.
        An exception from it fires ``PROCESS_EXCEPTION`` and the session goes on. A
        graceful close waits for the session's tasks (within ``close_timeout``) before it
        flushes; an immediate close cancels them.

        Raises :class:`anyio.ClosedResourceError` once the session is closing or closed.
        """
        engine = self._engine
        if engine is None or self._core.close_requested or not self._core.writable:
            raise anyio.ClosedResourceError

        async def run_one() -> None:
            try:
                await func(*args)
            except Exception as exc:
                await self._emit(StateEvent.PROCESS_EXCEPTION, exc)

        engine.start_soon(run_one)

    def pause_input(self, owner: object = None) -> None:
        """Stop processing this session's input, and reading it, until :meth:`resume_input`.

        Messages already decoded or buffered wait (one read can hold hundreds: they are not
        processed either); the peer is slowed down by TCP's flow control once the buffers
        fill. Nothing is dropped. For plugins that slow a peer down (``RateLimit``).

        ``owner`` says who holds the input (a plugin passes itself): the input stays
        paused while any owner holds it, so a rate limit that resumes does not undo the
        application's own pause. Pausing twice with one owner is one pause."""
        pausers = self._pausers
        if pausers is None:
            pausers = self._pausers = set()
        pausers.add(owner)
        self._hold = True

    def resume_input(self, owner: object = None) -> None:
        """Undo :meth:`pause_input` by ``owner``; input resumes when no owner holds it.
        (Resuming an owner that holds nothing does nothing.)"""
        pausers = self._pausers
        if pausers is None or owner not in pausers:
            return
        pausers.discard(owner)
        if pausers:
            return
        self._hold = self._over_high_water
        resumed = self._resumed
        if resumed is not None:
            self._resumed = None
            resumed.set()

    @property
    def input_paused(self) -> bool:
        """Whether :meth:`pause_input` holds the input now (by any owner)."""
        return bool(self._pausers)

    def call_later(self, delay: float, callback: Callable[[], object]) -> Timer:
        """Call ``callback()`` in ``delay`` seconds, unless the returned timer is cancelled
        first or the session is closed by then.

        The session's server (or client) keeps every timer in one queue served by one task,
        so a plugin can arm one per session per period (an idle timeout, a heartbeat)
        without a task per session. The callback runs outside the session's tasks and must
        not block: it may :meth:`write`, :meth:`close_nowait`, :meth:`resume_input` or arm
        the next timer. An exception from it aborts the session with
        ``INTERNAL_EXCEPTION``.
        """
        timers = self._timers
        if timers is None:
            raise RuntimeError("this session has no timer queue (not run by a server or client)")

        def fire() -> None:
            if self.closed:
                return
            try:
                callback()
            except Exception as exc:
                self._hook_failed(exc)

        return timers.call_later(delay, fire)

    def fail_input(self, exc: BaseException) -> None:
        """End the session's input with an error that is not a read's own: ``exc`` is
        delivered as ``INPUT_EXCEPTION`` (unless input ended already), then the session
        closes gracefully, flushing what was written. For plugins that decide a peer has
        failed (an idle timeout, a missed heartbeat, a bad PROXY header); returns at once.
        """
        if self._input_failure is None and not self._core.close_requested:
            self._input_failure = exc
        self.close_nowait()

    def set_remote_address(self, address: Any) -> None:
        """Replace :attr:`remote_address`: for a plugin that learns the real peer behind a
        proxy or load balancer (the PROXY protocol) before ``NEW_SESSION``'s work is done."""
        self._remote_address = address

    async def close(self, immediate: bool = False) -> None:
        """Close the session.

        Graceful (the default): stop reading, write everything already sent, then close the
        connection; ``SESSION_CLOSING`` is fired when writes were pending. ``immediate``
        drops pending writes and closes now. Called from outside the session's own tasks, it
        returns once ``SESSION_CLOSED`` was delivered; called from ``process``,
        ``state_event`` or a task of :meth:`start_soon` it only requests the close (which
        happens after the current batch), like :meth:`close_nowait`.
        """
        engine = self._engine
        self.close_nowait(immediate)
        if engine is not None and not self.closed and not engine.owns_current_task():
            await self._closed.wait()

    def close_nowait(self, immediate: bool = False) -> None:
        """Request the close that :meth:`close` describes and return at once (from a plain
        ``def process``, say): no message after the current one is processed, and
        ``SESSION_CLOSED`` follows once the engine has flushed (or dropped) the output."""
        engine = self._engine
        self._core.close_requested = True
        resumed = self._resumed
        if resumed is not None:  # a batch held by pause_input ends now
            self._resumed = None
            resumed.set()
        if engine is None or self.closed:
            return
        if immediate:
            self._abort()
        engine.request_close(immediate)

    async def wait_closed(self) -> None:
        """Wait until ``SESSION_CLOSED`` was delivered."""
        await self._closed.wait()

    async def receive(self) -> T:
        """The next message of a pull-style client session, in order.

        Raises :class:`anyio.EndOfStream` once the session closed and every message received
        before was returned.
        """
        if self._inbox_recv is None:
            raise RuntimeError("this session delivers its messages to a Processor")
        return await self._inbox_recv.receive()

    def __aiter__(self) -> Session[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    # -- engine side ---------------------------------------------------------------------
    def _hook_failed(self, exc: BaseException) -> None:
        """A plugin hook or timer callback raised outside the session's main task: abort
        the session with ``INTERNAL_EXCEPTION`` (delivered by the main task)."""
        self._fail(StateEvent.INTERNAL_EXCEPTION, exc)
        self._core.close_requested = True
        engine = self._engine
        if engine is not None:
            engine.request_close(True)

    async def _end_input(self) -> None:
        """The engine's first step of a close: deliver the ``INPUT_EXCEPTION`` that
        :meth:`fail_input` asked for (the table drops it if input ended already)."""
        exc = self._input_failure
        if exc is not None:
            self._input_failure = None
            await self._emit(StateEvent.INPUT_EXCEPTION, exc)

    def _expire(self, exc: BaseException) -> None:
        """A deadline ran out (a server's ``shutdown_timeout``): close at once; output still
        pending is dropped and said so (``OUTPUT_EXCEPTION`` carrying ``exc``)."""
        if self._core.pending:
            self._fail(StateEvent.OUTPUT_EXCEPTION, exc)
        self.close_nowait(immediate=True)

    def _after_read(self, nbytes: int) -> bool:
        """The read hooks (``after_read``, ``data_read``) outside the main task; ``False``
        when one raised (the session is then aborted)."""
        try:
            for plugin in self._after_read_hooks:
                plugin.after_read(self, nbytes)
            if self._read_hooks:
                self._data_read(nbytes)
        except Exception as exc:
            self._hook_failed(exc)
            return False
        return True

    def _data_read(self, nbytes: int) -> None:
        """Show the last ``nbytes`` read to the ``data_read`` hooks (the engine calls this
        only when there are such hooks: ``_read_hooks``)."""
        with self._core.buffer.view() as view, view[len(view) - nbytes :] as data:
            for plugin in self._read_hooks:
                plugin.data_read(self, data)

    def _data_written(self, data: bytes | bytearray) -> bool:
        """Show ``data``, about to be written, to the ``data_written`` hooks (only called
        when there are such hooks); ``False`` when one raised and the session was aborted
        (the engine must not write it then)."""
        try:
            with memoryview(data) as view:
                for plugin in self._write_hooks:
                    plugin.data_written(self, view)
        except Exception as exc:
            self._hook_failed(exc)
            return False
        return True

    async def _relieve(self) -> None:
        """Inside a batch, the input must stop after the current message: a :meth:`write`
        took pending output over the high-water mark, or :meth:`pause_input` was called.
        Output over the mark is written now and the batch waits until it drains under the
        low-water mark; a pause waits for :meth:`resume_input`. The engine reads nothing
        meanwhile, so the connection's input waits in the kernel (TCP flow control slows
        the peer) and memory stays bounded."""
        plugins = self._pause_hooks
        for plugin in plugins:
            plugin.input_paused(self)
        while self._hold and not self._core.close_requested:
            if self._over_high_water:
                self._over_high_water = False
                engine = self._engine
                if engine is not None:
                    await engine.write_pending()
                try:
                    await self._wait_drain()
                except anyio.BrokenResourceError:
                    self._core.close_requested = True  # aborted: the batch ends here
                    return
            elif self._pausers:
                resumed = self._resumed = anyio.Event()  # (before any await: a resume
                engine = self._engine  # that comes while the output is written sets it)
                if engine is not None and self._core.has_output:
                    # the replies written so far leave now, not when the input resumes
                    await engine.write_pending()
                await resumed.wait()
            self._hold = bool(self._pausers) or self._over_high_water
        for plugin in plugins:
            plugin.input_resumed(self)

    def _detach(self) -> None:
        """The engine is done with this session (``SESSION_CLOSED`` delivered): forget it,
        so a closed session and its engine do not keep each other (and the receive buffer)
        alive until the cyclic garbage collector runs."""
        self._engine = None
        self._late = None
        self._input_failure = None

    def _abort(self) -> None:
        """Drop pending output and refuse more: the state becomes ABORTING (no event)."""
        core = self._core
        if core.state in (SessionState.OPEN, SessionState.INPUT_CLOSED, SessionState.CLOSING):
            core.state = SessionState.ABORTING
            core.discard_output()
        self._core.aborted = True
        self._wake_drain()

    def _fire(self, event: StateEvent) -> bool:
        """Apply ``event`` to the state now; deliver it later with :meth:`_deliver`."""
        if not self._core.fire(event):
            return False
        if self._core.state in _ENDED:
            self._core.aborted = self._core.aborted or self._core.state is SessionState.ABORTING
            self._wake_drain()
        return True

    def _fail(self, event: StateEvent, exc: BaseException) -> None:
        """An engine's fatal failure (OUTPUT_EXCEPTION, INTERNAL_EXCEPTION) from wherever it
        happens: applied to the state now and the session aborted; the event is delivered
        by the session's main task (:meth:`_deliver_late`), before SESSION_CLOSED."""
        if self._fire(event):
            self._late = (event, exc)
        self._abort()

    async def _deliver_late(self) -> None:
        late = self._late
        if late is not None:
            self._late = None
            await self._deliver(*late)

    async def _deliver(self, event: StateEvent, exc: BaseException | None) -> None:
        if self._sync_state_event:
            self._deliver_now(event, exc)
            return
        self._deliver_to_plugins(event, exc)
        try:
            await self._processor.state_event(self, event, exc)  # type: ignore[misc]
        except Exception:
            logger.exception("state_event(%s) failed on %r", event.name, self)
        self._delivered(event)

    def _deliver_now(self, event: StateEvent, exc: BaseException | None) -> None:
        """:meth:`_deliver` for a plain ``def state_event``: no await."""
        self._deliver_to_plugins(event, exc)
        try:
            self._processor.state_event(self, event, exc)
        except Exception:
            logger.exception("state_event(%s) failed on %r", event.name, self)
        self._delivered(event)

    def _deliver_to_plugins(self, event: StateEvent, exc: BaseException | None) -> None:
        for plugin in self._plugins:
            try:
                plugin.state_event(self, event, exc)
            except Exception:
                logger.exception("plugin %r failed on %s", plugin, event.name)

    def _delivered(self, event: StateEvent) -> None:
        if event is StateEvent.SESSION_CLOSED:
            self._closed.set()
            if self._inbox_send is not None:
                self._inbox_send.close()

    async def _emit(self, event: StateEvent, exc: BaseException | None = None) -> bool:
        """Fire and deliver ``event``; ``False`` when the table does not allow it now."""
        if not self._fire(event):
            return False
        await self._deliver(event, exc)
        return True

    def _wake_drain(self) -> None:
        drain = self._drain
        if drain is not None:
            self._drain = None
            drain.set()

    def _wrote(self, nbytes: int) -> None:
        """The engine wrote ``nbytes`` of :meth:`SessionCore.data_to_send`."""
        core = self._core
        core.sent(nbytes)
        try:
            for plugin in self._after_write_hooks:
                plugin.after_write(self, nbytes)
        except Exception as exc:  # (it may run in an I/O callback: not the main task)
            self._hook_failed(exc)
        if self._drain is not None and core.under_low_water:
            self._wake_drain()

    async def _wait_drain(self) -> None:
        core = self._core
        while not core.under_low_water and not self._core.aborted:
            if self._drain is None:
                self._drain = anyio.Event()
            await self._drain.wait()
        if self._core.aborted:
            raise anyio.BrokenResourceError("the session was aborted before the data was written")

    def _process_inline(self) -> bool:
        """The seed's ``readFromChannel`` with no task in between, for a processor whose
        ``process`` and ``state_event`` are plain functions (:attr:`inline`): decode every
        complete message in the receive buffer and process each, right where the engine's
        read landed (an asyncio protocol callback, or trio's read loop without another
        coroutine). ``True`` when the buffer is done with (the engine then writes what the
        batch queued); ``False`` when the session's task must take over — output over the
        high-water mark, a pause, a close, a decode error, a half packet over the size
        cap, a ``before_decode`` hook — with the messages decoded but not yet processed
        left in ``_backlog`` for its batch loop, in order. What a processor observes is what
        :meth:`_process_bulk` gives it.
        """
        busy = self._hold or self._core.close_requested  # (a local: mypy must not narrow them)
        if busy or self._decode_hooks or self._backlog:
            return False
        core = self._core
        buffer = core.buffer
        process = self._processor.process
        plugins = self._process_hooks
        decode_many = self._decode_many
        decode = core.decode_function
        max_buffered = core.max_buffered
        self._in_batch = True
        try:
            while True:
                try:
                    if decode_many is not None:
                        msgs = decode_many(buffer, _BULK_LIMIT)
                    else:
                        msg = decode(buffer)
                        msgs = [] if msg is None else [msg]
                except Exception:
                    return False  # the task reports it (the same error again)
                if not msgs:
                    # a half packet: over the size cap, the task reports it
                    return max_buffered is None or len(buffer) <= max_buffered
                todo = iter(msgs)
                for msg in todo:
                    core.messages_received += 1
                    if plugins and not self._admit(msg):
                        continue
                    try:
                        process(self, msg)
                    except Exception as exc:
                        if self._fire(StateEvent.PROCESS_EXCEPTION):
                            self._deliver_now(StateEvent.PROCESS_EXCEPTION, exc)
                    if self._hold or self._core.close_requested:
                        if not self._core.close_requested:
                            self._backlog = list(todo)  # the rest, for the task
                        return False
                if not buffer:
                    return True  # all consumed: no need to ask the codec again
        finally:
            self._in_batch = False

    async def _process_list(self, msgs: list[T]) -> None:
        """Process decoded messages in order (inside a batch), as the batch loops do."""
        core = self._core
        process = self._processor.process
        sync = self._sync_process
        plugins = self._process_hooks
        for msg in msgs:
            if core.close_requested:
                return  # (what was decoded ahead is dropped with the input)
            core.messages_received += 1
            if plugins and not self._admit(msg):
                continue
            try:
                if sync:
                    process(self, msg)
                else:
                    await process(self, msg)  # type: ignore[misc]
            except Exception as exc:
                await self._emit(StateEvent.PROCESS_EXCEPTION, exc)
            if self._hold:
                await self._relieve()

    def _admit(self, msg: T) -> bool:
        """The ``before_process`` hooks, in order; ``False`` drops the message (the plugins
        after the one that said so are not asked). (A loop, not ``all()`` over a generator:
        this runs once per message.)"""
        for plugin in self._process_hooks:
            if not plugin.before_process(self, msg):
                self._core.messages_dropped += 1
                return False
        return True

    def _take_backlog(self) -> list[T] | None:
        """The messages :meth:`_process_inline` decoded and left for the batch loop."""
        backlog = self._backlog
        self._backlog = None
        return backlog

    def _before_decode(self) -> bool:
        """The ``before_decode`` hooks, in order; ``False`` when one wants more input."""
        buffer = self._core.buffer
        return all(plugin.before_decode(self, buffer) for plugin in self._decode_hooks)

    def _batch_processor(self) -> Callable[[], Awaitable[bool]]:
        """The coroutine function an engine awaits after each read: :meth:`_process_bulk`
        for a ``codec.Codec``, else :meth:`_process_batch`. (Chosen here, not stored on the
        instance: a bound method kept in the session would make a reference cycle.)"""
        return self._process_bulk if self._decode_many is not None else self._process_batch

    async def _process_batch(self) -> bool:
        """Decode and process every complete message in the receive buffer (the seed's
        ``readFromChannel``). ``False`` when input must stop (a decode error)."""
        core = self._core
        decode = core.decode_function
        buffer = core.buffer
        process = self._processor.process
        sync = self._sync_process
        plugins = self._process_hooks
        self._in_batch = True
        try:
            if self._hold:
                await self._relieve()  # paused between reads
            backlog = self._take_backlog()
            if backlog:
                await self._process_list(backlog)
            if self._decode_hooks and not self._before_decode():
                return True
            while not self._core.close_requested:
                # SessionCore.next_message, inlined: this loop runs once per message
                try:
                    msg = decode(buffer)
                except Exception as exc:
                    await self._emit(StateEvent.DECODE_EXCEPTION, core.decode_error(exc))
                    return False
                if msg is None:
                    err = core.half_packet_error()
                    if err is not None:
                        await self._emit(StateEvent.DECODE_EXCEPTION, err)
                        return False
                    return True
                core.messages_received += 1
                if plugins and not self._admit(msg):
                    continue
                try:
                    if sync:
                        process(self, msg)
                    else:
                        await process(self, msg)  # type: ignore[misc]
                except Exception as exc:
                    await self._emit(StateEvent.PROCESS_EXCEPTION, exc)
                if self._hold:
                    await self._relieve()
            return True
        finally:
            self._in_batch = False

    async def _process_bulk(self) -> bool:
        """:meth:`_process_batch` for a ``codec.Codec`` (see :meth:`_batch_processor`): the
        messages come a batch at a time from ``decode_many`` instead of one ``decode`` call
        each. What a processor can observe is the same: messages in order, counted as each
        is handed out, none after ``close()``, a decode error only after every good message
        before it.
        """
        decode_many = self._decode_many
        assert decode_many is not None
        core = self._core
        buffer = core.buffer
        process = self._processor.process
        sync = self._sync_process
        plugins = self._process_hooks
        self._in_batch = True
        try:
            if self._hold:
                await self._relieve()  # paused between reads
            backlog = self._take_backlog()
            if backlog:
                await self._process_list(backlog)
            if self._decode_hooks and not self._before_decode():
                return True
            while True:
                try:
                    msgs = decode_many(buffer, _BULK_LIMIT)
                except Exception as exc:
                    await self._emit(StateEvent.DECODE_EXCEPTION, core.decode_error(exc))
                    return False
                if not msgs:
                    err = core.half_packet_error()
                    if err is not None:
                        await self._emit(StateEvent.DECODE_EXCEPTION, err)
                        return False
                    return True
                # _process_list, inlined: a coroutine per read batch costs ~4% of a read
                for msg in msgs:
                    if core.close_requested:
                        return True  # (what was decoded ahead is dropped with the input)
                    core.messages_received += 1
                    if plugins and not self._admit(msg):
                        continue
                    try:
                        if sync:
                            process(self, msg)
                        else:
                            await process(self, msg)  # type: ignore[misc]
                    except Exception as exc:
                        await self._emit(StateEvent.PROCESS_EXCEPTION, exc)
                    if self._hold:
                        await self._relieve()
                if not buffer or core.close_requested:
                    return True  # all consumed: no need to ask the codec again
        finally:
            self._in_batch = False


def _atomic_encode_into(protocol: Any) -> Callable[[Any, bytearray], None] | None:
    """The protocol's ``encode_into(msg, out)``, if it has one, made to append nothing when
    it raises: ``codec.Codec``'s already does (and is tested for it); another protocol's is
    wrapped so that a failed encode never leaves part of a frame queued."""
    encode_into: Callable[[Any, bytearray], None] | None = getattr(protocol, "encode_into", None)
    if encode_into is None or isinstance(protocol, Codec):
        return encode_into

    def atomic(
        msg: Any, out: bytearray, encode_into: Callable[[Any, bytearray], None] = encode_into
    ) -> None:
        mark = len(out)
        try:
            encode_into(msg, out)
        except BaseException:
            del out[mark:]
            raise

    return atomic


class Inbox(Processor[T]):
    """The processor of a pull-style session: messages go to ``Session.receive()``."""

    async def process(self, session: Session[T], msg: T) -> None:
        inbox = session._inbox_send
        assert inbox is not None
        try:
            await inbox.send(msg)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the application stopped receiving


class SessionPort(Generic[T]):
    """The engine seam: everything an I/O engine (or the server and client that set
    sessions up) may do to a :class:`Session`, and nothing an application needs.

    A session's user-facing API (``send``, ``write``, ``close``...) is on the session; what
    drives it — delivering state events in the table's order, the batch loops, the hooks,
    the failure paths — is reached through a port, so no other module reads the session's
    private state. The engine holds the port; the port's methods are the session's own
    (bound once: calling one costs what calling the session's would). ``engine`` registers
    the engine the session's ``send``/``close`` talk to.
    """

    __slots__ = (
        "abort",
        "after_read",
        "after_read_hooks",
        "after_write_hooks",
        "batch_processor",
        "core",
        "data_read",
        "data_written",
        "deliver",
        "deliver_late",
        "detach",
        "emit",
        "end_input",
        "expire",
        "fail",
        "fire",
        "hook_failed",
        "inline",
        "process_inline",
        "read_hooks",
        "reads_observed",
        "session",
        "write_hooks",
        "wrote",
    )

    def __init__(self, session: Session[T], engine: Engine | None = None) -> None:
        #: the session, for what plugins and processors are handed
        self.session = session
        if engine is not None:
            session._engine = engine
        #: the sans-I/O core: receive buffer, outgoing bytes, counters, state
        self.core = session._core
        #: the plugins overriding ``data_read`` / ``data_written``
        self.read_hooks = session._read_hooks
        self.write_hooks = session._write_hooks
        #: the plugins overriding ``after_read`` / ``after_write``, and whether any hook
        #: looks at reads at all (``after_read`` or ``data_read``)
        self.after_read_hooks = session._after_read_hooks
        self.after_write_hooks = session._after_write_hooks
        self.reads_observed = bool(session._after_read_hooks or session._read_hooks)
        #: whether reads may be processed where they land (:meth:`Session._process_inline`)
        self.inline = session.inline
        #: ``await emit(event, exc=None) -> bool``: fire and deliver (``False``: not now)
        self.emit = session._emit
        #: ``fire(event) -> bool``: apply to the state now, deliver later with ``deliver``
        self.fire = session._fire
        self.deliver = session._deliver
        #: ``fail(event, exc)``: a fatal failure from anywhere (applied now, delivered by
        #: ``deliver_late`` before SESSION_CLOSED); ``abort()``: drop output, refuse more
        self.fail = session._fail
        self.abort = session._abort
        self.deliver_late = session._deliver_late
        #: ``hook_failed(exc)``: a plugin hook raised outside the main task
        #: (``INTERNAL_EXCEPTION``, that session aborted)
        self.hook_failed = session._hook_failed
        #: ``await end_input()``: the first step of a close (``fail_input``'s reason)
        self.end_input = session._end_input
        #: ``expire(exc)``: a deadline ran out: close at once, pending output dropped with
        #: ``OUTPUT_EXCEPTION`` carrying ``exc``
        self.expire = session._expire
        #: ``detach()``: the engine is done (after SESSION_CLOSED)
        self.detach = session._detach
        #: the read side: hooks outside the main task (``after_read(n) -> bool``), the
        #: ``data_read`` hooks (``data_read(n)``), the batch (``batch_processor()`` gives
        #: the coroutine function to await; ``process_inline() -> bool`` the inline path)
        self.after_read = session._after_read
        self.data_read = session._data_read
        self.batch_processor = session._batch_processor
        self.process_inline = session._process_inline
        #: the write side: ``data_written(data) -> bool`` (the hooks), ``wrote(n)``
        self.data_written = session._data_written
        self.wrote = session._wrote

    @property
    def close_requested(self) -> bool:
        """Whether the session must stop reading and processing (a close was asked for)."""
        return self.session._core.close_requested

    @close_requested.setter
    def close_requested(self, value: bool) -> None:
        self.session._core.close_requested = value

    @property
    def aborted(self) -> bool:
        """Whether pending output was dropped and no more is accepted."""
        return self.session._core.aborted

    @property
    def drain_waiting(self) -> bool:
        """Whether a sender waits for the output to drain (tell it with ``wrote``)."""
        return self.session._drain is not None

    def set_addresses(self, local: Any, remote: Any) -> None:
        """The connection's addresses, once known (a client learns them after connecting)."""
        self.session._local_address = local
        self.session._remote_address = remote

    def close_inbox(self) -> None:
        """A pull-style session's inbox: stop it (a reader waiting on a full inbox goes on,
        then sees the end)."""
        inbox = self.session._inbox_recv
        if inbox is not None:
            inbox.close()

    def discard_inbox(self) -> None:
        """A pull-style session that never started: close both ends of its inbox."""
        session = self.session
        if session._inbox_send is not None:
            session._inbox_send.close()
        if session._inbox_recv is not None:
            session._inbox_recv.close()

    @property
    def inbox(self) -> MemoryObjectReceiveStream[T] | None:
        """A pull-style session's inbox (what ``receive`` reads), else ``None``."""
        return self.session._inbox_recv
