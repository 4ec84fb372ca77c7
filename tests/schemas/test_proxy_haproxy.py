"""schemas.proxy against a real haproxy: the headers it sends (``send-proxy``,
``send-proxy-v2`` with CRC32c and unique-id TLVs, and its health checks' LOCAL headers)
decode to the client's and the frontend's real addresses.

haproxy listens on loopback (IPv4, and IPv6 when ``::1`` works here) in ``mode tcp``; its
backends point at a small recording server of ours. A client connects through haproxy and
the test compares the decoded header with the client socket's own ``getsockname()`` and the
frontend's address. The captured bytes also go through tshark's PROXY dissector.
"""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from codec import DecodeError
from schemas import proxy as px

from ..codec.capture.pcapgen import Capture, Tcp
from ..codec.capture.tshark import TSHARK

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)
pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed (.ci/run installs it)"),
]
TIMEOUT = 10.0
ROOT = Path(__file__).resolve().parents[2]


def _ipv6_loopback() -> bool:
    if not socket.has_ipv6:
        return False
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


IPV6 = _ipv6_loopback()


def free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    """One connection haproxy opened to our backend."""

    header: px.ProxyHeader
    consumed: int
    raw: bytes  # everything read: the header, then the client's first bytes


class Recorder(socketserver.ThreadingTCPServer):
    """The backend: reads a PROXY header with ``parse_header`` as bytes trickle in, records
    it, answers ``ok`` and closes."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[Received] = []
        self.errors: list[BaseException] = []
        self.changed = threading.Condition()

    def wait_for(self, match: object, timeout: float = TIMEOUT) -> Received:
        """The first recorded connection for which ``match(received)`` is true."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                assert not self.errors, self.errors
                for r in self.received:
                    if match(r):  # type: ignore[operator]
                        return r
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [r.header for r in self.received[-5:]]
                    pytest.fail(f"no matching header in {len(self.received)}; last: {seen}")
                self.changed.wait(left)


class _Handler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: Recorder = self.server  # type: ignore[assignment]
        sock: socket.socket = self.request
        sock.settimeout(TIMEOUT)
        data = b""
        header: px.ProxyHeader | None = None
        consumed = 0
        try:
            while header is None:
                header, consumed = px.parse_header(data)
                if header is None:
                    chunk = sock.recv(4096)
                    if not chunk:
                        return  # haproxy gave up on this connection before a header
                    data += chunk
            if not header.is_local:  # a relayed client: take its first bytes too
                while len(data) == consumed:
                    chunk = sock.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                sock.sendall(b"ok")
        except DecodeError as exc:
            with server.changed:
                server.errors.append(exc)
                server.changed.notify_all()
            return
        except OSError:
            # haproxy resets a connection whose client left (our readiness probes) or a
            # health check it is done with: keep the header if it came
            if header is None:
                return
        with server.changed:
            server.received.append(Received(header, consumed, data))
            server.changed.notify_all()


@dataclass
class Haproxy:
    recorder: Recorder
    v1: list[tuple[str, int]]  # frontends whose backend uses send-proxy
    v2: list[tuple[str, int]]  # ... send-proxy-v2


CONFIG = """\
global
    maxconn 200
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    unique-id-format %ci:%cp_%fi:%fp_%Ts_%rt
frontend v1
{v1_binds}
    default_backend send_v1
frontend v2
{v2_binds}
    default_backend send_v2
backend send_v1
    server s1 127.0.0.1:{backend} send-proxy
backend send_v2
    server s1 127.0.0.1:{backend} send-proxy-v2 proxy-v2-options crc32c,unique-id check inter 300ms
"""


