"""Crafted captures (written with dpkt) decoded end to end with codec.capture."""

from __future__ import annotations

import tracemalloc
from pathlib import Path
from typing import Any

import construct as cs
import dpkt
import pytest

from codec import Codec, LengthField
from codec.capture import (
    CaptureDecodeError,
    CaptureFileError,
    Direction,
    PacketFilter,
    ParseStats,
    Record,
    StreamGap,
    detect_format,
    parse_file,
)

from .pcapgen import Capture, Tcp
from .protocols import DNS, DNS_TCP, MODBUS, dns_query, modbus_read

MB = Codec(MODBUS)


def exchange(
    cap: Capture,
    client: tuple[str, int],
    server: tuple[str, int],
    n: int = 3,
    mss: int = 1460,
    isn_c: int = 1000,
    isn_s: int = 5000,
) -> list[bytes]:
    """Frames of a whole connection: handshake, n request/response pairs, close."""
    t = Tcp(cap, client, server, isn_c, isn_s)
    frames = t.handshake()
    for i in range(n):
        req, resp = modbus_read(i + 1, 100 + i, list(range(i, i + 5)))
        frames += t.data("c", req, mss)
        frames += t.data("s", resp, mss)
    return frames + t.close()


def write(tmp_path: Path, cap: Capture, frames: list[bytes], fmt: str = "pcap") -> Path:
    for f in frames:
        cap.add(f)
    return cap.write(tmp_path / f"c.{fmt}", fmt)


def tids(records: list[Record], direction: Direction) -> list[int]:
    return [r.message.transaction_id for r in records if r.direction is direction]


def check_modbus(records: list[Record], n: int = 3) -> None:
    assert tids(records, Direction.C2S) == list(range(1, n + 1))
    assert tids(records, Direction.S2C) == list(range(1, n + 1))
    for r in records:
        assert type(r.message) is cs.Container
        assert type(r.message.data) is bytes


@pytest.mark.parametrize(
    ("link", "vlan", "client", "server"),
    [
        ("eth", None, "10.0.0.1", "10.0.0.2"),
        ("eth", 42, "10.0.0.1", "10.0.0.2"),
        ("eth", None, "fd00::1", "fd00::2"),
        ("eth", 7, "fd00::1", "fd00::2"),
        ("sll", None, "127.0.0.1", "127.0.0.1"),
        ("null", None, "::1", "::1"),
        ("null", None, "127.0.0.1", "127.0.0.1"),
        ("raw", None, "192.168.1.1", "192.168.1.2"),
    ],
)
@pytest.mark.parametrize("fmt", ["pcap", "pcapng"])
def test_link_types_and_ip_versions(
    tmp_path: Path, link: str, vlan: int | None, client: str, server: str, fmt: str
) -> None:
    cap = Capture(link=link, vlan=vlan)
    path = write(tmp_path, cap, exchange(cap, (client, 40001), (server, 502)), fmt)
    assert detect_format(path) == fmt
    stats = ParseStats()
    records = list(parse_file(MB, path, stats=stats))
    check_modbus(records)
    flow = records[0].flow
    assert flow is not None
    assert (flow.proto, flow.client, flow.client_port, flow.server_port) == (
        "tcp",
        client,
        40001,
        502,
    )
    assert stats.flows == 1
    assert stats.errors == stats.gaps == stats.truncated_streams == 0


def test_offsets_and_timestamps_of_sticky_and_split_messages(tmp_path: Path) -> None:
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    a, _ = modbus_read(1, 1, [1])
    b, _ = modbus_read(2, 2, [2])
    frames = [*t.handshake(), *t.data("c", a + b[:3]), *t.data("c", b[3:])]
    path = write(tmp_path, cap, frames)
    r1, r2 = parse_file(MB, path)
    assert (r1.offset, r2.offset) == (0, len(a))
    assert r1.timestamp == pytest.approx(cap.t0 + 0.003)
    assert r2.timestamp == pytest.approx(cap.t0 + 0.004)  # the packet that completed it


