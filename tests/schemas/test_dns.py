"""schemas.dns: messages dnspython builds (and compresses, RFC 1035 4.1.4) decode to what
dnspython reads back, our encoding reads back in dnspython, the codec passes its property
checks over UDP and TCP, and hostile names (pointer loops, forward pointers, overlong names,
bad label types, RDATA that overruns RDLENGTH) are ``DecodeError``s."""

from __future__ import annotations

import ipaddress
import re
import struct
from pathlib import Path
from typing import Any

import construct as cs
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import Buffer, DecodeError
from codec.testing import check_codec
from schemas import dns as wdns

# -- names ----------------------------------------------------------------------------------
LABEL = st.binary(min_size=1, max_size=12)
IPV4 = st.binary(min_size=4, max_size=4).map(lambda b: str(ipaddress.IPv4Address(b)))
IPV6 = st.binary(min_size=16, max_size=16).map(lambda b: str(ipaddress.IPv6Address(b)))
NAME_LABELS = st.lists(LABEL, max_size=5)


@given(NAME_LABELS)
def test_name_text_is_dnspythons_text(labels: list[bytes]) -> None:
    """The text form escapes exactly as dnspython does (RFC 1035 5.1), so names compare."""
    theirs = dns.name.Name([*labels, b""]).to_text(omit_final_dot=True)
    assert wdns.name_to_text(labels) == (theirs if labels else ".")
    assert wdns.name_from_text(wdns.name_to_text(labels)) == labels


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("example.com", [b"example", b"com"]),
        ("example.com.", [b"example", b"com"]),
        (".", []),
        ("a\\.b.c", [b"a.b", b"c"]),
        ("\\000\\255x", [b"\x00\xffx"]),
    ],
)
def test_name_from_text(text: str, labels: list[bytes]) -> None:
    assert wdns.name_from_text(text) == labels


@pytest.mark.parametrize("text", ["a..b", "x" * 64, ".".join(["x" * 63] * 4), "\\999", "a\\"])
def test_bad_names_cannot_be_encoded(text: str) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - several messages, one kind of error
        wdns.name_from_text(text)
    with pytest.raises(cs.ConstructError):
        wdns.NAME.build(text)


# -- messages dnspython made ---------------------------------------------------------------
def dnspython_response() -> dns.message.Message:
    """Every decoded RDATA type, in every section, with names dnspython compresses."""
    q = dns.message.make_query("www.example.com", "A", id=0x1234)
    r = dns.message.make_response(q)
    r.flags |= dns.flags.AA | dns.flags.RA | dns.flags.AD
    rr = dns.rrset.from_text
    r.answer.append(rr("www.example.com.", 300, "IN", "CNAME", "web.example.com."))
    r.answer.append(rr("web.example.com.", 60, "IN", "A", "192.0.2.1", "192.0.2.2"))
    soa = "ns1.example.com. hostmaster.example.com. 2024010101 7200 3600 1209600 300"
    r.authority.append(rr("example.com.", 300, "IN", "SOA", soa))
    r.authority.append(rr("example.com.", 300, "IN", "NS", "ns1.example.com."))
    r.additional.append(rr("example.com.", 300, "IN", "MX", "10 mail.example.com."))
    r.additional.append(rr("example.com.", 300, "IN", "TXT", '"hello world" "" "x"'))
    r.additional.append(rr("ns1.example.com.", 300, "IN", "AAAA", "2001:db8::1"))
    r.additional.append(rr("1.2.0.192.in-addr.arpa.", 300, "IN", "PTR", "web.example.com."))
    r.additional.append(rr("example.com.", 300, "IN", "HINFO", '"cpu" "os"'))
    return r


def rdata_of(rtype: int, rd: dns.rdata.Rdata) -> Any:
    """dnspython's RDATA in this schema's terms."""
    t = dns.rdatatype.RdataType
    if rtype in (t.A, t.AAAA):
        return rd.address  # type: ignore[attr-defined]
    if rtype in (t.CNAME, t.NS, t.PTR):
        return rd.target.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
    if rtype == t.MX:
        exchange = rd.exchange.to_text(omit_final_dot=True)  # type: ignore[attr-defined]
        return {"preference": rd.preference, "exchange": exchange}  # type: ignore[attr-defined]
    if rtype == t.SOA:
        fields = ("serial", "refresh", "retry", "expire", "minimum")
        return {
            "mname": rd.mname.to_text(omit_final_dot=True),  # type: ignore[attr-defined]
            "rname": rd.rname.to_text(omit_final_dot=True),  # type: ignore[attr-defined]
            **{f: getattr(rd, f) for f in fields},
        }
    if rtype == t.TXT:
        return list(rd.strings)  # type: ignore[attr-defined]
    return rd.to_wire()


