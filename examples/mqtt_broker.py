"""A small MQTT broker for MQTT 3.1.1 and 5.0 clients, on wirekit's transport (an example).

    python examples/mqtt_broker.py --host 127.0.0.1 --port 0

prints ``listening on HOST:PORT`` as its first line, then serves until SIGINT or SIGTERM.

What it does: CONNECT/CONNACK for protocol levels 4 (3.1.1) and 5 (5.0) on one port;
SUBSCRIBE/UNSUBSCRIBE with ``+`` and ``#`` topic filters (4.7); PUBLISH at QoS 0 and 1
(PUBACK), and QoS 2 from clients (PUBREC/PUBREL/PUBCOMP), delivered at the lower of the
message's and the subscription's QoS, at most 1; retained messages (stored, replaced,
cleared by an empty payload, delivered on subscribe with the RETAIN flag); 5.0 properties
forwarded as the specification says (user properties intact and in order; subscription
identifiers added; message expiry counted down); no-local, retain-as-published and retain
handling; a 5.0 client's Maximum Packet Size and Receive Maximum; will messages; keep alive
(a silent client is closed after 1.5 times its keep alive); PINGREQ/PINGRESP; DISCONNECT.
Protocol violations are answered as each version says: an unsupported protocol level gets a
CONNACK refusing it, then the connection closes; a first packet that is not CONNECT, a
second CONNECT, a malformed packet or a packet a client may not send closes the connection,
after a DISCONNECT with the reason code for 5.0 clients (MQTT 5.0, 4.13; 3.1.1, 4.8).

What it leaves out: sessions are not kept after a connection closes (CONNACK always says
"no session present"), nothing is retransmitted, QoS 2 is not used towards subscribers,
shared subscriptions, topic aliases and enhanced authentication are refused (CONNACK tells
5.0 clients so). A will is published when the connection ends: so does the session here,
which comes before any Will Delay Interval (5.0 3.1.3.2.2).

How versions share a port: the transport serves one protocol object for every connection,
and which schema a packet needs depends on that connection's CONNECT. So the server's
protocol (:class:`PacketFrames`) only cuts the stream into whole control packets by their
Remaining Length, the same at every level, and hands each one over as bytes; the session's
own codec (``schemas.mqtt.CODEC`` or ``schemas.mqtt5.CODEC``), chosen from the CONNECT's
protocol level, decodes it and encodes the replies.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import construct as cs
from anyio.abc import TaskGroup

from codec import Buffer, Codec, DecodeError, FrameTooLarge
from schemas import mqtt, mqtt5
from transport import Processor, Server, Session, StateEvent

log = logging.getLogger("mqtt_broker")

V311, V5 = mqtt.PROTOCOL_LEVEL, mqtt5.PROTOCOL_LEVEL
#: each protocol level's ready codec (both refuse packets over 1 MiB)
CODECS: dict[int, Codec[Any]] = {V311: mqtt.CODEC, V5: mqtt5.CODEC}
#: the largest packet accepted (announced to 5.0 clients as Maximum Packet Size, 3.2.2.3.6)
MAX_PACKET_SIZE = min(c.max_frame_size for c in CODECS.values())
#: the most a connection may wait before its CONNECT (3.1.4: "within a reasonable time")
CONNECT_TIMEOUT = 10.0
#: the highest QoS the broker delivers at (and grants in SUBACK)
MAX_QOS = 1

#: what every protocol level's CONNECT starts with (3.1.2.1-3.1.2.2 in both
#: specifications): enough to pick the version's schema for the whole packet
PREAMBLE: Codec[Any] = Codec(
    cs.Struct(
        "header" / cs.Int8ub,
        "remaining_length" / cs.VarInt,
        "protocol_name" / mqtt.STRING,
        "protocol_level" / cs.Int8ub,
    )
)

#: the fixed header flags of each packet a client may send (3.1.1 2.2.2, 5.0 2.1.3):
#: ``(dup, qos, retain)``; PUBLISH's are free
CLIENT_FLAGS = {
    "CONNECT": (False, 0, False),
    "PUBACK": (False, 0, False),
    "PUBREC": (False, 0, False),
    "PUBREL": (False, 1, False),
    "PUBCOMP": (False, 0, False),
    "SUBSCRIBE": (False, 1, False),
    "UNSUBSCRIBE": (False, 1, False),
    "PINGREQ": (False, 0, False),
    "DISCONNECT": (False, 0, False),
    "AUTH": (False, 0, False),
}


class PacketFrames:
    """A hand-written :class:`codec.Protocol` that cuts a byte stream into whole MQTT
    control packets, at any protocol level, and encodes packets given as bytes unchanged.

    A packet is its first byte, the Remaining Length (a Variable Byte Integer of at most
    four bytes: 3.1.1 2.2.3, 5.0 2.1.4), then that many bytes. A fifth length byte is a
    malformed packet (``DecodeError``); a packet over ``max_packet_size`` raises
    ``FrameTooLarge`` as soon as its length is read, before its body is buffered.
    """

    def __init__(self, max_packet_size: int = MAX_PACKET_SIZE) -> None:
        self.max_frame_size = max_packet_size

    def decode(self, buf: Buffer) -> bytes | None:
        head = buf.peek(5)
        length = 0
        for i, byte in enumerate(head[1:5]):
            length |= (byte & 0x7F) << (7 * i)
            if not byte & 0x80:
                size = 2 + i + length
                if size > self.max_frame_size:
                    raise FrameTooLarge(size, self.max_frame_size, offset=buf.offset, data=head)
                return buf.take(size) if len(buf) >= size else None
        if len(head) == 5:
            raise DecodeError(
                "Remaining Length longer than four bytes", offset=buf.offset, data=head
            )
        return None  # the Remaining Length is not all there yet

    def encode(self, msg: bytes) -> bytes:
        return msg


# -- topics (4.7) -------------------------------------------------------------------------
def valid_filter(topic_filter: str) -> bool:
    """A topic filter: ``#`` only as the whole last level, ``+`` only as a whole level
    (4.7.1), not empty (4.7.3)."""
    if not topic_filter:
        return False
    levels = topic_filter.split("/")
    for i, level in enumerate(levels):
        if "#" in level and (level != "#" or i != len(levels) - 1):
            return False
        if "+" in level and level != "+":
            return False
    return "\0" not in topic_filter


def valid_topic(topic: str) -> bool:
    """A topic name: no wildcard characters (4.7.1), not empty (4.7.3)."""
    return bool(topic) and not any(c in topic for c in "+#\0")


def matches(topic_filter: str, topic: str) -> bool:
    """Whether a topic name matches a topic filter (4.7.1): ``+`` is one level, ``#`` any
    number of levels including the parent (``a/#`` matches ``a``); a filter starting with a
    wildcard does not match a topic starting with ``$`` (4.7.2)."""
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    f_levels = topic_filter.split("/")
    t_levels = topic.split("/")
    for i, f in enumerate(f_levels):
        if f == "#":
            return True
        if i >= len(t_levels) or (f != "+" and f != t_levels[i]):
            return False
    return len(f_levels) == len(t_levels)


# -- broker state -------------------------------------------------------------------------
@dataclass
class Message:
    """An application message as the broker keeps it."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    #: 5.0 properties to forward (3.3.2.3), without topic alias and subscription ids
    properties: list[Any]
    #: monotonic deadline from the Message Expiry Interval (3.3.2.3.3), if any
    expires: float | None = None


@dataclass
class Subscription:
    qos: int
    no_local: bool = False
    retain_as_published: bool = False
    identifier: int | None = None


@dataclass
class Client:
    """One connected client: its session, its version's codec and its subscriptions."""

    session: Session[bytes]
    level: int
    client_id: str
    keep_alive: int
    will: Message | None = None
    subscriptions: dict[str, Subscription] = field(default_factory=dict)
    #: packet ids of QoS 2 messages received, waiting for PUBREL (4.3.3)
    incoming_qos2: set[int] = field(default_factory=set)
    #: packet ids of QoS 1 deliveries waiting for PUBACK
    inflight: set[int] = field(default_factory=set)
    next_id: int = 0
    #: 5.0: the largest packet the client accepts (3.1.2.11.4); bigger ones are not sent
    max_packet_size: int | None = None
    #: 5.0: the most QoS 1 deliveries awaiting PUBACK at once (3.1.2.11.3)
    receive_maximum: int = 0xFFFF
    #: QoS 1 deliveries held back by the Receive Maximum, in order (4.9)
    held: deque[tuple[Message, int, bool, list[int]]] = field(default_factory=deque)
    last_seen: float = field(default_factory=time.monotonic)
    #: DISCONNECT received (normally, in 5.0 terms): no will message
    clean_exit: bool = False

    @property
    def codec(self) -> Codec[Any]:
        return CODECS[self.level]

    def packet_id(self) -> int:
        """The next free packet identifier (1-65535, 2.2.1)."""
        while True:
            self.next_id = self.next_id % 0xFFFF + 1
            if self.next_id not in self.inflight:
                return self.next_id


def packet(kind: str, body: dict[str, Any], qos: int = 0, retain: bool = False) -> Any:
    return {"header": {"type": kind, "dup": False, "qos": qos, "retain": retain}, "body": body}


def _forwarded(properties: Iterable[Any]) -> list[Any]:
    """The properties a server passes on (3.3.2.3), in their order: all but the topic
    alias (per connection), subscription identifiers (per subscriber), the expiry interval
    (counted down at delivery) and a will's delay (3.1.3.2, not a PUBLISH property)."""
    drop = (
        "topic_alias",
        "subscription_identifier",
        "message_expiry_interval",
        "will_delay_interval",
    )
    return [p for p in properties if p.id not in drop]


class Broker(Processor[bytes]):
    """The broker: every connection's packets, the subscriptions and retained messages."""

    def __init__(self) -> None:
        self.clients: dict[str, Client] = {}
        self.retained: dict[str, Message] = {}
        self.opened: dict[Session[bytes], float] = {}
        #: where other connections than the one being processed are closed (set by
        #: :func:`running`): a graceful close waits for its peer, and must hold up no one
        self.background: TaskGroup | None = None
        self._closing: set[Session[bytes]] = set()
        self._ids = itertools.count(1)

    # -- sending ------------------------------------------------------------------------
    async def send(self, client: Client, kind: str, body: dict[str, Any], **flags: Any) -> None:
        """Encode with the client's version and send; a client already going is skipped
        (its ``SESSION_CLOSED`` cleans up)."""
        try:
            await client.session.send(client.codec.encode(packet(kind, body, **flags)))
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass

    async def refuse(self, client: Client, reason: str) -> None:
        """A protocol violation: a 5.0 client gets a DISCONNECT with the reason (4.13);
        then the connection closes (3.1.1: 4.8)."""
        log.info("closing %s: %s", client.client_id, reason)
        if client.level == V5:
            await self.send(client, "DISCONNECT", {"reason_code": reason, "properties": None})
        await client.session.close()

    def close_later(self, session: Session[bytes], reason: str | None = None) -> None:
        """Close another connection in the background (with a DISCONNECT giving
        ``reason`` to a 5.0 client), once."""
        if session in self._closing:
            return
        self._closing.add(session)
        client: Client | None = session.attributes.get("client")
        assert self.background is not None, "Broker.background is set by running()"
        if client is not None and reason is not None:
            self.background.start_soon(self.refuse, client, reason)
        else:
            self.background.start_soon(session.close)

    async def deliver(
        self, client: Client, msg: Message, qos: int, retain: bool, ids: list[int]
    ) -> None:
        """Send one PUBLISH of ``msg`` to ``client`` (3.3), or hold it back while the
        client has as many QoS 1 deliveries unacknowledged as its Receive Maximum allows
        (4.9: flow control; they go out in order as PUBACKs come)."""
        if qos and (client.held or len(client.inflight) >= client.receive_maximum):
            client.held.append((msg, qos, retain, ids))
        else:
            await self._send_publish(client, msg, qos, retain, ids)

    async def _send_publish(
        self, client: Client, msg: Message, qos: int, retain: bool, ids: list[int]
    ) -> None:
        if msg.expires is not None and msg.expires <= time.monotonic():
            return  # 3.3.2.3.3: expired before onward delivery started: deleted
        packet_id = None
        if qos:
            packet_id = client.packet_id()
            client.inflight.add(packet_id)
        body: dict[str, Any] = {"topic": msg.topic, "packet_id": packet_id, "payload": msg.payload}
        if client.level == V5:
            props = list(msg.properties)
            if msg.expires is not None:  # 3.3.2.3.3: what is left of the interval
                left = max(0, int(msg.expires - time.monotonic()))
                props.append(mqtt5.prop("message_expiry_interval", left))
            props += [mqtt5.prop("subscription_identifier", i) for i in ids]
            body["properties"] = props
        wire = client.codec.encode(packet("PUBLISH", body, qos=qos, retain=retain))
        if client.max_packet_size is not None and len(wire) > client.max_packet_size:
            client.inflight.discard(packet_id or 0)
            return  # 5.0 3.1.2.11.4: discarded, as if sent
        try:
            await client.session.send(wire)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass  # that client is going

    async def publish(self, msg: Message, sender: Client | None) -> None:
        """Store a retained message and pass ``msg`` to every matching subscriber."""
        if msg.retain:  # 3.3.1.3: store, replace, or clear with an empty payload
            if msg.payload:
                self.retained[msg.topic] = msg
            else:
                self.retained.pop(msg.topic, None)
        for client in list(self.clients.values()):
            subs = [
                s
                for f, s in client.subscriptions.items()
                if matches(f, msg.topic) and not (s.no_local and client is sender)
            ]
            if not subs:
                continue
            # one copy at the highest QoS of the matching subscriptions, with all their
            # identifiers (5.0 3.3.4); the RETAIN flag only where the subscriber asked for
            # it as published (3.3.1.3)
            qos = min(msg.qos, max(s.qos for s in subs))
            retain = msg.retain and any(s.retain_as_published for s in subs)
            ids = [s.identifier for s in subs if s.identifier is not None]
            await self.deliver(client, msg, qos, retain, ids)

    # -- the processor ------------------------------------------------------------------
    async def state_event(
        self, session: Session[bytes], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            self.opened[session] = time.monotonic()
        elif event is StateEvent.SESSION_CLOSED:
            self.opened.pop(session, None)
            self._closing.discard(session)
            client: Client | None = session.attributes.get("client")
            if client is None or self.clients.get(client.client_id) is not client:
                return
            del self.clients[client.client_id]
            if client.will is not None and not client.clean_exit:
                await self.publish(client.will, None)  # 3.1.2.5: the will, on abnormal exit
        elif event in (StateEvent.PROCESS_EXCEPTION, StateEvent.INTERNAL_EXCEPTION):
            # a bug here, not the client's doing
            log.error("%s: %r", session.remote_address, exc, exc_info=exc)
        elif exc is not None:  # a malformed stream, a reset connection...
            log.info("%s %s: %r", session.remote_address, event.name, exc)

    async def process(self, session: Session[bytes], msg: bytes) -> None:
        client: Client | None = session.attributes.get("client")
        if client is None:
            await self.connect(session, msg)
            return
        client.last_seen = time.monotonic()
        try:
            [pkt] = client.codec.decode_all(msg)
        except DecodeError as exc:
            log.info("malformed packet from %s: %s", client.client_id, exc)
            await self.refuse(client, "malformed_packet")
            return
        header, body = pkt.header, pkt.body
        kind = str(header.type)
        if kind == "PUBLISH":
            if header.qos == 3:  # 3.3.1.2
                await self.refuse(client, "malformed_packet")
            else:
                await self.on_publish(client, header, body)
        elif (header.dup, header.qos, header.retain) != CLIENT_FLAGS.get(kind):
            # a packet only a server sends (CONNACK, SUBACK...), or wrong fixed flags
            await self.refuse(
                client, "malformed_packet" if kind in CLIENT_FLAGS else "protocol_error"
            )
        elif kind == "SUBSCRIBE":
            await self.on_subscribe(client, body)
        elif kind == "UNSUBSCRIBE":
            await self.on_unsubscribe(client, body)
        elif kind == "PUBACK":
            client.inflight.discard(body.packet_id)
            while client.held and len(client.inflight) < client.receive_maximum:
                await self._send_publish(client, *client.held.popleft())
        elif kind == "PUBREL":  # 4.3.3: the QoS 2 message was already passed on
            client.incoming_qos2.discard(body.packet_id)
            tail = {"reason_code": None, "properties": None} if client.level == V5 else {}
            await self.send(client, "PUBCOMP", {"packet_id": body.packet_id, **tail})
        elif kind == "PINGREQ":
            await self.send(client, "PINGRESP", {})
        elif kind == "DISCONNECT":
            reason = body.get("reason_code") or "normal_disconnection"
            client.clean_exit = reason != "disconnect_with_will_message"  # 5.0 3.14.2.1
            await session.close()
        else:  # a second CONNECT (3.1), AUTH without enhanced authentication, PUBREC/PUBCOMP
            await self.refuse(client, "protocol_error")

    async def connect(self, session: Session[bytes], frame: bytes) -> None:
        """The first packet: it must be a CONNECT (3.1) of a protocol level served here."""
        try:
            pre = PREAMBLE.decode(Buffer(frame))
        except DecodeError:
            pre = None
        if pre is None or pre.header >> 4 != 1:
            log.info("%s: first packet is not a CONNECT", session.remote_address)
            await session.close()
            return
        level = pre.protocol_level
        if level not in CODECS or pre.protocol_name != "MQTT":
            if pre.protocol_name in ("MQTT", "MQIsdp"):  # 3.1.1 3.1.2.2: refuse the level
                refusal = packet(
                    "CONNACK",
                    {
                        "flags": {"session_present": False},
                        "return_code": "unacceptable_protocol_version",
                    },
                )
                await session.send(CODECS[V311].encode(refusal))
            await session.close()  # 3.1.2.1: an unknown protocol name may just be closed
            return
        client = Client(session, level, "", 0)
        try:
            [pkt] = client.codec.decode_all(frame)
        except DecodeError as exc:
            log.info("%s: malformed CONNECT: %s", session.remote_address, exc)
            await self.connack(client, "malformed_packet")
            return
        body = pkt.body
        flags = body.flags
        if (
            pkt.header.qos
            or pkt.header.dup
            or pkt.header.retain  # 2.2.2 / 2.1.3
            or flags.will_qos == 3  # 3.1.2.6
            or (not flags.will and (flags.will_qos or flags.will_retain))  # 3.1.2.6-7
            or (level == V311 and flags.password and not flags.username)  # 3.1.1 3.1.2.9
        ):
            await self.connack(client, "malformed_packet")
            return
        client.keep_alive = body.keep_alive
        props = body.get("properties") or []
        client.max_packet_size = mqtt5.property_value(props, "maximum_packet_size")
        client.receive_maximum = mqtt5.property_value(props, "receive_maximum", 0xFFFF)
        if client.receive_maximum == 0:  # 3.1.2.11.3
            await self.connack(client, "protocol_error")
            return
        if level == V5 and mqtt5.property_value(props, "authentication_method") is not None:
            await self.connack(client, "bad_authentication_method")  # 5.0 4.12
            return
        assigned = None
        client.client_id = body.client_id
        if not client.client_id:
            clean = flags.clean_session if level == V311 else True
            if not clean:  # 3.1.1 3.1.3.1: an empty id needs a clean session
                await self.connack(client, "identifier_rejected")
                return
            client.client_id = assigned = f"wirekit-{next(self._ids)}"
        if flags.will:
            will_props = body.get("will_properties") or []
            payload = body.will_payload if level == V5 else body.will_message
            client.will = self.message(
                body.will_topic, payload, flags.will_qos, flags.will_retain, will_props
            )
        old = self.clients.get(client.client_id)
        if old is not None:  # 3.1.4: the existing connection is taken over
            old.clean_exit = True  # (a takeover is not an abnormal exit: no will)
            self.close_later(old.session, "session_taken_over")
        session.attributes["client"] = client
        self.clients[client.client_id] = client
        ack_props = [mqtt5.prop("maximum_packet_size", MAX_PACKET_SIZE)]
        ack_props.append(mqtt5.prop("shared_subscription_available", 0))
        if assigned is not None:
            ack_props.append(mqtt5.prop("assigned_client_identifier", assigned))
        if mqtt5.property_value(props, "session_expiry_interval", 0):
            # 3.2.2.3.2: the session ends with the connection here, and CONNACK says so
            ack_props.append(mqtt5.prop("session_expiry_interval", 0))
        await self.connack(client, "success", ack_props)

    async def connack(
        self, client: Client, reason: str, properties: list[Any] | None = None
    ) -> None:
        """CONNACK (3.2): on success the client is connected; otherwise the connection
        closes after it (3.1.4)."""
        if client.level == V5:
            body = {
                "flags": {"session_present": False},
                "reason_code": reason,
                "properties": properties or [],
            }
        else:
            codes = {
                "success": "accepted",
                "malformed_packet": None,
                "bad_authentication_method": None,
            }
            code = codes.get(reason, reason)
            if code is None:  # 3.1.1 has no code for it: just close
                await client.session.close()
                return
            body = {"flags": {"session_present": False}, "return_code": code}
        await self.send(client, "CONNACK", body)
        if reason != "success":
            await client.session.close()

    def message(
        self, topic: str, payload: bytes, qos: int, retain: bool, props: list[Any]
    ) -> Message:
        interval = mqtt5.property_value(props, "message_expiry_interval")
        expires = None if interval is None else time.monotonic() + interval
        return Message(topic, payload, qos, retain, _forwarded(props), expires)

    async def on_publish(self, client: Client, header: Any, body: Any) -> None:
        """PUBLISH (3.3): acknowledge by QoS, then pass it on."""
        props = body.get("properties") or []
        if not valid_topic(body.topic):  # 3.3.2.1: no wildcards in a topic name
            await self.refuse(client, "topic_name_invalid")
            return
        if mqtt5.property_value(props, "topic_alias") is not None:
            await self.refuse(client, "topic_alias_invalid")  # 3.2.2.3.8: maximum 0
            return
        msg = self.message(body.topic, body.payload, header.qos, header.retain, props)
        tail = {"reason_code": None, "properties": None} if client.level == V5 else {}
        if header.qos == 1:
            await self.send(client, "PUBACK", {"packet_id": body.packet_id, **tail})
        elif header.qos == 2:
            await self.send(client, "PUBREC", {"packet_id": body.packet_id, **tail})
            if body.packet_id in client.incoming_qos2:
                return  # a resent QoS 2 message is passed on once only (4.3.3)
            client.incoming_qos2.add(body.packet_id)
        await self.publish(msg, client)

    async def on_subscribe(self, client: Client, body: Any) -> None:
        """SUBSCRIBE (3.8): grant each filter, SUBACK (3.9), then the retained messages."""
        if not body.topics:  # 3.8.3: at least one topic filter
            await self.refuse(client, "protocol_error")
            return
        sub_id = None
        if client.level == V5:
            sub_id = mqtt5.property_value(body.properties, "subscription_identifier")
        codes: list[Any] = []
        new: list[tuple[str, Subscription]] = []  # where retained messages are due
        for entry in body.topics:
            if client.level == V5:
                opts = entry.options
                if opts.qos == 3 or opts.retain_handling == 3:  # 3.8.3.1
                    await self.refuse(client, "protocol_error")
                    return
                sub = Subscription(
                    min(opts.qos, MAX_QOS), opts.no_local, opts.retain_as_published, sub_id
                )
                handling = opts.retain_handling
            else:
                if entry.qos > 2:  # 3.1.1 3.8.3.1: a malformed packet
                    await client.session.close()
                    return
                sub, handling = Subscription(min(entry.qos, MAX_QOS)), 0
            if not valid_filter(entry.filter):
                codes.append("topic_filter_invalid" if client.level == V5 else 0x80)
            elif client.level == V5 and entry.filter.startswith("$share/"):
                codes.append("shared_subscriptions_not_supported")
            else:
                existed = entry.filter in client.subscriptions
                client.subscriptions[entry.filter] = sub
                codes.append(f"granted_qos_{sub.qos}" if client.level == V5 else sub.qos)
                if handling == 0 or (handling == 1 and not existed):
                    new.append((entry.filter, sub))
        tail = (
            {"properties": [], "reason_codes": codes}
            if client.level == V5
            else {"return_codes": codes}
        )
        await self.send(client, "SUBACK", {"packet_id": body.packet_id, **tail})
        now = time.monotonic()
        for topic_filter, sub in new:  # 3.3.1.3: retained messages, RETAIN set
            for msg in list(self.retained.values()):
                if msg.expires is not None and msg.expires <= now:
                    del self.retained[msg.topic]  # 3.3.2.3.3: expired
                elif matches(topic_filter, msg.topic):
                    ids = [] if sub.identifier is None else [sub.identifier]
                    await self.deliver(client, msg, min(msg.qos, sub.qos), True, ids)

    async def on_unsubscribe(self, client: Client, body: Any) -> None:
        """UNSUBSCRIBE (3.10), UNSUBACK (3.11)."""
        if not body.topics:  # 3.10.3: at least one topic filter
            await self.refuse(client, "protocol_error")
            return
        codes = [
            "success" if client.subscriptions.pop(f, None) else "no_subscription_existed"
            for f in body.topics
        ]
        tail = {"properties": [], "reason_codes": codes} if client.level == V5 else {}
        await self.send(client, "UNSUBACK", {"packet_id": body.packet_id, **tail})

    async def watch_keep_alive(self, period: float = 1.0) -> None:
        """Close connections that sent no CONNECT in time (3.1.4) or nothing for 1.5 times
        their keep alive (3.1.2.10); a 5.0 client hears why (0x8D)."""
        while True:
            await anyio.sleep(period)
            now = time.monotonic()
            for session, opened in list(self.opened.items()):
                client: Client | None = session.attributes.get("client")
                if client is None and now - opened > CONNECT_TIMEOUT:
                    self.close_later(session)
                elif (
                    client
                    and client.keep_alive
                    and now - client.last_seen > 1.5 * client.keep_alive
                ):
                    self.close_later(session, "keep_alive_timeout")


@asynccontextmanager
async def running(host: str, port: int, **options: Any) -> AsyncIterator[Server[bytes]]:
    """The broker listening (``server.port``) until the block ends, then shut down
    gracefully; ``options`` go to :class:`transport.Server`."""
    broker = Broker()
    async with (
        Server(PacketFrames(), broker, host=host, port=port, **options) as server,
        anyio.create_task_group() as tg,
    ):
        broker.background = tg
        tg.start_soon(broker.watch_keep_alive)
        yield server
        tg.cancel_scope.cancel()


async def main(host: str, port: int) -> None:
    """Serve until SIGINT or SIGTERM."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with running(host, port) as server:
            print(f"listening on {host}:{server.port}", flush=True)
            async for signum in signals:
                log.info("signal %s: shutting down", signum)
                break


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=mqtt.PORT, help="0: an ephemeral port")
    parser.add_argument("--backend", choices=["asyncio", "trio"], default="asyncio")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each refusal")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    anyio.run(main, args.host, args.port, backend=args.backend)
