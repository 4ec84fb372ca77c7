"""The output writers: JSON lines exactly as ``json.dumps(record_dict(rec))``, in every case."""

from __future__ import annotations

import io
import json
from pathlib import Path

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
