#!/usr/bin/env python3
"""Offline parsing benchmark: ``wirekit parse`` against ``tshark -T json`` and ``-T fields``.

    .venv/bin/python bench/capture_bench.py            # ~100 MB capture
    .venv/bin/python bench/capture_bench.py --quick    # ~5 MB, also checks both agree

Generates a pcap of Modbus/TCP (port 502, a protocol tshark dissects) with many
interleaved connections, some reordered and retransmitted segments and sticky requests,
into ``bench/results/`` (gitignored), then runs, one after the other on the same file:

* ``wirekit parse bench/capture_schema.py:MODBUS FILE`` (JSON lines, counted);
* the same with ``--format parquet -o FILE`` (rows counted with pyarrow);
* the same on four captures of a quarter of the size each, ``--jobs 1`` and ``--jobs 2``;
* ``tshark -r FILE -T json -e <the same fields>`` and ``-T fields -e <the same fields>``
  (to /dev/null), with out-of-order reassembly on so that both decode the same messages.

and prints MB/s and messages/s (by wall time, and by CPU time, which a machine shared with
other work moves less), wall and CPU seconds, and peak RSS (from ``wait4``) of each. A
``--jobs`` run's CPU and RSS are the parent's plus its workers' (``RUSAGE_CHILDREN`` of a
wrapper), its peak RSS the largest single process.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
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


#: runs a command and reports the CPU time of everything it started (its workers too)
_WRAP = (
    "import resource, subprocess, sys; "
    "rc = subprocess.call(sys.argv[1:]); "
    "u = resource.getrusage(resource.RUSAGE_CHILDREN); "
    "sys.stderr.write(f'{u.ru_utime + u.ru_stime} {u.ru_maxrss}\\n'); "
    "sys.exit(rc)"
)


def measure(cmd: list[str], stdout: int | None = subprocess.DEVNULL) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, peak RSS in bytes) of a command and its children."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", _WRAP, *cmd], stdout=stdout, stderr=subprocess.PIPE, text=True
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with status {proc.returncode}: {' '.join(cmd)}")
    cpu, rss = proc.stderr.split()[-2:]
    return wall, float(cpu), int(rss) * 1024


def wirekit_cmd(*paths: Path, extra: tuple[str, ...] = ()) -> list[str]:
    return [sys.executable, "-m", "codec.cli", "parse", SCHEMA, *map(str, paths), "-q", *extra]


def tshark_cmd(tshark: str, path: Path, kind: str = "json") -> list[str]:
    cmd = [tshark, "-n", "-r", str(path), "-o", "tcp.reassemble_out_of_order:TRUE", "-T", kind]
    for name in FIELDS:
        cmd += ["-e", name]
    return cmd


def callgrind(cmd: list[str]) -> int:
    """Instructions one run of ``cmd`` executes (valgrind's callgrind)."""
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            ["valgrind", "--tool=callgrind", f"--callgrind-out-file={tmp}/out", *cmd],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
    return int(re.findall(r"Collected : (\d+)", proc.stderr)[-1])


def instruction_rows(tshark: str | None) -> list[tuple[str, int]]:
    """Instructions per capture (a 2 MB one, less the same run on an empty capture).

    Timings on a shared machine move by 10-30%; instruction counts do not, so they rank
    wirekit against tshark, and one commit against another, where wall time cannot.
    """
    path = RESULTS / "modbus_2MB.pcap"
    generate(path, 2_000_000)
    empty = RESULTS / "empty.pcap"
    empty.write_bytes(path.read_bytes()[:24])
    commands = {"wirekit parse (JSON lines)": lambda p: wirekit_cmd(p)}
    if tshark:
        for kind in ("json", "fields"):
            commands[f"tshark -T {kind} -e (4 fields)"] = lambda p, k=kind: tshark_cmd(tshark, p, k)
    return [
        (name, callgrind(make(path)) - callgrind(make(empty))) for name, make in commands.items()
    ]


def count_lines(path: Path) -> int:
    with open(path, "rb") as f:
        return sum(1 for _ in f)


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
    ap.add_argument(
        "--instructions",
        action="store_true",
        help="also count instructions with callgrind on a 2 MB capture (needs valgrind)",
    )
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

    rows: list[tuple[str, float, float, int, int, float]] = []
    out = RESULTS / "wirekit.jsonl"
    with open(out, "wb") as f:
        wall, cpu, rss = measure(wirekit_cmd(path), stdout=f.fileno())
    got = count_lines(out)
    if got != messages:
        raise SystemExit(f"wirekit decoded {got} messages, expected {messages}")
    rows.append(("wirekit parse (JSON lines)", wall, cpu, rss, got, mb))

    if importlib.util.find_spec("pyarrow") is not None:
        import pyarrow.parquet as pq

        parquet = RESULTS / "wirekit.parquet"
        wall, cpu, rss = measure(
            wirekit_cmd(path, extra=("--format", "parquet", "-o", str(parquet)))
        )
        rows_written = pq.ParquetFile(parquet).metadata.num_rows
        if rows_written != messages:
            raise SystemExit(f"wirekit wrote {rows_written} Parquet rows, expected {messages}")
        rows.append(("wirekit parse --format parquet", wall, cpu, rss, rows_written, mb))

    # the same traffic as four captures of a quarter of the size each (other seeds)
    parts = [path.with_name(f"{path.stem}.part{i}.pcap") for i in range(4)]
    part_messages = sum(
        generate(p, int(size * 1e6 / 4), seed=2 + i)[1] for i, p in enumerate(parts)
    )
    part_mb = sum(p.stat().st_size for p in parts) / 1e6
    for jobs in (1, 2):
        out = RESULTS / f"wirekit-j{jobs}.jsonl"
        with open(out, "wb") as f:
            wall, cpu, rss = measure(
                wirekit_cmd(*parts, extra=("--jobs", str(jobs))), stdout=f.fileno()
            )
        if count_lines(out) != part_messages:
            raise SystemExit(f"--jobs {jobs}: {count_lines(out)} messages, not {part_messages}")
        rows.append(
            (f"wirekit parse 4 files --jobs {jobs}", wall, cpu, rss, part_messages, part_mb)
        )

    tshark = shutil.which("tshark")
    if tshark and not args.no_tshark:
        if args.quick:
            theirs = count_tshark_messages(tshark, path)
            print(f"tshark dissects {theirs} Modbus messages, wirekit {got}")
        for kind in ("json", "fields"):
            wall, cpu, rss = measure(tshark_cmd(tshark, path, kind))
            rows.append((f"tshark -T {kind} -e (4 fields)", wall, cpu, rss, messages, mb))
    elif not args.no_tshark:
        print("tshark not found: apt-get install tshark")

    if args.instructions:
        counted = instruction_rows(tshark if not args.no_tshark else None)
        print()
        print(f"| {'tool':<32} | {'instructions for 2 MB (millions)':>32} |")
        print(f"|{'-' * 34}|{'-' * 34}|")
        for name, count in counted:
            print(f"| {name:<32} | {count / 1e6:32,.0f} |")

    print()
    print(
        f"| {'tool':<32} | {'MB/s':>6} | {'MB/s CPU':>8} | {'msgs/s CPU':>10} | "
        f"{'wall s':>6} | {'CPU s':>6} | {'peak RSS MB':>11} |"
    )
    print(f"|{'-' * 34}|{'-' * 8}|{'-' * 10}|{'-' * 12}|{'-' * 8}|{'-' * 8}|{'-' * 13}|")
    for name, wall, cpu, rss, count, size_mb in rows:
        print(
            f"| {name:<32} | {size_mb / wall:6.1f} | {size_mb / cpu:8.1f} | {count / cpu:10,.0f} | "
            f"{wall:6.1f} | {cpu:6.1f} | {rss / 1e6:11.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
