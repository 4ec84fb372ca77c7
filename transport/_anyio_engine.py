"""The anyio engine: drives a :class:`Session` over an anyio byte stream (every backend).

One task per connection reads, decodes and processes (``Session._process_batch``) and then
writes everything the batch produced in one ``send``, the seed's ``readFromChannel``. A
second, idle task writes output queued from elsewhere (another session's processor, a
pull-style client): only the session's own tasks ever write, so a user's task being
cancelled never leaves half a frame on the wire.

State events are delivered from the connection's main task only, so a processor's
``state_event`` calls for one session never overlap.
"""

from __future__ import annotations

import logging
from typing import Any, TypeVar

import anyio
from anyio.abc import ByteStream, TaskStatus

from codec import Buffer

from ._core import DEFAULT_READ_SIZE, ReadSizer
from ._lifecycle import FINAL_GRACE, StreamLifecycle
from ._native_engine import LINGER_IDLE
from ._session import Session
from ._state import StateEvent
from ._trio_socket import TrioSocketIO, trio_socket_of

__all__ = ["StreamEngine"]

T = TypeVar("T")

logger = logging.getLogger("transport")


class StreamEngine(StreamLifecycle[T]):
    """Runs one session over ``stream`` until it is closed."""

    def __init__(
        self,
        session: Session[T],
        stream: ByteStream,
        *,
        read_size: int = DEFAULT_READ_SIZE,
        close_timeout: float = 30.0,
    ) -> None:
        super().__init__(session, self, close_timeout=close_timeout)
        self._stream = stream
        #: the size of each read, adapted to the traffic up to ``read_size``
        self._sizer = ReadSizer(read_size)
        self._writing = False
        self._wake: anyio.Event | None = None
        self._idle: anyio.Event | None = None
        self._receive_scope: anyio.CancelScope | None = None
        #: whether the main task waits in ``receive`` (the only time close may cancel it)
        self._receiving = False
        #: the peer's input ended (EOF or a read error): nothing to drain at the close
        self._input_ended = False
        #: the session is done: the writer task returns when woken
        self._stopping = False
        #: the lingering close's wait for the peer's EOF (an immediate close cancels it)
        self._linger_scope: anyio.CancelScope | None = None
        self._tasks: set[int] = set()
        #: how bytes are read and written: the stream's own ``receive``/``send``, or on
        #: trio the socket under a plain socket stream itself (see ``_trio_socket``)
        self._io: StreamIO | TrioSocketIO = StreamIO(stream)
        #: an event fired in another task, delivered by the main task before SESSION_CLOSED

    # -- Engine protocol -----------------------------------------------------------------
    def wake_writer(self) -> None:
        wake = self._wake
        if wake is not None and (not self._writing or self._stopping):
            wake.set()

    async def write_pending(self) -> None:
        # the batch's own task writes: on trio a hand-off to the writer task and back costs
        # two task switches and two events per high-water mark; a write already under way
        # (the writer's) takes the new output too
        if not self._writing:
            await self._flush()

    def request_close(self, immediate: bool) -> None:
        if immediate:
            if self._scope is not None:
                self._scope.cancel()
            if self._linger_scope is not None:
                self._linger_scope.cancel()  # a lingering close under way ends at once
        elif self._receiving and self._receive_scope is not None:
            self._receive_scope.cancel()

    def owns_current_task(self) -> bool:
        task_id = anyio.get_current_task().id
        return task_id in self._tasks or self.owns_task(task_id)

    # -- the connection's life -----------------------------------------------------------
    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Run the session's lifecycle (``StreamLifecycle.run``) in this task."""
        self._tasks.add(anyio.get_current_task().id)
        sock = trio_socket_of(self._stream)
        if sock is not None:
            self._io = TrioSocketIO(sock)
        try:
            await super().run(task_status=task_status)
        finally:
            self._wake = None

    def _on_serving(self) -> None:
        assert self._tg is not None
        self._wake = anyio.Event()
        self._tg.start_soon(self._writer)

    def _on_served(self) -> None:
        # the writer ends by itself: a cancelled task leaves a reference cycle (its
        # CancelledError's traceback) that only the cyclic collector frees
        self._stopping = True
        self.wake_writer()

    async def _read_loop(self) -> None:
        port = self._port
        core = port.core
        receive_into = self._io.receive_into
        sizer = self._sizer
        buffer = core.buffer
        after_read_hooks = port.after_read_hooks
        process_batch = port.batch_processor()
        inline = port.inline
        failure: BaseException | None = None
        eof = False
        late = False  # bytes were read as close() was called
        # One cancel scope for the whole loop, not one per receive (that costs more than the
        # rest of a read on trio): request_close cancels it only while the task waits in
        # ``receive_into``, so process() and flushes never run in a cancelled scope. Bytes
        # that arrive as the scope is cancelled are counted and left unprocessed.
        with anyio.CancelScope() as scope:
            self._receive_scope = scope
            try:
                while not core.close_requested and core.reading:
                    buffer.trim(4 * sizer.size)  # (emptied, after reads shrank: memory back)
                    self._receiving = True
                    try:
                        nbytes = await receive_into(buffer, sizer.size)
                    except Exception as exc:
                        failure = exc
                        break
                    finally:
                        self._receiving = False
                    if not nbytes:
                        eof = True
                        break
                    core.bytes_received += nbytes
                    if nbytes >= sizer.size or nbytes < sizer.small_below or sizer.small_reads:
                        sizer.record(nbytes, sizer.size)  # (a read that changes nothing skips it)
                    for plugin in after_read_hooks:
                        plugin.after_read(port.session, nbytes)
                    if port.read_hooks:
                        port.data_read(nbytes)
                    if scope.cancel_called:
                        late = True
                        break
                    if inline and port.process_inline():
                        pass  # a plain-function processor: no coroutine for the batch
                    elif not await process_batch() or core.close_requested:
                        return  # _finish flushes (and fires SESSION_CLOSING if writes pending)
                    if core.out and not self._writing and not await self._flush():
                        return
                else:
                    return
            finally:
                self._receive_scope = None
        if eof or failure is not None:
            self._input_ended = True
        if scope.cancelled_caught:
            return  # close() was called
        if eof:
            await port.emit(StateEvent.INPUT_SHUTDOWN)
        elif failure is not None:
            await port.emit(StateEvent.INPUT_EXCEPTION, failure)
        elif late:
            await process_batch()  # processes nothing: close was requested

    # -- the lifecycle's steps -----------------------------------------------------------
    def _stop_reading(self) -> None:
        pass  # the main task reads: it has stopped

    def _output_pending(self) -> bool:
        return self._port.core.pending > 0 or self._writing

    async def _drain_output(self) -> bool:
        port = self._port
        core = port.core
        while not core.aborted:
            if self._writing:
                if self._idle is None:
                    self._idle = anyio.Event()
                await self._idle.wait()
            elif core.has_output:
                if not await self._flush():
                    return False
            else:
                return True
        return True

    async def _close_connection(self) -> None:
        if self._port.core.aborted:
            await anyio.aclose_forcefully(self._stream)
        else:
            await self._linger()

    async def _linger(self) -> None:
        """The graceful close of the connection, after the last flush: a lingering close.

        Closing a socket while the peer's unread input is still in the kernel makes Linux
        send a reset, which destroys the output the peer has not read yet — the replies a
        graceful close exists to deliver. So the write side is shut first, the input is
        read and dropped until the peer's EOF (or until none arrived for ``LINGER_IDLE``),
        and only then is the stream closed; all within ``close_timeout``. A stream that
        cannot half-close (TLS) is closed at once."""
        stream = self._stream
        try:
            if not self._input_ended and self._port.core.bytes_sent:
                # (a session that never sent a byte has nothing a reset could destroy)
                with anyio.move_on_after(self._close_timeout) as self._linger_scope:
                    await stream.send_eof()
                    while True:
                        with anyio.move_on_after(LINGER_IDLE) as idle:
                            await stream.receive()
                        if idle.cancelled_caught:
                            break  # nothing more arrives: nothing left for a reset
        except (anyio.EndOfStream, NotImplementedError):
            pass  # the peer's EOF (or a stream that cannot half-close)
        except Exception:
            await anyio.aclose_forcefully(stream)  # the peer is gone already
            return
        finally:
            self._linger_scope = None
        if self._port.core.aborted:  # an immediate close (a shutdown's deadline) cut it short
            await anyio.aclose_forcefully(stream)
            return
        try:
            with anyio.fail_after(FINAL_GRACE):
                await stream.aclose()
        except Exception:  # the peer is gone already, or a TLS close_notify hangs
            await anyio.aclose_forcefully(stream)

    async def _writer(self) -> None:
        self._tasks.add(anyio.get_current_task().id)
        core = self._port.core
        while True:
            wake = self._wake
            assert wake is not None
            await wake.wait()
            if self._stopping:
                return
            self._wake = anyio.Event()
            if not self._writing and core.has_output and not await self._flush():
                return

    async def _flush(self) -> bool:
        """Write everything queued, in as few sends as possible. ``False`` on failure."""
        port = self._port
        core = port.core
        send = self._io.send
        self._writing = True
        try:
            while core.out:
                data = core.data_to_send()
                if port.write_hooks and not port.data_written(data):
                    return False
                try:
                    # anyio's socket and TLS streams take any buffer (typed ``bytes``)
                    await send(data)  # type: ignore[arg-type]
                except Exception as exc:
                    self._output_failed(exc)
                    return False
                port.wrote(len(data))
            return True
        finally:
            self._writing = False
            idle = self._idle
            if idle is not None:
                self._idle = None
                idle.set()


class StreamIO:
    """``receive_into``/``send`` over an anyio byte stream's own methods (every backend)."""

    def __init__(self, stream: ByteStream) -> None:
        self._receive = stream.receive
        self.send = stream.send

    async def receive_into(self, buffer: Buffer, size: int) -> int:
        """Receive up to ``size`` bytes into ``buffer``; 0 at the end of the stream."""
        try:
            data = await self._receive(size)
        except anyio.EndOfStream:
            return 0
        buffer.extend(data)
        return len(data)


def stream_addresses(stream: ByteStream) -> tuple[Any, Any]:
    """(local, remote) address of a socket stream, ``(None, None)`` when unknown."""
    from anyio.abc import SocketAttribute

    return (
        stream.extra(SocketAttribute.local_address, None),
        stream.extra(SocketAttribute.remote_address, None),
    )
