"""examples/mqtt_broker.py as a user runs it (a subprocess on ``--port 0``), against
paho-mqtt clients of both protocol versions (wildcards, QoS 1 acknowledgements, retained
messages, 5.0 user properties and subscription options, wills, client id takeover) and
against raw packets that break the rules (each answered as the specification says).

Every wait is bounded, and synchronised on an event: a paho callback, a packet, the end of
the connection. "Nothing else arrived" is shown with a sentinel: deliveries to one
subscriber keep their order, so once the sentinel published last has arrived, anything
published before it would have arrived first.
"""

from __future__ import annotations

import importlib.util
import logging
import queue
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio.from_thread
import paho.mqtt.client as paho
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from codec import Buffer, Codec, DecodeError, FrameTooLarge
from codec.testing import check_codec
from schemas import mqtt, mqtt5
from tests.schemas.mqtt_strategies import MQTT5_PACKETS, MQTT_PACKETS

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "mqtt_broker.py"
LOCAL = "127.0.0.1"
WAIT = 10.0


def load_example() -> Any:
    """The example as a module (it is a script, not part of a package)."""
    spec = importlib.util.spec_from_file_location("mqtt_broker_example", EXAMPLE)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


broker = load_example()


# -- the broker as a subprocess -------------------------------------------------------------
@pytest.fixture(scope="module")
def port() -> Iterator[int]:
    proc = subprocess.Popen(
        [sys.executable, str(EXAMPLE), "--host", LOCAL, "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(out.readline()), daemon=True)
    reader.start()
    reader.join(WAIT)
    try:
        assert lines, "the broker printed nothing"
        assert lines[0].startswith(f"listening on {LOCAL}:"), lines
        yield int(lines[0].strip().rpartition(":")[2])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            status: int | None = proc.wait(WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(WAIT)
            status = None
        out.close()
    assert status == 0, "the broker did not shut down cleanly on SIGTERM"


# -- paho clients -----------------------------------------------------------------------------
class Paho:
    """A connected paho client whose callbacks feed queues; every wait is bounded."""

    def __init__(
        self,
        port: int,
        version: int,
        client_id: str = "",
        *,
        will: tuple[str, bytes] | None = None,
    ) -> None:
        self.v5 = version == 5
        protocol = paho.MQTTv5 if self.v5 else paho.MQTTv311
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol
        )
        self.messages: queue.Queue[Any] = queue.Queue()
        self.acks: queue.Queue[tuple[str, Any, Any]] = queue.Queue()
        self.client.on_message = lambda c, u, m: self.messages.put(m)
        self.client.on_connect = lambda c, u, f, rc, props: self.acks.put(("connect", rc, props))
        self.client.on_subscribe = lambda c, u, mid, rcs, props: self.acks.put(
            ("subscribe", mid, rcs)
        )
        self.client.on_unsubscribe = lambda c, u, mid, rcs, props: self.acks.put(
            ("unsubscribe", mid, rcs)
        )
        self.client.on_disconnect = lambda c, u, f, rc, props: self.acks.put(
            ("disconnect", rc, props)
        )
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1)
        self.client.connect(LOCAL, port, keepalive=60)
        self.client.loop_start()
        _, rc, self.connack_properties = self.wait("connect")
        assert not rc.is_failure, rc

    def wait(self, kind: str) -> tuple[str, Any, Any]:
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                event = self.acks.get(timeout=left)
            except queue.Empty:
                break
            if event[0] == kind:
                return event
        raise TimeoutError(f"no {kind} within {WAIT} s")

    def subscribe(self, topic_filter: str, qos: int, **options: Any) -> list[Any]:
        if self.v5:
            props = None
            sub_id = options.pop("identifier", None)
            if sub_id is not None:
                props = Properties(PacketTypes.SUBSCRIBE)
                props.SubscriptionIdentifier = sub_id
            opts = SubscribeOptions(qos=qos, **options)
            _, mid = self.client.subscribe(topic_filter, options=opts, properties=props)
        else:
            _, mid = self.client.subscribe(topic_filter, qos)
        _, got, codes = self.wait("subscribe")
        assert got == mid
        return list(codes)

    def unsubscribe(self, topic_filter: str) -> None:
        _, mid = self.client.unsubscribe(topic_filter)
        assert self.wait("unsubscribe")[1] == mid

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int = 0,
        retain: bool = False,
        user: list[tuple[str, str]] | None = None,
    ) -> None:
        props = None
        if user:
            props = Properties(PacketTypes.PUBLISH)
            props.UserProperty = user
        info = self.client.publish(topic, payload, qos=qos, retain=retain, properties=props)
        if qos:
            info.wait_for_publish(WAIT)
            assert info.is_published(), f"no PUBACK for {topic}"

    def receive(self) -> Any:
        return self.messages.get(timeout=WAIT)

    def until(self, sentinel: str) -> list[Any]:
        """Every message up to the one on topic ``sentinel`` (left out)."""
        got = []
        while (m := self.receive()).topic != sentinel:
            got.append(m)
        return got

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def clients(port: int) -> Iterator[Any]:
    """A factory of paho clients, all disconnected at the end."""
    made: list[Paho] = []

    def make(version: int, client_id: str = "", **kw: Any) -> Paho:
        made.append(Paho(port, version, client_id, **kw))
        return made[-1]

    yield make
    for c in made:
        c.close()


