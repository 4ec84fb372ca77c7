"""DNS messages, over UDP and over TCP.

Specifications:

* RFC 1035, section 4.1: the message format: header (4.1.1), question (4.1.2), resource
  records (4.1.3), and name compression (4.1.4); section 3.1 (names: labels of at most 63
  octets, at most 255 octets in all) and 3.3 (the RDATA of CNAME 3.3.1, MX 3.3.9, NS 3.3.11,
  PTR 3.3.12, SOA 3.3.13, TXT 3.3.14), 3.4.1 (A);
* RFC 3596, section 2.2 (AAAA);
* RFC 1035, section 4.2.1 (UDP: one message per datagram) and 4.2.2 (TCP: each message
  preceded by a two-byte length), as RFC 7766 section 8 restates it for DNS over TCP;
* RFC 4035, section 3.2 and RFC 6895, section 2 (the AD and CD header bits, once part of Z).

``MESSAGE`` is one message (a UDP datagram); ``TCP_MESSAGE`` is one DNS-over-TCP frame.
Their codecs are ``MESSAGE_CODEC`` and ``TCP_MESSAGE_CODEC``. A decoded message is::

    Container(id=0x1234, flags=Container(qr=True, opcode="QUERY", aa=False, tc=False,
              rd=True, ra=True, z=0, ad=False, cd=False, rcode="NOERROR"),
              qdcount=1, ancount=1, nscount=0, arcount=0,
              questions=[Container(qname="example.test", qtype="A", qclass="IN")],
              answers=[Container(name="example.test", rtype="A", rclass="IN", ttl=0,
                                 rdlength=4, rdata="192.0.2.1")],
              authorities=[], additionals=[])

Names are text without the final dot (the root is ``"."``), with the master-file escapes
of RFC 1035 section 5.1 for octets that are not plain: ``\\.`` for a dot inside a label,
``\\DDD`` for an unprintable octet, so every name on the wire round-trips. Compressed names
(RFC 1035 4.1.4) are followed wherever they occur, questions and RDATA included: a pointer
is an offset from the start of the message, so the name parser reads the message's own
stream (no sub-stream around RDATA that holds names) and checks afterwards that the RDATA
used exactly ``rdlength`` octets. A pointer must point before the pointer that led to it
(as dnspython requires): no loops, and no waiting for bytes that come later; and one name
follows at most ``MAX_POINTERS`` of them. Encoding
writes names uncompressed, which every decoder accepts.

The counts and ``rdlength`` are rebuilt from the lists and the RDATA when encoding, so a
message to send needs neither. Types and classes are construct ``Enum``s: a known number
reads as its name (``"A"``, which also has ``.intvalue == 1``), an unknown one as an int;
either is accepted when encoding. RDATA of A, AAAA, NS, CNAME, PTR, MX, SOA and TXT is
decoded (addresses as text, TXT as a list of byte strings); any other type's RDATA stays
``bytes``. Port 53.
"""

from __future__ import annotations

import ipaddress
from typing import Any

import construct as cs
from construct import this

from codec import Codec

__all__ = [
    "CLASS",
    "FLAGS",
    "MAX_LABEL",
    "MAX_NAME",
    "MAX_POINTERS",
    "MESSAGE",
    "MESSAGE_CODEC",
    "NAME",
    "OPCODE",
    "PORT",
    "QUESTION",
    "RCODE",
    "RDATA",
    "RESOURCE_RECORD",
    "TCP",
    "TCP_MESSAGE",
    "TCP_MESSAGE_CODEC",
    "TYPE",
    "TYPES",
    "name_from_text",
    "name_to_text",
]

PORT = 53

#: the most octets a name takes on the wire, length octets and the root's included (3.1)
MAX_NAME = 255
#: the longest label (3.1); the two high bits of a length octet mark a pointer (4.1.4)
MAX_LABEL = 63
#: the most pointers one name may follow: one per label of the longest name, and the root.
#: Pointers to pointers add no octets to the name, so without a cap a 64 KiB message of
#: chained pointers would cost each of its names thousands of jumps (quadratic work).
MAX_POINTERS = 128

# RFC 1035 5.1: characters that are escaped with a backslash in a label's text form (as
# dnspython escapes them), besides the dot separating labels.
_SPECIAL = frozenset(b'"().;\\@$')


