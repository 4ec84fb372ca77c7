"""schemas.modbus: the Application Protocol's own examples (section 6, 7) byte for byte,
the codec's property checks on requests and responses, and bad bytes as ``DecodeError``."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import Buffer, DecodeError
from codec.testing import check_codec
from schemas import modbus

MBAP = "0001 0000 {length:04x} 11"


def adu(pdu_hex: str) -> bytes:
    """The PDU of a specification example behind an MBAP header (transaction 1, unit 0x11)."""
    pdu = bytes.fromhex(pdu_hex.replace(" ", ""))
    return bytes.fromhex(MBAP.format(length=len(pdu) + 1).replace(" ", "")) + pdu


# (section, request PDU, response PDU, request data, response data), the examples printed in
# the MODBUS Application Protocol Specification V1.1b3
EXAMPLES: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    (
        "6.1 read coils 20-38",
        "01 0013 0013",
        "01 03 CD6B05",
        {"address": 0x13, "quantity": 0x13},
        {"byte_count": 3, "status": b"\xcd\x6b\x05"},
    ),
    (
        "6.2 read discrete inputs 197-218",
        "02 00C4 0016",
        "02 03 ACDB35",
        {"address": 0xC4, "quantity": 0x16},
        {"byte_count": 3, "status": b"\xac\xdb\x35"},
    ),
    (
        "6.3 read holding registers 108-110",
        "03 006B 0003",
        "03 06 022B 0000 0064",
        {"address": 0x6B, "quantity": 3},
        {"byte_count": 6, "registers": [0x022B, 0, 0x64]},
    ),
    (
        "6.4 read input register 9",
        "04 0008 0001",
        "04 02 000A",
        {"address": 8, "quantity": 1},
        {"byte_count": 2, "registers": [10]},
    ),
    (
        "6.5 write coil 173 on",
        "05 00AC FF00",
        "05 00AC FF00",
        {"address": 0xAC, "value": 0xFF00},
        {"address": 0xAC, "value": 0xFF00},
    ),
    (
        "6.6 write register 2",
        "06 0001 0003",
        "06 0001 0003",
        {"address": 1, "value": 3},
        {"address": 1, "value": 3},
    ),
    (
        "6.11 write 10 coils from 20",
        "0F 0013 000A 02 CD01",
        "0F 0013 000A",
        {"address": 0x13, "quantity": 10, "byte_count": 2, "outputs": b"\xcd\x01"},
        {"address": 0x13, "quantity": 10},
    ),
    (
        "6.12 write registers 2-3",
        "10 0001 0002 04 000A 0102",
        "10 0001 0002",
        {"address": 1, "quantity": 2, "byte_count": 4, "registers": [10, 0x102]},
        {"address": 1, "quantity": 2},
    ),
    (
        "7 read coils: illegal data address",
        "01 04A1 0001",
        "81 02",
        {"address": 0x4A1, "quantity": 1},
        {"exception_code": 2},
    ),
]


@pytest.mark.parametrize(
    ("section", "request_pdu", "response_pdu", "request_data", "response_data"),
    EXAMPLES,
    ids=[e[0] for e in EXAMPLES],
)
def test_specification_examples(
    section: str,
    request_pdu: str,
    response_pdu: str,
    request_data: dict[str, Any],
    response_data: dict[str, Any],
) -> None:
    for codec, schema, wire, data in (
        (modbus.REQUEST_CODEC, modbus.REQUEST, adu(request_pdu), request_data),
        (modbus.RESPONSE_CODEC, modbus.RESPONSE, adu(response_pdu), response_data),
    ):
        buf = Buffer(wire + wire)  # sticky: one per call
        msg = codec.decode(buf)
        assert msg is not None
        assert (msg.transaction_id, msg.protocol_id, msg.unit_id) == (1, 0, 0x11)
        assert msg.length == len(wire) - 6
        assert msg.function_code == wire[7]
        assert {k: v for k, v in msg.data.items() if not k.startswith("_")} == data
        assert msg == schema.parse(wire)
        assert codec.decode(buf) == msg
        assert len(buf) == 0
        # encoding needs neither length nor byte counts: they are rebuilt
        given_ = {k: v for k, v in data.items() if k != "byte_count"}
        value = {"transaction_id": 1, "unit_id": 0x11, "function_code": wire[7], "data": given_}
        assert codec.encode(value) == wire


def test_coil_states_are_packed_first_in_the_low_bit() -> None:
    """6.1's example: coils 20-27 are 0xCD, "coil 27 ... coil 20" read from bit 7 to bit 0."""
    states = modbus.unpack_bits(b"\xcd\x6b\x05", 19)
    assert states[:8] == [True, False, True, True, False, False, True, True]
    assert modbus.pack_bits(states) == b"\xcd\x6b\x05"
    with pytest.raises(ValueError, match="do not fit"):
        modbus.unpack_bits(b"\x00", 9)


@given(st.lists(st.booleans(), max_size=40))
def test_pack_and_unpack_bits(states: list[bool]) -> None:
    assert modbus.unpack_bits(modbus.pack_bits(states), len(states)) == states


def test_unknown_functions_keep_their_data_as_bytes() -> None:
    """A server must be able to answer any function code with exception 01."""
    wire = adu("2B 0E 01 00")
    msg = modbus.REQUEST_CODEC.decode(Buffer(wire))
    assert msg is not None
    assert (msg.function_code, msg.data) == (0x2B, b"\x0e\x01\x00")
    assert type(msg.data) is bytes