def _wait_listening(
    addresses: list[tuple[str, int]], proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Until haproxy accepts on every frontend (polled with a deadline, not a sleep)."""
    deadline = time.monotonic() + TIMEOUT
    for host, port in addresses:
        while True:
            if proc.poll() is not None:
                pytest.fail(f"haproxy exited: {log.read_text(errors='replace')}")
            try:
                with socket.create_connection((host, port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"haproxy does not listen on {host}:{port}")
                time.sleep(0.02)


@pytest.fixture(scope="module")
def haproxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Haproxy]:
    recorder = Recorder()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    hosts = ["127.0.0.1", "::1"] if IPV6 else ["127.0.0.1"]
    v1 = [(h, free_port(h)) for h in hosts]
    v2 = [(h, free_port(h)) for h in hosts]

    def binds(addrs: list[tuple[str, int]]) -> str:
        return "\n".join(
            f"    bind {'ipv6@' if ':' in h else ''}{h}:{p}" + (" v6only" if ":" in h else "")
            for h, p in addrs
        )

    tmp = tmp_path_factory.mktemp("haproxy")
    config, log = tmp / "haproxy.cfg", tmp / "haproxy.log"
    config.write_text(
        CONFIG.format(v1_binds=binds(v1), v2_binds=binds(v2), backend=recorder.server_address[1])
    )
    assert HAPROXY is not None
    with log.open("wb") as err:  # a file, not a pipe: haproxy's messages never block it
        proc = subprocess.Popen(
            [HAPROXY, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=err
        )
    try:
        _wait_listening(v1 + v2, proc, log)
        yield Haproxy(recorder, v1, v2)
    finally:
        proc.terminate()
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)
        recorder.shutdown()
        recorder.server_close()
        thread.join(TIMEOUT)


def through(frontend: tuple[str, int], recorder: Recorder) -> tuple[Received, tuple[str, int]]:
    """Connect a client through haproxy; the header our backend got for it, and the
    client's own address."""
    with socket.create_connection(frontend, timeout=TIMEOUT) as client:
        me = client.getsockname()[:2]
        client.sendall(b"hello through haproxy")
        assert client.recv(2) == b"ok"

    def mine(r: Received) -> bool:
        return r.header.source == (me[0], me[1])

    return recorder.wait_for(mine), (me[0], me[1])


def _frontends(version: int) -> list[object]:
    hosts = ["127.0.0.1", "::1"] if IPV6 else ["127.0.0.1"]
    return [pytest.param(i, id=h) for i, h in enumerate(hosts)]


@pytest.mark.parametrize("index", _frontends(1))
def test_send_proxy_v1(haproxy: Haproxy, index: int) -> None:
    frontend = haproxy.v1[index]
    got, me = through(frontend, haproxy.recorder)
    h = got.header
    assert (h.version, h.command, h.protocol) == (1, "PROXY", "STREAM")
    assert h.family == ("INET6" if ":" in frontend[0] else "INET")
    assert h.source == me
    assert h.destination == frontend
    assert got.raw[got.consumed :] == b"hello through haproxy"
    line = got.raw[: got.consumed]
    family = "TCP6" if ":" in me[0] else "TCP4"
    assert line == f"PROXY {family} {me[0]} {frontend[0]} {me[1]} {frontend[1]}\r\n".encode()


@pytest.mark.parametrize("index", _frontends(2))
def test_send_proxy_v2_with_tlvs(haproxy: Haproxy, index: int) -> None:
    frontend = haproxy.v2[index]
    got, me = through(frontend, haproxy.recorder)
    h = got.header
    assert (h.version, h.command, h.protocol) == (2, "PROXY", "STREAM")
    assert h.family == ("INET6" if ":" in frontend[0] else "INET")
    assert h.source == me
    assert h.destination == frontend
    assert got.raw[got.consumed :] == b"hello through haproxy"
    # proxy-v2-options crc32c,unique-id: parse_header verified the checksum (2.2.3)
    assert h.tlv(px.TlvType.CRC32C) is not None
    unique_id = h.tlv(px.TlvType.UNIQUE_ID)
    assert unique_id is not None
    assert unique_id.startswith(f"{me[0]}:{me[1]}_".encode())  # unique-id-format above
    # the header re-encodes to the same bytes (CRC recomputed by our encoder)
    assert px.encode_v2(h) == got.raw[: got.consumed]
    # a byte changed in the address block: the CRC32c no longer matches
    bad = bytearray(got.raw[: got.consumed])
    bad[17] ^= 1
    with pytest.raises(DecodeError, match="CRC32c"):
        px.parse_header(bytes(bad))


def test_health_checks_send_local(haproxy: Haproxy) -> None:
    """haproxy's health checks are not relayed clients: version 2 says LOCAL (2.2), with
    no address, so the receiver uses the connection's own; the CRC32c TLV still comes."""
    local = haproxy.recorder.wait_for(lambda r: r.header.version == 2 and r.header.is_local)
    h = local.header
    assert (h.command, h.family, h.protocol) == ("LOCAL", "UNSPEC", "UNSPEC")
    assert h.tlv(px.TlvType.CRC32C) is not None
    assert px.encode_v2(h) == local.raw[: local.consumed]


def tshark_rows(path: Path, names: list[str]) -> list[dict[str, str]]:
    """tshark's fields for every packet it dissected as PROXY (its dissector is heuristic:
    no decode-as needed, nor possible)."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), "-Y", "proxy", "-T", "fields"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=,"]
    for name in names:
        cmd += ["-e", name]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [dict(zip(names, line.split("\t"), strict=True)) for line in out.splitlines()]


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed")
def test_tshark_agrees_on_haproxy_headers(haproxy: Haproxy, tmp_path: Path) -> None:
    """The headers haproxy sent, in a capture: ``wirekit parse schemas.proxy:HEADER`` and
    tshark's PROXY dissector give the same version, command, family, protocol, length,
    addresses, ports and TLV types, field for field."""
    v1, _ = through(haproxy.v1[0], haproxy.recorder)
    v2, _ = through(haproxy.v2[0], haproxy.recorder)
    local = haproxy.recorder.wait_for(lambda r: r.header.version == 2 and r.header.is_local)
    cap = Capture()
    backend = ("127.0.0.1", haproxy.recorder.server_address[1])
    for n, got in enumerate((v1, v2, local)):
        t = Tcp(cap, ("127.0.0.1", 40000 + n), backend)
        for frame in [*t.handshake(), *t.data("c", got.raw[: got.consumed]), *t.close()]:
            cap.add(frame)
    path = cap.write(tmp_path / "proxy.pcap")
    names = [
        "proxy.v1.proto",
        "proxy.v2.version",
        "proxy.v2.cmd",
        "proxy.v2.addr_family",
        "proxy.v2.protocol",
        "proxy.v2.length",
        "proxy.src.ipv4",
        "proxy.dst.ipv4",
        "proxy.srcport",
        "proxy.dstport",
        "proxy.v2.tlv.type",
    ]
    theirs = tshark_rows(path, names)
    # The one difference: behind LOCAL/UNSPEC, tshark shows no TLVs (it skips the block as
    # address information to ignore); we read it as TLVs, and the CRC32c TLV haproxy put
    # there verifies (parse_header checked it), so haproxy means them as TLVs too.
    assert theirs[2]["proxy.v2.tlv.type"] == ""
    theirs[2]["proxy.v2.tlv.type"] = "0x03"

    proc = subprocess.run(
        [sys.executable, "-m", "codec.cli", "parse", "schemas.proxy:HEADER", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    ours = [_as_tshark(json.loads(line)["message"]) for line in proc.stdout.splitlines()]
    assert ours == theirs


_CODES = {
    "LOCAL": 0,
    "PROXY": 1,
    **{name: n for n, name in enumerate(["UNSPEC", "INET", "INET6", "UNIX"])},
}
_PROTOCOLS = {"UNSPEC": 0, "STREAM": 1, "DGRAM": 2}


def _as_tshark(msg: dict[str, Any]) -> dict[str, str]:
    """One ``wirekit parse`` JSON message laid out as tshark's fields."""
    if msg.get("version") == 1:
        return {
            "proxy.v1.proto": msg["protocol"],
            **dict.fromkeys(["proxy.v2.version", "proxy.v2.cmd", "proxy.v2.addr_family"], ""),
            "proxy.v2.protocol": "",
            "proxy.v2.length": "",
            "proxy.src.ipv4": msg["source"],
            "proxy.dst.ipv4": msg["destination"],
            "proxy.srcport": str(msg["source_port"]),
            "proxy.dstport": str(msg["destination_port"]),
            "proxy.v2.tlv.type": "",
        }
    addresses = msg["body"]["addresses"] or {}
    tlv_types = [
        t if isinstance(t, int) else int(px.TlvType[t])
        for t in (x["type"] for x in msg["body"]["tlvs"])
    ]
    return {
        "proxy.v1.proto": "",
        "proxy.v2.version": str(msg["ver_cmd"]["version"]),
        "proxy.v2.cmd": str(_CODES[msg["ver_cmd"]["command"]]),
        "proxy.v2.addr_family": f"0x{_CODES[msg['fam']['family']]:02x}",
        "proxy.v2.protocol": f"0x{_PROTOCOLS[msg['fam']['protocol']]:02x}",
        "proxy.v2.length": str(msg["length"]),
        "proxy.src.ipv4": addresses.get("source", ""),
        "proxy.dst.ipv4": addresses.get("destination", ""),
        "proxy.srcport": str(addresses.get("source_port", "")),
        "proxy.dstport": str(addresses.get("destination_port", "")),
        "proxy.v2.tlv.type": ",".join(f"0x{t:02x}" for t in tlv_types),
    }


def test_parse_header_is_incremental_on_real_bytes(haproxy: Haproxy) -> None:
    """Every prefix of a real header waits; the whole one decodes; the client's bytes stay."""
    for frontends in (haproxy.v1, haproxy.v2):
        got, _ = through(frontends[0], haproxy.recorder)
        header = got.raw[: got.consumed]
        for cut in range(len(header)):
            assert px.parse_header(header[:cut]) == (None, 0)
        assert px.parse_header(got.raw) == (got.header, got.consumed)
