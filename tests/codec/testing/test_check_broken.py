"""check_codec must find real bugs: each deliberately broken hand decoder is caught."""

from __future__ import annotations

from typing import Any

import construct as cs
import pytest
from hypothesis import strategies as st

from codec import Codec
from codec.testing import CheckFailure, check_codec, from_schema

from . import decoders as d

STRING8 = cs.PascalString(cs.Int8ub, "utf8")
TEXT = from_schema(STRING8)
SHORT_TEXT = st.text(max_size=7)  # at most 28 UTF-8 bytes: fits max_frame_size=32


def test_correct_hand_decoder_passes() -> None:
    check_codec(d.StringProtocol(), TEXT)


def test_correct_hand_decoder_passes_with_sample_values() -> None:
    check_codec(d.StringProtocol(), ["", "smart-socket", "é" * 100])


def test_correct_hand_decoder_with_small_limit_passes() -> None:
    check_codec(d.StringProtocol(max_frame_size=32), SHORT_TEXT)


def test_codec_for_the_same_format_passes() -> None:
    check_codec(Codec(STRING8))


BROKEN: list[tuple[Any, Any, set[str], str]] = [
    (d.OffByOne(), TEXT, {"round-trip"}, "consumed"),
    (d.ConsumesHalfPacket(), TEXT, {"half-packet"}, "returned None but consumed"),
    (d.Unbounded(), SHORT_TEXT, {"garbage", "mutation", "bounded-memory"}, "max_frame_size=32"),
    (d.CrashesOnGarbage(), TEXT, {"bounded-memory", "garbage", "mutation"}, "UnicodeDecodeError"),
    (d.IndexErrorOnEmpty(), TEXT, {"round-trip"}, "IndexError"),
    (d.StructErrorOnShortHeader(), st.binary(max_size=20), {"round-trip"}, "error"),
    (d.DrainsEverything(), TEXT, {"chunking"}, "one message per call"),
    (d.ReturnsAll(), TEXT, {"chunking"}, "frame #0"),
    (d.WaitsForOneMore(), TEXT, {"round-trip"}, "returned None on a whole frame"),
    (d.NeverConsumes(), TEXT, {"round-trip"}, "consumed 0 bytes"),
    (d.BytearrayBody(), st.binary(max_size=20), {"round-trip"}, "bytearray"),
    (d.StatefulHalfPacket, TEXT, {"half-packet"}, "returned None but consumed"),
]


@pytest.mark.parametrize(
    ("protocol", "values", "props", "words"),
    BROKEN,
    ids=[type(b[0]).__name__ if not isinstance(b[0], type) else b[0].__name__ for b in BROKEN],
)
def test_broken_decoder_is_caught(protocol: Any, values: Any, props: set[str], words: str) -> None:
    with pytest.raises(AssertionError) as info:
        check_codec(protocol, values)
    err = info.value
    assert isinstance(err, CheckFailure)
    assert err.property in props, str(err)
    message = str(err)
    assert f"property {err.property!r} failed" in message
    assert words in message
    assert "bytes)" in message  # the input is shown in hex with its length


def test_unbounded_decoder_is_caught_by_bounded_memory_alone() -> None:
    with pytest.raises(CheckFailure, match="bounded-memory") as info:
        check_codec(d.Unbounded(), SHORT_TEXT, properties=["bounded-memory"])
    assert "more than max_frame_size=32" in str(info.value)
    assert "flood" in str(info.value)


def test_crash_on_garbage_shows_the_offending_call() -> None:
    with pytest.raises(CheckFailure) as info:
        check_codec(d.CrashesOnGarbage(), TEXT, properties=["garbage", "mutation"])
    text = str(info.value)
    assert "decode raised UnicodeDecodeError" in text
    assert "only DecodeError and its subclasses may escape decode" in text
    assert "chunking:" in text
    assert "stream:" in text
    assert isinstance(info.value.__cause__ or info.value.__context__, UnicodeDecodeError)


def test_sticky_bug_reports_the_chunking_and_frames() -> None:
    with pytest.raises(CheckFailure) as info:
        check_codec(d.DrainsEverything(), TEXT, properties=["chunking"])
    text = str(info.value)
    assert "frames: 2 frames" in text  # shrunk to the smallest failing stream
    assert "chunking: 1 chunks" in text  # and to the simplest split
