"""The native engine: drives a :class:`Session` from asyncio's ``BufferedProtocol``.

asyncio (and uvloop) read straight into the session's receive ``Buffer``: ``get_buffer``
hands out the free space at its end (``Buffer.reserve``), ``buffer_updated`` commits the
bytes (``Buffer.commit``). No bytes object is made per read.

``process`` keeps full task semantics: one task per connection (the *main task*) waits
for the protocol's callbacks, then runs the seed's ``readFromChannel`` batch
(``Session._process_batch``: decode every complete message, process each in order) and
hands everything the batch produced to the transport in one ``write``. User code only ever
runs in that task, so ``asyncio.current_task()``, ``asyncio.timeout``, anyio calls, locks and
cancellation all work inside ``process`` and ``state_event``. A read wakes the task eagerly
(:meth:`NativeEngine._resume`): the task's next step runs inside ``buffer_updated`` rather
than one loop iteration later (``docs/transport.md`` says why this rather than one eager
task per read, which needs Python >= 3.12).

Flow control both ways:

* output: ``transport.write`` never blocks. While the transport is paused
  (``pause_writing``), nothing more is handed to it and what it holds still counts as
  pending, so ``Session.send`` waits above the high-water mark exactly as with the anyio
  engine's blocking ``send``; ``resume_writing`` reports those bytes written.
* input: while the main task is busy in ``process``, the protocol keeps reading into the
  buffer for up to ``read_size`` bytes, then pauses reading until the task comes back.

Writes queued outside a batch (another session's processor, a pull-style client) are
coalesced: one ``call_soon`` writes everything queued in that loop iteration.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from anyio.abc import TaskStatus

from ._core import DEFAULT_READ_SIZE, ReadSizer
from ._lifecycle import FINAL_GRACE, StreamLifecycle
from ._session import Session
from ._state import StateEvent

__all__ = ["LINGER_IDLE", "NativeEngine", "is_ip", "on_asyncio", "sock_addresses"]

T = TypeVar("T")

#: ``loop -> the task running in it, or None``: the dict asyncio keeps itself where there is
#: one (on Python 3.11 ``asyncio.current_task`` is a Python function around it, a cost paid
#: on every read), else the public function
_current_tasks = getattr(asyncio.tasks, "_current_tasks", None)
_current_task: Callable[[asyncio.AbstractEventLoop], object] = (
    _current_tasks.get if isinstance(_current_tasks, dict) else asyncio.current_task
)

logger = logging.getLogger("transport")


#: a lingering close stops waiting for the peer's EOF when no input arrived for this long
#: (Apache's lingering close waits 2 s a read): what was read is dropped, so closing then
#: leaves nothing unread whose reset would destroy the peer's unread replies
LINGER_IDLE = 2.0


def on_asyncio() -> bool:
    """Whether the caller runs in an asyncio task (default loop or uvloop, not trio)."""
    try:
        return asyncio.current_task() is not None
    except RuntimeError:
        return False


def _convert(address: Any) -> Any:
    """A socket address as anyio's ``SocketAttribute`` gives it (IPv6: ``(host, port)``)."""
    if isinstance(address, tuple) and len(address) == 4:
        host, port, _flowinfo, scope_id = address
        if scope_id:
            return f"{host.split('%')[0]}%{scope_id}", port
        return host, port
    return address


def sock_addresses(sock: Any) -> tuple[Any, Any]:
    """(local, remote) address of a connected socket, ``None`` for what is unknown."""
    if sock is None:
        return None, None
    try:
        local = _convert(sock.getsockname())
    except OSError:
        local = None
    try:
        remote = _convert(sock.getpeername())
    except OSError:
        remote = None
    return local, remote


def is_ip(sock: Any) -> bool:
    return sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6)


