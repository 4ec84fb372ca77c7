"""schemas.mqtt (3.1.1) beyond tests/schemas/test_schemas.py: the ready codec, malformed
packets as ``DecodeError`` (bodies must fill their Remaining Length), and ``check_codec``
over every packet type."""

from __future__ import annotations

import construct as cs
import pytest

from codec import Buffer, Codec, DecodeError
from codec.testing import check_codec
from schemas import mqtt

from .mqtt_strategies import MQTT_PACKETS


def test_the_ready_codec_decodes_a_stream() -> None:
    pingreq, puback = b"\xc0\x00", b"\x40\x02\x00\x0a"
    assert [m.header.type for m in mqtt.CODEC.decode_all(pingreq + puback)] == [
        "PINGREQ",
        "PUBACK",
    ]
    assert mqtt.CODEC.max_frame_size == 1 << 20


# malformed packets (4.8: the receiver closes the connection): each a DecodeError
MALFORMED = [
    # 3.8.3: the last topic filter is cut short (GreedyRange used to drop it silently)
    ("truncated topic filter", b"\x82\x06\x00\x0a\x00\x03a/"),
    # 3.10.3: the same for UNSUBSCRIBE
    ("truncated unsubscribe", b"\xa2\x05\x00\x0a\x00\x03a"),
    # 3.2: CONNACK's Remaining Length is 2
    ("long CONNACK", b"\x20\x03\x00\x00\x07"),
    # 3.4: PUBACK's is 2
    ("long PUBACK", b"\x40\x03\x00\x0a\x00"),
    # 3.12: PINGREQ has no body
    ("PINGREQ with a body", b"\xc0\x01\x00"),
    # 3.1.3: bytes after the last payload field the flags announce
    ("CONNECT with trailing bytes", b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x0a\x00\x01c\x00"),
    # 1.5.3: a topic that is not UTF-8
    ("bad UTF-8 topic", b"\x30\x04\x00\x02\xff\xfe"),
    # 3.1.2.3: the reserved connect flag is 1
    ("reserved connect flag", b"\x10\x0d\x00\x04MQTT\x04\x03\x00\x0a\x00\x01c"),
]


@pytest.mark.parametrize(("why", "wire"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_packets_are_decode_errors(why: str, wire: bytes) -> None:
    buf = Buffer(wire)
    with pytest.raises(DecodeError):
        mqtt.CODEC.decode(buf)
    assert len(buf) == len(wire)
    with pytest.raises(cs.ConstructError):
        mqtt.PACKET.parse(wire)


@pytest.mark.parametrize("kind", sorted(MQTT_PACKETS))
def test_every_packet_type_passes_check_codec(kind: str) -> None:
    check_codec(Codec(mqtt.PACKET, max_frame_size=4096), MQTT_PACKETS[kind], max_examples=15)
