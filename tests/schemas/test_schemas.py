"""schemas/: each format decodes known bytes from its specification and passes check_codec."""

from __future__ import annotations

from typing import Any

import construct as cs
import pytest
from hypothesis import strategies as st

from codec import Buffer, Codec, DecodeError, FrameTooLarge
from codec.testing import check_codec
from schemas import basic, dns, modbus, mqtt


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
    text = st.characters(blacklist_characters="\r\n", blacklist_categories=["Cs"])
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
    assert msg.questions[0].qname == "example.com"
    flags = msg.flags
    assert (flags.qr, flags.rd, flags.opcode) == (False, True, "QUERY")
    c = Codec(dns.TCP_MESSAGE)
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
        lambda labels, qtype: {"qname": ".".join(labels), "qtype": qtype, "qclass": 1},
        st.lists(label, min_size=1, max_size=4),
        st.integers(0, 0xFFFF),
    )
    values = st.lists(question, max_size=3).map(
        lambda qs: dns.MESSAGE.parse(
            dns.MESSAGE.build(
                cs.Container(
                    id=7,
                    flags=dns.FLAGS.parse(b"\x01\x00"),
                    questions=qs,
                    answers=[],
                    authorities=[],
                    additionals=[],
                )
            )
        )
    )
    check_codec(Codec(dns.TCP_MESSAGE, max_frame_size=1024), values, max_examples=30)


# -- MQTT 3.1.1 ------------------------------------------------------------------------------
def _header(kind: str, qos: int = 0, *, dup: bool = False, retain: bool = False) -> dict[str, Any]:
    return {"type": kind, "dup": dup, "qos": qos, "retain": retain}


# bytes laid out by hand from the specification (sections noted)
MQTT_KNOWN = [
    # 3.12-3.14: no variable header, no payload
    (b"\xc0\x00", "PINGREQ", {}),
    (b"\xd0\x00", "PINGRESP", {}),
    (b"\xe0\x00", "DISCONNECT", {}),
    # 3.2: session present 0, connection accepted
    (b"\x20\x02\x00\x00", "CONNACK", {"return_code": "accepted"}),
    # 3.1.2: protocol name "MQTT", level 4, clean session, keep alive 10; 3.1.3: client id
    (
        b"\x10\x12\x00\x04MQTT\x04\x02\x00\x0a\x00\x06client",
        "CONNECT",
        {"protocol_name": "MQTT", "protocol_level": 4, "keep_alive": 10, "client_id": "client"},
    ),
    # 3.3.2: topic "a/b", packet identifier 10 (QoS 1), then the payload
    (b"\x32\x0c\x00\x03a/b\x00\x0ahello", "PUBLISH", {"topic": "a/b", "packet_id": 10}),
    # QoS 0: no packet identifier
    (b"\x30\x0a\x00\x03a/bhello", "PUBLISH", {"topic": "a/b", "packet_id": None}),
    # 3.4 PUBACK, 3.6 PUBREL (flags 0010)
    (b"\x40\x02\x00\x0a", "PUBACK", {"packet_id": 10}),
    (b"\x62\x02\x00\x0a", "PUBREL", {"packet_id": 10}),
    # 3.8: packet identifier, two topic filters with QoS 1 and 2 (flags 0010)
    (
        b"\x82\x0e\x00\x0a\x00\x03a/b\x01\x00\x03c/d\x02",
        "SUBSCRIBE",
        {"packet_id": 10, "topics": [{"filter": "a/b", "qos": 1}, {"filter": "c/d", "qos": 2}]},
    ),
    # 3.9.3: granted QoS 0 and 2, one failure (0x80)
    (b"\x90\x05\x00\x0a\x00\x02\x80", "SUBACK", {"packet_id": 10, "return_codes": [0, 2, 0x80]}),
    # 3.10: packet identifier, two topic filters (flags 0010)
    (b"\xa2\x0c\x00\x0a\x00\x03a/b\x00\x03c/d", "UNSUBSCRIBE", {"topics": ["a/b", "c/d"]}),
]


@pytest.mark.parametrize(("wire", "kind", "fields"), MQTT_KNOWN, ids=[k[1] for k in MQTT_KNOWN])
def test_mqtt_packets_from_the_specification(
    wire: bytes, kind: str, fields: dict[str, Any]
) -> None:
    c = Codec(mqtt.PACKET, max_frame_size=1 << 20)
    buf = Buffer(wire + wire)  # sticky: two in one read, one per call
    msg = c.decode(buf)
    assert msg is not None
    assert msg.header.type == kind
    for name, value in fields.items():
        assert msg.body[name] == value
    assert msg == mqtt.PACKET.parse(wire)
    assert c.decode(buf) == msg
    assert len(buf) == 0
    assert c.encode(msg) == wire