def _user(m: Any) -> list[tuple[str, str]]:
    return list(getattr(m.properties, "UserProperty", []) or [])


@pytest.mark.parametrize("pub_version", [4, 5], ids=["pub311", "pub5"])
def test_wildcards_and_qos(clients: Any, pub_version: int) -> None:
    """4.7: ``+`` is one level, ``#`` any number including the parent; each subscriber
    gets a message at the lower of the publication's and its subscription's QoS."""
    p = f"wild{pub_version}"
    one_level = clients(4)
    assert one_level.subscribe(f"{p}/+/temp", 1) == [1]
    multi = clients(5)
    assert [int(c.value) for c in multi.subscribe(f"{p}/#", 0)] == [0]
    pub = clients(pub_version)
    for topic, qos in [
        (f"{p}/kitchen/temp", 1),
        (f"{p}/kitchen/humidity", 1),
        (p, 0),  # the parent level: matched by "p/#"
        (f"{p}/a/b/temp", 0),  # two levels: not matched by "p/+/temp"
        (f"{p}/end/temp", 0),  # the sentinel
    ]:
        pub.publish(topic, topic.encode(), qos)
    got: list[tuple[Any, ...]] = [
        (m.topic, m.payload, m.qos, m.retain) for m in one_level.until(f"{p}/end/temp")
    ]
    assert got == [(f"{p}/kitchen/temp", f"{p}/kitchen/temp".encode(), 1, False)]
    got = [(m.topic, m.qos) for m in multi.until(f"{p}/end/temp")]
    assert got == [
        (f"{p}/kitchen/temp", 0),
        (f"{p}/kitchen/humidity", 0),
        (p, 0),
        (f"{p}/a/b/temp", 0),
    ]


@pytest.mark.parametrize("version", [4, 5])
def test_retained_messages(clients: Any, version: int) -> None:
    """3.3.1.3: the last retained message of a topic is kept (a new one replaces it, an
    empty one clears it) and delivered on subscribe with RETAIN set; subscribers already
    there get it with RETAIN clear."""
    p = f"retain{version}"
    pub = clients(version)
    watcher = clients(version)
    watcher.subscribe(f"{p}/#", 1)
    pub.publish(f"{p}/a", b"one", qos=1, retain=True)
    pub.publish(f"{p}/a", b"two", qos=1, retain=True)  # replaces "one"
    pub.publish(f"{p}/b", b"kept", qos=0, retain=True)
    pub.publish(f"{p}/end", b"", qos=0)
    assert [(m.payload, m.retain) for m in watcher.until(f"{p}/end")] == [
        (b"one", False),
        (b"two", False),
        (b"kept", False),
    ]
    late = clients(version)
    late.subscribe(f"{p}/+", 1)
    got = sorted((m.topic, m.payload, m.retain, m.qos) for m in (late.receive(), late.receive()))
    assert got == [(f"{p}/a", b"two", True, 1), (f"{p}/b", b"kept", True, 0)]
    pub.publish(f"{p}/a", b"", qos=1, retain=True)  # clears the topic
    later = clients(version)
    later.subscribe(f"{p}/+", 1)
    pub.publish(f"{p}/end", b"", qos=0)
    assert [(m.topic, m.payload, m.retain) for m in later.until(f"{p}/end")] == [
        (f"{p}/b", b"kept", True)
    ]


