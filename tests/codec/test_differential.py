"""The codec against construct: for every catalog schema, any values, any chunking, the
decoded messages are exactly (types included) what ``schema.parse`` returns per frame."""

from __future__ import annotations

import struct
from typing import Any

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import Buffer, Codec, DecodeError, EncodeError

from .catalog import CASE_IDS, CASES, Case
from .helpers import assert_same, decode_chunks, split


def make_codec(case: Case, fast: bool = True) -> Codec[Any]:
    return Codec(case.schema, framing=case.explicit, max_frame_size=case.max_frame_size, fast=fast)


#: every test runs on the generated parser and on construct's own (the reference path)
PATHS = pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])


def frames_of(case: Case, codec: Codec[Any], values: list[Any]) -> list[bytes]:
    return [codec.encode(v) for v in values]


def expected(case: Case, codec: Codec[Any], frame: bytes) -> Any:
    """What construct itself returns for one frame (its payload, for explicit framings)."""
    if case.explicit is None:
        return case.schema.parse(frame)
    # explicit framings: the schema parses the payload the framing cuts out
    buf = Buffer(frame)
    size = codec.framing.measure(buf.storage, 0, len(frame), codec.max_frame_size, buf)
    assert size == len(frame)
    lo, hi = codec.framing.payload(buf.storage, 0, size)
    return case.schema.parse(frame[lo:hi])


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_inferred_framing_kind(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)
    assert type(codec.framing).__name__ == case.framing, repr(codec.framing)
    assert repr(codec.framing)  # readable, never raises


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_encode_is_schema_build(case: Case) -> None:
    """encode is schema.build (with an explicit framing: wrapped by that framing)."""
    codec = make_codec(case)

    @given(case.values)
    def check(value: Any) -> None:
        built = case.schema.build(value)
        if case.explicit is not None:
            built = case.explicit.frame(built, codec.max_frame_size)
        assert codec.encode(value) == built

    check()


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_differential_any_values_any_chunking(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)

    @given(st.lists(case.values, min_size=1, max_size=5), st.data())
    def check(values: list[Any], data: st.DataObject) -> None:
        frames = frames_of(case, codec, values)
        stream = b"".join(frames)
        cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=12), label="cuts")
        got, buf = decode_chunks(codec, split(stream, cuts))
        assert len(buf) == 0
        assert len(got) == len(frames)
        for g, f in zip(got, frames, strict=True):
            assert_same(g, expected(case, codec, f))

    check()


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_byte_by_byte_none_until_last_byte(case: Case) -> None:
    """h11-style: feed every frame one byte at a time; None until its last byte."""
    codec = make_codec(case)

    @given(st.lists(case.values, min_size=1, max_size=3))
    def check(values: list[Any]) -> None:
        buf = Buffer()
        for frame in frames_of(case, codec, values):
            for i, byte in enumerate(frame):
                buf.extend(bytes([byte]))
                msg = codec.decode(buf)
                if i < len(frame) - 1:
                    assert msg is None, f"message after {i + 1} of {len(frame)} bytes"
                    assert len(buf) == i + 1
                else:
                    assert msg is not None
                    assert_same(msg, expected(case, codec, frame))
                    assert len(buf) == 0

    check()


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_every_proper_prefix_is_a_half_packet(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)

    @given(case.values)
    def check(value: Any) -> None:
        frame = codec.encode(value)
        for n in range(len(frame)):
            buf = Buffer(frame[:n])
            assert codec.decode(buf) is None, f"prefix of {n}/{len(frame)} bytes decoded"
            assert bytes(buf) == frame[:n]

    check()


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_decoder_feed_and_decode_all(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)

    @given(st.lists(case.values, min_size=1, max_size=4))
    def check(values: list[Any]) -> None:
        frames = frames_of(case, codec, values)
        stream = b"".join(frames)
        d = codec.decoder()
        got = list(d.feed(stream[:1])) + list(d.feed(stream[1:]))
        d.close()
        assert len(got) == len(frames)
        all_at_once = codec.decode_all(stream)
        for g, a, f in zip(got, all_at_once, frames, strict=True):
            want = expected(case, codec, f)
            assert_same(g, want)
            assert_same(a, want)

    check()


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_garbage_raises_only_decode_error(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)

    @given(st.binary(max_size=300))
    def check(garbage: bytes) -> None:
        buf = Buffer(garbage)
        errors: list[DecodeError] = []
        for _ in range(len(garbage) + 1):
            try:
                msg = codec.decode(buf)
            except DecodeError as exc:
                errors.append(exc)
                break
            if msg is None:
                break
        else:  # pragma: no cover
            raise AssertionError("decode never stopped")
        assert all(str(e) for e in errors)

    check()


