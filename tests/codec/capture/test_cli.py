"""`wirekit parse` end to end, in a subprocess: output, filters, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DATA = Path(__file__).parent / "data"
PROTOCOLS = Path(__file__).parent / "protocols.py"
MODBUS = f"{PROTOCOLS}:MODBUS"


def wirekit(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "codec.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
    )


def lines(out: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.splitlines()]


def test_pcap_to_json_lines() -> None:
    proc = wirekit("parse", MODBUS, str(DATA / "modbus.pcap"))
    assert proc.returncode == 0, proc.stderr
    recs = lines(proc.stdout)
    assert len(recs) == 8
    first = recs[0]
    assert set(first) == {"flow", "direction", "timestamp", "offset", "message"}
    assert first["flow"] == {
        "proto": "tcp",
        "client": "192.168.0.10",
        "client_port": 49152,
        "server": "192.168.0.20",
        "server_port": 502,
    }
    assert first["direction"] == "c2s"
    assert first["message"] == {
        "transaction_id": 1,
        "protocol_id": 0,
        "length": 6,
        "unit_id": 1,
        "function_code": 3,
        "data": "00280003",
    }
    assert [r["direction"] for r in recs].count("s2c") == 4
    assert "8 messages" in proc.stderr
    assert "1 retransmissions" in proc.stderr


def test_module_attribute_schema_and_pcapng_vlan_ipv6() -> None:
    proc = wirekit(
        "parse", "tests.codec.capture.protocols:DNS_TCP", str(DATA / "dns_tcp_vlan_ipv6.pcapng")
    )
    assert proc.returncode == 0, proc.stderr
    recs = lines(proc.stdout)
    assert [r["message"]["id"] for r in recs] == [0xA000, 0xA000, 0xA001, 0xA001, 0xA002, 0xA002]  # type: ignore[index]
    q = recs[0]["message"]["questions"][0]  # type: ignore[index]
    assert q["qname"] == ["www0", "example", "com", ""]
    assert recs[1]["message"]["rest"].startswith("c00c")  # type: ignore[index]
    assert recs[0]["flow"]["client"] == "2001:db8::1"  # type: ignore[index]


def test_table_and_filters() -> None:
    proc = wirekit("parse", MODBUS, str(DATA / "modbus.pcap"), "--table")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout.splitlines()
    assert out[0].split()[:3] == ["time", "flow", "offset"]
    assert "tcp 192.168.0.10:49152 -> 192.168.0.20:502" in out[1]
    assert len(out) == 9
    none = wirekit("parse", MODBUS, str(DATA / "modbus.pcap"), "--port", "503")
    assert none.returncode == 0
    assert none.stdout == ""
    host = wirekit("parse", MODBUS, str(DATA / "modbus.pcap"), "--host", "192.168.0.20")
    assert len(host.stdout.splitlines()) == 8
    flow = wirekit(
        "parse", MODBUS, str(DATA / "modbus.pcap"), "--flow", "192.168.0.20:502,192.168.0.10:1"
    )
    assert flow.stdout == ""
    udp = wirekit("parse", MODBUS, str(DATA / "modbus.pcap"), "--proto", "udp")
    assert udp.stdout == ""


def test_hex_and_raw_files_and_format_option(tmp_path: Path) -> None:
    a = wirekit("parse", MODBUS, str(DATA / "modbus_requests.xxd"))
    b = wirekit("parse", MODBUS, str(DATA / "modbus_requests.bin"))
    c = wirekit("parse", MODBUS, str(DATA / "modbus_requests.bin"), "--format", "raw")
    assert a.returncode == b.returncode == c.returncode == 0
    assert a.stdout == b.stdout == c.stdout
    rec = lines(a.stdout)[1]
    assert rec["flow"] is None
    assert rec["offset"] == 12
    forced = wirekit("parse", MODBUS, str(DATA / "modbus_requests.xxd"), "--format", "pcap")
    assert forced.returncode == 3
    assert "not a pcap file" in forced.stderr
    assert "Traceback" not in forced.stderr


def test_bad_schemas_exit_2(tmp_path: Path) -> None:
    target = str(DATA / "modbus.pcap")
    broken = tmp_path / "broken.py"
    broken.write_text("import construct as cs\nX = 1\nGREEDY = cs.GreedyBytes\nraise_me = (\n")
    ok = tmp_path / "ok.py"
    ok.write_text("import construct as cs\nX = 1\nGREEDY = cs.GreedyBytes\n")
    cases = {
        "nocolon": "expected MODULE:NAME",
        "no_such_module_xyz:FOO": "cannot import",
        f"{tmp_path}/missing.py:X": "no such file",
        f"{broken}:X": "failed to import",
        f"{ok}:NOPE": "has no attribute",
        f"{ok}:X": "neither a construct schema",
        f"{ok}:GREEDY": "bad schema",
    }
    for spec, message in cases.items():
        proc = wirekit("parse", spec, target)
        assert proc.returncode == 2, (spec, proc.stderr)
        assert message in proc.stderr, (spec, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_unreadable_files_exit_3(tmp_path: Path) -> None:
    proc = wirekit("parse", MODBUS, str(tmp_path / "nope.pcap"))
    assert proc.returncode == 3
    assert "No such file" in proc.stderr
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes((DATA / "dns_tcp_vlan_ipv6.pcapng").read_bytes()[:-7])
    proc = wirekit("parse", "tests.codec.capture.protocols:DNS_TCP", str(cut))
    assert proc.returncode == 3, proc.stderr
    assert "corrupt or truncated" in proc.stderr


def test_undecodable_stream_exit_1_and_skip_errors() -> None:
    target = str(DATA / "modbus.pcap")
    proc = wirekit("parse", "tests.codec.capture.protocols:DNS_TCP", target)
    assert proc.returncode == 1
    assert "undecodable stream" in proc.stderr
    assert "192.168.0.10:49152 -> 192.168.0.20:502" in proc.stderr
    assert "--skip-errors" in proc.stderr
    skip = wirekit("parse", "tests.codec.capture.protocols:DNS_TCP", target, "--skip-errors")
    assert skip.returncode == 0
    assert "errors" in skip.stderr
    assert "skipped:" in skip.stderr


def test_max_frame_size_and_quiet() -> None:
    target = str(DATA / "modbus.pcap")
    proc = wirekit("parse", MODBUS, target, "--max-frame-size", "8", "-q")
    assert proc.returncode == 1
    quiet = wirekit("parse", MODBUS, target, "-q")
    assert quiet.returncode == 0
    assert quiet.stderr == ""
    usage = wirekit("parse", MODBUS, target, "--max-frame-size", "0")
    assert usage.returncode == 2


def test_progress_bar_only_on_request_or_terminal() -> None:
    target = str(DATA / "modbus.pcap")
    proc = wirekit("parse", MODBUS, target, "--progress", "always", "-q")
    assert "B/s" in proc.stderr  # tqdm's rate
    plain = wirekit("parse", MODBUS, target)
    assert "B/s" not in plain.stderr  # stderr is a pipe here


def test_console_script_is_installed() -> None:
    exe = Path(sys.executable).parent / "wirekit"
    if not exe.exists():
        pytest.skip("wirekit console script not installed in this environment")
    proc = subprocess.run([str(exe), "parse", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "SCHEMA" in proc.stdout


def test_broken_pipe_is_quiet() -> None:
    proc = subprocess.run(
        f"{sys.executable} -m codec.cli parse {MODBUS} {DATA / 'modbus.pcap'} | head -1",
        shell=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert len(proc.stdout.splitlines()) == 1
    assert "Traceback" not in proc.stderr


def test_the_design_example_schemas_mqtt_packet(tmp_path: Path) -> None:
    """``wirekit parse schemas.mqtt:PACKET FILE``, the example of the design and the docs."""
    capture = tmp_path / "mqtt.bin"
    capture.write_bytes(
        b"\x10\x12\x00\x04MQTT\x04\x02\x00\x0a\x00\x06client"  # CONNECT
        b"\x32\x0c\x00\x03a/b\x00\x0ahello"  # PUBLISH, QoS 1
        b"\xc0\x00"  # PINGREQ
    )
    run = wirekit("parse", "schemas.mqtt:PACKET", str(capture))
    assert run.returncode == 0, run.stderr
    records = lines(run.stdout)
    assert [r["offset"] for r in records] == [0, 20, 34]
    kinds = [r["message"]["header"]["type"] for r in records]  # type: ignore[index]
    assert kinds == ["CONNECT", "PUBLISH", "PINGREQ"]
    assert records[1]["message"]["body"]["topic"] == "a/b"  # type: ignore[index]
