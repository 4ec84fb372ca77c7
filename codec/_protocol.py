"""The seed's ``Protocol<T>``: the one interface the transport needs from a codec.

``Codec`` implements it, and so may any hand-written class: the transport accepts either,
which keeps the seed's freedom to decode by hand when a schema is not wanted.
"""

from __future__ import annotations

from typing import Protocol as _TypingProtocol
from typing import TypeVar, runtime_checkable

from ._buffer import Buffer

__all__ = ["Protocol"]

T = TypeVar("T")


@runtime_checkable
class Protocol(_TypingProtocol[T]):
    """Turns a byte stream into messages of type ``T`` and back.

    ``decode`` follows the seed's two rules for half and sticky packets:

    1. if ``buf`` does not yet hold a whole message, return ``None`` and consume nothing;
    2. as soon as one whole message is there, consume exactly its bytes and return it,
       whatever follows it in the buffer (the caller calls again for the next one).

    Malformed bytes raise :class:`codec.DecodeError` (or a subclass), nothing else.
    """

    def decode(self, buf: Buffer) -> T | None:
        """Return the next message and consume its bytes, or ``None`` on a half packet."""
        ...

    def encode(self, msg: T) -> bytes:
        """Return the bytes of one message (``EncodeError`` on a value that cannot be sent)."""
        ...
