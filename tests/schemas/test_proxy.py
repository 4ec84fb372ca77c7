"""schemas.proxy: the specification's examples and limits, its "must" rules as DecodeErrors,
the CRC32c, and check_codec on each codec. A real haproxy is in test_proxy_haproxy.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import Buffer, DecodeError, FrameTooLarge
from codec.testing import check_codec
from schemas import proxy as px

# section 2.1's example
V1_EXAMPLE = b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\nGET / HTTP/1.1\r\n"
# a version 2 header for TCP over IPv4 laid out from section 2.2: 172.19.0.1:42578 ->
# 172.19.0.3:80 (the bytes haproxy sends for such a connection)
V2_EXAMPLE = bytes.fromhex("0d0a0d0a000d0a515549540a 21 11 000c ac130001 ac130003 a652 0050")


def test_v1_example() -> None:
    header, consumed = px.parse_header(V1_EXAMPLE)
    assert header == px.ProxyHeader(
        1, "PROXY", "INET", "STREAM", ("192.168.0.1", 56324), ("192.168.0.11", 443)
    )
    assert V1_EXAMPLE[consumed:] == b"GET / HTTP/1.1\r\n"
    assert px.encode_v1(header) == V1_EXAMPLE[:consumed]


def test_v2_example() -> None:
    header, consumed = px.parse_header(V2_EXAMPLE + b"GET")
    assert consumed == 28
    assert header == px.ProxyHeader(
        2, "PROXY", "INET", "STREAM", ("172.19.0.1", 42578), ("172.19.0.3", 80)
    )
    msg = px.V2_CODEC.decode(Buffer(V2_EXAMPLE))
    assert msg == px.V2.parse(V2_EXAMPLE)
    assert (msg.ver_cmd.command, msg.fam.family, msg.fam.protocol) == ("PROXY", "INET", "STREAM")
    assert px.encode_v2(header) == V2_EXAMPLE


@pytest.mark.parametrize(
    "line",
    [  # section 2.1's longest lines: every receiver must take them
        b"PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n",
        b"PROXY TCP6 " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n",
        b"PROXY UNKNOWN\r\n",
        b"PROXY UNKNOWN " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n",
    ],
    ids=["tcp4", "tcp6", "unknown-short", "unknown-worst-case"],
)
def test_v1_longest_lines(line: bytes) -> None:
    assert len(line) <= px.MAX_V1_SIZE
    header, consumed = px.parse_header(line)
    assert header is not None
    assert consumed == len(line)


def test_v1_unknown_means_use_the_connection() -> None:
    header, _ = px.parse_header(b"PROXY UNKNOWN\r\n")
    assert header is not None
    assert header.is_local
    assert px.encode_v1(header) == b"PROXY UNKNOWN\r\n"


def test_v1_tcp6() -> None:
    header, _ = px.parse_header(b"PROXY TCP6 2001:db8::1 ::1 1 65535\r\n")
    assert header == px.ProxyHeader(
        1, "PROXY", "INET6", "STREAM", ("2001:db8::1", 1), ("::1", 65535)
    )


def test_v2_every_family() -> None:
    for header in (
        px.ProxyHeader(2, "PROXY", "INET6", "STREAM", ("2001:db8::1", 1), ("::1", 2)),
        px.ProxyHeader(2, "PROXY", "INET", "DGRAM", ("10.0.0.1", 53), ("10.0.0.2", 5353)),
        px.ProxyHeader(2, "PROXY", "UNIX", "STREAM", b"/run/a.sock", b"\0abstract"),
        px.ProxyHeader(2, "LOCAL", "UNSPEC", "UNSPEC", None, None),
    ):
        wire = px.encode_v2(header)
        assert len(wire) == 16 + {"INET": 12, "INET6": 36, "UNIX": 216, "UNSPEC": 0}[header.family]
        assert px.parse_header(wire) == (header, len(wire))


def test_v2_local_skips_the_addresses_it_carries() -> None:
    """2.2: receivers "must not assume zero is presented for LOCAL connections"."""
    wire = px.SIGNATURE + b"\x20\x11\x00\x0c" + bytes(range(12)) + b"rest"
    header, consumed = px.parse_header(wire)
    assert header is not None
    assert header.is_local
    assert header.command == "LOCAL"
    assert wire[consumed:] == b"rest"


def test_v2_tlvs_in_order() -> None:
    tlvs = (
        (px.TlvType.ALPN, b"h2"),
        (px.TlvType.AUTHORITY, "exämple.test".encode()),
        (px.TlvType.NOOP, b""),
        (0xE5, b"custom"),
        (px.TlvType.CRC32C, b""),
    )
    header = px.ProxyHeader(2, "PROXY", "INET", "STREAM", ("1.2.3.4", 1), ("5.6.7.8", 2), tlvs)
    wire = px.encode_v2(header)
    got, _ = px.parse_header(wire)
    assert got is not None
    assert [t for t, _ in got.tlvs] == [1, 2, 4, 0xE5, 3]
    assert got.tlv(px.TlvType.AUTHORITY) == "exämple.test".encode()
    assert got.tlv(px.TlvType.UNIQUE_ID) is None
    assert got.tlv(px.TlvType.CRC32C) == px.crc32c(wire[:-4] + bytes(4)).to_bytes(4, "big")


def test_crc32c_check_value() -> None:
    # RFC 3720 B.4 / the usual check value of CRC-32C over the nine ASCII digits
    assert px.crc32c(b"123456789") == 0xE3069283
    assert px.crc32c(bytes(32)) == 0x8A9136AA  # RFC 3720 B.4: 32 bytes of zeroes


@pytest.mark.parametrize("cut", range(len(V2_EXAMPLE)))
def test_every_prefix_waits(cut: int) -> None:
    assert px.parse_header(V2_EXAMPLE[:cut]) == (None, 0)
    assert px.parse_header(V1_EXAMPLE[: min(cut, 47)]) == (None, 0)


BAD = [
    ("not a proxy header", b"GET / HTTP/1.1\r\n"),
    ("one wrong byte is enough", b"G"),
    ("v2 version 3", px.SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12)),
    ("v2 command 2", px.SIGNATURE + b"\x22\x11\x00\x0c" + bytes(12)),
    ("v2 family 4", px.SIGNATURE + b"\x21\x41\x00\x0c" + bytes(12)),
    ("v2 protocol 3", px.SIGNATURE + b"\x21\x13\x00\x0c" + bytes(12)),
    ("v2 length below the addresses", px.SIGNATURE + b"\x21\x11\x00\x05" + bytes(5)),
    ("v2 truncated TLV", px.SIGNATURE + b"\x21\x11\x00\x0e" + bytes(14)),
    ("v2 bad CRC32c", V2_EXAMPLE[:14] + b"\x00\x13" + V2_EXAMPLE[16:] + b"\x03\x00\x04abcd"),
    ("v1 leading zero", b"PROXY TCP4 01.2.3.4 1.2.3.4 1 2\r\n"),
    ("v1 port above 65535", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 65536\r\n"),
    ("v1 octet above 255", b"PROXY TCP4 256.2.3.4 1.2.3.4 1 2\r\n"),
    ("v1 two spaces", b"PROXY TCP4 1.2.3.4  1.2.3.4 1 2\r\n"),
    ("v1 IPv6 in TCP4", b"PROXY TCP4 ::1 ::1 1 2\r\n"),
    ("v1 IPv4 in TCP6", b"PROXY TCP6 1.2.3.4 1.2.3.4 1 2\r\n"),
    ("v1 lone LF", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n"),
    ("v1 lone CR", b"PROXY TCP4 1.2.3.4 1.2.3.4 1 2\rx"),
    ("v1 UDP4", b"PROXY UDP4 1.2.3.4 1.2.3.4 1 2\r\n"),
]


@pytest.mark.parametrize("data", [b[1] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_headers_are_decode_errors(data: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        px.parse_header(data)
    assert "stream offset 0" in str(info.value)


def test_v1_without_crlf_in_107_bytes_is_too_large() -> None:
    with pytest.raises(FrameTooLarge):
        px.parse_header(b"PROXY UNKNOWN " + b"x" * 100)


# -- check_codec ------------------------------------------------------------------------------
ports = st.integers(0, 0xFFFF)
tlv_types = st.sampled_from([*px.TlvType, 0xE0, 0xEF, 0xF7, 0x99])
tlvs = st.lists(
    st.tuples(tlv_types, st.binary(max_size=40)).filter(lambda t: t[0] != px.TlvType.CRC32C),
    max_size=4,
).map(tuple)


def _inet(version: Literal[4, 6]) -> st.SearchStrategy[px.ProxyHeader]:
    family = "INET" if version == 4 else "INET6"
    return st.builds(
        lambda proto, s, d, sp, dp, t: px.ProxyHeader(
            2, "PROXY", family, proto, (str(s), sp), (str(d), dp), t
        ),
        st.sampled_from(["STREAM", "DGRAM"]),
        st.ip_addresses(v=version),
        st.ip_addresses(v=version),
        ports,
        ports,
        tlvs,
    )


paths = st.binary(min_size=1, max_size=108).map(lambda p: p.rstrip(b"\0") or b"/")
v2_headers = st.one_of(
    _inet(4),
    _inet(6),
    st.builds(
        lambda s, d, t: px.ProxyHeader(2, "PROXY", "UNIX", "STREAM", s, d, t), paths, paths, tlvs
    ),
    st.builds(lambda t: px.ProxyHeader(2, "LOCAL", "UNSPEC", "UNSPEC", None, None, t), tlvs),
)
v1_headers = st.builds(
    lambda six, s, d, sp, dp: px.ProxyHeader(
        1, "PROXY", "INET6" if six else "INET", "STREAM", (str(s), sp), (str(d), dp)
    ),
    st.just(False),
    st.ip_addresses(v=4),
    st.ip_addresses(v=4),
    ports,
    ports,
) | st.builds(
    lambda s, d, sp, dp: px.ProxyHeader(1, "PROXY", "INET6", "STREAM", (str(s), sp), (str(d), dp)),
    st.ip_addresses(v=6),
    st.ip_addresses(v=6),
    ports,
    ports,
)


def v2_message(header: px.ProxyHeader) -> cs.Container:
    return px.V2.parse(px.encode_v2(header))


def v1_message(header: px.ProxyHeader) -> cs.Container:
    return px.V1.parse(px.encode_v1(header)[:-2])


def test_v2_passes_check_codec() -> None:
    check_codec(px.V2_CODEC, v2_headers.map(v2_message), max_examples=40)


def test_v1_passes_check_codec() -> None:
    check_codec(px.V1_CODEC, v1_headers.map(v1_message), max_examples=40)


def test_either_version_passes_check_codec() -> None:
    with_crc = v2_headers.map(
        lambda h: px.ProxyHeader(
            h.version,
            h.command,
            h.family,
            h.protocol,
            h.source,
            h.destination,
            ((px.TlvType.CRC32C, b""), *h.tlvs),
        )
    )
    messages = st.one_of(
        v2_headers.map(v2_message), with_crc.map(v2_message), v1_headers.map(v1_message)
    )
    check_codec(px.HEADER, messages, max_examples=40)


@given(st.one_of(v1_headers, v2_headers), st.binary(max_size=20))
def test_parse_header_round_trips(header: px.ProxyHeader, rest: bytes) -> None:
    wire = px.encode_v1(header) if header.version == 1 else px.encode_v2(header)
    got, consumed = px.parse_header(wire + rest)
    assert got == header
    assert consumed == len(wire)


def test_the_docs_section_runs() -> None:
    """docs/schemas.md, "## PROXY protocol": every Python block runs as written, in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text("utf-8")
    section = text.split("## PROXY protocol\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/schemas.md", "exec"), namespace)


@given(st.binary(max_size=300) | st.builds(lambda b: px.SIGNATURE + b, st.binary(max_size=300)))
def test_random_bytes_never_crash_parse_header(data: bytes) -> None:
    try:
        header, consumed = px.parse_header(data)
    except DecodeError:
        return
    assert (header is None) == (consumed == 0)
    assert consumed <= len(data)
