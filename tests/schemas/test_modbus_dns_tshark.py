"""``wirekit parse`` on real loopback captures agrees with tshark's dissection, field for
field: Modbus/TCP between pymodbus's client and examples/modbus_server.py, and DNS over UDP
and TCP between dnspython and dnsmasq (compressed names, CNAME, AAAA, MX, TXT, NXDOMAIN).

dumpcap captures on ``lo`` (root, or a dumpcap allowed to capture: the CI runs as root);
tshark dissects with ``-T json``; ``wirekit parse`` runs as its console script. Captures end
with a sentinel datagram: once it is in the file, so is everything before it (no sleeps).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import pytest
from pymodbus.client import AsyncModbusTcpClient

from schemas import dns as wdns
from schemas import modbus
from tests.codec.capture.tshark import DUMPCAP, TSHARK

from .test_dns_dnsmasq import DNSMASQ, dnsmasq  # noqa: F401 - the fixture, shared

TIMEOUT = 20.0
ROOT = Path(__file__).resolve().parents[2]

pytestmark = [
    pytest.mark.peer,
    pytest.mark.skipif(
        TSHARK is None or DUMPCAP is None,
        reason="needs tshark and dumpcap (apt-get install tshark; .ci/run installs it)",
    ),
    pytest.mark.skipif(os.geteuid() != 0, reason="capturing on loopback needs root (as on the CI)"),
]


def _sentinel(path: Path, host: str, port: int, deadline: float, *, resend: bool) -> None:
    """Send a unique datagram until ``path`` holds it: dumpcap says "Capturing on" a little
    before it captures, and writes packets out a little after."""
    token = f"wirekit-sentinel-{random.getrandbits(64):016x}".encode()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sent_at = 0.0
        while not (path.exists() and token in path.read_bytes()):
            now = time.monotonic()
            if now > deadline:
                pytest.fail("dumpcap did not capture the sentinel datagram")
            if sent_at == 0.0 or (resend and now - sent_at > 0.5):
                sock.sendto(token, (host, port))
                sent_at = now
            time.sleep(0.02)  # polling a condition, with a deadline


@contextmanager
def capture(path: Path, bpf: str, sentinel_port: int, host: str = "127.0.0.1") -> Iterator[None]:
    """Capture ``bpf`` on ``lo`` into ``path``: everything sent inside the block, and
    nothing is left unwritten when the block ends (sentinel datagrams on both sides)."""
    assert DUMPCAP is not None
    bpf = f"({bpf}) or (host {host} and udp port {sentinel_port})"
    proc = subprocess.Popen(
        [DUMPCAP, "-q", "-i", "lo", "-f", bpf, "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    try:
        line = proc.stderr.readline()
        if "Capturing on" not in line:
            pytest.fail(f"dumpcap did not start: {line}{proc.stderr.read()}")
        _sentinel(path, host, sentinel_port, time.monotonic() + TIMEOUT, resend=True)
        yield
        _sentinel(path, host, sentinel_port, time.monotonic() + TIMEOUT, resend=False)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)
        proc.stderr.close()


def tshark_json(path: Path, decode_as: list[str], display: str, fields: list[str]) -> list[Any]:
    """tshark's dissection, one dict per packet that matches ``display``: field -> values."""
    assert TSHARK is not None
    cmd = [TSHARK, "-n", "-r", str(path), "-Y", display, "-T", "json"]
    for d in decode_as:
        cmd += ["-d", d]
    for f in fields:
        cmd += ["-e", f]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True).stdout
    return [packet["_source"]["layers"] for packet in json.loads(out or "[]")]


