"""`StreamMonitor`: every byte a session reads and writes, to a callable or the log.

The default sink logs a ``hexdump -C`` style dump (offset, 16 bytes in hex, the printable
ASCII column) at DEBUG under the logger ``"transport.stream"``; that format is one that
``codec.capture.parse_hex_lines`` (and ``wirekit parse``) read back into the same bytes,
so a logged conversation can be decoded offline with the server's own codec.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .._processor import Plugin
from .._session import Session

__all__ = ["StreamMonitor", "hexdump"]

logger = logging.getLogger("transport.stream")

#: what a sink is called with: the session, ``"read"`` or ``"write"``, the bytes (a copy)
Sink = Callable[[Session[Any], str, bytes], object]

_PRINTABLE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


def hexdump(data: bytes | bytearray | memoryview, offset: int = 0) -> str:
    """``data`` as ``hexdump -C`` prints it, one line per 16 bytes, offsets from ``offset``
    (no closing offset line). ``codec.capture.parse_hex_lines`` reads it back."""
    data = bytes(data)
    lines = []
    for i in range(0, len(data), 16):
        row = data[i : i + 16]
        left = " ".join(f"{b:02x}" for b in row[:8])
        right = " ".join(f"{b:02x}" for b in row[8:])
        hexes = f"{left}  {right}" if right else left
        lines.append(f"{offset + i:08x}  {hexes:<48}  |{row.translate(_PRINTABLE).decode()}|")
    return "\n".join(lines)


class StreamMonitor(Plugin[Any]):
    """Shows every byte of every session it serves, in order, per direction.

    ``sink(session, direction, data)`` is called with ``"read"`` (the bytes just read,
    before anything decodes them) or ``"write"`` (the bytes about to be written), and a
    ``bytes`` copy it may keep. Without a sink, each chunk is logged at DEBUG under the
    logger ``"transport.stream"`` as a hex dump (:func:`hexdump`) headed by the peer and
    the direction; nothing is formatted while that logger does not log DEBUG.

    A sink that raises aborts that session with ``INTERNAL_EXCEPTION`` carrying the
    exception (the plugin contract: a tap that cannot record must not let traffic pass
    unrecorded); other sessions go on.
    """

    def __init__(self, sink: Sink | None = None) -> None:
        self.sink = sink

    def __repr__(self) -> str:
        return f"StreamMonitor(sink={self.sink!r})"

    def _show(self, session: Session[Any], direction: str, data: memoryview) -> None:
        sink = self.sink
        if sink is not None:
            sink(session, direction, bytes(data))
        elif logger.isEnabledFor(logging.DEBUG):
            arrow = "<-" if direction == "read" else "->"
            logger.debug(
                "%s %s %s %d bytes\n%s",
                session.local_address,
                arrow,
                session.remote_address,
                len(data),
                hexdump(data),
            )

    def data_read(self, session: Session[Any], data: memoryview) -> None:
        self._show(session, "read", data)

    def data_written(self, session: Session[Any], data: memoryview) -> None:
        self._show(session, "write", data)
