"""`wirekit parse` as a new user drives it: pipes, FIFOs, slow producers, `| head`, broken files.

Each test here failed before the fix it guards: the input was reopened after format
detection (a pipe lost its first 4 KiB), `-` was a file name, a closed output pipe printed
"Exception ignored", a truncated pcap exited 0 and a truncated pcapng leaked dpkt's
``NeedData()``.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from codec import Codec

from .protocols import MODBUS

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
SCHEMA = f"{Path(__file__).parent / 'protocols.py'}:MODBUS"
CLI = [sys.executable, "-m", "codec.cli"]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[int]]:
    """A raw stream of 3000 Modbus frames (~70 KiB: far more than the 4 KiB detection read)."""
    codec = Codec(MODBUS)
    frames = []
    for tid in range(3000):
        data = bytes([tid % 256]) * (tid % 40)
        frames.append(
            codec.encode(
                {
                    "transaction_id": tid % 65536,
                    "protocol_id": 0,
                    "length": len(data) + 2,
                    "unit_id": 1,
                    "function_code": 3,
                    "data": data,
                }
            )
        )
    path = tmp_path_factory.mktemp("big") / "big.bin"
    path.write_bytes(b"".join(frames))
    return path, list(range(3000))


def ids(stdout: bytes | str) -> list[int]:
    return [json.loads(line)["message"]["transaction_id"] for line in stdout.splitlines()]


def run(*args: str, **kw: object) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*CLI, *args], capture_output=True, timeout=60, cwd=ROOT, **kw)  # type: ignore[call-overload, no-any-return]


# -- pipes, FIFOs, slow producers -----------------------------------------------------------
@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_pipe_gives_every_message(big: tuple[Path, list[int]], name: str) -> None:
    path, expected = big
    with open(path, "rb") as f:
        cat = subprocess.Popen(["cat"], stdin=f, stdout=subprocess.PIPE)
        assert cat.stdout is not None
        proc = run("parse", SCHEMA, name, stdin=cat.stdout)
        cat.stdout.close()
        cat.wait()
    assert proc.returncode == 0, proc.stderr
    assert ids(proc.stdout) == expected
    assert proc.stderr.decode().strip() == "wirekit: 3000 messages"


def test_stdin_hex_dump_is_detected(tmp_path: Path) -> None:
    data = (DATA / "modbus_requests.xxd").read_bytes()
    proc = run("parse", SCHEMA, "-", input=data)
    assert proc.returncode == 0, proc.stderr
    assert ids(proc.stdout) == ids(run("parse", SCHEMA, str(DATA / "modbus_requests.bin")).stdout)


def test_fifo(big: tuple[Path, list[int]], tmp_path: Path) -> None:
    path, expected = big
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)

    def writer() -> None:
        with open(fifo, "wb") as f:  # blocks until wirekit opens the other end
            f.write(path.read_bytes())

    t = threading.Thread(target=writer)
    t.start()
    proc = run("parse", SCHEMA, str(fifo))
    t.join(10)
    assert proc.returncode == 0, proc.stderr
    assert ids(proc.stdout) == expected


def test_fifo_pcap(tmp_path: Path) -> None:
    fifo = tmp_path / "capture.fifo"
    os.mkfifo(fifo)
    t = threading.Thread(target=lambda: fifo.write_bytes((DATA / "modbus.pcap").read_bytes()))
    t.start()
    proc = run("parse", SCHEMA, str(fifo))
    t.join(10)
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 8


def test_slow_producer(big: tuple[Path, list[int]], tmp_path: Path) -> None:
    """A writer that sends small pieces with pauses: every message, in order."""
    path, expected = big
    data = path.read_bytes()
    errors = open(tmp_path / "stderr", "w+b")  # noqa: SIM115
    proc = subprocess.Popen(
        [*CLI, "parse", SCHEMA, "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        cwd=ROOT,
    )
    assert proc.stdin is not None
    written = threading.Event()

    def writer() -> None:
        assert proc.stdin is not None
        for i in range(0, len(data), 997):  # pieces that cut frames and the 4 KiB head
            proc.stdin.write(data[i : i + 997])
            proc.stdin.flush()
            if i // 997 % 8 == 0:
                time.sleep(0.005)  # slowness: the reader finds the pipe empty now and then
        proc.stdin.close()
        written.set()

    t = threading.Thread(target=writer)
    t.start()
    assert proc.stdout is not None
    with proc.stdout:
        out = proc.stdout.read()  # until wirekit exits
    proc.wait(60)
    t.join(10)
    errors.seek(0)
    assert written.is_set()
    assert proc.returncode == 0, errors.read()
    errors.close()
    assert ids(out) == expected


@pytest.mark.parametrize("fmt", ["raw", "hex"])
def test_closed_output_pipe_is_quiet(big: tuple[Path, list[int]], tmp_path: Path, fmt: str) -> None:
    """``| head -1``: one line out, nothing on stderr, status 141 like ``cat`` (SIGPIPE)."""
    path, _ = big
    if fmt == "hex":
        hexed = tmp_path / "big.hex"
        raw = path.read_bytes()
        hexed.write_text("".join(raw[i : i + 16].hex(" ") + "\n" for i in range(0, len(raw), 16)))
        path = hexed
    cmd = " ".join([*CLI, "parse", SCHEMA, str(path)])
    proc = subprocess.run(
        ["bash", "-c", f"set -o pipefail; {cmd} | head -1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert len(proc.stdout.splitlines()) == 1
    assert proc.stderr == ""
    assert proc.returncode == 141


# -- truncated and malformed inputs ---------------------------------------------------------
def _cut(data: bytes, n: int) -> bytes:
    return data[:n]


def _bad_caplen(data: bytes) -> bytes:
    return data[: 24 + 8] + b"\xff\xff\xff\x7f" + data[24 + 12 :]


PCAP = (DATA / "modbus.pcap").read_bytes()
PCAPNG = (DATA / "dns_tcp_vlan_ipv6.pcapng").read_bytes()
RAW = (DATA / "modbus_requests.bin").read_bytes()
XXD = (DATA / "modbus_requests.xxd").read_bytes()

# (name, bytes, schema, messages before the problem, status, what the line must say)
BROKEN = [
    ("cut.pcap", PCAP[:-7], SCHEMA, 8, 3, r"truncated pcap file.*\(at byte 1124\)"),
    ("head.pcap", PCAP[:30], SCHEMA, 0, 3, r"truncated pcap file.*\(at byte 24\)"),
    ("caplen.pcap", _bad_caplen(PCAP), SCHEMA, 0, 3, r"corrupt pcap file.*\(at byte 24\)"),
    ("cut.pcapng", PCAPNG[:-7], "DNS", 6, 3, r"truncated pcapng file.*\(at byte 2528\)"),
    ("short.pcapng", PCAPNG[:100], "DNS", 0, 3, r"truncated pcapng file.*\(at byte 48\)"),
    ("magic.pcapng", PCAPNG[:4], "DNS", 0, 3, r"truncated pcapng file.*\(at byte 0\)"),
    ("cut.bin", RAW[:-5], SCHEMA, 2, 1, r"data ends inside a frame.*at stream offset 24"),
    (
        "cut.xxd",
        XXD[: XXD.rindex(b"002a") + 4] + b"\n",
        SCHEMA,
        2,
        1,
        r"data ends inside a frame.*at stream offset 24",
    ),
    (
        "bad.xxd",
        XXD + b"00000040: zz12\n",
        SCHEMA,
        3,
        3,
        r"not a hex dump: line 4: .*0x40.*\(at byte 192\)",
    ),
]


@pytest.mark.parametrize(
    ("name", "data", "schema", "before", "status", "says"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_input_reports_like_every_format(
    tmp_path: Path, name: str, data: bytes, schema: str, before: int, status: int, says: str
) -> None:
    """Messages before the problem on stdout, then one stderr line: file, offset, problem."""
    if schema == "DNS":
        schema = "tests.codec.capture.protocols:DNS_TCP"
    path = tmp_path / name
    path.write_bytes(data)
    for arg in (str(path), "-"):
        proc = run("parse", schema, arg, "-q", input=data if arg == "-" else None)
        assert proc.returncode == status, proc.stderr
        assert len(proc.stdout.splitlines()) == before
        err = proc.stderr.decode().splitlines()
        shown = "<stdin>" if arg == "-" else str(path)
        assert len(err) == 1, err
        assert err[0].startswith(f"wirekit: error: {shown}: "), err
        assert re.search(says, err[0]), err[0]
        assert "NeedData" not in err[0]
        assert "Traceback" not in proc.stderr.decode()


# -- several files, --jobs, Parquet ---------------------------------------------------------
def test_several_files_in_argument_order_serial_and_parallel(tmp_path: Path) -> None:
    pcap = str(DATA / "modbus.pcap")
    raw = str(DATA / "modbus_requests.bin")
    cut = tmp_path / "cut.pcap"
    cut.write_bytes(PCAP[:-7])
    files = [raw, pcap, str(cut), raw]
    serial = run("parse", SCHEMA, *files)
    parallel = run("parse", SCHEMA, *files, "--jobs", "3")
    for proc in (serial, parallel):
        assert proc.returncode == 3  # the cut file; the others are still decoded
        recs = [json.loads(line) for line in proc.stdout.splitlines()]
        assert [r["file"] for r in recs] == [raw] * 3 + [pcap] * 8 + [str(cut)] * 8 + [raw] * 3
        err = proc.stderr.decode().splitlines()
        assert err[-1].startswith(f"wirekit: error: {cut}: corrupt or truncated pcap")
    assert parallel.stdout == serial.stdout


def test_parquet_rows_columns_and_types(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "out.parquet"
    pcap = str(DATA / "modbus.pcap")
    proc = run(
        "parse",
        SCHEMA,
        pcap,
        str(DATA / "modbus_requests.bin"),
        "--format",
        "parquet",
        "-o",
        str(out),
        "-j",
        "2",
    )
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(out)
    assert table.num_rows == 11
    assert table.column_names == [
        "file",
        "proto",
        "client",
        "client_port",
        "server",
        "server_port",
        "direction",
        "timestamp",
        "offset",
        "message",
    ]
    rows = table.to_pylist()
    first = rows[0]
    assert first["file"] == pcap
    assert (first["proto"], first["client"], first["client_port"]) == ("tcp", "192.168.0.10", 49152)
    assert (first["server"], first["server_port"], first["direction"]) == (
        "192.168.0.20",
        502,
        "c2s",
    )
    assert str(table.schema.field("timestamp").type) == "timestamp[us, tz=UTC]"
    json_lines = run("parse", SCHEMA, pcap)
    first_json = json.loads(json_lines.stdout.splitlines()[0])
    assert first["timestamp"].timestamp() == pytest.approx(first_json["timestamp"], abs=1e-6)
    assert json.loads(first["message"]) == first_json["message"]
    assert rows[-1]["proto"] is None
    assert rows[-1]["offset"] == 24


def test_parquet_writer_holds_one_batch(tmp_path: Path) -> None:
    pq = pytest.importorskip("pyarrow.parquet")
    from codec.capture import parse_file
    from codec.capture._output import ParquetWriter

    path, out = DATA / "modbus.pcap", tmp_path / "small_batches.parquet"
    with ParquetWriter(str(out), batch_size=3) as writer:
        for rec in parse_file(Codec(MODBUS), path):
            writer.write(rec)
            assert len(writer._cols[0]) < 3
    assert pq.ParquetFile(out).metadata.num_row_groups == 3


def test_parquet_refuses_a_terminal_and_needs_no_flag_in_a_pipe(tmp_path: Path) -> None:
    proc = run("parse", SCHEMA, str(DATA / "modbus.pcap"), "--format", "parquet")
    assert proc.returncode == 0, proc.stderr  # stdout is a pipe here
    assert proc.stdout[:4] == b"PAR1"


def test_version() -> None:
    proc = run("--version")
    assert proc.returncode == 0
    assert proc.stdout.decode().strip() == f"wirekit {importlib.metadata.version('wirekit')}"
    import codec

    assert codec.__version__ == importlib.metadata.version("wirekit")


def test_progress_bar_on_a_terminal_has_rate_and_eta(
    big: tuple[Path, list[int]], tmp_path: Path
) -> None:
    """On a terminal (here a pty) the bar is tqdm's: percentage, elapsed<left, rate."""
    pytest.importorskip("tqdm")
    import fcntl
    import pty
    import struct
    import termios

    path, _ = big
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    proc = subprocess.Popen(
        [*CLI, "parse", SCHEMA, str(path), "-q", "-o", str(tmp_path / "out.jsonl")],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=slave,
        cwd=ROOT,
    )
    os.close(slave)
    screen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the other side is closed
            break
        if not chunk:
            break
        screen += chunk
    os.close(master)
    assert proc.wait(60) == 0
    text = screen.decode(errors="replace")
    assert re.search(r"\d+%\|.*\| .* \[\d\d:\d\d<(\?|\d\d:\d\d), .*B/s\]", text), text
    assert len((tmp_path / "out.jsonl").read_text().splitlines()) == 3000


def test_format_options_and_usage_errors() -> None:
    raw = str(DATA / "modbus_requests.bin")
    new = run("parse", SCHEMA, raw, "--input-format", "raw")
    old = run("parse", SCHEMA, raw, "--format", "raw")  # the older spelling
    assert new.returncode == old.returncode == 0
    assert new.stdout == old.stdout
    table = run("parse", SCHEMA, raw, "--format", "table")
    assert table.stdout == run("parse", SCHEMA, raw, "--table").stdout
    assert table.stdout.split()[:3] == [b"time", b"flow", b"offset"]
    for args, says in [
        (("--format", "raw", "--input-format", "hex"), "disagree"),
        (("--table", "--format", "parquet"), "disagree"),
        (("-", "-"), "only once"),
        (("-", "--jobs", "2"), "-j 1"),
        (("--jobs", "-1"), "--jobs"),
    ]:
        proc = run("parse", SCHEMA, raw, *args, stdin=subprocess.DEVNULL)
        assert proc.returncode == 2, (args, proc.stderr)
        assert says in proc.stderr.decode(), (args, proc.stderr)