def test_user_properties_arrive_intact_in_order(clients: Any) -> None:
    """5.0 3.3.2.3.7: the server forwards user properties unchanged and in order (repeats
    included) to 5.0 subscribers; a 3.1.1 subscriber gets the message without them."""
    user = [("a", "1"), ("b", "2"), ("a", "3"), ("ключ", "значение")]
    v5_sub = clients(5)
    v5_sub.subscribe("props/+", 1, identifier=42)
    v3_sub = clients(4)
    v3_sub.subscribe("props/+", 1)
    clients(5).publish("props/x", b"payload", qos=1, user=user)
    m = v5_sub.receive()
    assert (m.topic, m.payload, m.qos) == ("props/x", b"payload", 1)
    assert _user(m) == user
    assert m.properties.SubscriptionIdentifier == [42]  # 3.3.4: the subscription's id
    m = v3_sub.receive()
    assert (m.topic, m.payload, m.qos) == ("props/x", b"payload", 1)


def test_no_local_and_retain_as_published(clients: Any) -> None:
    """5.0 3.8.3.1: no-local keeps a client's own messages from it; retain-as-published
    keeps the RETAIN flag on forwarded messages."""
    me = clients(5)
    me.subscribe("nl/own", 0, noLocal=True)
    me.subscribe("nl/rap", 0, retainAsPublished=True)
    me.publish("nl/own", b"mine", qos=1)  # not delivered back
    me.publish("nl/rap", b"kept flag", qos=1, retain=True)  # (QoS 1: done before "theirs")
    clients(5).publish("nl/own", b"theirs")
    got = [(m.topic, m.payload, m.retain) for m in (me.receive(), me.receive())]
    assert got == [("nl/rap", b"kept flag", True), ("nl/own", b"theirs", False)]
    clients(5).publish("nl/rap", b"", retain=True)  # leave no retained message behind


def test_overlapping_subscriptions_get_one_copy(clients: Any) -> None:
    """5.0 3.3.4: one copy at the highest QoS of the matching subscriptions, carrying all
    their identifiers."""
    me = clients(5)
    me.subscribe("ov/#", 0, identifier=1)
    me.subscribe("ov/+", 1, identifier=2)
    clients(5).publish("ov/x", b"once", qos=1)
    clients(5).publish("ov/end", b"")
    [m] = me.until("ov/end")
    assert (m.topic, m.payload, m.qos) == ("ov/x", b"once", 1)
    assert sorted(m.properties.SubscriptionIdentifier) == [1, 2]


def test_unsubscribe_stops_delivery(clients: Any) -> None:
    me = clients(4)
    me.subscribe("un/a", 0)
    me.subscribe("un/end", 0)
    me.unsubscribe("un/a")
    pub = clients(4)
    pub.publish("un/a", b"not for me", qos=1)
    pub.publish("un/end", b"")
    assert me.until("un/end") == []


def test_qos2_from_a_client(clients: Any, port: int) -> None:
    """4.3.3: a QoS 2 PUBLISH gets PUBREC (each time it is sent), is passed on once, and
    PUBREL gets PUBCOMP; subscribers get it at their QoS (at most 1 here)."""
    watcher = clients(5)
    watcher.subscribe("q2/#", 2)
    clients(5).publish("q2/paho", b"exactly once", qos=2)  # paho waits for PUBCOMP
    m = watcher.receive()
    assert (m.topic, m.payload, m.qos) == ("q2/paho", b"exactly once", 1)
    raw = raw_connect(port, 4, client_id="q2raw")
    body = {"topic": "q2/raw", "packet_id": 5, "payload": b"once"}
    raw.send("PUBLISH", body, qos=2)
    assert raw.recv().header.type == "PUBREC"
    raw.send("PUBLISH", body, qos=2, dup=True)  # resent: PUBREC again, not passed on again
    assert raw.recv().header.type == "PUBREC"
    raw.send("PUBREL", {"packet_id": 5}, qos=1)
    comp = raw.recv()
    assert (comp.header.type, comp.body.packet_id) == ("PUBCOMP", 5)
    clients(5).publish("q2/end", b"")
    assert [(m.topic, m.payload) for m in watcher.until("q2/end")] == [("q2/raw", b"once")]