def test_mqtt_connect_payload_follows_its_flags() -> None:
    c = Codec(mqtt.PACKET, max_frame_size=1 << 20)
    flags = {
        "username": True,
        "password": True,
        "will_retain": False,
        "will_qos": 1,
        "will": True,
        "clean_session": True,
        "reserved": 0,
    }
    body = {
        "protocol_name": "MQTT",
        "protocol_level": 4,
        "flags": flags,
        "keep_alive": 60,
        "client_id": "id",
        "will_topic": "w",
        "will_message": b"bye",
        "username": "u",
        "password": b"pw",
    }
    wire = c.encode({"header": _header("CONNECT"), "body": body})
    # 3.1.3: client id, will topic, will message, user name, password, in this order
    assert wire.endswith(b"\x00\x02id\x00\x01w\x00\x03bye\x00\x01u\x00\x02pw")
    assert wire[9] == 0b11001110  # 3.1.2.3's connect flags byte, after name and level
    decoded = c.decode(Buffer(wire))
    assert decoded == mqtt.PACKET.parse(wire)
    assert decoded.body.password == b"pw"
    with pytest.raises(DecodeError):  # 3.1.2.3: the reserved flag must be 0
        c.decode(Buffer(wire[:9] + bytes([wire[9] | 1]) + wire[10:]))


@pytest.mark.parametrize(
    ("length", "encoded"),
    [  # 2.2.3, table 2.4: the Remaining Length's bounds for each number of bytes
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
    ],
)
def test_mqtt_remaining_length(length: int, encoded: bytes) -> None:
    c = Codec(mqtt.PACKET, max_frame_size=4 << 20)
    body = {"topic": "", "packet_id": None, "payload": bytes(length - 2)}
    packet = {"header": _header("PUBLISH"), "body": body}
    wire = c.encode(packet)
    assert wire[1 : 1 + len(encoded)] == encoded
    assert len(wire) == 1 + len(encoded) + length
    buf = Buffer(wire[:-1])
    assert c.decode(buf) is None  # a half packet
    buf.extend(wire[-1:])
    msg = c.decode(buf)
    assert msg is not None
    assert msg.body.payload == bytes(length - 2)


def test_mqtt_oversized_length_is_refused_before_the_body() -> None:
    c = Codec(mqtt.PACKET, max_frame_size=1 << 20)
    with pytest.raises(FrameTooLarge):  # 268,435,455 bytes announced, none of them sent
        c.decode(Buffer(b"\x30\xff\xff\xff\x7f"))


def test_mqtt_packets_pass_check_codec() -> None:
    topic = st.text(
        st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")) | st.just("/"), max_size=20
    )
    publish = st.builds(
        lambda qos, retain, t, pid, payload: {
            "header": _header("PUBLISH", qos, retain=retain),
            "body": {"topic": t, "packet_id": pid if qos else None, "payload": payload},
        },
        st.integers(0, 2),
        st.booleans(),
        topic,
        st.integers(1, 0xFFFF),
        st.binary(max_size=300),
    )
    subscribe = st.builds(
        lambda pid, topics: {
            "header": _header("SUBSCRIBE", 1),
            "body": {"packet_id": pid, "topics": [{"filter": t, "qos": q} for t, q in topics]},
        },
        st.integers(1, 0xFFFF),
        st.lists(st.tuples(topic, st.integers(0, 2)), min_size=1, max_size=4),
    )
    acks = st.builds(
        lambda kind, pid: {
            "header": _header(kind, 1 if kind == "PUBREL" else 0),
            "body": {"packet_id": pid},
        },
        st.sampled_from(["PUBACK", "PUBREC", "PUBREL", "PUBCOMP", "UNSUBACK"]),
        st.integers(0, 0xFFFF),
    )
    pings = st.sampled_from(["PINGREQ", "PINGRESP", "DISCONNECT"]).map(
        lambda kind: {"header": _header(kind), "body": {}}
    )
    check_codec(
        Codec(mqtt.PACKET, max_frame_size=4096),
        st.one_of(publish, subscribe, acks, pings),
        max_examples=40,
    )
