"""schemas.mqtt5: MQTT 5.0 packets laid out by hand from the specification, every property
type, the optional tails, bad bytes as ``DecodeError``, and ``check_codec`` over every
packet type."""

from __future__ import annotations

from typing import Any

import construct as cs
import pytest
from hypothesis import strategies as st

from codec import Buffer, Codec, DecodeError, EncodeError, FrameTooLarge
from codec.testing import check_codec
from schemas import mqtt, mqtt5
from schemas.mqtt5 import prop, user_property

from .mqtt_strategies import MQTT5_PACKETS


def _header(kind: str, qos: int = 0, *, dup: bool = False, retain: bool = False) -> dict[str, Any]:
    return {"type": kind, "dup": dup, "qos": qos, "retain": retain}


def _decode_one(wire: bytes) -> Any:
    """Decode ``wire`` (two copies: sticky, one per call) and check it against construct."""
    c = mqtt5.CODEC
    buf = Buffer(wire + wire)
    msg = c.decode(buf)
    assert msg is not None
    assert msg == mqtt5.PACKET.parse(wire)
    assert c.decode(buf) == msg
    assert len(buf) == 0
    assert c.encode(msg) == wire
    return msg


def test_connect_variable_header_example() -> None:
    """3.1.2.11's figure: protocol name "MQTT", level 5, flags 0xCE (user name, password,
    will QoS 1, will, clean start), keep alive 10, properties: session expiry interval 10.
    The payload (3.1.3) follows in flag order: client id, will properties, will topic, will
    payload, user name, password."""
    variable = b"\x00\x04MQTT\x05\xce\x00\x0a\x05\x11\x00\x00\x00\x0a"
    payload = (
        b"\x00\x02id"
        + b"\x07\x01\x01\x18\x00\x00\x00\x05"  # will: payload format 1, will delay 5 s
        + b"\x00\x01w\x00\x03bye\x00\x01u\x00\x02pw"
    )
    wire = b"\x10" + bytes([len(variable) + len(payload)]) + variable + payload
    msg = _decode_one(wire)
    body = msg.body
    assert (body.protocol_name, body.protocol_level, body.keep_alive) == ("MQTT", 5, 10)
    assert (body.flags.clean_start, body.flags.will, body.flags.will_qos) == (True, True, 1)
    assert body.properties == [{"id": "session_expiry_interval", "value": 10}]
    assert [(p.id, p.value) for p in body.will_properties] == [
        ("payload_format_indicator", 1),
        ("will_delay_interval", 5),
    ]
    assert (body.client_id, body.will_topic, body.will_payload) == ("id", "w", b"bye")
    assert (body.username, body.password) == ("u", b"pw")


