"""``wirekit parse schemas.tls:RECORD_CODEC`` on a capture of a real TLS 1.3 exchange (two
OpenSSL endpoints through Python's ssl module, certificates from trustme) agrees with
tshark's dissection record for record, and the ClientHello field for field."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
from itertools import groupby
from pathlib import Path

import pytest
import trustme

from codec import Buffer
from schemas import tls

from ..codec.capture.pcapgen import Capture, Tcp
from ..codec.capture.tshark import fields, needs_tshark, num

pytestmark = [pytest.mark.peer, needs_tshark]

ROOT = Path(__file__).resolve().parents[2]
PORT = 8443


def handshake_in_memory() -> list[tuple[str, bytes]]:
    """A whole TLS exchange between an ssl client and server over memory BIOs: what each
    side sent, in order (``"c"`` client, ``"s"`` server)."""
    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("example.test").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    client_ctx.set_alpn_protocols(["h2", "http/1.1"])
    server_ctx.set_alpn_protocols(["http/1.1"])
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname="example.test")
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    sent: list[tuple[str, bytes]] = []

    def move(side: str, src: ssl.MemoryBIO, dst: ssl.MemoryBIO) -> None:
        data = src.read()
        if data:
            sent.append((side, data))
            dst.write(data)

    def step(conn: ssl.SSLObject) -> bool:
        try:
            conn.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    client_done = server_done = False
    for _ in range(10):  # TLS 1.3 needs two round trips; a bound, not a wait
        client_done = client_done or step(client)
        move("c", c_out, s_in)
        server_done = server_done or step(server)
        move("s", s_out, c_in)
        if client_done and server_done:
            break
    assert client_done
    assert server_done
    client.write(b"GET / HTTP/1.1\r\n\r\n")
    move("c", c_out, s_in)
    assert server.read() == b"GET / HTTP/1.1\r\n\r\n"
    server.write(b"HTTP/1.1 204 No Content\r\n\r\n")
    move("s", s_out, c_in)
    assert client.read() == b"HTTP/1.1 204 No Content\r\n\r\n"
    return sent


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[tuple[str, bytes]]]:
    sent = handshake_in_memory()
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 50000), ("10.0.0.2", PORT))
    for frame in t.handshake():
        cap.add(frame)
    for side, data in sent:
        (segment,) = t.data(side, data, mss=65000)  # one frame per flight: simple to align
        cap.add(segment)
    for frame in t.close():
        cap.add(frame)
    return cap.write(tmp_path_factory.mktemp("tls") / "tls13.pcap"), sent


def test_records_agree_with_tshark(capture: tuple[Path, list[tuple[str, bytes]]]) -> None:
    path, sent = capture
    proc = subprocess.run(
        [sys.executable, "-m", "codec.cli", "parse", "schemas.tls:RECORD_CODEC", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    out = [json.loads(line) for line in proc.stdout.splitlines()]
    assert len(out) >= 8  # ClientHello; ServerHello, CCS and 4 encrypted; Finished; data...
    # our records, one group per captured frame (each flight was one segment)
    ours = [list(g) for _, g in groupby(out, key=lambda r: r["timestamp"])]
    assert len(ours) == len(sent)
    assert [g[0]["direction"] for g in ours] == [
        "c2s" if side == "c" else "s2c" for side, _ in sent
    ]
    names = [
        "tls.record.content_type",
        "tls.record.opaque_type",
        "tls.record.version",
        "tls.record.length",
    ]
    theirs = [dict(zip(names, line, strict=True)) for line in _per_frame(path, names) if any(line)]
    assert len(theirs) == len(ours)
    for group, row in zip(ours, theirs, strict=True):
        msgs = [r["message"] for r in group]
        assert [m["length"] for m in msgs] == num(row["tls.record.length"])
        assert [m["legacy_record_version"] for m in msgs] == num(row["tls.record.version"])
        # tshark files TLS 1.3's encrypted records (type 23) under "opaque_type"
        kinds = [tls.CONTENT_TYPE.build(m["type"])[0] for m in msgs]
        assert [k for k in kinds if k != 23] == num(row["tls.record.content_type"])
        assert [k for k in kinds if k == 23] == num(row["tls.record.opaque_type"])


def _per_frame(path: Path, names: list[str]) -> list[list[list[str]]]:
    """Every frame's values of ``names`` (a list per field), in frame order."""
    cmd = ["tshark", "-n", "-r", str(path), "-d", f"tcp.port=={PORT},tls", "-T", "fields"]
    cmd += ["-E", "occurrence=a", "-E", "aggregator=|"]
    for name in names:
        cmd += ["-e", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    return [
        [v.split("|") if v else [] for v in line.split("\t")] for line in proc.stdout.splitlines()
    ]


CLIENT_HELLO_FIELDS = [
    "tls.handshake.type",
    "tls.handshake.length",
    "tls.handshake.version",
    "tls.handshake.random",
    "tls.handshake.session_id",
    "tls.handshake.ciphersuite",
    "tls.handshake.comp_method",
    "tls.handshake.extension.type",
    "tls.handshake.extension.len",
    "tls.handshake.extensions_server_name",
    "tls.handshake.extensions.supported_version",
    "tls.handshake.extensions_alpn_str",
    "tls.handshake.extensions_supported_group",
    "tls.handshake.sig_hash_alg",
]


def test_client_hello_agrees_with_tshark(capture: tuple[Path, list[tuple[str, bytes]]]) -> None:
    path, sent = capture
    theirs = fields(path, f"tcp.port=={PORT},tls", CLIENT_HELLO_FIELDS)
    # only the ClientHello's values: tshark lists the ServerHello's after them
    hello = tls.read_client_hello(sent[0][1])
    assert hello is not None
    body = hello.body
    ext = {e.type: e for e in body.extensions}
    ours = {
        "tls.handshake.type": [1],
        "tls.handshake.length": [hello.length],
        "tls.handshake.version": [body.legacy_version],
        "tls.handshake.random": [body.random.hex()],
        "tls.handshake.session_id": [body.legacy_session_id.hex()],
        "tls.handshake.ciphersuite": list(body.cipher_suites),
        "tls.handshake.comp_method": list(body.legacy_compression_methods),
        "tls.handshake.extension.type": [int(e.type) for e in body.extensions],
        "tls.handshake.extension.len": [len(tls.EXTENSION.build(e)) - 4 for e in body.extensions],
        "tls.handshake.extensions_server_name": [tls.sni(hello)],
        "tls.handshake.extensions.supported_version": list(ext["supported_versions"].data),
        "tls.handshake.extensions_alpn_str": list(
            ext["application_layer_protocol_negotiation"].data
        ),
        "tls.handshake.extensions_supported_group": list(ext["supported_groups"].data),
        "tls.handshake.sig_hash_alg": list(ext["signature_algorithms"].data),
    }
    for name, values in ours.items():
        got = theirs[name][: len(values)]
        if values and isinstance(values[0], int):
            assert num(got) == values, name
        else:
            assert got == values, name
    # the record the ClientHello came in, decoded by the codec, is the same message
    (record,) = tls.RECORD_CODEC.decode_all(sent[0][1])
    assert tls.HANDSHAKE_CODEC.decode(Buffer(record.fragment)) == hello
