"""The proof against implementations no one here wrote: paho-mqtt clients (3.1.1 and 5.0)
talk to a real mosquitto broker through a relay that records every byte each way; wirekit
decodes every recorded packet, both directions, and the fields agree with what paho was
told to send and what paho reported receiving. Then the same exchange, written as a pcap,
goes through ``wirekit parse`` and through tshark's MQTT dissector, and the two agree field
for field."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codec import Buffer, Codec
from schemas import mqtt, mqtt5

from ..codec.capture.pcapgen import Capture, Tcp
from ..codec.capture.tshark import fields, needs_tshark
from .mqtt_peers import (
    WAIT,
    LoopbackCapture,
    PahoSession,
    Relay,
    mosquitto,
    needs_dumpcap,
    needs_mosquitto,
    run_session,
)

pytestmark = [pytest.mark.peer, needs_mosquitto]

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Exchange:
    session: PahoSession
    chunks: list[tuple[str, bytes]]
    #: every packet each way ("c": from paho, "s": from mosquitto): (its bytes, decoded)
    packets: dict[str, list[tuple[bytes, Any]]]

    def of(self, side: str, kind: str) -> list[Any]:
        return [p for _, p in self.packets[side] if p.header.type == kind]


def codec_for(version: int) -> Codec[Any]:
    return mqtt5.CODEC if version == 5 else mqtt.CODEC


def split(codec: Codec[Any], data: bytes) -> list[tuple[bytes, Any]]:
    """Decode a whole stream, keeping each packet's own bytes."""
    buf = Buffer(data)
    out = []
    while buf:
        start = buf.offset
        msg = codec.decode(buf)
        assert msg is not None, f"a packet cut short at offset {start}"
        out.append((data[start : buf.offset], msg))
    return out


@pytest.fixture(scope="module")
def broker_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with mosquitto(tmp_path_factory.mktemp("mosquitto")) as port:
        yield port


@pytest.fixture(scope="module", params=[4, 5], ids=["mqtt311", "mqtt5"])
def exchange(request: pytest.FixtureRequest, broker_port: int) -> Exchange:
    version: int = request.param
    with Relay(broker_port) as relay:
        session = run_session(relay.port, version, prefix=f"v{version}/")
        assert relay.closed.wait(WAIT), "the connection did not close after DISCONNECT"
    codec = codec_for(version)
    packets = {side: split(codec, relay.stream(side)) for side in "cs"}
    return Exchange(session, relay.chunks, packets)


def test_every_packet_decodes_and_encodes_back(exchange: Exchange) -> None:
    codec = codec_for(exchange.session.version)
    for side in "cs":
        stream = b"".join(frame for frame, _ in exchange.packets[side])
        for frame, msg in exchange.packets[side]:
            assert codec.encode(msg) == frame
        # the stream one byte at a time gives the same packets
        decoder = codec.decoder()
        one_by_one = [m for i in range(len(stream)) for m in decoder.feed(stream[i : i + 1])]
        decoder.close()
        assert one_by_one == [m for _, m in exchange.packets[side]]