def _label_text(label: bytes) -> str:
    out = []
    for octet in label:
        if octet in _SPECIAL:
            out.append("\\" + chr(octet))
        elif 0x20 < octet < 0x7F:
            out.append(chr(octet))
        else:
            out.append(f"\\{octet:03d}")
    return "".join(out)


def name_to_text(labels: list[bytes]) -> str:
    """Labels as read from the wire -> the text form this module uses (``"."`` for none)."""
    return ".".join(_label_text(label) for label in labels) or "."


def name_from_text(text: str) -> list[bytes]:
    """The text form -> labels, undoing the escapes; a final dot is optional.

    Raises ``ValueError`` for an empty label, a label over 63 octets or a name over 255.
    """
    if text in (".", ""):
        return []
    labels: list[bytes] = []
    label = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch == "\\":
            digits = text[i + 1 : i + 4]
            if len(digits) == 3 and digits.isascii() and digits.isdigit():
                value = int(digits)
                if value > 255:
                    raise ValueError(f"escape \\{value} is not an octet in {text!r}")
                label.append(value)
                i += 4
                continue
            if i + 1 >= n:
                raise ValueError(f"a backslash ends {text!r}")
            label += text[i + 1].encode("utf-8")
            i += 2
            continue
        if ch == ".":
            if not label:
                raise ValueError(f"empty label in {text!r}")
            labels.append(bytes(label))
            label.clear()
            i += 1
            continue
        label += ch.encode("utf-8")
        i += 1
    if label:
        labels.append(bytes(label))
    for lab in labels:
        if len(lab) > MAX_LABEL:
            raise ValueError(f"label of {len(lab)} octets (at most {MAX_LABEL}) in {text!r}")
    if sum(len(lab) + 1 for lab in labels) + 1 > MAX_NAME:
        raise ValueError(f"name longer than {MAX_NAME} octets: {text!r}")
    return labels


_START = "_dns_message_start"


class _MessageStart(cs.Construct):  # type: ignore[misc]
    """Zero octets at the start of a message that note, in the message's context, where in
    the stream the message starts: compression pointers count from there (RFC 1035
    4.1.4). Stream positions alone do not say it: construct's ``Prefixed`` gives its body
    a stream whose positions continue the outer stream's (construct 2.10.70), and a
    message need not start a stream."""

    def __init__(self) -> None:
        super().__init__()
        self.flagbuildnone = True  # no value to give when building

    def _parse(self, stream: Any, context: Any, path: str) -> None:
        context[_START] = cs.stream_tell(stream, path)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> None:
        return None

    def _sizeof(self, context: Any, path: str) -> int:
        return 0


def _message_start(context: Any) -> int:
    """The stream position of the first octet of the message being parsed (0 when a name
    is parsed on its own)."""
    while context is not None:
        start = context.get(_START)
        if start is not None:
            return int(start)
        context = context.get("_")
    return 0


class _Name(cs.Pointer):  # type: ignore[misc]
    """A domain name (RFC 1035 3.1), compressed or not (4.1.4), as text.

    Parsing follows pointers by seeking in the stream the name is read from, which must be
    the whole message's (offsets count from the message's first octet), then returns to
    just after the pointer. Building writes the labels uncompressed.

    It derives from construct's ``Pointer`` because, like ``Pointer``, it reads elsewhere in
    the stream: that is how ``codec`` knows to run a frame holding names through
    construct's parser on the frame's own stream (``TrialParse``), where offsets are the
    message's. (Its measurer would otherwise parse the name from a stream starting at the
    name, where every pointer looks wrong.) The ``Pointer`` machinery itself is unused.
    """

    def __init__(self) -> None:
        super().__init__(0, cs.Pass)

    def _parse(self, stream: Any, context: Any, path: str) -> str:
        labels: list[bytes] = []
        size = 1  # the root's zero octet
        resume: int | None = None
        jumps = 0
        base = _message_start(context)
        # every pointer must go strictly before the one that led to it (or before the
        # name's start): that bounds the walk, and it only reads octets already received
        limit = cs.stream_tell(stream, path) - base
        while True:
            length = cs.stream_read(stream, 1, path)[0]
            if length == 0:
                break
            kind = length & 0xC0
            if kind == 0xC0:
                here = cs.stream_tell(stream, path) - 1 - base
                target = (length & 0x3F) << 8 | cs.stream_read(stream, 1, path)[0]
                if target >= limit:
                    raise cs.ValidationError(
                        f"compression pointer at offset {here} to {target}: a pointer must "
                        f"point before {limit} (RFC 1035 4.1.4)",
                        path=path,
                    )
                if resume is None:
                    resume = base + here + 2
                jumps += 1
                if jumps > MAX_POINTERS:
                    raise cs.ValidationError(
                        f"name follows more than {MAX_POINTERS} compression pointers", path=path
                    )
                limit = target
                cs.stream_seek(stream, base + target, 0, path)
                continue
            if kind:
                raise cs.ValidationError(
                    f"label type 0x{kind:02x} is not a length or a pointer (RFC 1035 4.1.4)",
                    path=path,
                )
            size += length + 1
            if size > MAX_NAME:
                raise cs.ValidationError(
                    f"name longer than {MAX_NAME} octets (RFC 1035 3.1)", path=path
                )
            labels.append(cs.stream_read(stream, length, path))
        if resume is not None:
            cs.stream_seek(stream, resume, 0, path)
        return name_to_text(labels)

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        if not isinstance(obj, str):
            raise cs.ValidationError(
                f"a name is text like 'example.com', not {type(obj).__name__}", path=path
            )
        try:
            labels = name_from_text(obj)
        except ValueError as exc:
            raise cs.ValidationError(str(exc), path=path) from exc
        data = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
        cs.stream_write(stream, data, len(data), path)
        return obj

    def _sizeof(self, context: Any, path: str) -> int:
        raise cs.SizeofError("a name's size depends on its value", path=path)


