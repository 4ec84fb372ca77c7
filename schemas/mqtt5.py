"""MQTT 5.0 control packets.

Specification: *MQTT Version 5.0*, OASIS Standard, 7 March 2019. Chapter 1.5 gives the data
types (two- and four-byte integers, UTF-8 strings and binary data with a 2-byte length,
Variable Byte Integers, string pairs), chapter 2 the packet layout (2.1: the fixed header,
with the Remaining Length in 2.1.4; 2.2.2: properties; 2.4: reason codes) and chapter 3 each
of the 15 control packets (3.1 CONNECT ... 3.15 AUTH).

:data:`PACKET` is one whole control packet: the fixed header as a ``BitStruct`` (``type``,
then the flags ``dup``, ``qos``, ``retain``: PUBLISH's meaning of the four flag bits,
3.3.1; the other packets have fixed flag values, 2.1.3, kept as they come so that a server
can check them), and the ``body`` behind its Remaining Length, parsed by packet type. The
Remaining Length is construct's ``VarInt``: MQTT's Variable Byte Integer (1.5.5: seven bits
a byte, least significant group first, the high bit set on all but the last byte) is the
same encoding, so the codec frames MQTT streams by it. :data:`CODEC` is ready to use, with a
1 MiB packet limit; build ``Codec(PACKET, max_frame_size=...)`` for another.

What the schema does not check, so that a server can answer it as the specification says:
the fixed header's flag values (2.1.3), PUBLISH at QoS 3 (3.3.1.2), which properties a
packet may carry (2.2.2.2), reason code values outside each packet's table (they decode as
plain integers), Variable Byte Integers not written in the fewest bytes (1.5.5), and the
characters a UTF-8 string must not hold (1.5.4). What it refuses (a ``DecodeError``): an
unknown property identifier (its length cannot be known), reserved bits that are not 0
(3.1.2.3, 3.2.2.1, 3.8.3.1), and a body that does not fill its Remaining Length exactly.

**Properties** (2.2.2) are kept as a list in wire order, each a Container with ``id`` (the
property's name, e.g. ``user_property``) and ``value`` (an ``int``, ``str``, ``bytes``, or a
``name``/``value`` Container for a user property): a user property may appear several times
and its order is meaningful (3.3.2.3.7). :func:`user_properties` and :func:`property_value`
read the list; :func:`user_property` and :func:`prop` build entries.

**Optional tails.** PUBACK, PUBREC, PUBREL and PUBCOMP (3.4.2.1), DISCONNECT (3.14.2.1) and
AUTH (3.15.2.1) may stop before their reason code (meaning Success / Normal disconnection)
or before their properties (meaning none): ``reason_code`` and ``properties`` are then
``None``, and building with ``None`` leaves them out, so the bytes round-trip exactly. A
value with properties but no reason code cannot be encoded (``EncodeError``).

TCP port 1883 (8883 over TLS), as for 3.1.1.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import construct as cs
from construct import this

from codec import Codec

__all__ = [
    "AUTH",
    "AUTH_REASON",
    "BINARY",
    "BODIES",
    "CODEC",
    "CONNACK",
    "CONNACK_REASON",
    "CONNECT",
    "DISCONNECT",
    "DISCONNECT_REASON",
    "FIXED_HEADER",
    "PACKET",
    "PACKET_TYPE",
    "PORT",
    "PROPERTIES",
    "PROPERTY",
    "PROPERTY_ID",
    "PROTOCOL_LEVEL",
    "PUBACK",
    "PUBACK_REASON",
    "PUBCOMP",
    "PUBLISH",
    "PUBREC",
    "PUBREL",
    "PUBREL_REASON",
    "STRING",
    "STRING_PAIR",
    "SUBACK",
    "SUBACK_REASON",
    "SUBSCRIBE",
    "SUBSCRIPTION_OPTIONS",
    "TLS_PORT",
    "UNSUBACK",
    "UNSUBACK_REASON",
    "UNSUBSCRIBE",
    "prop",
    "property_value",
    "user_properties",
    "user_property",
]

PORT = 1883
TLS_PORT = 8883
#: CONNECT's protocol level for MQTT 5.0 (3.1.2.2; 3.1.1 is level 4)
PROTOCOL_LEVEL = 5

# -- 1.5 data representation --------------------------------------------------------------
#: a UTF-8 encoded string: 2-byte length, then the bytes (1.5.4)
STRING = cs.PascalString(cs.Int16ub, "utf8")
#: binary data: 2-byte length, then the bytes (1.5.6)
BINARY = cs.Prefixed(cs.Int16ub, cs.GreedyBytes)
#: a UTF-8 string pair (1.5.7): the user property's name and value
STRING_PAIR = cs.Struct("name" / STRING, "value" / STRING)

#: the end of a body: nothing may follow (else a malformed packet). An empty ``Const`` over
#: the rest of the body rather than ``cs.Terminated``, because the codec compiles it:
#: ``Terminated`` is left to construct, about 12 us more per packet
_END = cs.Const(b"", cs.GreedyBytes)

# -- 2.1 fixed header ---------------------------------------------------------------------
#: the control packet types (2.1.2); 0 is reserved, 15 is AUTH (new in 5.0)
PACKET_TYPE = cs.Enum(
    cs.Nibble,
    CONNECT=1,
    CONNACK=2,
    PUBLISH=3,
    PUBACK=4,
    PUBREC=5,
    PUBREL=6,
    PUBCOMP=7,
    SUBSCRIBE=8,
    SUBACK=9,
    UNSUBSCRIBE=10,
    UNSUBACK=11,
    PINGREQ=12,
    PINGRESP=13,
    DISCONNECT=14,
    AUTH=15,
)

#: the first byte of every packet (2.1.2, 2.1.3; the flags as PUBLISH names them, 3.3.1)
FIXED_HEADER = cs.BitStruct(
    "type" / PACKET_TYPE,
    "dup" / cs.Flag,
    "qos" / cs.BitsInteger(2),
    "retain" / cs.Flag,
)

# -- 2.2.2 properties ---------------------------------------------------------------------
#: property identifiers (2.2.2.2, table 2-4); a Variable Byte Integer, though every
#: identifier defined so far fits in one byte
PROPERTY_ID = cs.Enum(
    cs.VarInt,
    payload_format_indicator=0x01,
    message_expiry_interval=0x02,
    content_type=0x03,
    response_topic=0x08,
    correlation_data=0x09,
    subscription_identifier=0x0B,
    session_expiry_interval=0x11,
    assigned_client_identifier=0x12,
    server_keep_alive=0x13,
    authentication_method=0x15,
    authentication_data=0x16,
    request_problem_information=0x17,
    will_delay_interval=0x18,
    request_response_information=0x19,
    response_information=0x1A,
    server_reference=0x1C,
    reason_string=0x1F,
    receive_maximum=0x21,
    topic_alias_maximum=0x22,
    topic_alias=0x23,
    maximum_qos=0x24,
    retain_available=0x25,
    user_property=0x26,
    maximum_packet_size=0x27,
    wildcard_subscription_available=0x28,
    subscription_identifier_available=0x29,
    shared_subscription_available=0x2A,
)

_BYTE, _TWO, _FOUR = cs.Int8ub, cs.Int16ub, cs.Int32ub
#: each property's data type (table 2-4)
_PROPERTY_TYPES: dict[str, cs.Construct] = {
    "payload_format_indicator": _BYTE,
    "message_expiry_interval": _FOUR,
    "content_type": STRING,
    "response_topic": STRING,
    "correlation_data": BINARY,
    "subscription_identifier": cs.VarInt,
    "session_expiry_interval": _FOUR,
    "assigned_client_identifier": STRING,
    "server_keep_alive": _TWO,
    "authentication_method": STRING,
    "authentication_data": BINARY,
    "request_problem_information": _BYTE,
    "will_delay_interval": _FOUR,
    "request_response_information": _BYTE,
    "response_information": STRING,
    "server_reference": STRING,
    "reason_string": STRING,
    "receive_maximum": _TWO,
    "topic_alias_maximum": _TWO,
    "topic_alias": _TWO,
    "maximum_qos": _BYTE,
    "retain_available": _BYTE,
    "user_property": STRING_PAIR,
    "maximum_packet_size": _FOUR,
    "wildcard_subscription_available": _BYTE,
    "subscription_identifier_available": _BYTE,
    "shared_subscription_available": _BYTE,
}

#: one property: identifier, then a value of the identifier's type. An unknown identifier
#: is an error, not a value: nothing says how long its data is (2.2.2.2).
PROPERTY = cs.Struct(
    "id" / PROPERTY_ID,
    "value" / cs.Switch(this.id, _PROPERTY_TYPES, default=cs.Error),
)

#: the Property Length (a Variable Byte Integer), then properties filling it exactly
#: (2.2.2.1); the value is the list of properties in wire order
PROPERTIES = cs.Prefixed(
    cs.VarInt, cs.FocusedSeq("properties", "properties" / cs.GreedyRange(PROPERTY), _END)
)

# -- 2.4 reason codes, per packet (each packet's own table in chapter 3) -----------------
#: CONNACK's reason codes (3.2.2.2)
CONNACK_REASON = cs.Enum(
    cs.Int8ub,
    success=0x00,
    unspecified_error=0x80,
    malformed_packet=0x81,
    protocol_error=0x82,
    implementation_specific_error=0x83,
    unsupported_protocol_version=0x84,
    client_identifier_not_valid=0x85,
    bad_user_name_or_password=0x86,
    not_authorized=0x87,
    server_unavailable=0x88,
    server_busy=0x89,
    banned=0x8A,
    bad_authentication_method=0x8C,
    topic_name_invalid=0x90,
    packet_too_large=0x95,
    quota_exceeded=0x97,
    payload_format_invalid=0x99,
    retain_not_supported=0x9A,
    qos_not_supported=0x9B,
    use_another_server=0x9C,
    server_moved=0x9D,
    connection_rate_exceeded=0x9F,
)

#: PUBACK's and PUBREC's reason codes (3.4.2.1, 3.5.2.1)
PUBACK_REASON = cs.Enum(
    cs.Int8ub,
    success=0x00,
    no_matching_subscribers=0x10,
    unspecified_error=0x80,
    implementation_specific_error=0x83,
    not_authorized=0x87,
    topic_name_invalid=0x90,
    packet_identifier_in_use=0x91,
    quota_exceeded=0x97,
    payload_format_invalid=0x99,
)

#: PUBREL's and PUBCOMP's reason codes (3.6.2.1, 3.7.2.1)
PUBREL_REASON = cs.Enum(cs.Int8ub, success=0x00, packet_identifier_not_found=0x92)

#: SUBACK's reason codes, one per topic filter (3.9.3)
SUBACK_REASON = cs.Enum(
    cs.Int8ub,
    granted_qos_0=0x00,
    granted_qos_1=0x01,
    granted_qos_2=0x02,
    unspecified_error=0x80,
    implementation_specific_error=0x83,
    not_authorized=0x87,
    topic_filter_invalid=0x8F,
    packet_identifier_in_use=0x91,
    quota_exceeded=0x97,
    shared_subscriptions_not_supported=0x9E,
    subscription_identifiers_not_supported=0xA1,
    wildcard_subscriptions_not_supported=0xA2,
)

#: UNSUBACK's reason codes, one per topic filter (3.11.3)
UNSUBACK_REASON = cs.Enum(
    cs.Int8ub,
    success=0x00,
    no_subscription_existed=0x11,
    unspecified_error=0x80,
    implementation_specific_error=0x83,
    not_authorized=0x87,
    topic_filter_invalid=0x8F,
    packet_identifier_in_use=0x91,
)

#: DISCONNECT's reason codes (3.14.2.1)
DISCONNECT_REASON = cs.Enum(
    cs.Int8ub,
    normal_disconnection=0x00,
    disconnect_with_will_message=0x04,
    unspecified_error=0x80,
    malformed_packet=0x81,
    protocol_error=0x82,
    implementation_specific_error=0x83,
    not_authorized=0x87,
    server_busy=0x89,
    server_shutting_down=0x8B,
    keep_alive_timeout=0x8D,
    session_taken_over=0x8E,
    topic_filter_invalid=0x8F,
    topic_name_invalid=0x90,
    receive_maximum_exceeded=0x93,
    topic_alias_invalid=0x94,
    packet_too_large=0x95,
    message_rate_too_high=0x96,
    quota_exceeded=0x97,
    administrative_action=0x98,
    payload_format_invalid=0x99,
    retain_not_supported=0x9A,
    qos_not_supported=0x9B,
    use_another_server=0x9C,
    server_moved=0x9D,
    shared_subscriptions_not_supported=0x9E,
    connection_rate_exceeded=0x9F,
    maximum_connect_time=0xA0,
    subscription_identifiers_not_supported=0xA1,
    wildcard_subscriptions_not_supported=0xA2,
)

#: AUTH's reason codes (3.15.2.1)
AUTH_REASON = cs.Enum(cs.Int8ub, success=0x00, continue_authentication=0x18, re_authenticate=0x19)


def _optional_tail(reason: cs.Construct) -> list[cs.Construct]:
    """A reason code and properties that may each be left off the end of the packet
    (3.4.2.1, 3.14.2.1, 3.15.2.1): ``None`` when absent. Properties come only after a
    reason code: without one, ``properties`` must be ``None`` (building anything else is an
    ``EncodeError``, not bytes that would decode differently). The body must end there:
    trailing bytes (or properties that do not parse, which leave their bytes unread) are a
    ``DecodeError``.

    The choice after the reason code is an ``IfThenElse`` on it, which the codec compiles,
    rather than a second ``Optional`` and a ``Check`` (both left to construct): the common
    two-byte acknowledgement then costs one call into construct instead of three."""
    has_reason = this.reason_code != None  # noqa: E711 (a construct expression, not a test)
    no_properties = cs.Const(None, cs.Pass)  # no bytes; builds only from None
    return [
        "reason_code" / cs.Optional(reason),
        "properties" / cs.IfThenElse(has_reason, cs.Optional(PROPERTIES), no_properties),
        _END,
    ]


# -- 3 the control packets ----------------------------------------------------------------
#: CONNECT (3.1): protocol name and level, connect flags, keep alive, properties, then the
#: payload fields the flags announce, in this order (3.1.3)
CONNECT = cs.Struct(
    "protocol_name" / STRING,  # "MQTT" (3.1.2.1)
    "protocol_level" / cs.Int8ub,  # 5 (3.1.2.2)
    "flags"
    / cs.BitStruct(
        "username" / cs.Flag,
        "password" / cs.Flag,
        "will_retain" / cs.Flag,
        "will_qos" / cs.BitsInteger(2),
        "will" / cs.Flag,
        "clean_start" / cs.Flag,
        "reserved" / cs.Const(0, cs.Bit),  # 3.1.2.3: a 1 is a Malformed Packet
    ),
    "keep_alive" / cs.Int16ub,  # seconds (3.1.2.10)
    "properties" / PROPERTIES,  # 3.1.2.11
    "client_id" / STRING,  # 3.1.3.1
    "will_properties" / cs.If(this.flags.will, PROPERTIES),  # 3.1.3.2
    "will_topic" / cs.If(this.flags.will, STRING),  # 3.1.3.3
    "will_payload" / cs.If(this.flags.will, BINARY),  # 3.1.3.4
    "username" / cs.If(this.flags.username, STRING),  # 3.1.3.5
    "password" / cs.If(this.flags.password, BINARY),  # 3.1.3.6
    _END,
)

#: CONNACK (3.2): acknowledge flags (session present), reason code, properties
CONNACK = cs.Struct(
    "flags"
    / cs.BitStruct("reserved" / cs.Const(0, cs.BitsInteger(7)), "session_present" / cs.Flag),
    "reason_code" / CONNACK_REASON,
    "properties" / PROPERTIES,
    _END,
)

#: PUBLISH (3.3): topic, a packet identifier at QoS 1 and 2 only (3.3.2.2), properties,
#: then the application message to the end of the packet
PUBLISH = cs.Struct(
    "topic" / STRING,
    "packet_id" / cs.If(this._.header.qos > 0, cs.Int16ub),
    "properties" / PROPERTIES,
    "payload" / cs.GreedyBytes,
)

#: PUBACK (3.4) and PUBREC (3.5): packet identifier, optional reason code and properties
PUBACK = cs.Struct("packet_id" / cs.Int16ub, *_optional_tail(PUBACK_REASON))
PUBREC = PUBACK
#: PUBREL (3.6) and PUBCOMP (3.7): the same layout, their own reason codes
PUBREL = cs.Struct("packet_id" / cs.Int16ub, *_optional_tail(PUBREL_REASON))
PUBCOMP = PUBREL

#: SUBSCRIBE's options byte for each topic filter (3.8.3.1): bits 7-6 reserved (must be 0)
SUBSCRIPTION_OPTIONS = cs.BitStruct(
    "reserved" / cs.Const(0, cs.BitsInteger(2)),
    "retain_handling" / cs.BitsInteger(2),  # 0 send retained, 1 only if new, 2 never
    "retain_as_published" / cs.Flag,
    "no_local" / cs.Flag,
    "qos" / cs.BitsInteger(2),  # maximum QoS
)

#: SUBSCRIBE (3.8): packet identifier, properties, then topic filters with their options
#: to the end of the packet (a truncated last entry is an error, not dropped)
SUBSCRIBE = cs.Struct(
    "packet_id" / cs.Int16ub,
    "properties" / PROPERTIES,
    "topics" / cs.GreedyRange(cs.Struct("filter" / STRING, "options" / SUBSCRIPTION_OPTIONS)),
    _END,
)

#: SUBACK (3.9): packet identifier, properties, one reason code per topic filter
SUBACK = cs.Struct(
    "packet_id" / cs.Int16ub,
    "properties" / PROPERTIES,
    "reason_codes" / cs.GreedyRange(SUBACK_REASON),
)

#: UNSUBSCRIBE (3.10): packet identifier, properties, topic filters
UNSUBSCRIBE = cs.Struct(
    "packet_id" / cs.Int16ub,
    "properties" / PROPERTIES,
    "topics" / cs.GreedyRange(STRING),
    _END,
)

#: UNSUBACK (3.11): packet identifier, properties, one reason code per topic filter
UNSUBACK = cs.Struct(
    "packet_id" / cs.Int16ub,
    "properties" / PROPERTIES,
    "reason_codes" / cs.GreedyRange(UNSUBACK_REASON),
)

#: PINGREQ (3.12) and PINGRESP (3.13): no variable header, no payload
_EMPTY = cs.Struct(_END)

#: DISCONNECT (3.14): optional reason code and properties
DISCONNECT = cs.Struct(*_optional_tail(DISCONNECT_REASON))

#: AUTH (3.15): optional reason code and properties (authentication method and data)
AUTH = cs.Struct(*_optional_tail(AUTH_REASON))

#: each packet type's body
BODIES: dict[str, cs.Construct] = {
    "CONNECT": CONNECT,
    "CONNACK": CONNACK,
    "PUBLISH": PUBLISH,
    "PUBACK": PUBACK,
    "PUBREC": PUBREC,
    "PUBREL": PUBREL,
    "PUBCOMP": PUBCOMP,
    "SUBSCRIBE": SUBSCRIBE,
    "SUBACK": SUBACK,
    "UNSUBSCRIBE": UNSUBSCRIBE,
    "UNSUBACK": UNSUBACK,
    "PINGREQ": _EMPTY,
    "PINGRESP": _EMPTY,
    "DISCONNECT": DISCONNECT,
    "AUTH": AUTH,
}

#: one control packet: fixed header, Remaining Length (2.1.4), the body by packet type; a
#: body of the reserved type 0 is an error
PACKET = cs.Struct(
    "header" / FIXED_HEADER,
    "body" / cs.Prefixed(cs.VarInt, cs.Switch(this.header.type, BODIES, default=cs.Error)),
)

#: :data:`PACKET` compiled, refusing packets over 1 MiB (the protocol allows 256 MiB:
#: 2.1.4)
CODEC: Codec[Any] = Codec(PACKET, max_frame_size=1 << 20)


# -- reading and writing property lists ---------------------------------------------------
def user_properties(properties: Iterable[Any] | None) -> list[tuple[str, str]]:
    """The user properties (3.3.2.3.7) of a property list, as ``(name, value)`` pairs in
    wire order, repeats included; ``None`` (no properties) gives ``[]``."""
    return [(p.value.name, p.value.value) for p in properties or () if p.id == "user_property"]


def property_value(properties: Iterable[Any] | None, name: str, default: Any = None) -> Any:
    """The value of the first property called ``name`` (e.g. ``"topic_alias"``), or
    ``default`` when the list has none."""
    for p in properties or ():
        if p.id == name:
            return p.value
    return default


def prop(name: str, value: Any) -> dict[str, Any]:
    """A property list entry to build: ``prop("message_expiry_interval", 60)``."""
    return {"id": name, "value": value}


def user_property(name: str, value: str) -> dict[str, Any]:
    """A user property entry to build (2.2.2.2, 3.3.2.3.7)."""
    return {"id": "user_property", "value": {"name": name, "value": value}}
