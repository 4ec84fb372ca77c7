#!/usr/bin/env python3
"""Offline parsing benchmark: ``wirekit parse`` against ``tshark -T json`` on one capture.

    .venv/bin/python bench/capture_bench.py            # ~100 MB capture
    .venv/bin/python bench/capture_bench.py --quick    # ~5 MB, also checks both agree

Generates a pcap of Modbus/TCP (port 502, a protocol tshark dissects) with many
interleaved connections, some reordered and retransmitted segments and sticky requests,
into ``bench/results/`` (gitignored), then runs, one after the other on the same file:

* ``wirekit parse bench/capture_schema.py:MODBUS FILE`` (JSON lines to /dev/null);
* ``tshark -r FILE -T json -e <the same fields>`` (to /dev/null), with out-of-order
  reassembly on so that both decode the same messages.

and prints MB/s, messages/s, wall time and peak RSS (from ``wait4``) of each.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SCHEMA = f"{ROOT / 'bench' / 'capture_schema.py'}:MODBUS"
FIELDS = ["mbtcp.trans_id", "mbtcp.len", "mbtcp.unit_id", "modbus.func_code"]

_ETH = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")
_REC = struct.Struct("<IIII")


def _frame(
    src: bytes, sport: int, dst: bytes, dport: int, seq: int, ack: int, flags: int, payload: bytes
) -> bytes:
    ip = _IP.pack(0x45, 0, 40 + len(payload), 0, 0x4000, 64, 6, 0, src, dst)
    tcp = _TCP.pack(sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags, 65535, 0, 0)
    return _ETH + ip + tcp + payload


def _mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack("!HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def generate(path: Path, target_bytes: int, seed: int = 1) -> tuple[int, int]:
    """Write the capture; returns (packets, Modbus messages)."""
    rng = random.Random(seed)
    packets = messages = 0
    t = 1_700_000_000.0
    server = bytes([10, 0, 0, 2])
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        written = 24
        conn_no = 0

        def emit(frame: bytes) -> None:
            nonlocal written, packets, t
            t += 0.00001
            sec = int(t)
            f.write(_REC.pack(sec, int((t - sec) * 1e6), len(frame), len(frame)))
            f.write(frame)
            written += 16 + len(frame)
            packets += 1

        while written < target_bytes:
            # a batch of concurrent connections whose segments interleave
            batch = []
            for _ in range(50):
                conn_no += 1
                client = bytes([10, 1, (conn_no >> 8) & 0xFF, conn_no & 0xFF])
                sport = 10000 + conn_no % 50000
                cs_, ss = rng.randrange(1 << 32), rng.randrange(1 << 32)
                segs: list[bytes] = [
                    _frame(client, sport, server, 502, cs_, 0, 0x02, b""),
                    _frame(server, 502, client, sport, ss, cs_ + 1, 0x12, b""),
                    _frame(client, sport, server, 502, cs_ + 1, ss + 1, 0x10, b""),
                ]
                cseq, sseq = cs_ + 1, ss + 1
                for i in range(rng.randint(20, 60)):
                    n_req = 2 if i % 7 == 0 else 1  # sticky requests now and then
                    req = b""
                    resp = b""
                    for k in range(n_req):
                        tid = (i * 2 + k) & 0xFFFF
                        qty = rng.randint(1, 40)
                        req += _mbap(tid, 1, struct.pack("!BHH", 3, rng.randrange(9999), qty))
                        regs = struct.pack(f"!{qty}H", *(rng.randrange(65536) for _ in range(qty)))
                        resp += _mbap(tid, 1, bytes([3, 2 * qty]) + regs)
                        messages += 2
                    segs.append(_frame(client, sport, server, 502, cseq, sseq, 0x18, req))
                    cseq += len(req)
                    # responses split at a random point into two segments
                    cut = rng.randint(8, len(resp) - 1) if len(resp) > 16 else len(resp)
                    parts = [resp[:cut], resp[cut:]] if cut < len(resp) else [resp]
                    rs = [
                        _frame(server, 502, client, sport, sseq + (cut if j else 0), cseq, 0x18, p)
                        for j, p in enumerate(parts)
                    ]
                    sseq += len(resp)
                    if len(rs) == 2 and rng.random() < 0.05:
                        rs.reverse()  # reordered
                    if rng.random() < 0.02:
                        rs.append(rs[0])  # retransmitted
                    segs += rs
                segs += [
                    _frame(client, sport, server, 502, cseq, sseq, 0x11, b""),
                    _frame(server, 502, client, sport, sseq, cseq + 1, 0x11, b""),
                    _frame(client, sport, server, 502, cseq + 1, sseq + 1, 0x10, b""),
                ]
                batch.append(segs)
            # interleave: round-robin over the batch's connections
            idx = [0] * len(batch)
            live = list(range(len(batch)))
            while live:
                j = rng.choice(live)
                emit(batch[j][idx[j]])
                idx[j] += 1
                if idx[j] == len(batch[j]):
                    live.remove(j)
    return packets, messages


def measure(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one child process."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with status {proc.returncode}: {' '.join(cmd)}")
    return wall, usage.ru_maxrss * 1024


def wirekit_cmd(path: Path) -> list[str]:
    return [sys.executable, "-m", "codec.cli", "parse", SCHEMA, str(path), "-q"]


def tshark_cmd(tshark: str, path: Path) -> list[str]:
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-T", "json"]
    for name in FIELDS:
        cmd += ["-e", name]
    return cmd


def count_tshark_messages(tshark: str, path: Path) -> int:
    out = subprocess.run(
        [
            tshark,
            "-n",
            "-r",
            str(path),
            "-o",
            "tcp.reassemble_out_of_order:TRUE",
            "-T",
            "fields",
            "-E",
            "occurrence=a",
            "-E",
            "aggregator=|",
            "-e",
            "mbtcp.trans_id",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return sum(len(line.split("|")) for line in out.splitlines() if line)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a ~5 MB capture; check agreement")
    ap.add_argument("--size-mb", type=float, help="capture size (default 100, quick 5)")
    ap.add_argument("--no-tshark", action="store_true", help="measure wirekit only")
    args = ap.parse_args()
    size = args.size_mb or (5.0 if args.quick else 100.0)
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"modbus_{size:g}MB.pcap"
    t0 = time.perf_counter()
    packets, messages = generate(path, int(size * 1e6))
    mb = path.stat().st_size / 1e6
    print(
        f"capture: {path.relative_to(ROOT)}: {mb:.1f} MB, {packets} packets, "
        f"{messages} Modbus messages (generated in {time.perf_counter() - t0:.1f} s)"
    )

    rows = []
    out = RESULTS / "wirekit.jsonl"
    with open(out, "wb") as f:
        wall, rss = measure(wirekit_cmd(path), stdout=f.fileno())
    with open(out, "rb") as f:
        got = sum(1 for _ in f)
    if got != messages:
        raise SystemExit(f"wirekit decoded {got} messages, expected {messages}")
    rows.append(("wirekit parse (JSON lines)", wall, rss))

    tshark = shutil.which("tshark")
    if tshark and not args.no_tshark:
        if args.quick:
            theirs = count_tshark_messages(tshark, path)
            print(f"tshark dissects {theirs} Modbus messages, wirekit {got}")
        wall, rss = measure(tshark_cmd(tshark, path))
        rows.append(("tshark -T json -e (4 fields)", wall, rss))
    elif not args.no_tshark:
        print("tshark not found: apt-get install tshark")

    print()
    print(
        f"| {'tool':<30} | {'MB/s':>7} | {'messages/s':>11} | {'wall s':>7} | {'peak RSS MB':>11} |"
    )
    print(f"|{'-' * 32}|{'-' * 9}|{'-' * 13}|{'-' * 9}|{'-' * 13}|")
    for name, wall, rss in rows:
        print(
            f"| {name:<30} | {mb / wall:7.1f} | {messages / wall:11,.0f} | {wall:7.1f} | "
            f"{rss / 1e6:11.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