#: a domain name as text, compression pointers followed (RFC 1035 3.1, 4.1.4)
NAME = _Name()

#: TYPE and QTYPE values (RFC 1035 3.2.2, 3.2.3; RFC 3596 2.1 AAAA; RFC 6891 6.1.1 OPT)
TYPES = {
    "A": 1,
    "NS": 2,
    "CNAME": 5,
    "SOA": 6,
    "PTR": 12,
    "HINFO": 13,
    "MX": 15,
    "TXT": 16,
    "AAAA": 28,
    "SRV": 33,
    "OPT": 41,
    "AXFR": 252,
    "ANY": 255,
}
TYPE = cs.Enum(cs.Int16ub, **TYPES)
#: CLASS and QCLASS values (RFC 1035 3.2.4, 3.2.5)
CLASS = cs.Enum(cs.Int16ub, IN=1, CH=3, HS=4, ANY=255)
#: OPCODE (RFC 1035 4.1.1)
OPCODE = cs.Enum(cs.BitsInteger(4), QUERY=0, IQUERY=1, STATUS=2)
#: RCODE (RFC 1035 4.1.1)
RCODE = cs.Enum(
    cs.BitsInteger(4), NOERROR=0, FORMERR=1, SERVFAIL=2, NXDOMAIN=3, NOTIMP=4, REFUSED=5
)

#: the header's second 16 bits (RFC 1035 4.1.1; AD and CD: RFC 4035 3.2)
FLAGS = cs.BitStruct(
    "qr" / cs.Flag,
    "opcode" / OPCODE,
    "aa" / cs.Flag,
    "tc" / cs.Flag,
    "rd" / cs.Flag,
    "ra" / cs.Flag,
    "z" / cs.BitsInteger(1),
    "ad" / cs.Flag,
    "cd" / cs.Flag,
    "rcode" / RCODE,
)

#: one entry of the question section (RFC 1035 4.1.2)
QUESTION = cs.Struct("qname" / NAME, "qtype" / TYPE, "qclass" / CLASS)


class _Address(cs.Adapter):  # type: ignore[misc]
    """An IPv4 (4 octets) or IPv6 (16 octets) address as its usual text form."""

    def __init__(self, version: int) -> None:
        self._cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        super().__init__(cs.Bytes(4 if version == 4 else 16))

    def _decode(self, obj: bytes, context: Any, path: str) -> str:
        return str(self._cls(obj))

    def _encode(self, obj: Any, context: Any, path: str) -> bytes:
        try:
            return self._cls(obj).packed
        except ValueError as exc:
            raise cs.ValidationError(str(exc), path=path) from exc


#: a TXT record's character-strings (3.3.14), each a length octet and that many octets
_TXT_STRINGS = cs.GreedyRange(cs.Prefixed(cs.Int8ub, cs.GreedyBytes))

