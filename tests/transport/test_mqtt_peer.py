"""A real MQTT client (paho-mqtt, from PyPI) against a wirekit server speaking
``schemas.mqtt.PACKET``: the schema, the codec and the transport with a peer we did not
write, on every engine and backend, loopback only. Then ``examples/mqtt_broker.py`` run
in-process the same way, with 3.1.1 and 5.0 clients."""

from __future__ import annotations

import importlib.util
import queue
import sys
import threading
from pathlib import Path
from typing import Any

import anyio
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from codec import Codec
from schemas import mqtt
from transport import Processor, Server, Session

pytestmark = pytest.mark.anyio

LOCAL = "127.0.0.1"


def _packet(kind: str, body: dict[str, Any], qos: int = 0) -> dict[str, Any]:
    return {"header": {"type": kind, "dup": False, "qos": qos, "retain": False}, "body": body}


class Broker(Processor[Any]):
    """Just enough of an MQTT 3.1.1 server: accept every client, grant every subscription
    with a single-level ``#`` filter, acknowledge QoS 1, deliver publishes at QoS 0."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self.filters: dict[Session[Any], list[str]] = {}
        self.disconnected = anyio.Event()

    async def process(self, session: Session[Any], msg: Any) -> None:
        self.received.append(msg)
        kind = msg.header.type
        body = msg.body
        if kind == "CONNECT":
            ack = {"flags": {"session_present": False}, "return_code": "accepted"}
            await session.send(_packet("CONNACK", ack))
        elif kind == "SUBSCRIBE":
            self.filters.setdefault(session, []).extend(t.filter for t in body.topics)
            codes = [min(t.qos, 1) for t in body.topics]
            await session.send(
                _packet("SUBACK", {"packet_id": body.packet_id, "return_codes": codes})
            )
        elif kind == "PUBLISH":
            if msg.header.qos == 1:
                await session.send(_packet("PUBACK", {"packet_id": body.packet_id}))
            for other, filters in list(self.filters.items()):
                if any(body.topic.startswith(f.rstrip("#")) for f in filters):
                    delivery = {"topic": body.topic, "packet_id": None, "payload": body.payload}
                    await other.send(_packet("PUBLISH", delivery))
        elif kind == "PINGREQ":
            await session.send(_packet("PINGRESP", {}))
        elif kind == "DISCONNECT":
            self.filters.pop(session, None)
            self.disconnected.set()
            await session.close()


def run_paho_client(port: int) -> list[tuple[str, bytes | bytearray]]:
    """Connect, subscribe, publish at QoS 0 and 1, receive both back, disconnect: every
    step waited for with a bounded timeout."""
    got: queue.Queue[tuple[str, bytes | bytearray]] = queue.Queue()
    subscribed = threading.Event()
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id="wirekit-test")
    client.on_message = lambda c, u, m: got.put((m.topic, m.payload))
    client.on_subscribe = lambda c, u, mid, codes, props: subscribed.set()
    client.connect(LOCAL, port, keepalive=30)
    client.loop_start()
    try:
        client.subscribe("t/#", qos=1)
        assert subscribed.wait(10), "no SUBACK"
        client.publish("t/zero", b"qos 0", qos=0)
        info = client.publish("t/one", b"qos 1" * 100, qos=1)
        info.wait_for_publish(timeout=10)
        assert info.is_published(), "no PUBACK"
        messages = [got.get(timeout=10) for _ in range(2)]
    finally:
        client.disconnect()
        client.loop_stop()
    return messages


async def test_paho_client_connects_subscribes_and_publishes(engine: dict[str, Any]) -> None:
    broker = Broker()
    codec = Codec(mqtt.PACKET, max_frame_size=1 << 20)
    with anyio.fail_after(30):
        async with Server(codec, broker, host=LOCAL, port=0, **engine) as server:
            messages = await anyio.to_thread.run_sync(run_paho_client, server.port)
            await broker.disconnected.wait()  # paho's DISCONNECT may still be in flight
    assert messages == [("t/zero", b"qos 0"), ("t/one", b"qos 1" * 100)]
    kinds = [m.header.type for m in broker.received]
    assert kinds == ["CONNECT", "SUBSCRIBE", "PUBLISH", "PUBLISH", "DISCONNECT"]
    connect = broker.received[0].body
    assert (connect.protocol_name, connect.protocol_level) == ("MQTT", 4)
    assert connect.client_id == "wirekit-test"
    assert connect.keep_alive == 30
    assert connect.flags.clean_session
    published = broker.received[3]
    assert published.header.qos == 1
    assert published.body.packet_id is not None
    assert published.body.payload == b"qos 1" * 100


# -- examples/mqtt_broker.py in-process, on every backend and engine ---------------------------
def _load_broker_example() -> Any:
    path = Path(__file__).resolve().parents[2] / "examples" / "mqtt_broker.py"
    spec = importlib.util.spec_from_file_location("mqtt_broker_example_inprocess", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # (dataclasses look their module up)
    spec.loader.exec_module(module)
    return module


broker_example = _load_broker_example()


def run_paho_v5_clients(port: int) -> tuple[list[Any], list[Any]]:
    """A 5.0 subscriber and a 3.1.1 subscriber; a 5.0 client publishes with repeated user
    properties at QoS 1 and 0. What each subscriber received."""
    user = [("k", "1"), ("k", "2"), ("z", "3")]
    subscribers = []
    received: list[queue.Queue[Any]] = []
    try:
        for protocol in (paho.MQTTv5, paho.MQTTv311):
            got: queue.Queue[Any] = queue.Queue()
            subscribed = threading.Event()
            c = paho.Client(CallbackAPIVersion.VERSION2, protocol=protocol)
            c.on_message = lambda cl, u, m, got=got: got.put(m)
            c.on_subscribe = lambda cl, u, mid, codes, props, ev=subscribed: ev.set()
            c.connect(LOCAL, port, keepalive=30)
            c.loop_start()
            subscribers.append(c)
            received.append(got)
            c.subscribe("v5/#", qos=1)
            assert subscribed.wait(10), "no SUBACK"
        pub = paho.Client(CallbackAPIVersion.VERSION2, protocol=paho.MQTTv5)
        pub.connect(LOCAL, port, keepalive=30)
        pub.loop_start()
        subscribers.append(pub)
        props = Properties(PacketTypes.PUBLISH)
        props.UserProperty = user
        for topic, qos in [("v5/one", 1), ("v5/zero", 0)]:
            info = pub.publish(topic, topic.encode(), qos=qos, properties=props)
            info.wait_for_publish(timeout=10)
            assert info.is_published()
        v5_got, v311_got = ([got.get(timeout=10) for _ in range(2)] for got in received)
        return v5_got, v311_got
    finally:
        for c in subscribers:
            c.disconnect()
            c.loop_stop()


async def test_example_broker_serves_both_versions(engine: dict[str, Any]) -> None:
    with anyio.fail_after(30):
        async with broker_example.running(LOCAL, 0, **engine) as server:
            messages = await anyio.to_thread.run_sync(run_paho_client, server.port)
            v5, v311 = await anyio.to_thread.run_sync(run_paho_v5_clients, server.port)
    assert messages == [("t/zero", b"qos 0"), ("t/one", b"qos 1" * 100)]
    assert [(m.topic, m.payload, m.qos) for m in v5] == [
        ("v5/one", b"v5/one", 1),
        ("v5/zero", b"v5/zero", 0),
    ]
    assert [m.properties.UserProperty for m in v5] == [[("k", "1"), ("k", "2"), ("z", "3")]] * 2
    assert [(m.topic, m.payload, m.qos) for m in v311] == [(m.topic, m.payload, m.qos) for m in v5]