# bytes laid out by hand from the specification (sections noted)
KNOWN = [
    # 3.2: session present 0, reason code 0x00 success, no properties
    ("CONNACK", b"\x20\x03\x00\x00\x00", {"reason_code": "success", "properties": []}),
    # 3.2.2.2: 0x84 unsupported protocol version
    ("CONNACK", b"\x20\x03\x00\x84\x00", {"reason_code": "unsupported_protocol_version"}),
    # 3.3.2: topic "a/b", QoS 0 (no packet identifier), no properties, payload
    ("PUBLISH", b"\x30\x08\x00\x03a/b\x00hi", {"topic": "a/b", "packet_id": None}),
    # 3.4.2.1: a PUBACK of remaining length 2 means success and no properties
    ("PUBACK", b"\x40\x02\x00\x0a", {"packet_id": 10, "reason_code": None, "properties": None}),
    # 3.4.2.2.1: property length omitted when the remaining length is 3
    ("PUBACK", b"\x40\x03\x00\x0a\x10", {"reason_code": "no_matching_subscribers"}),
    ("PUBREC", b"\x50\x04\x00\x0a\x00\x00", {"reason_code": "success", "properties": []}),
    # 3.6: flags 0010; 0x92 packet identifier not found
    ("PUBREL", b"\x62\x03\x00\x0a\x92", {"reason_code": "packet_identifier_not_found"}),
    ("PUBCOMP", b"\x70\x02\x00\x0a", {"packet_id": 10}),
    # 3.8: flags 0010; "a/+" with options: retain handling 2, retain as published, no
    # local, QoS 1 (3.8.3.1)
    ("SUBSCRIBE", b"\x82\x09\x00\x0a\x00\x00\x03a/+\x2d", {"packet_id": 10}),
    # 3.9.3: granted QoS 1, then 0xA2 wildcard subscriptions not supported
    ("SUBACK", b"\x90\x05\x00\x0a\x00\x01\xa2", {"packet_id": 10}),
    ("UNSUBSCRIBE", b"\xa2\x0a\x00\x0a\x00\x00\x03a/b\x00\x00", {"topics": ["a/b", ""]}),
    ("UNSUBACK", b"\xb0\x04\x00\x0a\x00\x11", {"reason_codes": ["no_subscription_existed"]}),
    # 3.12, 3.13: empty
    ("PINGREQ", b"\xc0\x00", {}),
    ("PINGRESP", b"\xd0\x00", {}),
    # 3.14.2.1: remaining length 0 means normal disconnection, no properties
    ("DISCONNECT", b"\xe0\x00", {"reason_code": None, "properties": None}),
    # 3.14.2.2.1: 0x8e session taken over, properties: reason string "x"
    (
        "DISCONNECT",
        b"\xe0\x06\x8e\x04\x1f\x00\x01x",
        {"reason_code": "session_taken_over", "properties": [prop("reason_string", "x")]},
    ),
    # 3.15: 0x18 continue authentication, method "S", data b"\x01"
    (
        "AUTH",
        b"\xf0\x0a\x18\x08\x15\x00\x01S\x16\x00\x01\x01",
        {
            "reason_code": "continue_authentication",
            "properties": [prop("authentication_method", "S"), prop("authentication_data", b"\1")],
        },
    ),
]


@pytest.mark.parametrize(("kind", "wire", "fields"), KNOWN, ids=[k[0] for k in KNOWN])
def test_packets_from_the_specification(kind: str, wire: bytes, fields: dict[str, Any]) -> None:
    msg = _decode_one(wire)
    assert msg.header.type == kind
    for name, value in fields.items():
        assert msg.body[name] == value


def test_subscription_options_and_reason_codes() -> None:
    sub = _decode_one(b"\x82\x09\x00\x0a\x00\x00\x03a/+\x2d").body.topics[0]
    assert sub.filter == "a/+"
    opts = sub.options
    assert (opts.retain_handling, opts.retain_as_published, opts.no_local, opts.qos) == (
        2,
        True,
        True,
        1,
    )
    codes = _decode_one(b"\x90\x05\x00\x0a\x00\x01\xa2").body.reason_codes
    assert codes == ["granted_qos_1", "wildcard_subscriptions_not_supported"]
    assert [int(c) for c in codes] == [1, 0xA2]


# one of each property (2.2.2.2, table 2-4) with its type's wire form
EVERY_PROPERTY = [
    ("payload_format_indicator", 1, b"\x01\x01"),  # byte
    ("message_expiry_interval", 0x01020304, b"\x02\x01\x02\x03\x04"),  # four-byte integer
    ("content_type", "text/plain", b"\x03\x00\x0atext/plain"),  # UTF-8 string
    ("response_topic", "r", b"\x08\x00\x01r"),
    ("correlation_data", b"\x00\xff", b"\x09\x00\x02\x00\xff"),  # binary data
    ("subscription_identifier", 268_435_455, b"\x0b\xff\xff\xff\x7f"),  # VarInt, 4 bytes
    ("session_expiry_interval", 0xFFFFFFFF, b"\x11\xff\xff\xff\xff"),
    ("assigned_client_identifier", "c", b"\x12\x00\x01c"),
    ("server_keep_alive", 0x0102, b"\x13\x01\x02"),  # two-byte integer
    ("authentication_method", "m", b"\x15\x00\x01m"),
    ("authentication_data", b"d", b"\x16\x00\x01d"),
    ("request_problem_information", 0, b"\x17\x00"),
    ("will_delay_interval", 9, b"\x18\x00\x00\x00\x09"),
    ("request_response_information", 1, b"\x19\x01"),
    ("response_information", "i", b"\x1a\x00\x01i"),
    ("server_reference", "s", b"\x1c\x00\x01s"),
    ("reason_string", "why", b"\x1f\x00\x03why"),
    ("receive_maximum", 20, b"\x21\x00\x14"),
    ("topic_alias_maximum", 10, b"\x22\x00\x0a"),
    ("topic_alias", 3, b"\x23\x00\x03"),
    ("maximum_qos", 1, b"\x24\x01"),
    ("retain_available", 1, b"\x25\x01"),
    ("user_property", {"name": "k", "value": "v"}, b"\x26\x00\x01k\x00\x01v"),  # string pair
    ("maximum_packet_size", 1 << 20, b"\x27\x00\x10\x00\x00"),
    ("wildcard_subscription_available", 1, b"\x28\x01"),
    ("subscription_identifier_available", 0, b"\x29\x00"),
    ("shared_subscription_available", 1, b"\x2a\x01"),
]