@pytest.mark.parametrize("isn", [(1 << 32) - 7, (1 << 32) - 1])
def test_reordered_retransmitted_overlapping_and_wrapping(tmp_path: Path, isn: int) -> None:
    cap = Capture()
    frames = exchange(
        cap, ("10.0.0.1", 40000), ("10.0.0.2", 502), n=4, mss=5, isn_c=isn, isn_s=isn - 3
    )
    body = frames[3:-3]
    body.reverse()  # every data segment out of order
    body += body[::3]  # retransmissions
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502), isn, isn - 3)
    req, _ = modbus_read(1, 100, list(range(5)))
    overlap = t.seg("c", req[2:9], seq=isn + 1 + 2)  # a copy overlapping two segments
    path = write(tmp_path, cap, [*frames[:3], overlap, *body, *frames[-3:]])
    stats = ParseStats()
    check_modbus(list(parse_file(MB, path, stats=stats)), n=4)
    assert stats.retransmissions > 0
    assert stats.gaps == 0


def test_many_flows_interleaved_and_port_reuse(tmp_path: Path) -> None:
    cap = Capture()
    flows = [exchange(cap, ("10.0.0.1", 40000 + i), ("10.0.0.2", 502)) for i in range(5)]
    again = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502), isn_c=999_999)
    frames = [f for group in zip(*flows, strict=True) for f in group] + again
    path = write(tmp_path, cap, frames)
    stats = ParseStats()
    records = list(parse_file(MB, path, stats=stats))
    assert stats.flows == 6
    assert len(records) == 6 * 6
    by_port: dict[int, list[int]] = {}
    for r in records:
        assert r.flow is not None
        if r.direction is Direction.C2S:
            by_port.setdefault(r.flow.client_port, []).append(r.message.transaction_id)
    assert by_port[40000] == [1, 2, 3, 1, 2, 3]
    assert by_port[40004] == [1, 2, 3]


def test_filters(tmp_path: Path) -> None:
    cap = Capture()
    a = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    b = exchange(cap, ("10.0.0.3", 40001), ("10.0.0.4", 1502))
    c = exchange(cap, ("fd00::1", 40002), ("fd00::2", 502))
    path = write(tmp_path, cap, a + b + c)

    def clients(**kw: Any) -> set[str]:
        found: set[str] = set()
        for r in parse_file(MB, path, packet_filter=PacketFilter(**kw)):
            assert r.flow is not None
            found.add(r.flow.client)
        return found

    assert clients() == {"10.0.0.1", "10.0.0.3", "fd00::1"}
    assert clients(ports=[1502]) == {"10.0.0.3"}
    assert clients(ports=[502]) == {"10.0.0.1", "fd00::1"}
    assert clients(hosts=["fd00::2"]) == {"fd00::1"}
    assert clients(hosts=["10.0.0.2", "10.0.0.3"]) == {"10.0.0.1", "10.0.0.3"}
    assert clients(flows=[("10.0.0.4:1502", "10.0.0.3:40001")]) == {"10.0.0.3"}
    assert clients(flows=[("[fd00::1]:40002", "[fd00::2]:502")]) == {"fd00::1"}
    assert clients(proto="udp") == set()
    with pytest.raises(ValueError, match="not an IP address"):
        PacketFilter(hosts=["nope"])


def test_midstream_capture_orients_by_port(tmp_path: Path) -> None:
    cap = Capture()
    frames = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    path = write(tmp_path, cap, frames[3:])  # no handshake: the capture starts mid-stream
    records = list(parse_file(MB, path))
    check_modbus(records)
    assert records[0].flow is not None
    assert records[0].flow.server_port == 502