@pytest.mark.parametrize(
    ("why", "wire"),
    [
        ("protocol id 1", bytes.fromhex("0001 0001 0006 11 03 006B 0003".replace(" ", ""))),
        ("PDU one octet short", adu("03 006B 00")),
        ("PDU one octet long", adu("03 006B 0003 00")),
        ("byte count says more than there is", adu("10 0001 0002 06 000A 0102")),
        ("length 1: no function code", bytes.fromhex("0001 0000 0001 11 03")),
        ("length 0", bytes.fromhex("0001 0000 0000 11 03")),
    ],
)
def test_malformed_requests_are_decode_errors(why: str, wire: bytes) -> None:
    with pytest.raises(DecodeError):
        modbus.REQUEST_CODEC.decode(Buffer(wire))
    with pytest.raises(cs.ConstructError):  # the codec agrees with construct
        modbus.REQUEST.parse(wire)


def test_an_exception_response_cut_short_waits_and_a_long_one_fails() -> None:
    wire = adu("83 02")
    assert modbus.RESPONSE_CODEC.decode(Buffer(wire[:-1])) is None  # a half packet
    with pytest.raises(DecodeError):
        modbus.RESPONSE_CODEC.decode(Buffer(adu("83 02 00")))


def test_duplex_encodes_one_direction_and_decodes_the_other() -> None:
    request = adu("03 006B 0003")
    response = adu("03 06 022B 0000 0064")
    server = modbus.SERVER_PROTOCOL
    assert server.decode(Buffer(request)) == modbus.REQUEST.parse(request)
    assert server.encode(modbus.RESPONSE.parse(response)) == response
    client = modbus.CLIENT_PROTOCOL
    assert client.decode(Buffer(response)) == modbus.RESPONSE.parse(response)
    assert client.encode(modbus.REQUEST.parse(request)) == request
    assert client.max_frame_size == modbus.MAX_ADU


# -- property checks ------------------------------------------------------------------------
U16 = st.integers(0, 0xFFFF)
ADDRESSED = st.fixed_dictionaries({"address": U16, "quantity": U16})
SINGLE = st.fixed_dictionaries({"address": U16, "value": U16})
REGISTERS = st.lists(U16, max_size=123)


def adus(schema: cs.Construct, function: st.SearchStrategy[int], data: Any) -> Any:
    """Values as the schema parses them (length and byte counts consistent)."""
    value = st.fixed_dictionaries(
        {
            "transaction_id": U16,
            "unit_id": st.integers(0, 255),
            "function_code": function,
            "data": data,
        }
    )
    return value.map(lambda v: schema.parse(schema.build(v)))


def unknown(known: dict[int, Any]) -> st.SearchStrategy[int]:
    return st.integers(0, 255).filter(lambda f: f not in known)


REQUESTS = st.one_of(
    adus(modbus.REQUEST, st.sampled_from([1, 2, 3, 4]), ADDRESSED),
    adus(modbus.REQUEST, st.sampled_from([5, 6]), SINGLE),
    adus(
        modbus.REQUEST,
        st.just(0x0F),
        st.fixed_dictionaries(
            {"address": U16, "quantity": U16, "outputs": st.binary(max_size=246)}
        ),
    ),
    adus(
        modbus.REQUEST,
        st.just(0x10),
        st.fixed_dictionaries({"address": U16, "quantity": U16, "registers": REGISTERS}),
    ),
    adus(modbus.REQUEST, unknown(modbus.PDU_REQUESTS), st.binary(max_size=252)),
)

RESPONSES = st.one_of(
    adus(
        modbus.RESPONSE,
        st.sampled_from([1, 2]),
        st.fixed_dictionaries({"status": st.binary(max_size=250)}),
    ),
    adus(
        modbus.RESPONSE,
        st.sampled_from([3, 4]),
        st.fixed_dictionaries({"registers": st.lists(U16, max_size=125)}),
    ),
    adus(modbus.RESPONSE, st.sampled_from([5, 6]), SINGLE),
    adus(modbus.RESPONSE, st.sampled_from([0x0F, 0x10]), ADDRESSED),
    adus(
        modbus.RESPONSE,
        st.integers(0x80, 0xFF),
        st.fixed_dictionaries({"exception_code": st.integers(0, 255)}),
    ),
    adus(
        modbus.RESPONSE,
        unknown(modbus.PDU_RESPONSES).filter(lambda f: f < 0x80),
        st.binary(max_size=252),
    ),
)


def test_requests_pass_check_codec() -> None:
    check_codec(modbus.REQUEST_CODEC, REQUESTS, max_examples=40)


def test_responses_pass_check_codec() -> None:
    check_codec(modbus.RESPONSE_CODEC, RESPONSES, max_examples=40)


def section_blocks(title: str) -> list[str]:
    """The Python blocks of one ``##`` section of docs/schemas.md."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "schemas.md").read_text()
    section = text.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_the_docs_section_runs() -> None:
    blocks = section_blocks("Modbus TCP")
    assert len(blocks) == 2
    namespace: dict[str, object] = {"__name__": "docs_schemas_modbus"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"schemas.md[Modbus TCP {i}]", "exec"), namespace)