@PATHS
@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_mutated_frames_raise_only_decode_error(case: Case, fast: bool) -> None:
    codec = make_codec(case, fast)

    @given(st.lists(case.values, min_size=1, max_size=3), st.data())
    def check(values: list[Any], data: st.DataObject) -> None:
        stream = bytearray(b"".join(frames_of(case, codec, values)))
        flips = data.draw(
            st.lists(st.tuples(st.integers(0, len(stream) - 1), st.integers(1, 255)), max_size=4)
        )
        for pos, mask in flips:
            stream[pos] ^= mask
        cut = data.draw(st.integers(0, len(stream)))
        buf = Buffer(bytes(stream[:cut]))
        for _ in range(len(stream) + 1):
            try:
                if codec.decode(buf) is None:
                    return
            except DecodeError:
                return

    check()


JUNK: st.SearchStrategy[Any] = st.sampled_from(
    [None, -1, 2**70, 1.5, "text", b"raw", bytearray(b"x"), [], {}, 3]
)


def _perturb(value: Any, data: st.DataObject) -> Any:
    """``value`` with one field (at any depth) replaced by junk, or a junk value."""
    if isinstance(value, dict) and value and data.draw(st.booleans()):
        key = data.draw(st.sampled_from(sorted(k for k in value if not k.startswith("_"))))
        out = dict(value)
        out[key] = _perturb(value[key], data)
        return out
    if isinstance(value, list) and value and data.draw(st.booleans()):
        i = data.draw(st.integers(0, len(value) - 1))
        out_list = list(value)
        out_list[i] = _perturb(value[i], data)
        return out_list
    return data.draw(JUNK)


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_encoder_rejects_exactly_what_construct_rejects(case: Case) -> None:
    """The generated builder gives schema.build's bytes, and fails (EncodeError, nothing
    else) exactly where schema.build fails."""
    fast = make_codec(case, True)

    @given(case.values, st.data())
    def check(value: Any, data: st.DataObject) -> None:
        bad = _perturb(value, data)
        try:
            want = case.schema.build(bad)
        except Exception:
            want = None
        if want is None:
            with pytest.raises(EncodeError):
                fast.encode(bad)
            out = bytearray(b"keep")
            with pytest.raises(EncodeError):
                fast.encode_into(bad, out)
            assert out == b"keep"  # nothing appended on error
        elif case.explicit is None:
            assert fast.encode(bad) == want
            out = bytearray(b"keep")
            fast.encode_into(bad, out)
            assert out == b"keep" + want

    check()


#: construct's own markers in its Containers (the stream, a FlagsEnum's flag), not fields
_MARKERS = ("_io", "_flagsenum")


def _equal(a: Any, b: Any) -> bool:
    """``==`` that treats a NaN as equal to itself (floats compared by their bits), and
    leaves out construct's private ``_io`` (a field parsed by construct itself keeps it)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = [k for k in a if k not in _MARKERS]
        return keys == [k for k in b if k not in _MARKERS] and all(_equal(a[k], b[k]) for k in keys)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return struct.pack("<d", a) == struct.pack("<d", b)
    return bool(a == b)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _MARKERS}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@pytest.mark.parametrize("case", CASES, ids=CASE_IDS)
def test_plain_values_opt_in(case: Case) -> None:
    """plain=True: dicts and lists with construct's keys, order and items."""
    if type(make_codec(case).framing).__name__ == "TrialParse":
        with pytest.raises(ValueError, match="plain=True"):
            Codec(case.schema, framing=case.explicit, plain=True)
        return
    codec = Codec(case.schema, framing=case.explicit, plain=True)

    @given(st.lists(case.values, min_size=1, max_size=4))
    def check(values: list[Any]) -> None:
        frames = frames_of(case, codec, values)
        got = codec.decode_all(b"".join(frames))
        for g, f in zip(got, frames, strict=True):
            want = expected(case, codec, f)
            assert _equal(g, _plain(want))
            if isinstance(want, cs.Container):
                assert type(g) is dict
                assert list(g) == [k for k in want if k not in _MARKERS]
            elif isinstance(want, cs.ListContainer):
                assert type(g) is list

    check()