def test_what_paho_sent(exchange: Exchange) -> None:
    s = exchange.session
    v5 = s.version == 5
    kinds = Counter(p.header.type for _, p in exchange.packets["c"])
    qos1_received = sum(1 for m in s.received if m.qos == 1)
    assert kinds.pop("PINGREQ") >= 1
    assert kinds == {
        "CONNECT": 1,
        "SUBSCRIBE": 1,
        "PUBLISH": len(s.published),
        "PUBACK": qos1_received,
        "UNSUBSCRIBE": 1,
        "DISCONNECT": 1,
    }
    [connect] = exchange.of("c", "CONNECT")
    c = connect.body
    assert (c.protocol_name, c.protocol_level) == ("MQTT", s.version)
    assert (c.client_id, c.keep_alive) == (s.client_id, s.keep_alive)
    assert (c.username, c.password) == (s.username, s.password)
    assert (c.flags.will, c.flags.will_qos, c.flags.will_retain) == (True, s.will.qos, False)
    assert c.will_topic == s.will.topic
    assert (c.will_payload if v5 else c.will_message) == s.will.payload
    if v5:
        assert mqtt5.user_properties(c.properties) == s.connect_user_properties
        assert mqtt5.property_value(c.properties, "session_expiry_interval") == 0
        assert mqtt5.user_properties(c.will_properties) == s.will.user_properties

    [subscribe] = exchange.of("c", "SUBSCRIBE")
    assert subscribe.header.qos == 1  # 3.8.1: flags 0010
    assert subscribe.body.packet_id == s.subscribe_mid
    if v5:
        got = [
            (t.filter, t.options.qos, t.options.retain_as_published) for t in subscribe.body.topics
        ]
        assert got == [(f, q, i == 0) for i, (f, q) in enumerate(s.subscriptions)]
        assert subscribe.body.properties == [
            mqtt5.prop("subscription_identifier", s.subscription_id)
        ]
    else:
        assert [(t.filter, t.qos) for t in subscribe.body.topics] == s.subscriptions

    for sent, pkt in zip(s.published, exchange.of("c", "PUBLISH"), strict=True):
        assert (pkt.body.topic, pkt.body.payload) == (sent.topic, sent.payload)
        assert (pkt.header.qos, pkt.header.retain, pkt.header.dup) == (sent.qos, sent.retain, False)
        assert pkt.body.packet_id == (sent.mid if sent.qos else None)
        if v5:
            props = pkt.body.properties
            assert mqtt5.user_properties(props) == sent.user_properties  # in order, repeats kept
            assert mqtt5.property_value(props, "content_type") == "application/x-proof"

    acked = sorted(p.body.packet_id for p in exchange.of("c", "PUBACK"))
    assert acked == sorted(m.mid for m in s.received if m.qos == 1)

    [unsubscribe] = exchange.of("c", "UNSUBSCRIBE")
    assert unsubscribe.body.packet_id == s.unsubscribe_mid
    assert unsubscribe.body.topics == s.unsubscribed
    [disconnect] = exchange.of("c", "DISCONNECT")
    if v5:
        assert disconnect.body.reason_code == "normal_disconnection"
        assert mqtt5.user_properties(disconnect.body.properties) == s.disconnect_user_properties


def test_what_mosquitto_sent_and_paho_received(exchange: Exchange) -> None:
    s = exchange.session
    v5 = s.version == 5
    [connack] = exchange.of("s", "CONNACK")
    assert connack.body.get("reason_code", connack.body.get("return_code")) in (
        "success",
        "accepted",
    )
    [suback] = exchange.of("s", "SUBACK")
    assert suback.body.packet_id == s.subscribe_mid
    granted = suback.body.reason_codes if v5 else suback.body.return_codes
    assert [int(g) for g in granted] == [q for _, q in s.subscriptions]
    acks = [p.body.packet_id for p in exchange.of("s", "PUBACK")]
    assert acks == [m.mid for m in s.published if m.qos]
    assert len(exchange.of("s", "PINGRESP")) == len(exchange.of("c", "PINGREQ"))
    [unsuback] = exchange.of("s", "UNSUBACK")
    assert unsuback.body.packet_id == s.unsubscribe_mid
    # every delivery, field for field as paho reported it
    deliveries = exchange.of("s", "PUBLISH")
    assert len(deliveries) == len(s.received)
    for got, pkt in zip(s.received, deliveries, strict=True):
        assert (pkt.body.topic, pkt.body.payload) == (got.topic, got.payload)
        assert (pkt.header.qos, pkt.header.retain) == (got.qos, got.retain)
        assert (pkt.body.packet_id or 0) == got.mid
        if v5:
            props = pkt.body.properties
            assert mqtt5.user_properties(props) == got.user_properties
            assert mqtt5.property_value(props, "subscription_identifier") == s.subscription_id
    # and what was delivered is what was published (user properties intact, in order)
    by_topic = {m.topic: m for m in s.published}
    for got in s.received:
        sent = by_topic[got.topic]
        assert (got.payload, got.user_properties) == (sent.payload, sent.user_properties)
        assert got.qos == min(sent.qos, sent.subscribed_qos)


