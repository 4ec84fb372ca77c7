"""Real MQTT peers for the tests: a mosquitto broker started from a generated config, a TCP
relay that records every byte each way, and a scripted paho-mqtt session (3.1.1 or 5.0)
that says what it sent and what it received. Every wait is bounded and synchronised on an
event (a log line, a paho callback, a closed connection), never on a sleep."""

from __future__ import annotations

import asyncio
import contextlib
import os
import queue
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

LOCAL = "127.0.0.1"
WAIT = 10.0  # seconds: the bound on every wait for a peer

MOSQUITTO = shutil.which("mosquitto") or (
    "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
)
needs_mosquitto = pytest.mark.skipif(
    MOSQUITTO is None,
    reason="mosquitto not installed (apt-get install mosquitto; .ci/run installs it on CI)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mosquitto(tmp: Path) -> Iterator[int]:
    """A mosquitto broker on a free loopback port, anonymous clients allowed; yields the
    port once mosquitto has said it is running."""
    assert MOSQUITTO is not None
    port = free_port()
    conf = tmp / "mosquitto.conf"
    lines = [
        f"listener {port} {LOCAL}",
        "allow_anonymous true",
        "persistence false",
        "log_dest stderr",
        "log_type all",
    ]
    if os.geteuid() == 0:
        lines.append("user root")  # (as root it would switch to a "mosquitto" user)
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen(
        [MOSQUITTO, "-c", str(conf)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log: list[str] = []
    running = threading.Event()

    def read_log() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            log.append(line)
            if " running" in line:
                running.set()

    reader = threading.Thread(target=read_log, daemon=True)
    reader.start()
    try:
        if not running.wait(WAIT):
            pytest.fail("mosquitto did not start:\n" + "".join(log))
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        reader.join(WAIT)
        if proc.stderr is not None:
            proc.stderr.close()


class Relay:
    """A TCP relay (asyncio, in its own thread) in front of ``LOCAL:upstream``: every chunk
    read from either side is recorded, in order, then passed on; a half-close is passed on
    too. One connection at a time is expected; ``closed`` is set when both directions
    ended."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.port = 0
        #: ``("c", data)`` from the client, ``("s", data)`` from the server, in order
        self.chunks: list[tuple[str, bytes]] = []
        self.closed = threading.Event()
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def stream(self, side: str) -> bytes:
        return b"".join(data for s, data in self.chunks if s == side)

    def __enter__(self) -> Relay:
        self._thread.start()
        if not self._ready.wait(WAIT):
            raise TimeoutError("relay did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(WAIT)

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        server = await asyncio.start_server(self._handle, LOCAL, 0)
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        async with server:
            await self._stop.wait()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(LOCAL, self.upstream)
        try:
            await asyncio.gather(
                self._pump(reader, up_writer, "c"), self._pump(up_reader, writer, "s")
            )
        finally:
            for w in (writer, up_writer):
                w.close()
            self.closed.set()

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, side: str
    ) -> None:
        try:
            while data := await reader.read(65536):
                self.chunks.append((side, data))
                writer.write(data)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()
        except (ConnectionError, OSError):
            pass  # the other side is gone: what was read is recorded


# -- a scripted paho session ----------------------------------------------------------------
@dataclass
class Published:
    topic: str
    payload: bytes
    qos: int
    retain: bool
    user_properties: list[tuple[str, str]]
    mid: int = 0
    #: the QoS of the subscription it matches (publications only)
    subscribed_qos: int = 0


@dataclass
class PahoSession:
    """What one paho session sent (as asked of paho) and received (as paho reported it)."""

    version: int  # 4 or 5
    client_id: str
    keep_alive: int
    username: str
    password: bytes
    will: Published
    connect_user_properties: list[tuple[str, str]]
    subscriptions: list[tuple[str, int]]
    subscription_id: int | None
    subscribe_mid: int = 0
    published: list[Published] = field(default_factory=list)
    received: list[Published] = field(default_factory=list)
    unsubscribed: list[str] = field(default_factory=list)
    unsubscribe_mid: int = 0
    disconnect_user_properties: list[tuple[str, str]] = field(default_factory=list)


def _props(kind: int, user: list[tuple[str, str]], **values: Any) -> Properties:
    props = Properties(kind)
    if user:
        props.UserProperty = user
    for name, value in values.items():
        setattr(props, name, value)
    return props


def run_session(port: int, version: int, *, prefix: str = "", ping: bool = True) -> PahoSession:
    """Connect (with a will, a user name and password), subscribe to two filters, publish
    at QoS 0 and 1 (5.0: with repeated user properties) and a retained message, receive
    the three back, wait for a PINGREQ's answer, unsubscribe, disconnect. Every topic
    starts with ``prefix`` (sessions on one broker then do not see each other's retained
    messages)."""
    v5 = version == 5
    p = prefix
    s = PahoSession(
        version=version,
        client_id=f"wirekit-proof-{version}",
        keep_alive=60,
        username="proof-user",
        password=b"proof-pass",
        will=Published(f"{p}proof/will", b"gone", 1, False, [("why", "test")] if v5 else []),
        connect_user_properties=[("hello", "world")] if v5 else [],
        subscriptions=[(f"{p}proof/+/x", 1), (f"{p}other/#", 0)],
        subscription_id=7 if v5 else None,
    )
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    got: queue.Queue[Published] = queue.Queue()
    protocol = paho.MQTTv5 if v5 else paho.MQTTv311
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=s.client_id, protocol=protocol)
    client.username_pw_set(s.username, s.password.decode())
    will_props = _props(PacketTypes.WILLMESSAGE, s.will.user_properties) if v5 else None
    client.will_set(s.will.topic, s.will.payload, s.will.qos, s.will.retain, will_props)

    def on_message(c: Any, u: Any, m: Any) -> None:
        user = list(getattr(m.properties, "UserProperty", [])) if v5 and m.properties else []
        got.put(Published(m.topic, m.payload, m.qos, bool(m.retain), user, m.mid))

    client.on_message = on_message
    client.on_connect = lambda c, u, flags, rc, props: events.put(("connect", rc))
    client.on_subscribe = lambda c, u, mid, rcs, props: events.put(("subscribe", mid))
    client.on_unsubscribe = lambda c, u, mid, rcs, props: events.put(("unsubscribe", mid))
    client.on_log = lambda c, u, level, text: (
        events.put(("pong", text)) if text.startswith("Received PINGRESP") else None
    )

    def wait_for(kind: str) -> Any:
        deadline = time.monotonic() + WAIT
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, value = events.get(timeout=left)
            except queue.Empty:
                break
            if name == kind:
                return value
        raise TimeoutError(f"paho: no {kind} within {WAIT} s")

    connect_props = (
        _props(PacketTypes.CONNECT, s.connect_user_properties, SessionExpiryInterval=0)
        if v5
        else None
    )
    client.connect(LOCAL, port, keepalive=s.keep_alive, properties=connect_props)
    client.loop_start()
    try:
        rc = wait_for("connect")
        assert not rc.is_failure, rc
        if v5:
            options = [
                (f, SubscribeOptions(qos=q, retainAsPublished=(i == 0)))
                for i, (f, q) in enumerate(s.subscriptions)
            ]
            sub_props = _props(PacketTypes.SUBSCRIBE, [], SubscriptionIdentifier=s.subscription_id)
            _, mid = client.subscribe(options, properties=sub_props)
        else:
            _, mid = client.subscribe(s.subscriptions)
        assert mid is not None  # (paho gives no mid only when not connected)
        s.subscribe_mid = mid
        assert wait_for("subscribe") == s.subscribe_mid
        user = [("k", "1"), ("k", "2"), ("other", "ü")] if v5 else []
        for topic, payload, qos, retain, sub in [
            (f"{p}proof/a/x", b"\x00\x01 qos 1", 1, False, 0),
            (f"{p}proof/b/x", b"qos 0", 0, False, 0),
            (f"{p}other/r", b"retained", 1, True, 1),
        ]:
            props = (
                _props(PacketTypes.PUBLISH, user, ContentType="application/x-proof") if v5 else None
            )
            info = client.publish(topic, payload, qos=qos, retain=retain, properties=props)
            if qos:
                info.wait_for_publish(WAIT)
                assert info.is_published(), f"no PUBACK for {topic}"
            sub_qos = s.subscriptions[sub][1]
            s.published.append(Published(topic, payload, qos, retain, user, info.mid, sub_qos))
        s.received = [got.get(timeout=WAIT) for _ in s.published]
        if ping:
            # paho pings only from its keep-alive timer (no public call): a short keep
            # alive would make the test wait for it and race the broker's 1.5x deadline on
            # a loaded machine, so ask for the PINGREQ directly
            client._send_pingreq()
            wait_for("pong")
        s.unsubscribed = [f"{p}other/#"]
        _, mid = client.unsubscribe(s.unsubscribed)
        assert mid is not None
        s.unsubscribe_mid = mid
        assert wait_for("unsubscribe") == s.unsubscribe_mid
        if v5:
            s.disconnect_user_properties = [("bye", "now")]
            client.disconnect(
                ReasonCode(PacketTypes.DISCONNECT, "Normal disconnection"),
                _props(PacketTypes.DISCONNECT, s.disconnect_user_properties),
            )
        else:
            client.disconnect()
    finally:
        client.loop_stop()
    return s


# -- a real capture on loopback ---------------------------------------------------------------
DUMPCAP = shutil.which("dumpcap")
needs_dumpcap = pytest.mark.skipif(
    DUMPCAP is None or os.geteuid() != 0,
    reason="needs dumpcap and the right to capture on loopback (root here)",
)


def captured_so_far(path: Path, port: int, probe_port: int) -> tuple[int, int, bool]:
    """In the capture file as far as it is written: TCP payload bytes to ``port`` and from
    it, and whether a UDP probe datagram to ``probe_port`` is there (a partial last block
    is ignored)."""
    import dpkt

    sent = [0, 0]
    probed = False
    try:
        with open(path, "rb") as f:
            for _, frame in dpkt.pcapng.Reader(f):
                ip = dpkt.ethernet.Ethernet(frame).data
                seg = getattr(ip, "data", None)
                if isinstance(seg, dpkt.tcp.TCP):
                    sent[seg.sport == port] += len(seg.data)
                elif isinstance(seg, dpkt.udp.UDP) and seg.dport == probe_port:
                    probed = True
    except (OSError, ValueError, dpkt.NeedData, dpkt.UnpackError):
        pass
    return sent[0], sent[1], probed


class LoopbackCapture:
    """dumpcap on ``lo`` for TCP port ``port`` (and UDP probes), as a context manager that
    returns once packets are really being captured: dumpcap says "Capturing on" a little
    before that, so UDP probes are sent until one shows up in the file. Every wait polls
    the file dumpcap writes (it reports nothing per packet), with a deadline."""

    def __init__(self, path: Path, port: int) -> None:
        self.path = path
        self.port = port
        self._probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._probe.bind((LOCAL, 0))  # (bound: the probes are received, no ICMP errors)
        self.probe_port = int(self._probe.getsockname()[1])
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def _wait(self, done: Any, what: str, poke: Any = None) -> None:
        deadline = time.monotonic() + WAIT
        while not done(captured_so_far(self.path, self.port, self.probe_port)):
            if time.monotonic() > deadline:
                got = captured_so_far(self.path, self.port, self.probe_port)
                raise TimeoutError(f"dumpcap: {what} not in the capture ({got})")
            if poke is not None:
                poke()
            time.sleep(0.05)

    def __enter__(self) -> LoopbackCapture:
        assert DUMPCAP is not None
        bpf = f"tcp port {self.port} or (udp dst port {self.probe_port})"
        self._proc = proc = subprocess.Popen(
            [DUMPCAP, "-q", "-i", "lo", "-f", bpf, "-w", str(self.path)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        started = threading.Event()
        said: list[str] = []

        def read() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                said.append(line)
                if "Capturing on" in line:
                    started.set()

        self._reader = threading.Thread(target=read, daemon=True)
        self._reader.start()
        try:
            deadline = time.monotonic() + WAIT
            while not started.wait(0.05):  # (or until dumpcap gave up and closed stderr)
                if not self._reader.is_alive() or time.monotonic() > deadline:
                    pytest.skip(f"dumpcap did not start: {''.join(said).strip()[-500:]}")
            target = (LOCAL, self.probe_port)
            self._wait(lambda got: got[2], "a probe", lambda: self._probe.sendto(b"?", target))
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_for(self, to_port: int, from_port: int) -> None:
        """Until the file holds exactly these TCP payload bytes each way."""
        self._wait(lambda got: got[:2] == (to_port, from_port), f"{to_port}+{from_port} bytes")

    def __exit__(self, *exc: object) -> None:
        self._probe.close()
        proc = self._proc
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if self._reader is not None:
            self._reader.join(WAIT)
        if proc.stderr is not None:
            proc.stderr.close()
