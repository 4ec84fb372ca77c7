"""Hex dumps in the styles people paste: plain, xxd, hexdump -C, Wireshark."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from codec import Codec
from codec.capture import HexDumpError, detect_format, parse_file, parse_hex_lines

from .protocols import MODBUS

DATA = Path(__file__).parent / "data"
SAMPLE = bytes(range(256)) + b"ab" + b"0123"  # ends with bytes whose ASCII looks like hex


def unhex(text: str) -> bytes:
    return b"".join(parse_hex_lines(text.splitlines()))


@pytest.mark.parametrize(
    "args", [["xxd"], ["xxd", "-g1"], ["xxd", "-g4"], ["xxd", "-c8"], ["hexdump", "-C"]]
)
@pytest.mark.parametrize("size", [1, 2, 6, 17, len(SAMPLE)])
def test_tool_output_round_trips(args: list[str], size: int) -> None:
    if shutil.which(args[0]) is None:
        pytest.skip(f"{args[0]} not installed")
    data = SAMPLE[-size:]
    text = subprocess.run(args, input=data, capture_output=True, check=True).stdout.decode()
    assert unhex(text) == data


def test_wireshark_hex_dump_styles() -> None:
    copy_as_hex = (
        "0000   00 01 00 00 00 06 01 03 00 28 00 01 00 02 00 00   .........(......\n"
        "0010   00 06 01 03 61 62                                 ....ab\n"
    )
    assert unhex(copy_as_hex) == bytes.fromhex("000100000006010300280001000200000006010361 62")
    export = (
        "Frame 1: 60 bytes on wire\n"
        "0000  00 01 00 00 00 06 01 03  00 28 00 01 00 02 00 00   .........( ......\n"
        "0010  00 06 01 03 00 29 00 01                            .....)..\n"
    )
    assert unhex(export).hex() == "000100000006010300280001000200000006010300290001"


def test_plain_hex_and_c_arrays() -> None:
    assert unhex("00 01 ff\n# a comment\n\nabcd\n") == b"\x00\x01\xff\xab\xcd"
    assert unhex("0x00, 0x01,\n0xFF") == b"\x00\x01\xff"
    with pytest.raises(HexDumpError, match="line 2: 'zz' is not hex"):
        unhex("00 01\nzz")
    with pytest.raises(HexDumpError, match="line 1"):
        unhex("abc")


def test_detection_and_parse_of_committed_samples() -> None:
    assert detect_format(DATA / "modbus_requests.xxd") == "hex"
    assert detect_format(DATA / "modbus_requests.bin") == "raw"
    codec = Codec(MODBUS)
    from_hex = [r.message for r in parse_file(codec, DATA / "modbus_requests.xxd")]
    from_raw = [r.message for r in parse_file(codec, DATA / "modbus_requests.bin")]
    assert from_hex == from_raw
    assert [m.transaction_id for m in from_raw] == [1, 2, 3]


def test_text_that_is_not_hex_is_raw(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("HELLO world\n")
    assert detect_format(path) == "raw"


def test_hexdump_squeezed_lines_and_offset_jumps() -> None:
    """``hexdump -C`` writes ``*`` for repeated lines; a jump without one loses bytes."""
    data = b"hello" + bytes(59) + b"tail"
    squeezed = [
        "00000000  68 65 6c 6c 6f 00 00 00  00 00 00 00 00 00 00 00  |hello...........|",
        "00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
        "*",
        "00000040  74 61 69 6c                                       |tail|",
        "00000044",
    ]
    assert b"".join(parse_hex_lines(squeezed)) == data
    with pytest.raises(HexDumpError, match=r"line 3: offset 0x40 .* 32 bytes are missing"):
        list(parse_hex_lines(squeezed[:2] + squeezed[3:]))
    with pytest.raises(HexDumpError, match="line 1: no hex bytes"):
        list(parse_hex_lines(["00000000: zz12"]))
