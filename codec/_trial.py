"""Trial parsing: the general framing that works for any self-delimiting schema.

The schema's own parser runs over the readable bytes through :class:`TrialStream`. When it
asks for more bytes than have arrived, the stream raises :class:`NeedMore` with the total the
frame needs *at least*; the decoder then does not try again before that many bytes are there,
so a frame is never re-parsed from its start before the bytes it was known to lack arrived.

``NeedMore`` derives from :class:`BaseException` on purpose. construct converts any
``Exception`` from ``stream.read`` into ``StreamError``, and ``Select``/``Optional``/
``GreedyRange`` swallow ``Exception`` to backtrack: a half packet inside an ``Optional``
would otherwise be silently parsed as "absent". A ``BaseException`` passes through them all.
"""

from __future__ import annotations

import io

__all__ = ["GreedySchemaError", "NeedMore", "TrialStream"]


class NeedMore(BaseException):
    """The frame needs at least ``need`` bytes from its start (``BaseException``: see above)."""

    def __init__(self, need: int) -> None:
        super().__init__(need)
        self.need = need


class GreedySchemaError(BaseException):
    """The schema read "until the end of the stream": it cannot delimit frames by itself."""


class TrialStream(io.BytesIO):
    """A read-only stream over the bytes received so far that never returns a short read."""

    def read(self, size: int | None = -1, /) -> bytes:
        if size is None or size < 0:
            raise GreedySchemaError
        pos = self.tell()
        data = super().read(size)
        if len(data) < size:
            raise NeedMore(pos + size)
        return data

    def read1(self, size: int | None = -1, /) -> bytes:
        return self.read(size)