def plain(value: Any) -> Any:
    """A decoded value without construct's types and private keys, for comparing."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items() if not k.startswith("_")}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, cs.EnumIntegerString):
        return value.intvalue
    return value


def expected(m: dns.message.Message) -> dict[str, Any]:
    """What our MESSAGE must decode from ``m.to_wire()``, from dnspython's own reading."""

    def records(section: list[dns.rrset.RRset]) -> list[dict[str, Any]]:
        out = []
        for rrset in section:
            for rd in rrset:
                out.append(
                    {
                        "name": rrset.name.to_text(omit_final_dot=True),
                        "rtype": int(rrset.rdtype),
                        "rclass": int(rrset.rdclass),
                        "ttl": rrset.ttl,
                        "rdata": rdata_of(rrset.rdtype, rd),
                    }
                )
        return out

    flags = m.flags
    return {
        "id": m.id,
        "flags": {
            "qr": bool(flags & dns.flags.QR),
            "opcode": int(m.opcode()),
            "aa": bool(flags & dns.flags.AA),
            "tc": bool(flags & dns.flags.TC),
            "rd": bool(flags & dns.flags.RD),
            "ra": bool(flags & dns.flags.RA),
            "z": int(bool(flags & 0x0040)),
            "ad": bool(flags & dns.flags.AD),
            "cd": bool(flags & dns.flags.CD),
            "rcode": int(m.rcode()),
        },
        "questions": [
            {
                "qname": q.name.to_text(omit_final_dot=True),
                "qtype": int(q.rdtype),
                "qclass": int(q.rdclass),
            }
            for q in m.question
        ],
        "answers": records(m.answer),
        "authorities": records(m.authority),
        "additionals": records(m.additional),
    }


def without_lengths(msg: Any) -> Any:
    out = plain(msg)
    for key in ("qdcount", "ancount", "nscount", "arcount"):
        del out[key]
    for section in ("answers", "authorities", "additionals"):
        for rr in out[section]:
            del rr["rdlength"]
    return out


def test_a_compressed_dnspython_response_over_udp_and_tcp() -> None:
    m = dnspython_response()
    wire = m.to_wire()
    assert len(wire) < len(wdns.MESSAGE_CODEC.encode(wdns.MESSAGE.parse(wire)))  # compressed
    udp = wdns.MESSAGE_CODEC.decode(Buffer(wire))
    assert udp == wdns.MESSAGE.parse(wire)
    assert without_lengths(udp) == expected(dns.message.from_wire(wire))
    assert {rr.rdata for rr in udp.answers[1:]} == {"192.0.2.1", "192.0.2.2"}
    assert udp.additionals[-1].rdata == b"\x03cpu\x02os"  # HINFO: not decoded
    assert udp.flags.rcode == "NOERROR"
    assert udp.questions[0].qtype.intvalue == 1

    framed = len(wire).to_bytes(2, "big") + wire
    buf = Buffer(framed + framed)
    tcp = wdns.TCP_MESSAGE_CODEC.decode(buf)
    assert tcp == udp == wdns.TCP_MESSAGE.parse(framed)
    assert wdns.TCP_MESSAGE_CODEC.decode(buf) == tcp
    assert len(buf) == 0


def test_our_encoding_is_what_dnspython_reads() -> None:
    m = dnspython_response()
    msg = wdns.MESSAGE.parse(m.to_wire())
    ours = wdns.MESSAGE_CODEC.encode(msg)
    assert dns.message.from_wire(ours) == m
    tcp = wdns.TCP_MESSAGE_CODEC.encode(msg)
    assert tcp == len(ours).to_bytes(2, "big") + ours