def test_message_expiry_is_counted_down(clients: Any) -> None:
    """5.0 3.3.2.3.3: the server sends what is left of the Message Expiry Interval."""
    me = clients(5)
    me.subscribe("exp/#", 1)
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = 100
    info = clients(5).client.publish("exp/x", b"soon stale", qos=1, properties=props)
    info.wait_for_publish(WAIT)
    m = me.receive()
    assert 99 <= m.properties.MessageExpiryInterval <= 100


def test_paho_speaking_mqtt31_is_refused(port: int) -> None:
    """3.1.1 3.1.2.2: MQTT 3.1 (protocol level 3, "MQIsdp") is not served: paho hears
    CONNACK 0x01 (unacceptable protocol version)."""
    events: queue.Queue[Any] = queue.Queue()
    client = paho.Client(CallbackAPIVersion.VERSION2, "old", protocol=paho.MQTTv31)
    client.on_connect = lambda c, u, flags, rc, props: events.put(rc)
    client.connect(LOCAL, port, keepalive=60)
    client.loop_start()
    try:
        rc = events.get(timeout=WAIT)
    finally:
        client.disconnect()
        client.loop_stop()
    assert rc.is_failure
    assert str(rc) == "Unsupported protocol version"  # (paho's name for 3.1.1's 0x01)


def test_session_expiry_is_overridden(port: int) -> None:
    """5.0 3.2.2.3.2: sessions end with their connection here; a client asking for more
    is told so in CONNACK."""
    raw = Raw(port, 5)
    props = [mqtt5.prop("session_expiry_interval", 3600)]
    raw.send("CONNECT", connect_body(5, "expiry", properties=props))
    ack = raw.recv()
    assert ack.body.reason_code == "success"
    assert ack.body.flags.session_present is False
    assert mqtt5.property_value(ack.body.properties, "session_expiry_interval") == 0


def test_assigned_client_identifier(clients: Any) -> None:
    """5.0 3.2.2.3.7: an empty client id gets one assigned, in CONNACK's properties."""
    c = clients(5, "")
    assert c.connack_properties.AssignedClientIdentifier.startswith("wirekit-")


@pytest.mark.parametrize("version", [4, 5])
def test_will_on_abnormal_exit_only(clients: Any, port: int, version: int) -> None:
    """3.1.2.5: the will is published when the connection ends without DISCONNECT, not
    after one."""
    watcher = clients(4)
    watcher.subscribe(f"will{version}/#", 1)
    polite = Paho(port, version, f"polite{version}", will=(f"will{version}/polite", b"x"))
    polite.close()
    rude = raw_connect(port, version, will=(f"will{version}/rude", b"gone"))
    rude.sock.close()  # no DISCONNECT
    m = watcher.receive()
    assert (m.topic, m.payload) == (f"will{version}/rude", b"gone")


def test_client_id_takeover(clients: Any, port: int) -> None:
    """5.0 3.1.4: a second connection with the same client id takes over; the first gets
    DISCONNECT 0x8E (session taken over) and is closed."""
    first = raw_connect(port, 5, client_id="same")
    clients(5, "same")
    [disconnect] = first.read_until_closed()
    assert disconnect.header.type == "DISCONNECT"
    assert disconnect.body.reason_code == "session_taken_over"


# -- raw packets ---------------------------------------------------------------------------
class Raw:
    """A plain socket speaking one protocol level through wirekit's codec (closed at the
    end of the test at the latest)."""

    opened: list[Raw] = []

    def __init__(self, port: int, version: int) -> None:
        self.codec: Codec[Any] = mqtt5.CODEC if version == 5 else mqtt.CODEC
        self.version = version
        self.sock = socket.create_connection((LOCAL, port), timeout=WAIT)
        self.buf = Buffer()
        Raw.opened.append(self)

    def send(
        self, kind: str, body: dict[str, Any], qos: int = 0, retain: bool = False, dup: bool = False
    ) -> None:
        header = {"type": kind, "dup": dup, "qos": qos, "retain": retain}
        self.sock.sendall(self.codec.encode({"header": header, "body": body}))

    def recv(self) -> Any:
        while (msg := self.codec.decode(self.buf)) is None:
            data = self.sock.recv(65536)
            assert data, "closed before a whole packet came"
            self.buf.extend(data)
        return msg

    def read_until_closed(self) -> list[Any]:
        """Every packet until the server closes the connection (bounded by the socket's
        timeout)."""
        while data := self.sock.recv(65536):
            self.buf.extend(data)
        packets = self.codec.decode_all(bytes(self.buf))
        self.sock.close()
        return packets


