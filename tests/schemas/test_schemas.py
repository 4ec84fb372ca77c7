"""schemas/: each format decodes known bytes from its specification and passes check_codec."""

from __future__ import annotations

import construct as cs
import pytest
from hypothesis import strategies as st

from codec import Buffer, Codec, DecodeError
from codec.testing import check_codec
from schemas import basic, dns, modbus


@pytest.mark.parametrize(
    "name", ["STRING8", "STRING16", "STRING32", "INT32", "BYTES32", "VARINT_BYTES", "CSTRING"]
)
def test_basic_formats_pass_check_codec(name: str) -> None:
    schema = getattr(basic, name)
    check_codec(Codec(schema, max_frame_size=4096), max_examples=30)


def test_string8_is_the_seed_string_protocol() -> None:
    c = Codec(basic.STRING8)
    assert c.encode("smart-socket") == b"\x0csmart-socket"
    assert c.decode(Buffer(b"\x0csmart-socke")) is None


def test_lines() -> None:
    assert basic.LINES.encode("hello") == b"hello\r\n"
    assert basic.LINES.decode_all(b"a\r\nb\nc\r\n") == ["a", "b", "c"]
    text = st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",))
    check_codec(basic.LINES, st.text(text, max_size=30))


# Application Protocol Specification V1.1b3, 6.3 "Read Holding Registers": registers
# 108-110 (address 0x006B, 3 registers) read as 0x022B, 0x0000, 0x0064
MODBUS_REQUEST = bytes.fromhex("0001 0000 0006 11 03 006B 0003".replace(" ", ""))
MODBUS_RESPONSE = bytes.fromhex("0001 0000 0009 11 03 06 022B 0000 0064".replace(" ", ""))


def test_modbus_spec_example() -> None:
    c = Codec(modbus.ADU)
    req, resp = c.decode_all(MODBUS_REQUEST + MODBUS_RESPONSE)
    assert (req.transaction_id, req.unit_id, req.function_code) == (1, 0x11, 3)
    body = modbus.PDU_REQUESTS[req.function_code].parse(req.data)
    assert (body.address, body.quantity) == (0x6B, 3)
    regs = modbus.PDU_RESPONSES[resp.function_code].parse(resp.data)
    assert regs.registers == [0x022B, 0x0000, 0x0064]
    assert c.encode(req) == MODBUS_REQUEST


def test_modbus_bad_protocol_id_and_short_length_are_decode_errors() -> None:
    c = Codec(modbus.ADU)
    with pytest.raises(DecodeError):
        c.decode(Buffer(bytes.fromhex("0001 0001 0006 11 03 006B 0003".replace(" ", ""))))
    with pytest.raises(DecodeError):
        c.decode(Buffer(bytes.fromhex("0001 0000 0001 11 03".replace(" ", ""))))


def test_modbus_adu_passes_check_codec() -> None:
    values = st.builds(
        lambda tid, unit, fc, data: {
            "transaction_id": tid,
            "length": len(data) + 2,
            "unit_id": unit,
            "function_code": fc,
            "data": data,
        },
        st.integers(0, 0xFFFF),
        st.integers(0, 255),
        st.integers(1, 0x7F),
        st.binary(max_size=252),
    )
    check_codec(Codec(modbus.ADU, max_frame_size=260), values, max_examples=30)


# RFC 1035 4.1: a standard query (RD set) for example.com, type A, class IN
DNS_QUERY = bytes.fromhex(
    "1234 0100 0001 0000 0000 0000 07 6578616d706c65 03 636f6d 00 0001 0001".replace(" ", "")
)


def test_dns_query_over_udp_and_tcp() -> None:
    msg = dns.MESSAGE.parse(DNS_QUERY)
    assert msg.id == 0x1234
    assert msg.questions[0].qname == ["example", "com", ""]
    flags = dns.FLAGS.parse(msg.flags.to_bytes(2, "big"))
    assert (flags.qr, flags.rd, flags.opcode) == (False, True, 0)
    c = Codec(dns.TCP)
    framed = len(DNS_QUERY).to_bytes(2, "big") + DNS_QUERY
    assert c.decode_all(framed * 2) == [msg, msg]
    assert c.encode(msg) == framed


def test_dns_compression_pointer_in_a_question_is_refused() -> None:
    bad = DNS_QUERY[:12] + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    with pytest.raises(DecodeError):
        Codec(dns.TCP).decode(Buffer(len(bad).to_bytes(2, "big") + bad))


def test_dns_tcp_passes_check_codec() -> None:
    label = st.text(
        st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=1, max_size=12
    )
    question = st.builds(
        lambda labels, qtype: {"qname": [*labels, ""], "qtype": qtype, "qclass": 1},
        st.lists(label, min_size=1, max_size=4),
        st.integers(0, 0xFFFF),
    )
    values = st.lists(question, max_size=3).map(
        lambda qs: cs.Container(
            id=7,
            flags=0x0100,
            qdcount=len(qs),
            ancount=0,
            nscount=0,
            arcount=0,
            questions=qs,
            rest=b"",
        )
    )
    check_codec(Codec(dns.TCP, max_frame_size=1024), values, max_examples=30)