def test_every_property_type() -> None:
    assert len(EVERY_PROPERTY) == len(mqtt5.PROPERTY_ID.encmapping) == 27
    props = [prop(name, value) for name, value, _ in EVERY_PROPERTY]
    wire_props = b"".join(w for _, _, w in EVERY_PROPERTY)
    assert len(wire_props) < 128  # a one-byte Property Length
    assert mqtt5.PROPERTIES.build(props) == bytes([len(wire_props)]) + wire_props
    # carried by a PUBLISH (the schema leaves "which property where" to the application)
    body = {"topic": "t", "packet_id": None, "properties": props, "payload": b"p"}
    wire = mqtt5.CODEC.encode({"header": _header("PUBLISH"), "body": body})
    msg = _decode_one(wire)
    assert [(p.id, p.value) for p in msg.body.properties] == [
        (name, value) for name, value, _ in EVERY_PROPERTY
    ]


def test_user_properties_repeat_and_keep_their_order() -> None:
    props = [
        user_property("b", "1"),
        prop("content_type", "x"),
        user_property("a", "2"),
        user_property("b", "3"),
    ]
    body = {"topic": "t", "packet_id": 1, "properties": props, "payload": b""}
    msg = _decode_one(mqtt5.CODEC.encode({"header": _header("PUBLISH", 1), "body": body}))
    assert mqtt5.user_properties(msg.body.properties) == [("b", "1"), ("a", "2"), ("b", "3")]
    assert mqtt5.property_value(msg.body.properties, "content_type") == "x"
    assert mqtt5.property_value(msg.body.properties, "topic_alias", 0) == 0
    assert mqtt5.user_properties(None) == []


def test_a_tail_with_properties_needs_its_reason_code() -> None:
    """3.4.2.1: the reason code may be left off only with the properties after it."""
    body: dict[str, Any] = {"packet_id": 1, "reason_code": None, "properties": []}
    with pytest.raises(EncodeError):
        mqtt5.CODEC.encode({"header": _header("PUBACK"), "body": body})


@pytest.mark.parametrize(
    ("length", "encoded"),
    [  # 1.5.5, table 1-1: the Variable Byte Integer's bounds for each number of bytes
        (127, b"\x7f"),
        (128, b"\x80\x01"),
        (16_383, b"\xff\x7f"),
        (16_384, b"\x80\x80\x01"),
        (2_097_151, b"\xff\xff\x7f"),
        (2_097_152, b"\x80\x80\x80\x01"),
    ],
)
def test_remaining_length(length: int, encoded: bytes) -> None:
    c = Codec(mqtt5.PACKET, max_frame_size=4 << 20)
    body: dict[str, Any] = {
        "topic": "",
        "packet_id": None,
        "properties": [],
        "payload": bytes(length - 3),
    }
    wire = c.encode({"header": _header("PUBLISH"), "body": body})
    assert wire[1 : 1 + len(encoded)] == encoded
    assert len(wire) == 1 + len(encoded) + length
    buf = Buffer(wire[:-1])
    assert c.decode(buf) is None  # a half packet
    buf.extend(wire[-1:])
    msg = c.decode(buf)
    assert msg is not None
    assert msg.body.payload == bytes(length - 3)