# -- the same exchange through tshark and `wirekit parse` -----------------------------------
TSHARK_FIELDS = [
    "mqtt.hdrflags",
    "mqtt.msgtype",
    "mqtt.len",
    "mqtt.msgid",
    "mqtt.topic",
    "mqtt.msg",
    "mqtt.ver",
    "mqtt.clientid",
    "mqtt.kalive",
    "mqtt.username",
    "mqtt.willtopic",
    "mqtt.willmsg",
    "mqtt.sub.qos",
    "mqtt.subscription_options_qos",
    "mqtt.subscription_options_rap",
    "mqtt.subscription_options_nl",
    "mqtt.subscription_options_retain",
    "mqtt.suback.qos",
    "mqtt.suback.reason_code",
    "mqtt.conack.val",
    "mqtt.connack.reason_code",
    "mqtt.disconnect.reason_code",
    "mqtt.property_id",
    "mqtt.prop_number",
    "mqtt.prop_key",
    "mqtt.prop_value",
    "mqtt.property.content_type",
]

_TYPES = mqtt5.PACKET_TYPE.encmapping
_PROPERTY_IDS = mqtt5.PROPERTY_ID.encmapping
_STRING_PROPERTIES = {n for n, sc in mqtt5.PROPERTY.value.cases.items() if sc is mqtt5.STRING}


def _varint_size(n: int) -> int:
    return 1 + (n >= 128) + (n >= 16_384) + (n >= 2_097_152)


def _code(enum: Any, value: Any) -> int:
    """A reason code as ``wirekit parse`` prints it (a name, or a number) to its value."""
    return int(enum.encmapping[value]) if isinstance(value, str) else int(value)


def ours(records: list[dict[str, Any]], sizes: list[int]) -> dict[str, list[str]]:
    """``wirekit parse``'s JSON records laid out like tshark's fields (as tshark prints
    them: numbers in decimal, flags and property ids in hex, bytes as hex)."""
    out: dict[str, list[str]] = {n: [] for n in TSHARK_FIELDS}

    def add(name: str, *values: Any) -> None:
        out[name] += [str(v) for v in values]

    for rec, size in zip(records, sizes, strict=True):
        h, b = rec["message"]["header"], rec["message"]["body"]
        kind = h["type"]
        add(
            "mqtt.hdrflags",
            f"0x{_TYPES[kind] << 4 | h['dup'] << 3 | h['qos'] << 1 | h['retain']:02x}",
        )
        add("mqtt.msgtype", _TYPES[kind])
        remaining = size - 1 - 1
        while _varint_size(remaining) != size - 1 - remaining:
            remaining -= 1
        add("mqtt.len", remaining)
        if b.get("packet_id") is not None:
            add("mqtt.msgid", b["packet_id"])
        props = list(b.get("properties") or [])
        if kind == "CONNECT":
            add("mqtt.ver", b["protocol_level"])
            add("mqtt.clientid", b["client_id"])
            add("mqtt.kalive", b["keep_alive"])
            add("mqtt.username", b["username"])
            add("mqtt.willtopic", b["will_topic"])
            add("mqtt.willmsg", b.get("will_payload") or b.get("will_message"))
            props += b.get("will_properties") or []
        elif kind == "CONNACK":
            if "return_code" in b:
                add("mqtt.conack.val", _code(mqtt.RETURN_CODE, b["return_code"]))
            else:
                add("mqtt.connack.reason_code", _code(mqtt5.CONNACK_REASON, b["reason_code"]))
        elif kind == "PUBLISH":
            add("mqtt.topic", b["topic"])
            add("mqtt.msg", b["payload"])
        elif kind == "SUBSCRIBE":
            add("mqtt.topic", *(t["filter"] for t in b["topics"]))
            if "options" in b["topics"][0]:
                opts = [t["options"] for t in b["topics"]]
                add("mqtt.subscription_options_qos", *(o["qos"] for o in opts))
                add("mqtt.subscription_options_rap", *(int(o["retain_as_published"]) for o in opts))
                add("mqtt.subscription_options_nl", *(int(o["no_local"]) for o in opts))
                add("mqtt.subscription_options_retain", *(o["retain_handling"] for o in opts))
            else:
                add("mqtt.sub.qos", *(t["qos"] for t in b["topics"]))
        elif kind == "SUBACK" and "return_codes" in b:
            add("mqtt.suback.qos", *b["return_codes"])
        elif kind == "SUBACK":
            add(
                "mqtt.suback.reason_code",
                *(_code(mqtt5.SUBACK_REASON, c) for c in b["reason_codes"]),
            )
        elif kind == "UNSUBSCRIBE":
            add("mqtt.topic", *b["topics"])
        elif kind == "DISCONNECT" and b.get("reason_code") is not None:
            add("mqtt.disconnect.reason_code", _code(mqtt5.DISCONNECT_REASON, b["reason_code"]))
        for p in props:
            add("mqtt.property_id", f"0x{_PROPERTY_IDS[p['id']]:02x}")
            if p["id"] == "user_property":
                add("mqtt.prop_key", p["value"]["name"])
                add("mqtt.prop_value", p["value"]["value"])
            elif p["id"] == "content_type":
                add("mqtt.property.content_type", p["value"])
            elif p["id"] not in _STRING_PROPERTIES and isinstance(p["value"], int):
                add("mqtt.prop_number", p["value"])
    return out


