"""Reads and writes straight on the socket under an anyio stream, on trio.

On trio, anyio's plain socket streams (TCP and Unix) are thin wrappers of a trio socket, and
trio's socket methods put a cancellation check and a schedule point around every ``recv``
and ``send`` (``_try_sync``), so one read and its reply cost two trips through trio's run
loop, each with an ``epoll_wait``: a large part of the anyio engine's cost per read on trio.
This module does what trio's socket does with one trip per read instead:

* reads go into the session's receive ``Buffer`` (``recv_into`` its reserved space, no bytes
  object per read), and wait with ``trio.lowlevel.wait_readable`` only when the socket has
  nothing;
* a read that did not wait is followed, before the next one, by one ``checkpoint`` (a
  cancellation point and a schedule point), so a connection that always has data cannot
  starve the others and cancellation is still seen once per read;
* writes call ``send`` until all is taken, waiting with ``wait_writable`` only when the
  kernel's buffer is full.

Errors are what anyio's stream raises for the same failures (``BrokenResourceError`` from
the ``OSError``), so the session sees the same events either way. Only the stream's socket is
used: nothing else reads or writes it while the engine runs, and the stream still closes it.
TLS streams, and every stream on asyncio (where anyio's stream owns a transport that reads
the socket itself), keep anyio's stream methods.
"""

from __future__ import annotations

import socket
import sys
from typing import Any

import anyio
from anyio.abc import SocketAttribute
from anyio.abc import SocketStream as AnyioSocketStream

from codec import Buffer

__all__ = ["TrioSocketIO", "trio_socket_of"]


def _on_trio() -> bool:
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def trio_socket_of(stream: Any) -> socket.socket | None:
    """The socket under ``stream`` when it is anyio's plain TCP or Unix socket stream and the
    caller runs on trio; ``None`` otherwise (TLS, asyncio, any other stream)."""
    if not isinstance(stream, AnyioSocketStream) or not _on_trio():
        return None
    sock = stream.extra(SocketAttribute.raw_socket, None)
    if not isinstance(sock, socket.socket) or sock.getblocking():
        return None
    return sock


class TrioSocketIO:
    """``receive_into`` and ``send`` on a non-blocking socket, with trio's waits."""

    def __init__(self, sock: socket.socket) -> None:
        import trio

        self._sock = sock
        self._wait_readable = trio.lowlevel.wait_readable
        self._wait_writable = trio.lowlevel.wait_writable
        self._checkpoint = trio.lowlevel.checkpoint
        #: whether the last read took data without waiting (it owes a schedule point)
        self._owes = True

    async def receive_into(self, buffer: Buffer, size: int) -> int:
        """Read up to ``size`` bytes into ``buffer`` (committed); 0 at end of stream.

        Raises ``anyio.BrokenResourceError`` (from the ``OSError``) when the read fails."""
        sock = self._sock
        if self._owes:
            await self._checkpoint()  # (nothing is read yet if this raises Cancelled)
        view = buffer.reserve(size)
        try:
            try:
                nbytes = sock.recv_into(view, size)
                self._owes = True
            except BlockingIOError:
                view.release()  # (no export of the buffer's storage while waiting)
                while True:
                    await self._wait_readable(sock)
                    view = buffer.reserve(size)
                    try:
                        nbytes = sock.recv_into(view, size)
                        break
                    except BlockingIOError:
                        view.release()
                self._owes = False  # the wait was this read's schedule point
        except OSError as exc:
            raise anyio.BrokenResourceError from exc
        finally:
            view.release()
        buffer.commit(nbytes)
        return nbytes

    async def send(self, data: bytes | bytearray) -> None:
        """Write all of ``data``. Raises ``anyio.BrokenResourceError`` (from the
        ``OSError``) when the connection fails."""
        sock = self._sock
        try:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            if sent == len(data):
                return  # the common case: the kernel took it all
            with memoryview(data) as whole:
                while sent < len(whole):
                    await self._wait_writable(sock)
                    try:
                        sent += sock.send(whole[sent:])
                    except BlockingIOError:
                        pass
        except OSError as exc:
            raise anyio.BrokenResourceError from exc