@pytest.fixture(autouse=True)
def _close_raw_sockets() -> Iterator[None]:
    yield
    while Raw.opened:
        Raw.opened.pop().sock.close()


def connect_body(version: int, client_id: str, **kw: Any) -> dict[str, Any]:
    will = kw.pop("will", None)
    flags = {
        "username": False,
        "password": False,
        "will_retain": False,
        "will_qos": 1 if will else 0,
        "will": will is not None,
        "reserved": 0,
        ("clean_start" if version == 5 else "clean_session"): kw.pop("clean", True),
    }
    body: dict[str, Any] = {
        "protocol_name": "MQTT",
        "protocol_level": version,
        "flags": flags,
        "keep_alive": kw.pop("keep_alive", 60),
        "client_id": client_id,
        "will_topic": will[0] if will else None,
        ("will_payload" if version == 5 else "will_message"): will[1] if will else None,
        "username": None,
        "password": None,
    }
    if version == 5:
        body["properties"] = kw.pop("properties", [])
        body["will_properties"] = [] if will else None
    return body


def raw_connect(port: int, version: int, client_id: str = "raw", **kw: Any) -> Raw:
    raw = Raw(port, version)
    raw.send("CONNECT", connect_body(version, client_id, **kw))
    ack = raw.recv()
    assert ack.header.type == "CONNACK"
    assert ack.body.get("reason_code", ack.body.get("return_code")) in ("success", "accepted")
    return raw


def test_pingreq(port: int) -> None:
    for version in (4, 5):
        raw = raw_connect(port, version)
        raw.send("PINGREQ", {})
        assert raw.recv().header.type == "PINGRESP"
        raw.send("DISCONNECT", {"reason_code": None, "properties": None} if version == 5 else {})
        assert raw.read_until_closed() == []


def _closed_with(port: int, wire: bytes, version: int = 5, connect: bool = True) -> list[Any]:
    """Send ``wire`` (after a CONNECT, unless ``connect=False``); the packets the broker
    sent before closing the connection."""
    raw = raw_connect(port, version) if connect else Raw(port, version)
    raw.sock.sendall(wire)
    return raw.read_until_closed()


def _reason(packets: list[Any]) -> list[tuple[str, Any]]:
    return [
        (str(p.header.type), p.body.get("reason_code", p.body.get("return_code"))) for p in packets
    ]


