"""schemas.tls: ClientHellos made by Python's ssl module (OpenSSL: an implementation no one
here wrote), split over records, refused when broken, check_codec; tshark's dissection of a
real handshake in test_tls_tshark.py."""

from __future__ import annotations

import re
import ssl
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import Buffer, DecodeError, FrameTooLarge, IncompleteFrame
from codec.testing import check_codec
from schemas import tls


def client_hello(
    server_hostname: str | None = "example.test", alpn: list[str] | None = None
) -> bytes:
    """The first bytes a TLS client sends: OpenSSL's ClientHello, made in memory."""
    ctx = ssl.create_default_context()
    if server_hostname is None:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if alpn:
        ctx.set_alpn_protocols(alpn)
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    with pytest.raises(ssl.SSLWantReadError):
        conn.do_handshake()
    return outgoing.read()


def test_python_client_hello_yields_its_sni() -> None:
    data = client_hello("example.test", alpn=["h2", "http/1.1"])
    assert tls.sni(data) == "example.test"
    (record,) = tls.RECORD_CODEC.decode_all(data)
    assert record == tls.RECORD.parse(data)
    assert (record.type, record.length) == ("handshake", len(data) - 5)
    assert tls.sni(record) == "example.test"
    hello = tls.read_client_hello(data)
    assert hello is not None
    assert hello == tls.HANDSHAKE_CODEC.decode(Buffer(record.fragment))
    assert hello == tls.HANDSHAKE.parse(record.fragment)
    assert (hello.msg_type, hello.length) == ("client_hello", record.length - 4)
    body = hello.body
    assert body.legacy_version == 0x0303  # 4.1.2: TLS 1.3 still says 1.2 here
    assert len(body.random) == 32
    assert 0x1301 in body.cipher_suites  # TLS_AES_128_GCM_SHA256, mandatory (9.1)
    assert body.legacy_compression_methods == b"\x00"  # 4.1.2: exactly one, null
    types = [e.type for e in body.extensions]
    assert {"server_name", "supported_versions", "key_share", "signature_algorithms"} <= set(types)
    ext = {e.type: e.data for e in body.extensions}
    assert 0x0304 in ext["supported_versions"]  # TLS 1.3 offered
    assert list(ext["application_layer_protocol_negotiation"]) == ["h2", "http/1.1"]
    assert ext["server_name"][0].name == b"example.test"
    assert tls.sni(hello) == tls.sni(body) == "example.test"
    # and back to the same bytes
    assert tls.HANDSHAKE_CODEC.encode(hello) == record.fragment
    assert tls.RECORD_CODEC.encode(record) == data


def test_no_server_name_gives_none() -> None:
    assert tls.sni(client_hello(None)) is None


def records_of(fragment: bytes, sizes: list[int], version: int = 0x0301) -> bytes:
    """``fragment`` cut into handshake records of these sizes (the rest in a last one)."""
    out, pos = b"", 0
    for size in [*sizes, len(fragment)]:
        part = fragment[pos : pos + size]
        if part:
            out += tls.RECORD_CODEC.encode(
                {
                    "type": "handshake",
                    "legacy_record_version": version,
                    "length": len(part),
                    "fragment": part,
                }
            )
        pos += len(part)
    return out


def test_a_client_hello_over_several_records() -> None:
    """5.1: a handshake message may be fragmented over records; the host name still comes
    out, and every prefix of the stream asks for more."""
    data = client_hello("routed.example.test")
    fragment = tls.RECORD.parse(data).fragment
    split = records_of(fragment, [1, 3, 100])
    assert len(tls.RECORD_CODEC.decode_all(split)) == 4
    assert tls.sni(split + b"\x17\x03\x03\x00\x01x") == "routed.example.test"
    for cut in range(len(split)):
        assert tls.read_client_hello(split[:cut]) is None
        with pytest.raises(IncompleteFrame):
            tls.sni(split[:cut])