def test_rst_ends_both_directions_and_counts_truncation(tmp_path: Path) -> None:
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    req, _ = modbus_read(1, 1, [1, 2])
    frames = [*t.handshake(), *t.data("c", req + req[:4]), t.seg("s", flags=dpkt.tcp.TH_RST)]
    frames.append(t.seg("c", req[4:]))  # after the RST: a new (mid-stream) connection
    path = write(tmp_path, cap, frames)
    stats = ParseStats()
    with pytest.raises(CaptureDecodeError):
        list(parse_file(MB, path, stats=stats))
    stats = ParseStats()
    records = list(parse_file(MB, path, stats=stats, skip_errors=True))
    assert [r.message.transaction_id for r in records] == [1]
    assert stats.truncated_streams == 1


def test_fin_inside_a_frame_is_an_error(tmp_path: Path) -> None:
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    req, _ = modbus_read(1, 1, [1, 2])
    path = write(tmp_path, cap, [*t.handshake(), *t.data("c", req + req[:5]), *t.close()])
    with pytest.raises(CaptureDecodeError, match=r"FIN\) inside a frame") as info:
        list(parse_file(MB, path))
    assert info.value.direction is Direction.C2S
    assert "10.0.0.1:40000 -> 10.0.0.2:502" in str(info.value)


def test_capture_ending_mid_frame_is_truncation_not_error(tmp_path: Path) -> None:
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    req, _ = modbus_read(1, 1, [1, 2])
    path = write(tmp_path, cap, [*t.handshake(), *t.data("c", req + req[:5])])
    stats = ParseStats()
    assert len(list(parse_file(MB, path, stats=stats))) == 1
    assert stats.truncated_streams == 1


def test_missing_segment_raises_gap_or_abandons_direction(tmp_path: Path) -> None:
    cap = Capture()
    frames = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502), n=3, mss=6)
    del frames[4]  # second segment of the first request
    path = write(tmp_path, cap, frames)
    with pytest.raises(StreamGap, match="6 bytes missing"):
        list(parse_file(MB, path))
    stats = ParseStats()
    records = list(parse_file(MB, path, stats=stats, skip_errors=True))
    assert tids(records, Direction.S2C) == [1, 2, 3]  # the other direction is unharmed
    assert tids(records, Direction.C2S) == []
    assert stats.gaps == 1
    assert stats.abandoned_streams == 1


def test_reassembly_window_bounds_out_of_order_memory(tmp_path: Path) -> None:
    cap = Capture()
    frames = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502), n=20, mss=6)
    del frames[4]  # a hole that never fills
    path = write(tmp_path, cap, frames)
    stats = ParseStats()
    list(parse_file(MB, path, stats=stats, skip_errors=True, window=64))
    assert stats.gaps == 1
    assert stats.gap_bytes == 6


def test_bad_frames_skipped_by_length_and_too_large_frames_skipped_unbuffered(
    tmp_path: Path,
) -> None:
    codec = Codec(MODBUS, max_frame_size=64, framing=LengthField(offset=4, length=2))
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    good, _ = modbus_read(1, 1, [1])
    bad = b"\x00\x02\x00\x07\x00\x02\x01\x03"  # protocol id 7: Const fails, length known
    huge = b"\x00\x03\x00\x00\x01\x00" + bytes(256)  # 262-byte frame > max_frame_size
    tail, _ = modbus_read(4, 1, [1])
    frames = [*t.handshake(), *t.data("c", good + bad + huge + tail, mss=50), *t.close()]
    path = write(tmp_path, cap, frames)
    with pytest.raises(CaptureDecodeError) as info:
        list(parse_file(codec, path))
    assert info.value.frame_size == 8
    stats = ParseStats()
    records = list(parse_file(codec, path, stats=stats, skip_errors=True))
    assert [r.message.transaction_id for r in records] == [1, 4]
    assert [r.offset for r in records] == [0, len(good) + len(bad) + len(huge)]
    assert stats.errors == 2
    assert stats.abandoned_streams == 0
    assert any("exceeds max_frame_size" in p for p in stats.problems)
    assert isinstance(info.value.__cause__, Exception)


