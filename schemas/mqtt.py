"""MQTT 3.1.1 control packets.

Specification: *MQTT Version 3.1.1*, OASIS Standard, 29 October 2014, chapter 2 (the fixed
header: packet type and flags in the first byte, then the Remaining Length, section 2.2.3)
and chapter 3 (each control packet's variable header and payload). Strings are UTF-8 with a
2-byte big-endian length (section 1.5.3).

:data:`PACKET` is one whole control packet: the fixed header as a ``BitStruct`` (``type``,
then the flags ``dup``, ``qos``, ``retain``: PUBLISH's meaning of the four flag bits,
section 3.3.1; the other packets have fixed flag values, section 2.2.2, kept as they come),
and the ``body`` behind its Remaining Length, parsed by packet type. The Remaining Length is
construct's ``VarInt``: MQTT's encoding (seven bits a byte, least significant first, the
high bit set on all but the last byte) is the same, so the codec frames MQTT streams by it.
The specification allows at most four length bytes (268,435,455); give the codec a
``max_frame_size`` to refuse more (a bad length is then ``FrameTooLarge`` before any body is
buffered).

PUBLISH's packet identifier is present only at QoS 1 and 2 (section 3.3.2.2): its body
reads ``qos`` from the fixed header. SUBSCRIBE, SUBACK and UNSUBSCRIBE end in lists that run
to the end of the packet. A body of a reserved type (0, 15) is left as bytes. Every other
body must fill its Remaining Length exactly: trailing bytes, or a truncated last entry of
SUBSCRIBE's or UNSUBSCRIBE's list (which construct's ``GreedyRange`` would silently drop),
are a ``DecodeError`` (a malformed packet, which the receiver must answer by closing the
connection: 4.8). :data:`CODEC` is :data:`PACKET` compiled with a 1 MiB packet limit.

What the schema does not check, so that a server can answer it as the specification says:
the fixed header's flag values (2.2.2), PUBLISH at QoS 3 (3.3.1.2), SUBSCRIBE's requested
QoS beyond 2 (3.8.3.1), and Remaining Lengths not written in the fewest bytes.

TCP port 1883 (8883 over TLS).
"""

from __future__ import annotations

from typing import Any

import construct as cs
from construct import this

from codec import Codec

__all__ = [
    "BINARY",
    "BODIES",
    "CODEC",
    "CONNACK",
    "CONNECT",
    "FIXED_HEADER",
    "PACKET",
    "PACKET_ID",
    "PACKET_TYPE",
    "PORT",
    "PROTOCOL_LEVEL",
    "PUBLISH",
    "RETURN_CODE",
    "STRING",
    "SUBACK",
    "SUBSCRIBE",
    "TLS_PORT",
    "UNSUBSCRIBE",
]

PORT = 1883
TLS_PORT = 8883
#: CONNECT's protocol level for MQTT 3.1.1 (3.1.2.2; MQTT 5.0 is level 5)
PROTOCOL_LEVEL = 4

#: a UTF-8 encoded string: 2-byte length, then the bytes (1.5.3)
STRING = cs.PascalString(cs.Int16ub, "utf8")
#: binary data with the same 2-byte length (the will message and the password, 3.1.3)
BINARY = cs.Prefixed(cs.Int16ub, cs.GreedyBytes)

#: the end of a body: nothing may follow (else a malformed packet). An empty ``Const`` over
#: the rest of the body rather than ``cs.Terminated``, because the codec compiles it:
#: ``Terminated`` is left to construct, about 12 us more per packet
_END = cs.Const(b"", cs.GreedyBytes)

#: the control packet types (2.2.1); 0 and 15 are reserved
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
)

#: the first byte of every packet (2.2.1, 2.2.2; the flags as PUBLISH names them, 3.3.1)
FIXED_HEADER = cs.BitStruct(
    "type" / PACKET_TYPE,
    "dup" / cs.Flag,
    "qos" / cs.BitsInteger(2),
    "retain" / cs.Flag,
)