class NativeEngine(StreamLifecycle[T], asyncio.BufferedProtocol):
    """Runs one session over an asyncio transport until it is closed.

    Used as the transport's protocol (``loop.create_connection(lambda: engine, ...)``),
    then :meth:`run` in the connection's task.
    """

    def __init__(
        self,
        session: Session[T],
        *,
        read_size: int = DEFAULT_READ_SIZE,
        close_timeout: float = 30.0,
    ) -> None:
        super().__init__(session, self, close_timeout=close_timeout)
        self._core = self._port.core
        #: the largest read, and how far input runs ahead of a busy processor
        self._read_size = read_size
        #: the size of the next read (see ReadSizer), and the space the last one was given
        self._sizer = ReadSizer(read_size)
        self._offered = 0
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._tls = False
        self._task: asyncio.Task[Any] | None = None
        #: the main task waits on this for any callback (data, EOF, loss, resume, close)
        self._waiter: asyncio.Future[None] | None = None
        #: bytes read since the main task last looked (0: nothing new)
        self._unread = 0
        self._eof = False
        self._lost = False
        self._lost_exc: BaseException | None = None
        self._write_paused = False
        #: bytes handed to the transport while it was paused: still pending
        self._unacked = 0
        self._flush_scheduled = False
        self._read_paused = False
        #: a graceful close has half-closed the connection and reads (and drops) the
        #: peer's input until its EOF (see _close_transport)
        self._draining = False
        #: whether reads are processed in ``buffer_updated`` itself (a plain-function
        #: processor: see _read_inline), and whether such a read left work for the task
        self._reads_inline = self._port.inline
        self._batch_pending = False
        #: reading paused until the loop's next iteration after a read that filled all the
        #: space it was given (see buffer_updated)
        self._yielding = False
        #: whether the loop may read this connection again before serving the others:
        #: uvloop (libuv reads up to 32 times in a row); asyncio's own loops read each
        #: ready connection once per iteration
        self._reads_in_a_row = not isinstance(self._loop, asyncio.BaseEventLoop)

    # -- asyncio protocol callbacks (never run user code) ---------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]
        self._tls = transport.get_extra_info("sslcontext") is not None

    def get_buffer(self, sizehint: int) -> memoryview:
        size = self._sizer.size
        # (an emptied buffer whose reads shrank, or whose large frame has gone, gives its
        # memory back: it keeps at most four reads' worth)
        view = self._core.buffer.read_space(size, 4 * size)
        self._offered = len(view)
        return view

    def buffer_updated(self, nbytes: int) -> None:
        core = self._core
        buf = core.buffer
        if self._draining:  # closing: the input is read only to be dropped
            buf.clear()
            self._wake()
            return
        buf.commit(nbytes)
        core.bytes_received += nbytes
        sizer = self._sizer
        if nbytes >= self._offered or nbytes < sizer.small_below or sizer.small_reads:
            sizer.record(nbytes, self._offered)  # (a read that changes nothing skips it)
        unread = self._unread + nbytes
        waiter = self._waiter
        if waiter is not None and self._reads_inline:
            self._unread = 0
            if not self._read_inline(unread):
                # the batch needs the task (a pause, a close, an error): it goes on there
                self._batch_pending = True
                self._waiter = None
                if not waiter.done():
                    self._resume(waiter)
        elif waiter is not None:
            self._unread = unread
            self._waiter = None
            if not waiter.done():
                self._resume(waiter)
        else:
            self._unread = unread
            if unread >= self._read_size and not self._read_paused and not self._lost:
                # the main task is busy processing: stop reading until it catches up
                self._read_paused = True
                assert self._transport is not None
                self._transport.pause_reading()
        if (
            nbytes >= self._offered
            and self._reads_in_a_row
            and not self._yielding
            and not self._lost
        ):
            # A full read: more is probably waiting, and uvloop (libuv) would read this
            # connection again at once, up to 32 times in one loop iteration, while every
            # other connection waits. Stop reading until the loop has served the others.
            self._yielding = True
            assert self._transport is not None
            self._transport.pause_reading()
            self._loop.call_soon(self._end_yield)

    def _read_inline(self, nbytes: int) -> bool:
        """A plain-function processor's read, handled in this callback while the main task
        waits (the seed's ``readFromChannel``, no task switch): the read hooks, every
        complete message processed (``Session._process_inline``), one write. ``False``
        when the main task must take the batch over."""
        port = self._port
        try:
            if port.reads_observed and not port.after_read(nbytes):
                return False
            if not port.process_inline():
                return False
        except Exception as exc:  # a plugin hook (before_process): that session's failure
            port.hook_failed(exc)
            return False
        if self._core.out and not self._write_paused:
            self._flush()
        return True

    def _end_yield(self) -> None:
        self._yielding = False
        if not self._read_paused and not self._lost and self._transport is not None:
            self._transport.resume_reading()

    def eof_received(self) -> bool:
        self._eof = True
        self._wake()
        # keep the write side open: pending replies still go out (TLS cannot half-close)
        return not self._tls

    def connection_lost(self, exc: Exception | None) -> None:
        self._lost = True
        self._lost_exc = exc
        self._write_paused = False
        port = self._port
        if port.drain_waiting and self._core.pending and not self._core.aborted:
            # a sender waits for output that can no longer be written
            self._output_failed(exc or ConnectionResetError("connection lost"))
        self._wake()

    def pause_writing(self) -> None:
        self._write_paused = True

    def resume_writing(self) -> None:
        self._write_paused = False
        unacked = self._unacked
        if unacked:
            self._unacked = 0
            self._port.wrote(unacked)
        if self._core.has_output and not self._core.aborted:
            self._flush()
        self._wake()

    def _resume(self, waiter: asyncio.Future[None]) -> None:
        """Complete the main task's ``waiter`` and, from a read callback, run the task's
        next step right here instead of one loop iteration later.

        ``set_result`` would schedule the task's wake-up with ``call_soon``: a handle, a
        trip through the loop's ready queue and a second callback, about half the
        engine's cost per read. Here the task's own wake-up callback (the only one on the
        future, registered by the task when it awaited it) is taken off the future and
        called at once in the task's context, which is what the loop would have done next.
        The task then runs its batch inside ``buffer_updated``, where a raw protocol would
        echo too, with full task semantics (``current_task()``, timeouts, cancellation).
        This is only done when no task is running (a protocol callback from the loop);
        anywhere else the future is completed the ordinary way.
        """
        callbacks = waiter._callbacks
        if callbacks and len(callbacks) == 1 and _current_task(self._loop) is None:
            callback, context = callbacks[0]
            waiter.remove_done_callback(callback)
            waiter.set_result(None)
            context.run(callback, waiter)
        else:
            waiter.set_result(None)

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def _wait(self) -> None:
        """Wait for the next protocol callback (or :meth:`request_close`)."""
        waiter = self._loop.create_future()
        self._waiter = waiter
        try:
            await waiter
        finally:
            self._waiter = None

    # -- Engine protocol -----------------------------------------------------------------
    def wake_writer(self) -> None:
        core = self._core
        if len(core.out) + core.inflight > core.high_water:
            # over the high-water mark: write now (transport.write never blocks), so the
            # sender waits only if the transport itself is full (pause_writing), and a
            # batch of large replies does not cost a loop iteration per high-water mark
            if not self._write_paused and not self._core.aborted:
                self._flush()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._scheduled_flush)

    async def write_pending(self) -> None:
        self.wake_writer()  # (over the high-water mark, it writes at once)

    def request_close(self, immediate: bool) -> None:
        if immediate and self._scope is not None:
            self._scope.cancel()
        self._wake()  # (and a lingering close under way sees an abort at once)

    def owns_current_task(self) -> bool:
        task = asyncio.current_task()
        return task is self._task or (
            bool(self._started.ids) and self.owns_task(anyio.get_current_task().id)
        )

    # -- writing -------------------------------------------------------------------------
    def _scheduled_flush(self) -> None:
        self._flush_scheduled = False
        if self._core.has_output and not self._write_paused and not self._core.aborted:
            self._flush()

    def _flush(self) -> bool:
        """Hand everything queued to the transport, in one write. ``False`` on failure.

        Callers check that output is queued and the transport is not paused."""
        transport = self._transport
        if self._lost or transport is None:
            self._output_failed(self._lost_exc or ConnectionResetError("connection lost"))
            return False
        core = self._core
        data = core.data_to_send()
        port = self._port
        if port.write_hooks and not port.data_written(data):
            return False
        try:
            transport.write(data)
        except Exception as exc:
            self._output_failed(exc)
            return False
        if self._write_paused:  # write() paused us: the transport's buffer is full
            self._unacked += len(data)
        else:
            if port.after_write_hooks or port.drain_waiting:
                port.wrote(len(data))
            else:  # Session._wrote and SessionCore.sent, inlined: nothing else to tell
                nbytes = len(data)
                core.inflight -= nbytes
                core.bytes_sent += nbytes
        return True

    # -- the connection's life -----------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the session's lifecycle (``StreamLifecycle.run``) in this task."""
        self._task = asyncio.current_task()
        try:
            await super().run(task_status=task_status)
        finally:
            self._task = None

    async def _read_loop(self) -> None:
        port = self._port
        core = self._core
        after_read_hooks = port.after_read_hooks
        process_batch = port.batch_processor()
        create_future = self._loop.create_future
        while not core.close_requested and core.reading:
            unread = self._unread
            if unread or self._batch_pending:
                self._unread = 0
                self._batch_pending = False
                if unread:
                    for plugin in after_read_hooks:
                        plugin.after_read(port.session, unread)
                    if port.read_hooks:
                        port.data_read(unread)
                if not await process_batch() or core.close_requested:
                    return  # _finish flushes (and fires SESSION_CLOSING if writes are pending)
                if core.out and not self._write_paused and not self._flush():
                    return
                continue
            if self._lost:
                exc = self._lost_exc
                if exc is None:
                    await port.emit(StateEvent.INPUT_SHUTDOWN)
                else:
                    await port.emit(StateEvent.INPUT_EXCEPTION, exc)
                return
            if self._eof:
                await port.emit(StateEvent.INPUT_SHUTDOWN)
                return
            if self._read_paused:
                self._read_paused = False
                assert self._transport is not None
                if not self._yielding:
                    self._transport.resume_reading()
            # self._wait(), inlined: this runs once per read
            waiter = create_future()
            self._waiter = waiter
            await waiter

    # -- the lifecycle's steps -----------------------------------------------------------
    def _stop_reading(self) -> None:
        transport = self._transport
        if transport is not None and not self._lost and not self._read_paused:
            self._read_paused = True
            transport.pause_reading()  # input is over: leave the rest in the kernel

    def _output_pending(self) -> bool:
        return self._core.pending > 0

    async def _drain_output(self) -> bool:
        core = self._core
        while core.pending and not core.aborted:
            if self._lost:
                self._output_failed(self._lost_exc or ConnectionResetError("connection lost"))
                return False
            if core.has_output and not self._write_paused:
                if not self._flush():
                    return False
            else:
                await self._wait()
        return True

    async def _close_connection(self) -> None:
        """Close the connection and wait for ``connection_lost``, so the socket is closed
        before SESSION_CLOSED.

        Aborted: at once, dropping everything. Graceful: a lingering close. Closing a
        socket while the peer's unread input is still in the kernel makes Linux send a
        reset, which destroys the output the peer has not read yet — the replies a
        graceful close exists to deliver. So the write side is shut first (the transport
        flushes its buffer, then sends FIN), the input is read and dropped until the
        peer's EOF (or until none arrived for ``LINGER_IDLE``), and only then is the socket
        closed; all within ``close_timeout``. A session that never sent a byte has nothing
        a reset could destroy and closes at once.
        TLS cannot half-close: there the close_notify and close happen at once."""
        transport = self._transport
        if transport is None or self._lost:
            return
        if self._core.aborted:
            transport.abort()
        elif self._eof or not self._core.bytes_sent or not transport.can_write_eof():
            # (nothing was ever sent: no reply a reset could destroy, nothing to linger for
            # — a slowloris peer reaped by an idle timeout is closed at once)
            transport.close()
        else:
            try:
                transport.write_eof()
            except Exception:
                transport.abort()  # (the connection broke meanwhile)
            else:
                self._draining = True
                self._core.buffer.clear()
                if self._read_paused:
                    self._read_paused = False
                    transport.resume_reading()
        core = self._core
        with anyio.move_on_after(self._close_timeout):
            while not self._lost and not self._eof and not core.aborted:
                with anyio.move_on_after(LINGER_IDLE) as idle:
                    await self._wait()
                if idle.cancelled_caught:
                    break  # nothing more arrives: nothing left for a reset to destroy
            if not self._lost:
                if core.aborted:  # an immediate close (a shutdown's deadline) cut it short
                    transport.abort()
                else:
                    transport.close()
                while not self._lost:
                    await self._wait()
        if not self._lost:
            transport.abort()
            with anyio.move_on_after(FINAL_GRACE):
                while not self._lost:
                    await self._wait()
