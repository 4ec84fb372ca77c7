"""wirekit parse against tshark's own dissection, field for field.

Two protocols tshark knows, written as construct schemas in ``protocols.py``: Modbus/TCP and
DNS over TCP. Captures are crafted (reordered, retransmitted, sticky and split segments,
sequence wrap-around) and, where dumpcap may capture on loopback, made for real.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from codec import Codec
from codec.capture import Direction, Record, parse_file

from .pcapgen import Capture, Tcp
from .protocols import (
    DNS,
    DNS_TCP,
    MODBUS,
    READ_REQUEST,
    READ_RESPONSE,
    dns_answer_a,
    dns_query,
    modbus_read,
)
from .tshark import DUMPCAP, fields, needs_tshark, num

pytestmark = [pytest.mark.peer, needs_tshark]

MODBUS_FIELDS = [
    "mbtcp.trans_id",
    "mbtcp.len",
    "mbtcp.unit_id",
    "modbus.func_code",
    "modbus.reference_num",
    "modbus.word_cnt",
    "modbus.byte_cnt",
    "modbus.regval_uint16",
]


def ours_modbus(records: list[Record]) -> dict[str, list[int]]:
    """Our records laid out like tshark's fields (requests and responses interleaved in
    the order their last segment was captured)."""
    out: dict[str, list[int]] = {n: [] for n in MODBUS_FIELDS}
    for r in records:
        m = r.message
        out["mbtcp.trans_id"].append(m.transaction_id)
        out["mbtcp.len"].append(m.length)
        out["mbtcp.unit_id"].append(m.unit_id)
        out["modbus.func_code"].append(m.function_code)
        if r.direction is Direction.C2S:
            req = READ_REQUEST.parse(m.data)
            out["modbus.reference_num"].append(req.address)
            out["modbus.word_cnt"].append(req.quantity)
        else:
            resp = READ_RESPONSE.parse(m.data)
            out["modbus.byte_cnt"].append(resp.byte_count)
            out["modbus.regval_uint16"] += list(resp.registers)
    return out


def compare_modbus(path: Path, port: int, expect: int) -> None:
    """tshark tells Modbus requests from responses by port 502 only; on another port it
    dissects the MBAP header and function code but not the PDU bodies."""
    names = MODBUS_FIELDS if port == 502 else MODBUS_FIELDS[:4]
    records = list(parse_file(Codec(MODBUS), path))
    assert len(records) == expect
    theirs = {k: num(v) for k, v in fields(path, f"tcp.port=={port},mbtcp", names).items()}
    ours = ours_modbus(records)
    assert {k: ours[k] for k in names} == theirs


def modbus_capture(tmp_path: Path, seed: int) -> tuple[Path, int]:
    rng = random.Random(seed)
    cap = Capture(vlan=5 if seed % 2 else None)
    frames: list[bytes] = []
    port = 502
    for c in range(3):
        client = ("fd00::1", 41000 + c) if c == 2 else ("10.0.0.1", 41000 + c)
        server = ("fd00::2", port) if c == 2 else ("10.0.0.2", port)
        t = Tcp(cap, client, server, isn_c=(1 << 32) - rng.randrange(200), isn_s=rng.randrange(9))
        conn = t.handshake()
        for i in range(6):
            regs = [rng.randrange(65536) for _ in range(rng.randint(1, 20))]
            req, resp = modbus_read(c * 100 + i, rng.randrange(1000), regs, unit=c + 1)
            if i % 3 == 2:  # two requests in one segment (sticky), answered together
                req2, resp2 = modbus_read(c * 100 + 50 + i, 7, [1, 2], unit=c + 1)
                conn += t.data("c", req + req2)
                conn += t.data("s", resp + resp2)
            else:
                conn += t.data("c", req)
                conn += t.data("s", resp)
        body = conn[3:]
        # swap neighbouring server segments and retransmit some
        for j in range(0, len(body) - 3, 4):
            body[j + 1], body[j + 3] = body[j + 3], body[j + 1]
        body += [body[j] for j in range(0, len(body), 5)]
        frames += conn[:3] + body + t.close()
    for f in frames:
        cap.add(f)
    return cap.write(tmp_path / "modbus.pcap"), port


@pytest.mark.parametrize("seed", [0, 1])
def test_modbus_matches_tshark(tmp_path: Path, seed: int) -> None:
    path, port = modbus_capture(tmp_path, seed)
    compare_modbus(path, port, expect=3 * 8 * 2)


DNS_FIELDS = [
    "dns.id",
    "dns.flags",
    "dns.count.queries",
    "dns.count.answers",
    "dns.qry.name",
    "dns.qry.type",
]


def ours_dns(records: list[Record]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {n: [] for n in DNS_FIELDS}
    for r in records:
        m = r.message
        out["dns.id"].append(m.id)
        out["dns.flags"].append(m.flags)
        out["dns.count.queries"].append(m.qdcount)
        out["dns.count.answers"].append(m.ancount)
        for q in m.questions:
            out["dns.qry.name"].append(".".join(q.qname[:-1]))
            out["dns.qry.type"].append(q.qtype)
    return out


@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_dns_over_tcp_matches_tshark(tmp_path: Path, fmt: str) -> None:
    rng = random.Random(7)
    cap = Capture(link="sll")
    port = 5353
    t = Tcp(cap, ("10.1.0.1", 50000), ("10.1.0.53", port), isn_c=(1 << 32) - 5, isn_s=1 << 31)
    frames = t.handshake()
    for i in range(12):
        names = [f"host{i}-{k}.example.org" for k in range(1 + i % 3)]
        q = DNS_TCP.build(dns_query(0x1000 + i, names, qtype=(1, 28, 15)[i % 3]))
        a = DNS_TCP.build(dns_answer_a(0x1000 + i, names[0], bytes([10, 0, 0, i])))
        segs_c = t.data("c", q, mss=rng.choice([3, 5, 40]))
        segs_s = t.data("s", a, mss=rng.choice([4, 7, 100]))
        if len(segs_c) > 1:
            segs_c[0], segs_c[1] = segs_c[1], segs_c[0]
            segs_c.append(segs_c[0])
        frames += segs_c + segs_s
    frames += t.close()
    for f in frames:
        cap.add(f)
    path = cap.write(tmp_path / f"dns.{fmt}", fmt)
    records = list(parse_file(Codec(DNS_TCP), path))
    assert len(records) == 24
    theirs: dict[str, list[Any]] = fields(path, f"tcp.port=={port},dns", DNS_FIELDS)
    for key in ("dns.id", "dns.flags", "dns.count.queries", "dns.count.answers", "dns.qry.type"):
        theirs[key] = num(theirs[key])
    assert ours_dns(records) == theirs


def test_dns_over_udp_matches_tshark(tmp_path: Path) -> None:
    cap = Capture()
    for i in range(5):
        q = DNS.build(dns_query(i, [f"u{i}.example"]))
        a = DNS.build(dns_answer_a(i, f"u{i}.example", b"\x7f\x00\x00\x01"))
        cap.add(cap.udp("10.0.0.1", 40000 + i, "10.0.0.53", 5300, q))
        cap.add(cap.udp("10.0.0.53", 5300, "10.0.0.1", 40000 + i, a))
    path = cap.write(tmp_path / "udp.pcap")
    records = list(parse_file(Codec(DNS_TCP), path, udp_protocol=_WholeDatagram()))
    theirs: dict[str, list[Any]] = fields(path, "udp.port==5300,dns", DNS_FIELDS)
    for key in ("dns.id", "dns.flags", "dns.count.queries", "dns.count.answers", "dns.qry.type"):
        theirs[key] = num(theirs[key])
    assert ours_dns(records) == theirs


class _WholeDatagram:
    def decode(self, buf: Any) -> Any:
        data = buf.peek()
        buf.consume(len(data))
        return DNS.parse(data)

    def encode(self, msg: Any) -> bytes:
        return bytes(DNS.build(msg))


# -- a real capture on loopback -----------------------------------------------------------
needs_dumpcap = pytest.mark.skipif(
    DUMPCAP is None or os.geteuid() != 0,
    reason="needs dumpcap and the right to capture on loopback (root here)",
)


async def _modbus_exchange(port: int, n: int) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        codec = Codec(MODBUS)
        dec = codec.decoder()
        while data := await reader.read(4096):
            for m in dec.feed(data):
                q = READ_REQUEST.parse(m.data)
                _, resp = modbus_read(m.transaction_id, q.address, list(range(q.quantity)))
                writer.write(resp)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, reuse_address=True)
    async with server:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        for i in range(n):
            req, resp = modbus_read(i, 10 * i, list(range(i % 7 + 1)))
            writer.write(req)
            if i % 4 == 0:
                await writer.drain()
                await reader.readexactly(len(resp))
        await writer.drain()
        writer.write_eof()
        await reader.read()
        writer.close()


@needs_dumpcap
def test_real_loopback_capture_matches_tshark(tmp_path: Path) -> None:
    assert DUMPCAP is not None
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", 502))  # Modbus's port: tshark then dissects PDU bodies too
        except OSError:
            s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = tmp_path / "lo.pcapng"
    proc = subprocess.Popen(
        [DUMPCAP, "-q", "-i", "lo", "-f", f"tcp port {port}", "-w", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        # dumpcap says "Capturing on 'Loopback: lo'" once the filter is in place
        deadline = time.monotonic() + 20
        assert proc.stderr is not None
        line = ""
        while "Capturing on" not in line:
            if time.monotonic() > deadline or proc.poll() is not None:
                pytest.skip(f"dumpcap did not start: {line.strip()}")
            line = proc.stderr.readline()
        time.sleep(0.2)
        asyncio.run(asyncio.wait_for(_modbus_exchange(port, 40), 20))
        time.sleep(0.5)  # let dumpcap write the last packets out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()
    compare_modbus(path, port, expect=80)