def test_a_message_to_send_needs_no_counts_or_lengths() -> None:
    query = {
        "id": 7,
        "flags": {
            "qr": False,
            "opcode": "QUERY",
            "aa": False,
            "tc": False,
            "rd": True,
            "ra": False,
            "z": 0,
            "ad": False,
            "cd": False,
            "rcode": "NOERROR",
        },
        "questions": [{"qname": "example.org", "qtype": "AAAA", "qclass": "IN"}],
        "answers": [],
        "authorities": [],
        "additionals": [],
    }
    theirs = dns.message.from_wire(wdns.MESSAGE_CODEC.encode(query))
    assert theirs.id == 7
    assert theirs.flags & dns.flags.RD
    assert theirs.question[0].name == dns.name.from_text("example.org")
    assert theirs.question[0].rdtype == dns.rdatatype.AAAA


NAMES = st.lists(st.sampled_from(["a", "b", "example", "com", "x-y", "\\.", "\\000"]), max_size=4)


def quoted(strings: list[str]) -> str:
    return " ".join(f'"{t}"' for t in strings)


@st.composite
def dnspython_messages(draw: st.DrawFn) -> dns.message.Message:
    """Random messages built by dnspython, which compresses every name it can."""
    names = [".".join(labels) + "." for labels in draw(st.lists(NAMES, min_size=1, max_size=4))]
    qname = draw(st.sampled_from(names))
    m: dns.message.Message = dns.message.make_query(
        qname, draw(st.sampled_from(["A", "MX", "TXT", "NULL"]))
    )
    m.id = draw(st.integers(0, 0xFFFF))
    if draw(st.booleans()):
        m = dns.message.make_response(m)
        m.set_rcode(dns.rcode.Rcode(draw(st.sampled_from([0, 2, 3, 5]))))
    owners = st.sampled_from(names)
    rdatas = [
        ("A", IPV4),
        ("AAAA", IPV6),
        ("CNAME", st.sampled_from(names)),
        ("NS", st.sampled_from(names)),
        ("MX", st.builds(lambda p, n: f"{p} {n}", st.integers(0, 0xFFFF), st.sampled_from(names))),
        ("SOA", st.builds(lambda a, b, n: f"{a} {b} {n} 1 2 3 4", owners, owners, U32)),
        ("TXT", st.lists(st.text("ab c", max_size=5), min_size=1, max_size=3).map(quoted)),
        ("HINFO", st.just('"cpu" "os"')),
    ]
    for section in (m.answer, m.authority, m.additional):
        seen = set()  # dnspython would merge two RRsets of one owner and type when reading
        for _ in range(draw(st.integers(0, 3))):
            rtype, text = draw(st.sampled_from(rdatas))
            owner = draw(st.sampled_from(names))
            if (owner, rtype) in seen:
                continue
            seen.add((owner, rtype))
            ttl = draw(st.integers(0, 2**31 - 1))
            section.append(dns.rrset.from_text(owner, ttl, "IN", rtype, draw(text)))
    return m


@settings(max_examples=60)
@given(dnspython_messages())
def test_differential_against_dnspython(m: dns.message.Message) -> None:
    """Whatever dnspython writes, we read as dnspython reads it, through the codec and
    construct alike; what we write, dnspython reads back to the same message."""
    wire = m.to_wire()
    msg = wdns.MESSAGE_CODEC.decode(Buffer(wire))
    assert msg == wdns.MESSAGE.parse(wire)
    assert without_lengths(msg) == expected(dns.message.from_wire(wire))
    assert dns.message.from_wire(wdns.MESSAGE_CODEC.encode(msg)) == dns.message.from_wire(wire)


# -- hostile names -------------------------------------------------------------------------
HEADER = bytes.fromhex("abcd 0100 0001 0000 0000 0000".replace(" ", ""))
TAIL = b"\x00\x01\x00\x01"  # QTYPE A, QCLASS IN


