"""The output writers: JSON lines exactly as ``json.dumps(record_dict(rec))``, in every case."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from codec import Codec
from codec.capture import (
    CaptureParser,
    Direction,
    Flow,
    JsonLinesWriter,
    Record,
    parse_file,
    record_dict,
)

from .protocols import DNS_TCP, MODBUS

DATA = Path(__file__).parent / "data"


def reference(rec: Record, file: str | None) -> str:
    return json.dumps(record_dict(rec, file), ensure_ascii=False, separators=(",", ":")) + "\n"


def test_json_lines_match_json_dumps() -> None:
    records = [
        *parse_file(Codec(MODBUS), DATA / "modbus.pcap"),
        *parse_file(Codec(DNS_TCP), DATA / "dns_tcp_vlan_ipv6.pcapng"),
        *parse_file(Codec(MODBUS), DATA / "modbus_requests.bin"),
    ]
    flow = Flow("udp", "::1", 5353, "ff02::fb", 53)
    records += [
        Record('é\n"', 0, 5, flow, Direction.S2C),  # an int timestamp, non-ASCII text
        Record({"nested": [b"\x00\xff", None, 1.5]}, 7, None, None, None),
    ]
    for file in (None, 'a "quoted" name.pcap'):
        out = io.StringIO()
        writer = JsonLinesWriter(out, file)
        for rec in records:
            writer.write(rec)
        assert out.getvalue() == "".join(reference(r, file) for r in records)


def test_frames_loop_gives_what_frame_calls_give() -> None:
    from codec.capture import read_frames

    with open(DATA / "dns_tcp_vlan_ipv6.pcapng", "rb") as f:
        frames = list(read_frames(f, "pcapng"))
    one = CaptureParser(Codec(DNS_TCP))
    by_frame = [rec for frame in frames for rec in one.frame(*frame)] + one.finish()
    other = CaptureParser(Codec(DNS_TCP))
    looped = [*other.frames(frames), *other.finish()]
    assert looped == by_frame
    assert one.stats == other.stats


def _block(btype: int, body: bytes) -> bytes:
    import struct

    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def test_pcapng_interfaces_of_different_link_types_and_resolutions(tmp_path: Path) -> None:
    """``dumpcap -i eth0 -i any``: each packet dissected with its own interface's link type."""
    import struct

    from codec.capture import read_frames

    with open(DATA / "modbus.pcap", "rb") as f:
        frames = list(read_frames(f, "pcap"))
    shb = _block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    eth = _block(1, struct.pack("<HHI", 1, 0, 65535))
    # raw IP, nanosecond timestamps (if_tsresol = 9), then the end-of-options option
    raw = _block(1, struct.pack("<HHI", 101, 0, 65535) + struct.pack("<HHB3x", 9, 1, 9) + bytes(4))
    out = [shb, eth, raw]
    for i, (ts, _link, frame) in enumerate(frames):
        iface, data = (0, frame) if i % 2 == 0 else (1, frame[14:])  # Ethernet header off
        units = round(ts * (1e6 if iface == 0 else 1e9))
        body = struct.pack("<IIIII", iface, units >> 32, units & 0xFFFFFFFF, len(data), len(data))
        out.append(_block(6, body + data))
    path = tmp_path / "two_interfaces.pcapng"
    path.write_bytes(b"".join(out))
    mixed = list(parse_file(Codec(MODBUS), path))
    plain = list(parse_file(Codec(MODBUS), DATA / "modbus.pcap"))
    assert [r.message for r in mixed] == [r.message for r in plain]
    assert [r.timestamp for r in mixed] == [pytest.approx(r.timestamp, abs=1e-6) for r in plain]