def wirekit_parse(path: Path, *args: str) -> list[dict[str, Any]]:
    """``wirekit parse`` as a user runs it: its JSON lines."""
    proc = subprocess.run(
        [sys.executable, "-m", "codec.cli", "parse", *args[:1], str(path), *args[1:], "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def flatten(packets: list[dict[str, list[str]]], names: list[str]) -> dict[str, list[str]]:
    return {n: [v for p in packets for v in p.get(n, [])] for n in names}


# -- Modbus/TCP -----------------------------------------------------------------------------
MODBUS_FIELDS = [
    "mbtcp.trans_id",
    "mbtcp.prot_id",
    "mbtcp.len",
    "mbtcp.unit_id",
    "modbus.func_code",
    "modbus.reference_num",
    "modbus.word_cnt",
    "modbus.bit_cnt",
    "modbus.byte_cnt",
    "modbus.regval_uint16",
    "modbus.bitval",
    "modbus.data",
    "modbus.exception_code",
]


async def modbus_exchange(host: str, port: int) -> None:
    """pymodbus's client: every function of the example server, and its exceptions."""
    client = AsyncModbusTcpClient(host, port=port, timeout=5, retries=0)
    assert await client.connect()
    try:
        await client.write_registers(3, [0x1234, 0, 0xFFFF], device_id=1)
        await client.write_register(7, 42, device_id=2)
        await client.read_holding_registers(2, count=7, device_id=1)
        await client.read_input_registers(3, count=2, device_id=1)
        await client.write_coils(5, [True, False, True, True, False, True, True, True, True])
        await client.write_coil(1, True, device_id=1)
        await client.read_coils(0, count=16, device_id=1)
        await client.read_discrete_inputs(4, count=3, device_id=1)
        await client.read_holding_registers(95, count=10, device_id=1)  # exception 02
        await client.read_device_information(device_id=1)  # exception 01
    finally:
        client.close()


def first_line(proc: subprocess.Popen[str]) -> str:
    """The first line a process prints, or "" if none comes within ``TIMEOUT``."""
    assert proc.stdout is not None
    out = proc.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(out.readline()), daemon=True)
    reader.start()
    reader.join(TIMEOUT)
    return lines[0] if lines else ""


def test_modbus_capture_matches_tshark(tmp_path: Path) -> None:
    # port 502 is how tshark tells requests from responses; a loopback address of our own
    # keeps the port from colliding with anything else on the machine
    rng = random.Random()
    for _attempt in range(5):
        host = f"127.{rng.randrange(1, 255)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"
        proc = subprocess.Popen(
            [
                sys.executable,
                str(ROOT / "examples" / "modbus_server.py"),
                *("--host", host, "--port", "502", "--registers", "100", "--coils", "100"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        if first_line(proc).startswith("listening on"):
            break
        proc.kill()  # it could not bind (or said nothing in time): try another address
        proc.communicate(timeout=TIMEOUT)
    else:
        pytest.fail("the Modbus example server could not listen on port 502")
    path = tmp_path / "modbus.pcapng"
    try:
        with capture(path, f"host {host} and tcp port 502", 5020, host):
            asyncio.run(asyncio.wait_for(modbus_exchange(host, 502), TIMEOUT))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=TIMEOUT)

    records = wirekit_parse(path, "schemas.modbus:ADU", "--port", "502")
    assert len(records) == 20  # ten requests, ten responses
    theirs = flatten(
        tshark_json(path, [], "mbtcp && tcp.port == 502", MODBUS_FIELDS), MODBUS_FIELDS
    )
    ours: dict[str, list[str]] = {n: [] for n in MODBUS_FIELDS}
    asked: dict[int, Any] = {}  # request bodies by transaction id
    for rec in records:
        m = rec["message"]
        ours["mbtcp.trans_id"].append(str(m["transaction_id"]))
        ours["mbtcp.prot_id"].append(str(m["protocol_id"]))
        ours["mbtcp.len"].append(str(m["length"]))
        ours["mbtcp.unit_id"].append(str(m["unit_id"]))
        # tshark's field masks the exception bit off (0x7F); modbus.exception_code says it
        ours["modbus.func_code"].append(str(m["function_code"] & 0x7F))
        # the ADU's data, parsed as the request or response its direction makes it
        adu = bytes.fromhex(f"{m['transaction_id']:04x}0000{m['length']:04x}")
        adu += bytes([m["unit_id"], m["function_code"]]) + bytes.fromhex(m["data"])
        if rec["direction"] == "c2s":
            body = modbus.REQUEST.parse(adu).data
            if isinstance(body, bytes):  # a function the schema keeps as bytes (0x2B)
                continue
            ours["modbus.reference_num"].append(str(body.address))
            if m["function_code"] in (1, 2, 0x0F):
                ours["modbus.bit_cnt"].append(str(body.quantity))
            elif m["function_code"] in (3, 4, 0x10):
                ours["modbus.word_cnt"].append(str(body.quantity))
            if m["function_code"] in (0x0F, 0x10):
                ours["modbus.byte_cnt"].append(str(body.byte_count))
            if m["function_code"] == 0x10:
                ours["modbus.regval_uint16"] += [str(r) for r in body.registers]
            if m["function_code"] in (5, 6):
                ours["modbus.data"].append(f"{body.value:04x}")
            if m["function_code"] == 0x0F:
                ours["modbus.data"].append(body.outputs.hex())
            asked[m["transaction_id"]] = body
        else:
            resp = modbus.RESPONSE.parse(adu)
            body = resp.data
            if resp.function_code & 0x80:
                ours["modbus.exception_code"].append(str(body.exception_code))
            elif m["function_code"] in (1, 2):
                ours["modbus.byte_cnt"].append(str(body.byte_count))
                # as many states as the request asked for (the rest is padding)
                count = asked[m["transaction_id"]].quantity
                bits = modbus.unpack_bits(body.status, count)
                ours["modbus.bitval"] += [str(int(b)) for b in bits]
            elif m["function_code"] in (3, 4):
                ours["modbus.byte_cnt"].append(str(body.byte_count))
                ours["modbus.regval_uint16"] += [str(r) for r in body.registers]
            elif m["function_code"] in (5, 6, 0x0F, 0x10):
                ours["modbus.reference_num"].append(str(body.address))
                if m["function_code"] == 0x0F:
                    ours["modbus.bit_cnt"].append(str(body.quantity))
                elif m["function_code"] == 0x10:
                    ours["modbus.word_cnt"].append(str(body.quantity))
                else:
                    ours["modbus.data"].append(f"{body.value:04x}")
    for name in MODBUS_FIELDS:
        assert ours[name] == theirs[name], name


# -- DNS --------------------------------------------------------------------------------------
DNS_FIELDS = [
    "dns.id",
    "dns.flags",
    "dns.count.queries",
    "dns.count.answers",
    "dns.count.auth_rr",
    "dns.count.add_rr",
    "dns.qry.name",
    "dns.qry.type",
    "dns.qry.class",
    "dns.resp.name",
    "dns.resp.type",
    "dns.resp.class",
    "dns.resp.ttl",
    "dns.resp.len",
    "dns.a",
    "dns.aaaa",
    "dns.cname",
    "dns.mx.preference",
    "dns.mx.mail_exchange",
    "dns.txt",
]
DNS_QUERIES = [
    ("alias.example.test", "A"),
    ("example.test", "MX"),
    ("example.test", "TXT"),
    ("www.example.test", "AAAA"),
    ("anything.example.test", "A"),
    ("deep.nx.test", "A"),
]

_OPCODES: dict[str, int] = dict(wdns.OPCODE.encmapping)
_RCODES: dict[str, int] = dict(wdns.RCODE.encmapping)


def _number(value: Any, mapping: dict[str, int]) -> int:
    return mapping[value] if isinstance(value, str) else int(value)


def dns_flags(f: dict[str, Any]) -> int:
    """The header's flags word from our decoded flags (RFC 1035 4.1.1)."""
    bits = [("qr", 15), ("aa", 10), ("tc", 9), ("rd", 8), ("ra", 7), ("ad", 5), ("cd", 4)]
    word: int = sum(int(f[name]) << shift for name, shift in bits) | f["z"] << 6
    return word | _number(f["opcode"], _OPCODES) << 11 | _number(f["rcode"], _RCODES)


def ours_dns(records: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Our decoded messages laid out as tshark's fields, with tshark's number formats."""
    out: dict[str, list[str]] = {n: [] for n in DNS_FIELDS}
    for rec in records:
        m = rec["message"]
        out["dns.id"].append(f"0x{m['id']:04x}")
        out["dns.flags"].append(f"0x{dns_flags(m['flags']):04x}")
        for key, name in (("qdcount", "queries"), ("ancount", "answers")):
            out[f"dns.count.{name}"].append(str(m[key]))
        for key, name in (("nscount", "auth_rr"), ("arcount", "add_rr")):
            out[f"dns.count.{name}"].append(str(m[key]))
        for q in m["questions"]:
            out["dns.qry.name"].append(q["qname"])
            out["dns.qry.type"].append(str(_number(q["qtype"], wdns.TYPES)))
            out["dns.qry.class"].append(f"0x{_number(q['qclass'], {'IN': 1}):04x}")
        for rr in m["answers"] + m["authorities"] + m["additionals"]:
            out["dns.resp.name"].append(rr["name"])
            rtype = rr["rtype"]
            out["dns.resp.type"].append(str(_number(rtype, wdns.TYPES)))
            out["dns.resp.class"].append(f"0x{_number(rr['rclass'], {'IN': 1}):04x}")
            out["dns.resp.ttl"].append(str(rr["ttl"]))
            out["dns.resp.len"].append(str(rr["rdlength"]))
            rdata = rr["rdata"]
            if rtype == "A":
                out["dns.a"].append(rdata)
            elif rtype == "AAAA":
                out["dns.aaaa"].append(rdata)
            elif rtype == "CNAME":
                out["dns.cname"].append(rdata)
            elif rtype == "MX":
                out["dns.mx.preference"].append(str(rdata["preference"]))
                out["dns.mx.mail_exchange"].append(rdata["exchange"])
            elif rtype == "TXT":
                out["dns.txt"] += [bytes.fromhex(s).decode() for s in rdata]
    return out


@pytest.mark.skipif(DNSMASQ is None, reason="dnsmasq not installed (.ci/run installs it)")
def test_dns_capture_matches_tshark(tmp_path: Path, dnsmasq: int) -> None:  # noqa: F811
    path = tmp_path / "dns.pcapng"
    with capture(path, f"port {dnsmasq}", dnsmasq + 1 if dnsmasq < 65535 else dnsmasq - 1):
        for name, qtype in DNS_QUERIES:
            for send in (dns.query.udp, dns.query.tcp):
                query = dns.message.make_query(name, qtype)
                answer = send(query, "127.0.0.1", port=dnsmasq, timeout=TIMEOUT)
                assert answer.id  # answered
    records = wirekit_parse(
        path,
        "schemas.dns:TCP_MESSAGE",
        "--udp-schema",
        "schemas.dns:MESSAGE",
        "--port",
        str(dnsmasq),
    )
    assert len(records) == 4 * len(DNS_QUERIES)
    assert {r["flow"]["proto"] for r in records} == {"udp", "tcp"}
    decode_as = [f"udp.port=={dnsmasq},dns", f"tcp.port=={dnsmasq},dns"]
    packets = tshark_json(
        path, decode_as, f"dns && (udp.port=={dnsmasq} || tcp.port=={dnsmasq})", DNS_FIELDS
    )
    theirs = flatten(packets, DNS_FIELDS)
    ours = ours_dns(records)
    for name in DNS_FIELDS:
        assert ours[name] == theirs[name], name
    assert "NXDOMAIN" in {r["message"]["flags"]["rcode"] for r in records}
    for name in ("dns.cname", "dns.txt", "dns.aaaa", "dns.mx.mail_exchange"):
        assert theirs[name], f"no {name} in the capture"