V3_CONNECT = b"\x10\x0e\x00\x04MQTT\x04\x02\x00\x3c\x00\x02id"
# (wire bytes, protocol level of the session, expected packets before the close)
VIOLATIONS = [
    # 3.1: the first packet must be CONNECT: closed at once, nothing said
    ("first packet not CONNECT", b"\xc0\x00", 4, False, []),
    # 3.1.1 3.1.2.2: an unsupported level (3 is MQTT 3.1) gets CONNACK 0x01, then close
    (
        "MQTT 3.1",
        b"\x10\x10\x00\x06MQIsdp\x03\x02\x00\x3c\x00\x02id",
        4,
        False,
        [("CONNACK", "unacceptable_protocol_version")],
    ),
    (
        "level 6",
        V3_CONNECT.replace(b"MQTT\x04", b"MQTT\x06"),
        4,
        False,
        [("CONNACK", "unacceptable_protocol_version")],
    ),
    # 3.1.2.1: another protocol name: just closed
    ("protocol name", V3_CONNECT.replace(b"MQTT", b"MQTX"), 4, False, []),
    # 3.1.1 3.1.3.1: an empty client id needs a clean session
    (
        "empty id, no clean session",
        b"\x10\x0c\x00\x04MQTT\x04\x00\x00\x3c\x00\x00",
        4,
        False,
        [("CONNACK", "identifier_rejected")],
    ),
    # 2.2.3 / 2.1.4: a fifth Remaining Length byte is malformed
    ("five length bytes", b"\x30\xff\xff\xff\xff\x01", 5, True, []),
    # 5.0 4.13: a malformed packet (an unknown property id) -> DISCONNECT 0x81
    (
        "unknown property",
        b"\x30\x07\x00\x01t\x02\x04\x00x",
        5,
        True,
        [("DISCONNECT", "malformed_packet")],
    ),
    ("malformed 3.1.1", b"\x82\x06\x00\x0a\x00\x03a/", 4, True, []),
    # 3.1: a second CONNECT is a protocol error
    (
        "second CONNECT",
        mqtt5.CODEC.encode(
            {
                "header": {"type": "CONNECT", "dup": False, "qos": 0, "retain": False},
                "body": connect_body(5, "x"),
            }
        ),
        5,
        True,
        [("DISCONNECT", "protocol_error")],
    ),
    # 3.3.1.2: QoS 3
    ("QoS 3", b"\x36\x06\x00\x01t\x00\x01\x00", 5, True, [("DISCONNECT", "malformed_packet")]),
    # 3.3.2.1: a topic name with a wildcard
    ("wildcard topic", b"\x30\x05\x00\x01#\x00x", 5, True, [("DISCONNECT", "topic_name_invalid")]),
    ("wildcard topic 3.1.1", b"\x30\x04\x00\x01+x", 4, True, []),
    # 2.1.3: SUBSCRIBE's flags must be 0010
    (
        "SUBSCRIBE flags",
        b"\x80\x08\x00\x0a\x00\x00\x02a/\x01",
        5,
        True,
        [("DISCONNECT", "malformed_packet")],
    ),
    # a packet only a server sends
    ("CONNACK from a client", b"\x20\x03\x00\x00\x00", 5, True, [("DISCONNECT", "protocol_error")]),
    # 3.2.2.3.8: topic alias maximum is 0 here
    (
        "topic alias",
        b"\x30\x08\x00\x01t\x03\x23\x00\x01x",
        5,
        True,
        [("DISCONNECT", "topic_alias_invalid")],
    ),
    # 5.0 4.12: enhanced authentication is not offered
    (
        "authentication method",
        mqtt5.CODEC.encode(
            {
                "header": {"type": "CONNECT", "dup": False, "qos": 0, "retain": False},
                "body": connect_body(
                    5, "x", properties=[mqtt5.prop("authentication_method", "SCRAM-SHA-1")]
                ),
            }
        ),
        5,
        False,
        [("CONNACK", "bad_authentication_method")],
    ),
]


@pytest.mark.parametrize(
    ("wire", "version", "connect", "expected"),
    [v[1:] for v in VIOLATIONS],
    ids=[v[0] for v in VIOLATIONS],
)
def test_protocol_violations(
    port: int, wire: bytes, version: int, connect: bool, expected: list[tuple[str, Any]]
) -> None:
    assert _reason(_closed_with(port, wire, version, connect)) == expected


def test_invalid_topic_filter_is_refused_in_suback(port: int) -> None:
    """4.7.1: "a/#/b" is not a filter; SUBACK says so (0x80 / 0x8F) and the session goes on."""
    for version in (4, 5):
        raw = raw_connect(port, version)
        if version == 5:
            opts = {
                "reserved": 0,
                "retain_handling": 0,
                "retain_as_published": False,
                "no_local": False,
                "qos": 1,
            }
            body: dict[str, Any] = {
                "packet_id": 3,
                "properties": [],
                "topics": [
                    {"filter": "a/#/b", "options": opts},
                    {"filter": "a/+", "options": opts},
                ],
            }
        else:
            body = {
                "packet_id": 3,
                "topics": [{"filter": "a/#/b", "qos": 1}, {"filter": "a/+", "qos": 1}],
            }
        raw.send("SUBSCRIBE", body, qos=1)
        ack = raw.recv()
        codes = ack.body.reason_codes if version == 5 else ack.body.return_codes
        assert [int(c) for c in codes] == [0x8F if version == 5 else 0x80, 1]
        raw.send("PINGREQ", {})
        assert raw.recv().header.type == "PINGRESP"


def test_a_client_maximum_packet_size_is_respected(clients: Any, port: int) -> None:
    """5.0 3.1.2.11.4: a message too big for the client's Maximum Packet Size is not sent
    to it (discarded); shared subscriptions are refused in SUBACK (0x9E)."""
    raw = raw_connect(port, 5, "small", properties=[mqtt5.prop("maximum_packet_size", 64)])
    opts = {"reserved": 0, "retain_handling": 0, "retain_as_published": False}
    opts |= {"no_local": False, "qos": 0}
    topics = [{"filter": "big/+", "options": opts}, {"filter": "$share/g/big/+", "options": opts}]
    raw.send("SUBSCRIBE", {"packet_id": 1, "properties": [], "topics": topics}, qos=1)
    codes = raw.recv().body.reason_codes
    assert codes == ["granted_qos_0", "shared_subscriptions_not_supported"]
    pub = clients(5)
    pub.publish("big/a", bytes(100), qos=1)
    pub.publish("big/b", b"fits", qos=1)
    m = raw.recv()
    assert (m.body.topic, m.body.payload) == ("big/b", b"fits")