# malformed packets (4.13: the receiver closes the connection): each a DecodeError
MALFORMED = [
    # 2.1.2: packet type 0 is reserved
    ("reserved type", b"\x00\x00"),
    # 2.2.2.2: property identifier 0x04 does not exist (its length is unknown)
    ("unknown property", b"\x30\x07\x00\x01t\x02\x04\x00x"),
    # 2.2.2.1: the Property Length runs past the end of the packet
    ("property length too long", b"\x30\x06\x00\x01t\x09\x01\x01"),
    # 2.2.2.1: a property cut short inside its Property Length (a string of 5 of 1 bytes)
    ("truncated property", b"\x30\x08\x00\x01t\x04\x03\x00\x05x"),
    # 1.5.4: a UTF-8 string that is not UTF-8
    ("bad UTF-8 topic", b"\x30\x05\x00\x02\xff\xfe\x00"),
    # 3.1.2.3: the reserved connect flag is 1
    ("reserved connect flag", b"\x10\x0c\x00\x04MQTT\x05\x03\x00\x0a\x00\x00\x00"),
    # 3.8.3.1: reserved bits of the subscription options are not 0
    ("reserved subscription bits", b"\x82\x07\x00\x0a\x00\x00\x01a\xc1"),
    # 3.8.3: the last topic filter is cut short (was silently dropped by GreedyRange)
    ("truncated topic filter", b"\x82\x06\x00\x0a\x00\x00\x03a"),
    # 3.4.2.2: a PUBACK with bytes after its properties
    ("trailing bytes", b"\x40\x05\x00\x0a\x00\x00\x00"),
    # 3.4.2.2: a PUBACK whose properties do not parse (unknown identifier 0x7f)
    ("bad tail properties", b"\x40\x06\x00\x0a\x00\x02\x7f\x00"),
    # 3.12: PINGREQ has no body
    ("PINGREQ with a body", b"\xc0\x01\x00"),
    # 3.2.2.1: reserved CONNACK flag bits
    ("CONNACK reserved flags", b"\x20\x03\x02\x00\x00"),
]


@pytest.mark.parametrize(("why", "wire"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_packets_are_decode_errors(why: str, wire: bytes) -> None:
    buf = Buffer(wire)
    with pytest.raises(DecodeError) as info:
        mqtt5.CODEC.decode(buf)
    assert len(buf) == len(wire)  # nothing consumed
    assert "stream offset 0" in str(info.value)
    with pytest.raises(cs.ConstructError):  # construct agrees that the bytes are bad
        mqtt5.PACKET.parse(wire)


def test_oversized_length_is_refused_before_the_body() -> None:
    with pytest.raises(FrameTooLarge):  # 268,435,455 bytes announced, none of them sent
        mqtt5.CODEC.decode(Buffer(b"\x30\xff\xff\xff\x7f"))


@pytest.mark.parametrize("kind", sorted(MQTT5_PACKETS))
def test_every_packet_type_passes_check_codec(kind: str) -> None:
    check_codec(Codec(mqtt5.PACKET, max_frame_size=4096), MQTT5_PACKETS[kind], max_examples=15)


def test_mixed_packets_pass_check_codec() -> None:
    check_codec(
        Codec(mqtt5.PACKET, max_frame_size=4096),
        st.one_of(*MQTT5_PACKETS.values()),
        max_examples=40,
    )


@pytest.mark.parametrize("module", [mqtt, mqtt5], ids=["mqtt", "mqtt5"])
def test_public_names(module: Any) -> None:
    """``__all__`` is what the module exports, and every packet type has a body schema."""
    public = {
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and (name.isupper() or getattr(value, "__module__", "") == module.__name__)
    }
    assert set(module.__all__) == public
    assert set(module.BODIES) == set(module.PACKET_TYPE.encmapping)