@pytest.mark.parametrize(
    ("why", "qname"),
    [
        ("a pointer to itself", b"\xc0\x0c"),
        ("a pointer forward", b"\x01a\xc0\x20" + b"\x00" * 16),
        ("a loop of two pointers", b"\x01a\xc0\x10\xc0\x0c"),
        ("a pointer past the end", b"\xc3\xff"),
        ("label type 01 (RFC 6891 retired it)", b"\x41abc\x00"),
        ("label type 10", b"\x81a\x00"),
        ("a name of 257 octets", b"\x3f" + b"x" * 63 + (b"\x3f" + b"x" * 63) * 3 + b"\x00"),
    ],
)
def test_hostile_names_are_decode_errors(why: str, qname: bytes) -> None:
    wire = HEADER + qname + TAIL
    with pytest.raises(DecodeError):
        wdns.MESSAGE_CODEC.decode(Buffer(wire))
    with pytest.raises(DecodeError):
        wdns.TCP_MESSAGE_CODEC.decode(Buffer(len(wire).to_bytes(2, "big") + wire))
    with pytest.raises(cs.ConstructError):
        wdns.MESSAGE.parse(wire)


def test_a_name_of_255_octets_is_fine_and_a_chain_of_pointers_too() -> None:
    longest = (b"\x3f" + b"x" * 63) * 3 + b"\x3d" + b"y" * 61 + b"\x00"
    assert len(longest) == 255
    msg = wdns.MESSAGE.parse(HEADER + longest + TAIL)
    assert len(msg.questions[0].qname) == 253
    # question 2 points into question 1, whose name ends with a pointer into question 1
    two = bytes.fromhex("abcd 0100 0002 0000 0000 0000".replace(" ", ""))
    q1 = b"\x01a\x01b\x00" + TAIL  # at 12: a.b
    q2 = b"\x01c\xc0\x0e" + TAIL  # at 21: c, then b (at 14)
    wire = two + q1 + q2
    msg = wdns.MESSAGE_CODEC.decode(Buffer(wire))
    assert msg is not None
    assert [q.qname for q in msg.questions] == ["a.b", "c.b"]


def chained(pointers: int) -> bytes:
    """Two answers: the first's RDATA (of an unknown type, so kept as bytes) is a root
    octet and then pointers, each to the one before it; the second's owner name is a
    pointer to the last of them, a walk of ``pointers + 1`` jumps to the root."""
    header = bytes.fromhex("abcd 8180 0000 0002 0000 0000".replace(" ", ""))
    start = 12 + 1 + 10  # the first record's RDATA: after its root name and fixed fields
    targets = [start] + [start + 1 + 2 * i for i in range(pointers - 1)]
    rdata = b"\x00" + b"".join(struct.pack(">H", 0xC000 | t) for t in targets)
    first = b"\x00" + struct.pack(">HHIH", 99, 1, 0, len(rdata)) + rdata
    last = start + 1 + 2 * (pointers - 1)
    second = struct.pack(">HHHIH", 0xC000 | last, 1, 1, 0, 4) + b"\x7f\x00\x00\x01"
    return header + first + second


def test_chains_of_pointers_are_capped() -> None:
    """Pointers to pointers add no octets to a name, so only a cap on jumps bounds the
    work (each of a message's names could otherwise walk thousands of them)."""
    ok = wdns.MESSAGE_CODEC.decode(Buffer(chained(wdns.MAX_POINTERS - 1)))
    assert ok is not None
    assert ok.answers[1].name == "."
    with pytest.raises(DecodeError, match="compression pointers"):
        wdns.MESSAGE_CODEC.decode(Buffer(chained(wdns.MAX_POINTERS)))


def rr(rtype: int, rdata: bytes, rdlength: int | None = None) -> bytes:
    """A record for the question's name (a pointer to it), class IN, TTL 1."""
    n = len(rdata) if rdlength is None else rdlength
    return b"\xc0\x0c" + struct.pack(">HHIH", rtype, 1, 1, n) + rdata


def rr_message(record: bytes) -> bytes:
    header = bytes.fromhex("abcd 8180 0001 0001 0000 0000".replace(" ", ""))
    return header + b"\x01a\x00" + TAIL + record


@pytest.mark.parametrize(
    ("why", "record"),
    [
        ("A with 3 octets", rr(1, b"\x7f\x00\x01")),
        ("CNAME longer than RDLENGTH", rr(5, b"\x01b\x00", rdlength=2)),
        ("CNAME shorter than RDLENGTH", rr(5, b"\xc0\x0c\x00\x00", rdlength=4)),
        ("TXT string past RDLENGTH", rr(16, b"\x05ab")),
        ("MX cut short", rr(15, b"\x00")),
    ],
)
def test_rdata_must_fill_rdlength_exactly(why: str, record: bytes) -> None:
    wire = rr_message(record)
    with pytest.raises(DecodeError):
        wdns.TCP_MESSAGE_CODEC.decode(Buffer(len(wire).to_bytes(2, "big") + wire))
    with pytest.raises(cs.ConstructError):
        wdns.MESSAGE.parse(wire)