def test_a_client_receive_maximum_is_respected(clients: Any, port: int) -> None:
    """5.0 3.1.2.11.3 and 4.9: no more unacknowledged QoS 1 deliveries than the client's
    Receive Maximum; the rest wait, in order, for PUBACKs. (QoS 0 is not counted: the QoS 0
    sentinel overtaking the held messages shows that they were held.)"""
    raw = raw_connect(port, 5, "one-at-a-time", properties=[mqtt5.prop("receive_maximum", 1)])
    opts = {"reserved": 0, "retain_handling": 0, "retain_as_published": False}
    opts |= {"no_local": False, "qos": 1}
    topics = [{"filter": "rm/+", "options": opts}]
    raw.send("SUBSCRIBE", {"packet_id": 1, "properties": [], "topics": topics}, qos=1)
    assert raw.recv().header.type == "SUBACK"
    pub = clients(5)
    for i in range(3):
        pub.publish("rm/q1", b"%d" % i, qos=1)
    pub.publish("rm/end", b"", qos=0)
    got = [raw.recv(), raw.recv()]
    assert [(p.body.topic, p.body.payload, p.header.qos) for p in got] == [
        ("rm/q1", b"0", 1),
        ("rm/end", b"", 0),
    ]
    for i in (1, 2):
        raw.send(
            "PUBACK", {"packet_id": got[0].body.packet_id, "reason_code": None, "properties": None}
        )
        got[0] = raw.recv()
        assert (got[0].body.topic, got[0].body.payload) == ("rm/q1", b"%d" % i)
    refused = Raw(port, 5)
    bad = [mqtt5.prop("receive_maximum", 0)]
    refused.send("CONNECT", connect_body(5, "zero", properties=bad))
    assert _reason(refused.read_until_closed()) == [("CONNACK", "protocol_error")]


def test_keep_alive(port: int) -> None:
    """3.1.2.10: nothing for 1.5 times the keep alive closes the connection; a 5.0 client
    hears 0x8D first."""
    raw = raw_connect(port, 5, client_id="sleepy", keep_alive=1)
    start = time.monotonic()
    assert _reason(raw.read_until_closed()) == [("DISCONNECT", "keep_alive_timeout")]
    assert time.monotonic() - start >= 1.5


# -- the framing protocol ------------------------------------------------------------------
def test_packet_frames_passes_check_codec() -> None:
    """The hand-written frame cutter, fuzzed like any codec: whole packets of both
    versions as values (bytes in, the same bytes out)."""
    frames = broker.PacketFrames(max_packet_size=4096)
    packets = st.one_of(
        st.one_of(*MQTT_PACKETS.values()).map(mqtt.CODEC.encode),
        st.one_of(*MQTT5_PACKETS.values()).map(mqtt5.CODEC.encode),
    )
    check_codec(frames, packets, max_examples=30)


def test_packet_frames_limits() -> None:
    frames = broker.PacketFrames(max_packet_size=100)
    with pytest.raises(FrameTooLarge):
        frames.decode(Buffer(b"\x30\xff\x01"))  # 255 bytes announced
    with pytest.raises(DecodeError):
        frames.decode(Buffer(b"\x30\x80\x80\x80\x80\x01"))
    assert frames.decode(Buffer(b"\x30\x80")) is None  # the length is not all there