def write_pcap(path: Path, chunks: list[tuple[str, bytes]]) -> Path:
    """The recorded exchange as a capture on MQTT's port: one TCP segment per chunk read,
    every third chunk cut into 5-byte segments (packets split across segments)."""
    cap = Capture()
    tcp = Tcp(cap, ("127.0.0.1", 50123), ("127.0.0.1", mqtt.PORT))
    frames = tcp.handshake()
    for i, (side, data) in enumerate(chunks):
        frames += tcp.data(side, data, mss=5 if i % 3 == 2 else 1460)
    frames += tcp.close()
    for frame in frames:
        cap.add(frame)
    return cap.write(path)


@needs_tshark
def test_wirekit_parse_agrees_with_tshark(exchange: Exchange, tmp_path: Path) -> None:
    version = exchange.session.version
    path = write_pcap(tmp_path / f"mqtt{version}.pcap", exchange.chunks)
    streams = {side: b"".join(f for f, _ in exchange.packets[side]) for side in "cs"}
    _parse_and_compare(path, version, mqtt.PORT, streams)


def _parse_and_compare(path: Path, version: int, port: int, streams: dict[str, bytes]) -> None:
    """``wirekit parse`` of a capture against tshark's dissection of it, field for field."""
    schema = "schemas.mqtt5:PACKET" if version == 5 else "schemas.mqtt:PACKET"
    proc = subprocess.run(
        [sys.executable, "-m", "codec.cli", "parse", schema, str(path), "-q", "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    codec = codec_for(version)
    assert len(records) == sum(len(codec.decode_all(s)) for s in streams.values())
    # each packet's size, from where the next one starts in its direction
    ends = {"c2s": len(streams["c"]), "s2c": len(streams["s"])}
    sizes = []
    for i, rec in enumerate(records):
        later = [r["offset"] for r in records[i + 1 :] if r["direction"] == rec["direction"]]
        sizes.append((later[0] if later else ends[rec["direction"]]) - rec["offset"])
    theirs = fields(path, f"tcp.port=={port},mqtt", TSHARK_FIELDS)
    assert ours(records, sizes) == theirs


@needs_tshark
@needs_dumpcap
@pytest.mark.parametrize("version", [4, 5], ids=["mqtt311", "mqtt5"])
def test_a_real_loopback_capture_agrees_with_tshark(
    broker_port: int, tmp_path: Path, version: int
) -> None:
    """The exchange captured by dumpcap as it happens (the kernel's own segments and
    timing), between paho and the relay in front of mosquitto."""
    path = tmp_path / "lo.pcapng"
    with Relay(broker_port) as relay, LoopbackCapture(path, relay.port) as capture:
        run_session(relay.port, version, prefix=f"cap{version}/")
        assert relay.closed.wait(WAIT)
        streams = {side: relay.stream(side) for side in "cs"}
        capture.wait_for(len(streams["c"]), len(streams["s"]))
    _parse_and_compare(path, version, relay.port, streams)
