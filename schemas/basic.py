"""Basic framings: the wire formats most hand-written protocols start from.

Each name is a construct schema; give it to :class:`codec.Codec`. The framing is inferred
(``Codec(STRING8).framing`` says which).

* ``STRING8``: the smart-socket book's ``StringProtocol`` (chapter 2.1/3.1): a 1-byte length,
  then that many bytes of UTF-8 text.
* ``STRING16``/``STRING32``: the same with a 2-/4-byte big-endian length.
* ``INT32``: the book's ``IntegerProtocol``: one 4-byte big-endian signed integer per message.
* ``BYTES32``: a 4-byte big-endian length, then that many bytes (the most common binary
  framing; Netty's ``LengthFieldPrepender(4)``).
* ``VARINT_BYTES``: a base-128 VarInt length, then the bytes (protobuf's "delimited"
  messages, ``writeDelimitedTo``).
* ``CSTRING``: NUL-terminated UTF-8 text.

Line-based protocols need an explicit framing: ``LINES`` is a ready :class:`codec.Codec` for
text lines ending in CRLF or LF (RFC 5234's CRLF, with bare LF tolerated as most servers do).
"""

from __future__ import annotations

import construct as cs

from codec import Codec, Delimiter

__all__ = [
    "BYTES32",
    "CSTRING",
    "INT32",
    "LINES",
    "STRING8",
    "STRING16",
    "STRING32",
    "VARINT_BYTES",
]

STRING8 = cs.PascalString(cs.Int8ub, "utf8")
STRING16 = cs.PascalString(cs.Int16ub, "utf8")
STRING32 = cs.PascalString(cs.Int32ub, "utf8")
INT32 = cs.Int32sb
BYTES32 = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
VARINT_BYTES = cs.Prefixed(cs.VarInt, cs.GreedyBytes)
CSTRING = cs.CString("utf8")

#: UTF-8 text lines; ``encode`` ends each with CRLF
LINES: Codec[str] = Codec(cs.GreedyString("utf8"), framing=Delimiter(b"\r\n", b"\n"))