@pytest.mark.parametrize(
    ("topic_filter", "topic", "match"),
    [  # 4.7.1.2, 4.7.1.3 and 4.7.2's examples
        ("sport/tennis/player1/#", "sport/tennis/player1", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/ranking", True),
        ("sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", True),
        ("sport/#", "sport", True),
        ("#", "anything/at/all", True),
        ("sport/tennis/+", "sport/tennis/player1", True),
        ("sport/tennis/+", "sport/tennis/player1/ranking", False),
        ("sport/+", "sport", False),
        ("sport/+", "sport/", True),
        ("+/+", "/finance", True),
        ("/+", "/finance", True),
        ("+", "/finance", False),
        ("#", "$SYS/uptime", False),
        ("+/monitor/Clients", "$SYS/monitor/Clients", False),
        ("$SYS/#", "$SYS/uptime", True),
        ("$SYS/monitor/+", "$SYS/monitor/Clients", True),
    ],
)
def test_topic_matching(topic_filter: str, topic: str, match: bool) -> None:
    assert broker.valid_filter(topic_filter)
    assert broker.matches(topic_filter, topic) is match


@pytest.mark.parametrize("bad", ["sport/tennis#", "sport/tennis/#/ranking", "sport+", "", "a/b+/c"])
def test_invalid_filters(bad: str) -> None:
    assert not broker.valid_filter(bad)


# -- hostile packets ---------------------------------------------------------------------------
def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        n, byte = n >> 7, n & 0x7F
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _mutants(rng: random.Random, frame: bytes) -> bytes:
    """``frame``'s first byte and body broken in one of several ways (or left whole), with
    a Remaining Length that matches the new body (so that the broker always has a whole
    packet)."""
    first, body = frame[0], frame[1 + len(_varint(len(frame) - 2)) :]
    how = rng.randrange(8)
    if how >= 5:  # left as it is (odd values, but a valid packet)
        pass
    elif how == 0 and body:  # truncated
        body = body[: rng.randrange(len(body))]
    elif how == 1 and body:  # bits flipped
        b = bytearray(body)
        for _ in range(rng.randint(1, 3)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
        body = bytes(b)
    elif how == 2:  # trailing bytes
        body += rng.randbytes(rng.randint(1, 4))
    elif how == 3:  # another type or other flags
        first = rng.randrange(256)
    else:  # a random body
        body = rng.randbytes(rng.randrange(12))
    return bytes([first]) + _varint(len(body)) + body


class _Errors(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def in_process() -> Iterator[tuple[int, _Errors]]:
    """The broker in this process (asyncio, in a thread), with its error log collected."""
    errors = _Errors()
    log = logging.getLogger("mqtt_broker")
    log.addHandler(errors)
    try:
        with (
            anyio.from_thread.start_blocking_portal() as portal,
            portal.wrap_async_context_manager(broker.running(LOCAL, 0)) as server,
        ):
            yield server.port, errors
    finally:
        log.removeHandler(errors)


_OUTCOMES: Counter[str] = Counter()


@settings(max_examples=150, deadline=None, derandomize=True)
@given(
    packet=st.one_of(
        st.tuples(st.just(4), st.one_of(*MQTT_PACKETS.values()).map(mqtt.CODEC.encode)),
        st.tuples(st.just(5), st.one_of(*MQTT5_PACKETS.values()).map(mqtt5.CODEC.encode)),
    ),
    seed=st.integers(0, 2**32),
)
def test_the_broker_survives_hostile_packets(
    in_process: tuple[int, _Errors], packet: tuple[int, bytes], seed: int
) -> None:
    """A valid packet of any type, broken on purpose, sent on its own connection after a
    CONNECT and followed by a PINGREQ: the broker answers (PINGRESP) or closes the
    connection, and never fails (no PROCESS_EXCEPTION or INTERNAL_EXCEPTION logged)."""
    port, errors = in_process
    version, frame = packet
    raw = raw_connect(port, version, client_id="hostile")
    raw.sock.sendall(_mutants(random.Random(seed), frame) + b"\xc0\x00")
    try:
        while raw.recv().header.type != "PINGRESP":
            pass
        _OUTCOMES["answered"] += 1
    except AssertionError:  # closed before a PINGRESP
        _OUTCOMES["closed"] += 1
    finally:
        raw.sock.close()
    assert [r.getMessage() for r in errors.records] == []


def test_the_broker_still_serves_after_hostile_packets(in_process: tuple[int, _Errors]) -> None:
    """(after the test above, in the same broker) both outcomes happened, and a paho
    client is served as usual."""
    port, errors = in_process
    if _OUTCOMES:  # (when the test above ran)
        assert _OUTCOMES["answered"] > 0
        assert _OUTCOMES["closed"] > 0
    client = Paho(port, 5, "after-the-storm")
    try:
        assert [int(c.value) for c in client.subscribe("calm/#", 1)] == [1]
    finally:
        client.close()
    assert errors.records == []