#: RDATA by type, as written when encoding (their size gives ``rdlength``)
RDATA: dict[int, cs.Construct] = {
    TYPES["A"]: _Address(4),
    TYPES["AAAA"]: _Address(6),
    TYPES["NS"]: NAME,
    TYPES["CNAME"]: NAME,
    TYPES["PTR"]: NAME,
    TYPES["MX"]: cs.Struct("preference" / cs.Int16ub, "exchange" / NAME),
    TYPES["SOA"]: cs.Struct(
        "mname" / NAME,
        "rname" / NAME,
        "serial" / cs.Int32ub,
        "refresh" / cs.Int32ub,
        "retry" / cs.Int32ub,
        "expire" / cs.Int32ub,
        "minimum" / cs.Int32ub,
    ),
    TYPES["TXT"]: _TXT_STRINGS,
}

# ... and as parsed: TXT's strings end where its RDATA ends, and nothing may be left over
_RDATA_PARSE = {
    **RDATA,
    TYPES["TXT"]: cs.FixedSized(
        this.rdlength, cs.FocusedSeq("strings", "strings" / _TXT_STRINGS, cs.Terminated)
    ),
}


def _type_number(ctx: Any) -> Any:
    """The record's type as a number, whether given as a name or an int."""
    rtype = ctx.rtype
    return TYPES.get(rtype, rtype) if isinstance(rtype, str) else rtype


def _rdata_size(ctx: Any) -> int:
    body = RDATA.get(_type_number(ctx))
    if body is None:
        return len(ctx.rdata)
    return len(body.build(ctx.rdata))


class _RData(cs.Subconstruct):  # type: ignore[misc]
    """RDATA parsed from the message's own stream (names in it may be compressed: a
    sub-stream would lose the offsets), then checked to span exactly ``rdlength``."""

    def _parse(self, stream: Any, context: Any, path: str) -> Any:
        start = cs.stream_tell(stream, path)
        obj = self.subcon._parsereport(stream, context, path)
        used = cs.stream_tell(stream, path) - start
        if used != context.rdlength:
            raise cs.ValidationError(
                f"RDATA used {used} octets, RDLENGTH says {context.rdlength}", path=path
            )
        return obj

    def _build(self, obj: Any, stream: Any, context: Any, path: str) -> Any:
        return self.subcon._build(obj, stream, context, path)

    def _sizeof(self, context: Any, path: str) -> int:
        raise cs.SizeofError("RDATA's size depends on its value", path=path)


#: a resource record (RFC 1035 4.1.3)
RESOURCE_RECORD = cs.Struct(
    "name" / NAME,
    "rtype" / TYPE,
    "rclass" / CLASS,
    "ttl" / cs.Int32ub,
    "rdlength" / cs.Rebuild(cs.Int16ub, _rdata_size),
    "rdata" / _RData(cs.Switch(_type_number, _RDATA_PARSE, default=cs.Bytes(this.rdlength))),
)

_HEADER_AND_SECTIONS = (
    _MessageStart(),
    "id" / cs.Int16ub,
    "flags" / FLAGS,
    "qdcount" / cs.Rebuild(cs.Int16ub, cs.len_(this.questions)),
    "ancount" / cs.Rebuild(cs.Int16ub, cs.len_(this.answers)),
    "nscount" / cs.Rebuild(cs.Int16ub, cs.len_(this.authorities)),
    "arcount" / cs.Rebuild(cs.Int16ub, cs.len_(this.additionals)),
    "questions" / cs.Array(this.qdcount, QUESTION),
    "answers" / cs.Array(this.ancount, RESOURCE_RECORD),
    "authorities" / cs.Array(this.nscount, RESOURCE_RECORD),
    "additionals" / cs.Array(this.arcount, RESOURCE_RECORD),
)

#: a whole DNS message, as carried in one UDP datagram (RFC 1035 4.1, 4.2.1)
MESSAGE = cs.Struct(*_HEADER_AND_SECTIONS)

#: DNS over TCP (RFC 1035 4.2.2, RFC 7766 8): a two-byte length, then exactly one message
TCP_MESSAGE = cs.Prefixed(cs.Int16ub, cs.Struct(*_HEADER_AND_SECTIONS, cs.Terminated))

#: the former name of :data:`TCP_MESSAGE`
TCP = TCP_MESSAGE

#: a datagram is at most 512 octets without EDNS (RFC 1035 2.3.4), 65,535 with it
MESSAGE_CODEC: Codec[Any] = Codec(MESSAGE, max_frame_size=65535)
#: the TCP length field caps a message at 65,535 octets
TCP_MESSAGE_CODEC: Codec[Any] = Codec(TCP_MESSAGE, max_frame_size=65537)
