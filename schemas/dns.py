"""DNS messages, over UDP and over TCP.

Specification: RFC 1035, section 4.1 (message format: header 4.1.1, question 4.1.2) and
section 4.2.2 (TCP: each message preceded by a two-byte length field).

``MESSAGE`` parses the 12-byte header and the question section; the answer, authority and
additional sections are kept as bytes in ``rest`` (their names may use compression
pointers, RFC 1035 4.1.4, which point back into the message). Question names are lists of
labels ending with the empty root label, ``["example", "com", ""]``; questions do not use
compression in practice (a pointer there is a ``DecodeError``, not a misparse).

``TCP`` is one DNS-over-TCP frame; use ``MESSAGE`` for UDP datagrams. Port 53.
"""

from __future__ import annotations

import construct as cs
from construct import this

__all__ = ["FLAGS", "MESSAGE", "NAME", "PORT", "QUESTION", "TCP"]

PORT = 53

#: a domain name as labels; a label length above 63 (a compression pointer) is refused
NAME = cs.RepeatUntil(
    lambda label, labels, ctx: label == "",
    cs.PascalString(cs.ExprValidator(cs.Int8ub, lambda length, ctx: length <= 63), "ascii"),
)

QUESTION = cs.Struct("qname" / NAME, "qtype" / cs.Int16ub, "qclass" / cs.Int16ub)

#: the header's flags word, for ``FLAGS.parse(msg.flags.to_bytes(2, "big"))``
FLAGS = cs.BitStruct(
    "qr" / cs.Flag,
    "opcode" / cs.BitsInteger(4),
    "aa" / cs.Flag,
    "tc" / cs.Flag,
    "rd" / cs.Flag,
    "ra" / cs.Flag,
    "z" / cs.BitsInteger(3),
    "rcode" / cs.BitsInteger(4),
)

#: a whole DNS message (as carried in one UDP datagram)
MESSAGE = cs.Struct(
    "id" / cs.Int16ub,
    "flags" / cs.Int16ub,
    "qdcount" / cs.Int16ub,
    "ancount" / cs.Int16ub,
    "nscount" / cs.Int16ub,
    "arcount" / cs.Int16ub,
    "questions" / cs.Array(this.qdcount, QUESTION),
    "rest" / cs.GreedyBytes,
)

#: DNS over TCP (RFC 1035 4.2.2): a two-byte length, then the message
TCP = cs.Prefixed(cs.Int16ub, MESSAGE)