#: CONNECT (3.1): protocol name and level, connect flags, keep alive, then the payload
#: fields the flags announce, in this order (3.1.3)
CONNECT = cs.Struct(
    "protocol_name" / STRING,  # "MQTT" (level 4); MQTT 3.1 clients send "MQIsdp", level 3
    "protocol_level" / cs.Int8ub,
    "flags"
    / cs.BitStruct(
        "username" / cs.Flag,
        "password" / cs.Flag,
        "will_retain" / cs.Flag,
        "will_qos" / cs.BitsInteger(2),
        "will" / cs.Flag,
        "clean_session" / cs.Flag,
        "reserved" / cs.Const(0, cs.Bit),  # 3.1.2.3: the server must reject 1
    ),
    "keep_alive" / cs.Int16ub,  # seconds
    "client_id" / STRING,
    "will_topic" / cs.If(this.flags.will, STRING),
    "will_message" / cs.If(this.flags.will, BINARY),
    "username" / cs.If(this.flags.username, STRING),
    "password" / cs.If(this.flags.password, BINARY),
    _END,
)

#: CONNACK's return codes (3.2.2.3)
RETURN_CODE = cs.Enum(
    cs.Int8ub,
    accepted=0,
    unacceptable_protocol_version=1,
    identifier_rejected=2,
    server_unavailable=3,
    bad_username_or_password=4,
    not_authorized=5,
)

#: CONNACK (3.2)
CONNACK = cs.Struct(
    "flags" / cs.BitStruct(cs.Padding(7), "session_present" / cs.Flag),
    "return_code" / RETURN_CODE,
    _END,
)

#: PUBLISH (3.3): topic, a packet identifier at QoS 1 and 2 only, the application message
PUBLISH = cs.Struct(
    "topic" / STRING,
    "packet_id" / cs.If(this._.header.qos > 0, cs.Int16ub),
    "payload" / cs.GreedyBytes,
)

#: PUBACK, PUBREC, PUBREL, PUBCOMP, UNSUBACK (3.4-3.7, 3.11): a packet identifier
PACKET_ID = cs.Struct("packet_id" / cs.Int16ub, _END)

#: SUBSCRIBE (3.8): packet identifier, then topic filters with their requested QoS
SUBSCRIBE = cs.Struct(
    "packet_id" / cs.Int16ub,
    "topics" / cs.GreedyRange(cs.Struct("filter" / STRING, "qos" / cs.Int8ub)),
    _END,
)

#: SUBACK (3.9): packet identifier, then one return code per topic filter (the granted QoS
#: 0-2, or 0x80 for a failure)
SUBACK = cs.Struct("packet_id" / cs.Int16ub, "return_codes" / cs.GreedyRange(cs.Int8ub))

#: UNSUBSCRIBE (3.10): packet identifier, then topic filters
UNSUBSCRIBE = cs.Struct("packet_id" / cs.Int16ub, "topics" / cs.GreedyRange(STRING), _END)

#: PINGREQ, PINGRESP, DISCONNECT (3.12-3.14): no variable header, no payload
_EMPTY = cs.Struct(_END)

#: each packet type's body
BODIES: dict[str, cs.Construct] = {
    "CONNECT": CONNECT,
    "CONNACK": CONNACK,
    "PUBLISH": PUBLISH,
    "PUBACK": PACKET_ID,
    "PUBREC": PACKET_ID,
    "PUBREL": PACKET_ID,
    "PUBCOMP": PACKET_ID,
    "SUBSCRIBE": SUBSCRIBE,
    "SUBACK": SUBACK,
    "UNSUBSCRIBE": UNSUBSCRIBE,
    "UNSUBACK": PACKET_ID,
    "PINGREQ": _EMPTY,
    "PINGRESP": _EMPTY,
    "DISCONNECT": _EMPTY,
}

#: one control packet: fixed header, Remaining Length, the body by packet type
PACKET = cs.Struct(
    "header" / FIXED_HEADER,
    "body"
    / cs.Prefixed(
        cs.VarInt,
        cs.Switch(this.header.type, BODIES, default=cs.GreedyBytes),
    ),
)

#: :data:`PACKET` compiled, refusing packets over 1 MiB (the protocol allows 256 MiB: 2.2.3)
CODEC: Codec[Any] = Codec(PACKET, max_frame_size=1 << 20)