def test_udp_datagrams_decoded_one_by_one(tmp_path: Path) -> None:
    cap = Capture()
    dns = Codec(DNS_TCP)
    udp = _UdpDns()
    frames = [
        cap.udp("10.0.0.1", 53001, "10.0.0.53", 53, DNS.build(dns_query(1, ["a.example"]))),
        cap.udp("10.0.0.53", 53, "10.0.0.1", 53001, DNS.build(dns_query(1, ["a.example"]))),
        cap.udp("fd00::1", 53002, "fd00::53", 53, DNS.build(dns_query(2, ["b.example"]))),
        cap.udp("10.0.0.1", 53003, "10.0.0.53", 53, b"\x00\x03"),  # truncated
    ]
    path = write(tmp_path, cap, frames)
    stats = ParseStats()
    records = list(parse_file(dns, path, udp_protocol=udp, stats=stats, skip_errors=True))
    assert [(r.message.id, r.direction) for r in records] == [
        (1, Direction.C2S),
        (1, Direction.S2C),
        (2, Direction.C2S),
    ]
    assert records[2].flow is not None
    assert records[2].flow.proto == "udp"
    assert stats.udp_datagrams == 4
    assert stats.errors == 1
    with pytest.raises(CaptureDecodeError, match="datagram"):
        list(parse_file(dns, path, udp_protocol=udp))


class _UdpDns:
    """A hand-written Protocol: the whole datagram is one DNS message."""

    def decode(self, buf: Any) -> Any:
        from codec import DecodeError

        data = buf.peek()
        try:
            msg = DNS.parse(data)
        except cs.ConstructError as exc:
            raise DecodeError(str(exc), offset=buf.offset, data=data) from exc
        buf.consume(len(data))
        return msg

    def encode(self, msg: Any) -> bytes:
        return bytes(DNS.build(msg))


def test_corrupt_and_unsupported_files(tmp_path: Path) -> None:
    cap = Capture()
    path = write(tmp_path, cap, exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502)), "pcapng")
    cut = tmp_path / "cut.pcapng"
    cut.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(CaptureFileError, match="corrupt or truncated"):
        list(parse_file(MB, cut))
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"\xd4\xc3\xb2\xa1" + b"\x00" * 3)
    with pytest.raises(CaptureFileError):
        list(parse_file(MB, bad))
    other = tmp_path / "other.pcap"
    with open(other, "wb") as f:
        dpkt.pcap.Writer(f, linktype=147).writepkt(b"abc", ts=0)
    with pytest.raises(CaptureFileError, match="link type 147 is not supported"):
        list(parse_file(MB, other))


def test_non_ip_and_fragments_are_skipped(tmp_path: Path) -> None:
    cap = Capture()
    frames = exchange(cap, ("10.0.0.1", 40000), ("10.0.0.2", 502))
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + bytes(28)
    frag = dpkt.ip.IP(src=b"\x0a\0\0\1", dst=b"\x0a\0\0\2", p=17, offset=40, data=b"x" * 16)
    frames[3:3] = [arp, cap.frame(frag), b"\x00"]
    stats = ParseStats()
    check_modbus(list(parse_file(MB, write(tmp_path, cap, frames), stats=stats)))
    assert stats.skipped_packets == 3


def test_streaming_memory_is_flat_in_file_size(tmp_path: Path) -> None:
    """Peak Python memory while parsing does not grow with the number of connections."""

    def peak(n: int) -> int:
        cap = Capture()
        frames: list[bytes] = []
        for i in range(n):
            frames += exchange(cap, ("10.0.0.1", 10000 + i), ("10.0.0.2", 502), n=5)
        (tmp_path / str(n)).mkdir()
        path = write(tmp_path / str(n), cap, frames)
        tracemalloc.start()
        count = sum(1 for _ in parse_file(MB, path))
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n * 10
        return top

    small, big = peak(20), peak(400)
    assert big < small * 2 + 200_000, (small, big)