def test_tcp_frame_with_octets_after_the_message_is_refused() -> None:
    wire = HEADER + b"\x01a\x00" + TAIL + b"junk"
    with pytest.raises(DecodeError):
        wdns.TCP_MESSAGE_CODEC.decode(Buffer(len(wire).to_bytes(2, "big") + wire))


def test_half_messages_wait_over_tcp_and_udp() -> None:
    wire = dnspython_response().to_wire()
    framed = len(wire).to_bytes(2, "big") + wire
    for codec, data in ((wdns.TCP_MESSAGE_CODEC, framed), (wdns.MESSAGE_CODEC, wire)):
        buf = Buffer()
        for i in range(len(data) - 1):
            buf.extend(data[i : i + 1])
            assert codec.decode(buf) is None
        buf.extend(data[-1:])
        assert codec.decode(buf) == wdns.MESSAGE.parse(wire)


# -- property checks ------------------------------------------------------------------------
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 2**32 - 1)
TEXT_NAMES = NAME_LABELS.map(wdns.name_to_text)
RDATA = st.one_of(
    st.tuples(st.just("A"), IPV4),
    st.tuples(st.just("AAAA"), IPV6),
    st.tuples(st.sampled_from(["NS", "CNAME", "PTR"]), TEXT_NAMES),
    st.tuples(st.just("MX"), st.fixed_dictionaries({"preference": U16, "exchange": TEXT_NAMES})),
    st.tuples(
        st.just("SOA"),
        st.fixed_dictionaries(
            {
                "mname": TEXT_NAMES,
                "rname": TEXT_NAMES,
                "serial": U32,
                "refresh": U32,
                "retry": U32,
                "expire": U32,
                "minimum": U32,
            }
        ),
    ),
    st.tuples(st.just("TXT"), st.lists(st.binary(max_size=20), max_size=3)),
    st.tuples(st.sampled_from([13, 99, 0xFFFF]), st.binary(max_size=30)),
)
RECORD = st.builds(
    lambda name, typed, rclass, ttl: {
        "name": name,
        "rtype": typed[0],
        "rclass": rclass,
        "ttl": ttl,
        "rdata": typed[1],
    },
    TEXT_NAMES,
    RDATA,
    st.sampled_from(["IN", "CH", 254]),
    U32,
)
QUESTION = st.fixed_dictionaries(
    {
        "qname": TEXT_NAMES,
        "qtype": st.sampled_from(["A", "ANY", 99]),
        "qclass": st.sampled_from(["IN", 7]),
    }
)
FLAGS = st.fixed_dictionaries(
    {
        "qr": st.booleans(),
        "opcode": st.integers(0, 15),
        "aa": st.booleans(),
        "tc": st.booleans(),
        "rd": st.booleans(),
        "ra": st.booleans(),
        "z": st.integers(0, 1),
        "ad": st.booleans(),
        "cd": st.booleans(),
        "rcode": st.integers(0, 15),
    }
)
MESSAGES = st.fixed_dictionaries(
    {
        "id": U16,
        "flags": FLAGS,
        "questions": st.lists(QUESTION, max_size=2),
        "answers": st.lists(RECORD, max_size=3),
        "authorities": st.lists(RECORD, max_size=2),
        "additionals": st.lists(RECORD, max_size=2),
    }
).map(lambda v: wdns.MESSAGE.parse(wdns.MESSAGE.build(v)))


def test_udp_messages_pass_check_codec() -> None:
    check_codec(wdns.MESSAGE_CODEC, MESSAGES, max_examples=40)


def test_tcp_messages_pass_check_codec() -> None:
    check_codec(wdns.TCP_MESSAGE_CODEC, MESSAGES, max_examples=40)


def test_the_docs_section_runs() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text()
    section = text.split("\n## DNS\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 1
    exec(compile(blocks[0], "schemas.md[DNS]", "exec"), {"__name__": "docs_schemas_dns"})