BAD = [
    ("plain HTTP", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", DecodeError),
    ("one byte of HTTP is enough", b"G", DecodeError),
    ("content type 0", b"\x00\x03\x01\x00\x01\x00", DecodeError),
    ("a record over 2^14 + 256", b"\x16\x03\x01\x41\x01", FrameTooLarge),
    ("an empty handshake record", b"\x16\x03\x01\x00\x00", DecodeError),
    ("an alert first", b"\x15\x03\x01\x00\x02\x02\x28", DecodeError),
    ("a ServerHello first", b"\x16\x03\x03\x00\x04\x02\x00\x00\x00", DecodeError),
]


@pytest.mark.parametrize(("data", "error"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_connection_starts(data: bytes, error: type[DecodeError]) -> None:
    with pytest.raises(error):
        tls.read_client_hello(data)


def _hello_with(body: bytes) -> bytes:
    return bytes([1]) + len(body).to_bytes(3, "big") + body


GOOD_BODY = (
    b"\x03\x03"
    + bytes(32)
    + b"\x00"
    + b"\x00\x02\x13\x01"
    + b"\x01\x00"
    + b"\x00\x11"
    + b"\x00\x00\x00\x0d\x00\x0b\x00\x00\x08a.test.x"
)

BAD_BODIES = [
    ("odd cipher suites length", GOOD_BODY[:35] + b"\x00\x03\x13\x01\x13" + GOOD_BODY[39:]),
    ("session id of 33 bytes", b"\x03\x03" + bytes(32) + b"\x21" + bytes(33) + GOOD_BODY[35:]),
    ("truncated extension", GOOD_BODY[:-3]),
    ("server_name list longer than its extension", GOOD_BODY[:-13] + b"\x00\x0c" + GOOD_BODY[-11:]),
    ("a byte after the extensions", GOOD_BODY + b"\x00"),
]


def test_good_body_is_good() -> None:
    hello = tls.HANDSHAKE_CODEC.decode(Buffer(_hello_with(GOOD_BODY)))
    assert tls.sni(hello) == "a.test.x"


@pytest.mark.parametrize("body", [b[1] for b in BAD_BODIES], ids=[b[0] for b in BAD_BODIES])
def test_malformed_client_hellos_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        tls.HANDSHAKE_CODEC.decode_all(_hello_with(body))


def test_tls12_hello_without_extensions() -> None:
    """RFC 5246 7.4.1.2: the extensions block may be absent."""
    hello = tls.HANDSHAKE_CODEC.decode(Buffer(_hello_with(GOOD_BODY[:41])))
    assert hello is not None
    assert hello.body.extensions is None
    assert tls.sni(hello) is None


def test_non_ascii_host_name_is_a_decode_error() -> None:
    body = GOOD_BODY[:-8] + "é.test".encode()[:8]
    with pytest.raises(DecodeError):
        tls.sni(tls.HANDSHAKE_CODEC.decode(Buffer(_hello_with(body))))


# -- check_codec ------------------------------------------------------------------------------
u16 = st.integers(0, 0xFFFF)
records = st.builds(
    lambda kind, version, fragment: cs.Container(
        type=kind, legacy_record_version=version, length=len(fragment), fragment=fragment
    ),
    st.sampled_from(["change_cipher_spec", "alert", "handshake", "application_data"]),
    u16,
    st.binary(min_size=1, max_size=300) | st.binary(min_size=16_600, max_size=tls.MAX_FRAGMENT),
)


def test_records_pass_check_codec() -> None:
    check_codec(tls.RECORD_CODEC, records, max_examples=30)


host = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789.-"), min_size=1, max_size=40)
extensions = st.lists(
    st.one_of(
        host.map(
            lambda h: {
                "type": "server_name",
                "data": [{"name_type": "host_name", "name": h.encode()}],
            }
        ),
        st.lists(u16, min_size=1, max_size=5).map(
            lambda v: {"type": "supported_versions", "data": v}
        ),
        st.lists(
            st.text(st.sampled_from("h2/.1ptx"), min_size=1, max_size=8), min_size=1, max_size=3
        ).map(lambda p: {"type": "application_layer_protocol_negotiation", "data": p}),
        st.tuples(
            st.sampled_from([0x0A0A, 21, 0xFF01, 0x3A3A, 0x1234]), st.binary(max_size=30)
        ).map(lambda t: {"type": t[0], "data": t[1]}),
    ),
    max_size=5,
)


def _handshake(fields: dict[str, Any]) -> cs.Container:
    body = tls.CLIENT_HELLO.build(fields)
    return tls.HANDSHAKE.parse(_hello_with(body))


hellos = st.builds(
    lambda version, random, sid, suites, comp, exts: _handshake(
        {
            "legacy_version": version,
            "random": random,
            "legacy_session_id": sid,
            "cipher_suites": suites,
            "legacy_compression_methods": comp,
            "extensions": exts,
        }
    ),
    u16,
    st.binary(min_size=32, max_size=32),
    st.binary(max_size=32),
    st.lists(u16, min_size=1, max_size=20),
    st.binary(min_size=1, max_size=3),
    st.none() | extensions,
)


def test_handshakes_pass_check_codec() -> None:
    other = st.builds(
        lambda kind, body: cs.Container(msg_type=kind, length=len(body), body=body),
        st.sampled_from(["server_hello", "finished", "certificate", 99]),
        st.binary(max_size=200),
    )
    check_codec(tls.HANDSHAKE_CODEC, hellos | other, max_examples=40)


def test_the_docs_section_runs() -> None:
    """docs/schemas.md, "## TLS record layer": every Python block runs as written, in order."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text("utf-8")
    section = text.split("## TLS record layer\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/schemas.md", "exec"), namespace)


@given(st.binary(max_size=600) | st.builds(lambda b: b"\x16\x03\x01" + b, st.binary(max_size=600)))
def test_random_bytes_never_crash_the_helpers(data: bytes) -> None:
    """Hostile first bytes: a ClientHello, ``None``, or ``DecodeError``; nothing else."""
    try:
        hello = tls.read_client_hello(data)
    except DecodeError:
        return
    if hello is not None:
        try:
            tls.sni(hello)
        except DecodeError:
            pass


REAL_HELLO = client_hello("mutated.example.test", alpn=["h2"])


@given(st.data())
def test_mutated_client_hellos_never_crash(data: st.DataObject) -> None:
    wire = bytearray(REAL_HELLO)
    for _ in range(data.draw(st.integers(1, 4))):
        wire[data.draw(st.integers(0, len(wire) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    try:
        tls.sni(bytes(wire[:cut]))
    except DecodeError:
        pass
