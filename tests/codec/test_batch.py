"""Batch decoding keeps every promise of one-message-per-call decoding.

The fast path decodes every complete frame in one pass and hands them out one per call;
these tests pin what a caller can observe across batch and snapshot-window boundaries.
"""

from __future__ import annotations

from typing import Any

import construct as cs
import pytest
from construct import this
from hypothesis import given, settings
from hypothesis import strategies as st

from codec import Buffer, Codec, DecodeError, FrameTooLarge, LengthField

CMD = cs.Struct("cmd" / cs.Int8ub, "len" / cs.Int16ub, "data" / cs.Bytes(this.len))
STRING8 = cs.PascalString(cs.Int8ub, "utf8")
MAGIC = cs.Struct("magic" / cs.Const(b"W"), "len" / cs.Int8ub, "data" / cs.Bytes(this.len))


def frames(n: int) -> list[bytes]:
    return [
        CMD.build({"cmd": i % 256, "len": i % 50, "data": bytes([i % 7]) * (i % 50)})
        for i in range(n)
    ]


@pytest.mark.parametrize("schema_name", ["cmd", "string8"])
def test_long_buffer_crosses_batches_and_windows(schema_name: str) -> None:
    if schema_name == "cmd":
        schema, wire = CMD, frames(10000)
    else:
        schema = STRING8
        wire = [STRING8.build(f"message {i}") for i in range(20000)]
    c = Codec(schema)
    data = b"".join(wire)
    assert len(data) > 3 * 64 * 1024  # several snapshot windows
    buf = Buffer(data)
    for i, f in enumerate(wire):
        before = len(buf)
        msg = c.decode(buf)
        assert msg == schema.parse(f), i
        assert before - len(buf) == len(f)  # exactly one frame consumed per call
    assert c.decode(buf) is None
    assert c.decode_all(data) == [schema.parse(f) for f in wire]


def test_max_frame_size_below_the_window() -> None:
    c = Codec(CMD, max_frame_size=60)
    good = frames(200)
    assert all(len(f) <= 60 for f in good)
    too_big = CMD.build({"cmd": 1, "len": 100, "data": b"x" * 100})
    buf = Buffer(b"".join(good) + too_big + good[0])
    out = []
    with pytest.raises(FrameTooLarge) as info:
        while (m := c.decode(buf)) is not None:
            out.append(m)
    assert len(out) == len(good)  # every good frame came out first
    assert info.value.offset == sum(len(f) for f in good)
    assert len(buf) == len(too_big) + len(good[0])  # nothing lost


def test_error_after_good_frames_in_one_batch() -> None:
    c = Codec(STRING8)
    good = [c.encode(str(i)) for i in range(10)]
    buf = Buffer(b"".join(good) + b"\x02\xff\xfe" + good[0])
    out = [c.decode(buf) for _ in good]
    assert out == [str(i) for i in range(10)]
    with pytest.raises(DecodeError) as info:
        c.decode(buf)
    assert info.value.offset == sum(len(f) for f in good)
    with pytest.raises(DecodeError):
        c.decode(buf)  # the buffer is untouched: the same error again
    buf.consume(info.value.frame_size or 0)
    assert c.decode(buf) == "0"


def test_two_codecs_on_one_buffer_never_see_each_others_values() -> None:
    a = Codec(STRING8)
    b = Codec(cs.PascalString(cs.Int8ub, "ascii"))
    buf = Buffer(b"".join(a.encode(f"m{i}") for i in range(6)))
    got = [a.decode(buf), b.decode(buf), a.decode(buf), b.decode(buf), a.decode(buf)]
    assert got == ["m0", "m1", "m2", "m3", "m4"]
    assert len(buf) == 3


def test_consuming_by_hand_discards_the_batch() -> None:
    c = Codec(STRING8)
    buf = Buffer(b"".join(c.encode(f"m{i}") for i in range(5)))
    assert c.decode(buf) == "m0"
    buf.consume(3)  # the user skips "m1" themselves
    assert c.decode(buf) == "m2"


def test_extend_and_compaction_while_a_batch_is_pending() -> None:
    c = Codec(STRING8)
    wire = [c.encode(f"message-{i:04d}") for i in range(400)]
    buf = Buffer()
    out = []
    for i in range(0, 400, 50):
        buf.extend(b"".join(wire[i : i + 50]))
        # take only some messages per round, so batches are pending when bytes arrive
        for _ in range(30):
            m = c.decode(buf)
            if m is not None:
                out.append(m)
    while (m := c.decode(buf)) is not None:
        out.append(m)
    assert out == [f"message-{i:04d}" for i in range(400)]


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_decode_many_returns_all_complete_messages_and_keeps_the_rest(fast: bool) -> None:
    c = Codec(STRING8, fast=fast)
    wire = [c.encode(f"m{i}") for i in range(600)]  # more than one batch
    buf = Buffer(b"".join(wire) + b"\x05ab")
    assert c.decode_many(buf) == [f"m{i}" for i in range(600)]
    assert bytes(buf) == b"\x05ab"  # the half packet stays
    assert c.decode_many(buf) == []
    buf.extend(b"cde" + b"\x02\xff\xfe" + wire[0])
    assert c.decode_many(buf) == ["abcde"]  # stops before the bad frame...
    with pytest.raises(DecodeError):
        c.decode_many(buf)  # ...which raises once it is first
    assert len(buf) == 3 + len(wire[0])


def test_a_known_half_packet_is_completed_across_a_compaction() -> None:
    """After a pass ends on a half packet, decode answers None without another pass until
    bytes arrive; the extend that completes the frame may compact the storage, and the
    frame must still come out (never a stall)."""
    c = Codec(STRING8)
    wire = [c.encode("x" * 20) for _ in range(300)]  # 6300 bytes: compaction will trigger
    tail = c.encode("the end")
    buf = Buffer(b"".join(wire) + tail[:3])
    assert len(c.decode_many(buf)) == 300
    assert c.decode(buf) is None
    assert c.decode(buf) is None  # known half packet, no new bytes
    buf.extend(tail[3:])  # start >= 4096 and >= half the storage: compacts
    assert buf.start == 0
    assert c.decode(buf) == "the end"
    assert c.decode(buf) is None
    buf.extend(tail[:1])
    assert c.decode(buf) is None
    with buf.reserve(64) as room:  # reads straight into the buffer change _end as well
        room[: len(tail) - 1] = tail[1:]
    buf.commit(len(tail) - 1)
    assert c.decode(buf) == "the end"


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "reference"])
def test_decode_many_limit_keeps_the_rest_for_later_calls(fast: bool) -> None:
    c = Codec(STRING8, fast=fast)
    wire = b"".join(c.encode(f"m{i}") for i in range(600))
    buf = Buffer(wire + b"\x05ab")
    assert c.decode_many(buf, limit=0) == []
    assert c.decode_many(buf, limit=3) == ["m0", "m1", "m2"]
    assert len(buf) == len(wire) + 3 - sum(len(c.encode(f"m{i}")) for i in range(3))
    assert c.decode(buf) == "m3"
    assert c.decode_many(buf, limit=300) == [f"m{i}" for i in range(4, 304)]
    assert c.decode_many(buf) == [f"m{i}" for i in range(304, 600)]
    assert bytes(buf) == b"\x05ab"
    with pytest.raises(ValueError, match="limit"):
        c.decode_many(buf, limit=-1)


@settings(max_examples=200)
@given(
    sizes=st.lists(st.integers(0, 60), max_size=80),
    bad_at=st.none() | st.integers(0, 80),
    steps=st.lists(st.tuples(st.integers(1, 400), st.none() | st.integers(0, 40)), max_size=60),
)
def test_decode_many_hands_out_what_decode_would(
    sizes: list[int], bad_at: int | None, steps: list[tuple[int, int | None]]
) -> None:
    """Any mix of chunk sizes, ``decode_many`` limits and single ``decode`` calls yields
    the messages one-per-call decoding yields, in order, then the same error."""
    c = Codec(MAGIC)
    wire = [MAGIC.build({"len": n, "data": bytes([n]) * n}) for n in sizes]
    if bad_at is not None:
        wire.insert(min(bad_at, len(wire)), b"X\x00")  # a wrong magic byte: DecodeError
    data = b"".join(wire)
    expected: list[object] = []
    ref = Buffer(data)
    ref_error = None
    try:
        while (m := Codec(MAGIC, fast=False).decode(ref)) is not None:
            expected.append(m)
    except DecodeError as exc:
        ref_error = exc.offset
    got: list[object] = []
    buf = Buffer()
    pos = 0
    error = None
    for chunk, limit in [*steps, (len(data), None)]:
        buf.extend(data[pos : pos + chunk])
        pos += chunk
        try:
            if limit is None or limit % 5 == 0:
                got.extend(c.decode_many(buf, limit=limit))
            else:
                while (m := c.decode(buf)) is not None:
                    got.append(m)
        except DecodeError as exc:
            error = exc.offset
            break
    else:
        try:
            got.extend(c.decode_many(buf))
        except DecodeError as exc:
            error = exc.offset
    assert got == expected
    assert error == ref_error
    assert (ref_error is None) == (bad_at is None)


#: bodies on both sides of BLOB_DIRECT (2 KiB frames: 2044-byte bodies behind 4 bytes),
#: and enough of them for batches that stop at the window (SNAPSHOT_WINDOW)
BLOB_SIZES = [0, 5, 2043, 2044, 2045, 4096, 16384, 70000]


@pytest.mark.parametrize("explicit", [False, True], ids=["prefixed", "explicit"])
@settings(max_examples=60)
@given(
    sizes=st.lists(st.sampled_from(BLOB_SIZES), min_size=1, max_size=40),
    chunk=st.sampled_from([1000, 3000, 16384, 65536, 1 << 20]),
)
def test_large_blobs_come_straight_out_of_the_buffer(
    explicit: bool, sizes: list[int], chunk: int
) -> None:
    """A batch that starts with a blob of at least ``BLOB_DIRECT`` bytes copies every frame
    straight out of the buffer, small ones after it too; the values, their type and the
    buffer's accounting are what construct's parse gives."""
    if explicit:
        schema: cs.Construct = cs.GreedyBytes
        c = Codec(schema, framing=LengthField(0, 4, strip=4))
        wire = [len(b).to_bytes(4, "big") + b for b in (bytes([n % 251]) * n for n in sizes)]
        expected = [w[4:] for w in wire]
    else:
        schema = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
        c = Codec(schema)
        wire = [schema.build(bytes([n % 251]) * n) for n in sizes]
        expected = [schema.parse(w) for w in wire]
    data = b"".join(wire)
    buf = Buffer()
    got: list[bytes] = []
    for i in range(0, len(data), chunk):
        buf.extend(data[i : i + chunk])
        while (m := c.decode(buf)) is not None:
            assert type(m) is bytes
            got.append(m)
        assert len(buf) == len(data[: i + chunk]) - sum(map(len, wire[: len(got)]))
    assert got == expected
    assert not buf


@pytest.mark.parametrize("bad", ["too_large", "half"])
def test_a_direct_batch_stops_at_a_bad_or_half_frame_after_the_good_ones(bad: str) -> None:
    """In a batch of large blobs, a later frame over ``max_frame_size`` raises only once
    every frame before it was handed out, and leaves the buffer at its start; a half frame
    stays for the next read."""
    schema = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
    c = Codec(schema, max_frame_size=10_000)
    good = [schema.build(bytes([i]) * 3000) for i in range(5)]
    tail = (20_000).to_bytes(4, "big") + bytes(50) if bad == "too_large" else good[0][:2000]
    buf = Buffer(b"".join(good) + tail)
    assert c.decode_many(buf) == [bytes([i]) * 3000 for i in range(5)]
    assert len(buf) == len(tail)
    if bad == "too_large":
        with pytest.raises(FrameTooLarge) as info:
            c.decode_many(buf)
        assert info.value.offset == sum(map(len, good))
    else:
        assert c.decode_many(buf) == []
        buf.extend(good[0][2000:])
        assert c.decode_many(buf) == [bytes([0]) * 3000]
    assert len(buf) == (len(tail) if bad == "too_large" else 0)


def test_a_direct_batch_stops_at_the_window() -> None:
    """A read of many large blobs is handed out a window at a time (bounded work per pass),
    and every frame still comes out once, in order."""
    from codec._batch import SNAPSHOT_WINDOW

    schema = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
    c = Codec(schema)
    bodies = [bytes([i % 251]) * 4096 for i in range(3 * SNAPSHOT_WINDOW // 4096)]
    buf = Buffer(b"".join(schema.build(b) for b in bodies))
    fill = c._batch_fill
    assert fill is not None
    stack, err = fill(buf.storage, buf.start, buf.end, c.max_frame_size, buf)
    assert err is None
    assert stack is not None
    taken = len(stack) // 2
    assert SNAPSHOT_WINDOW // 4100 <= taken <= SNAPSHOT_WINDOW // 4100 + 1  # one window
    assert c.decode_many(buf) == bodies
    assert not buf


def test_a_large_blob_over_the_limit_is_refused() -> None:
    c = Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=20000)
    buf = Buffer((20000).to_bytes(4, "big") + bytes(100))
    with pytest.raises(FrameTooLarge):
        c.decode(buf)
    assert len(buf) == 104


def test_bit_fields_under_const_enum_flagsenum_and_signed_are_compiled() -> None:
    """BitStructs of the usual protocol headers are parsed by the generated code (no
    construct fallback), with the values construct's parse gives."""
    from .catalog import BITS_MIXED, IPV4, MQTT_FIXED

    header = cs.BitStruct(
        "delta" / cs.BitsInteger(5, signed=True),
        "opts" / cs.FlagsEnum(cs.BitsInteger(3), ack=1, syn=2, fin=4),
        "kind" / cs.Enum(cs.Nibble, a=1, b=2),
        "magic" / cs.Const(5, cs.Nibble),
    )
    for schema in (IPV4, MQTT_FIXED, cs.Struct("h" / header, "n" / cs.Int8ub)):
        c = Codec(schema)
        assert "_fallback" not in c._batch_fill.__wirekit_source__  # type: ignore[union-attr]
    c = Codec(cs.Struct("h" / header, "n" / cs.Int8ub))
    for raw in (b"\x85\x15\x07", b"\x7f\x35\x00", b"\x00\x05\xff"):
        assert c.decode(Buffer(raw)) == cs.Struct("h" / header, "n" / cs.Int8ub).parse(raw)
    with pytest.raises(DecodeError, match="expected 5"):
        c.decode(Buffer(b"\x85\x16\x07"))  # the Const nibble is 6
    # nested Structs of bit fields too (BITS_MIXED: a signed field, a FlagsEnum, an Octet,
    # ones padding, a nested Struct)
    mixed = Codec(cs.Struct("m" / BITS_MIXED))
    assert "_fallback" not in mixed._batch_fill.__wirekit_source__  # type: ignore[union-attr]
    for raw in (b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x8a\x5b\xc3\x3c"):
        got = mixed.decode(Buffer(raw))
        assert got == cs.Struct("m" / BITS_MIXED).parse(raw)
        assert type(got["m"]["inner"]) is cs.Container


def test_plain_flags_are_a_dict_of_the_flags() -> None:
    schema = cs.Struct(
        "perms" / cs.FlagsEnum(cs.Int8ub, read=1, write=2, admin=0x80),
        "bits" / cs.BitStruct("opts" / cs.FlagsEnum(cs.Nibble, a=1, b=4), "x" / cs.Nibble),
    )
    msg = Codec(schema, plain=True).decode(Buffer(b"\x81\x5f"))
    assert msg == {
        "perms": {"read": True, "write": False, "admin": True},
        "bits": {"opts": {"a": True, "b": True}, "x": 15},
    }
    assert type(msg["perms"]) is dict
    assert type(msg["bits"]["opts"]) is dict
    assert Codec(schema).decode(Buffer(b"\x81\x5f")) == schema.parse(b"\x81\x5f")


def test_plain_roots_of_bits_and_flags_are_dicts() -> None:
    from .catalog import BITS_MIXED, FLAGS32

    for schema, raw in ((BITS_MIXED, b"\x8a\x5b\xc3\x3c"), (FLAGS32, b"\x03\x00\x00\x80")):
        msg = Codec(schema, plain=True).decode(Buffer(raw))
        assert type(msg) is dict
        assert msg == {k: v for k, v in schema.parse(raw).items() if not k.startswith("_")}


@pytest.mark.parametrize("limit", [None, 1, 256])
def test_decode_many_one_read_at_a_time(limit: int | None) -> None:
    """The read loop's pattern: one read, one ``decode_many``. A read of exactly one
    frame, of several, of frames and a half packet, and of the half packet's rest all give
    what ``schema.parse`` gives, as ``bytes``; nothing is left behind."""
    schema = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
    c = Codec(schema)
    wire = [c.encode(bytes([i]) * i) for i in range(1, 6)]
    buf = Buffer()
    got: list[bytes] = []
    for read in (wire[0], wire[1] + wire[2] + wire[3][:3], wire[3][3:], wire[4]):
        buf.extend(read)
        for _ in range(5):  # a limit of 1 takes a batch in several calls
            got += c.decode_many(buf, limit)
    assert got == [schema.parse(w) for w in wire]
    assert all(type(v) is bytes for v in got)
    assert len(buf) == 0
    assert c.decode_many(buf, limit) == []


@pytest.mark.parametrize("schema", [CMD, STRING8], ids=["containers", "strings"])
def test_decode_many_without_limit_goes_past_passes_and_windows(schema: cs.Construct) -> None:
    """A pass stops at its batch limit (containers) or its snapshot window (64 KiB); with
    no ``limit`` ``decode_many`` still returns every complete message in one call."""
    c = Codec(schema)
    values: list[Any]
    if schema is CMD:
        values = [{"cmd": i % 256, "len": 30, "data": bytes([i % 7]) * 30} for i in range(6000)]
    else:
        values = [f"message-{i:06d}-" + "x" * 40 for i in range(6000)]
    wire = b"".join(schema.build(v) for v in values)
    assert len(wire) > 2 * 64 * 1024
    buf = Buffer(wire + wire[:5])
    got = c.decode_many(buf)
    assert got == [schema.parse(schema.build(v)) for v in values]
    assert bytes(buf) == wire[:5]


def test_decode_many_makes_one_pass_per_call_on_a_half_packet() -> None:
    """A large frame arriving in pieces: each ``decode_many`` call makes at most one pass
    over the buffer (none when nothing arrived), and none once it knows the half packet."""
    c = Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=1 << 20)
    passes = 0
    fill = c._batch_fill
    assert fill is not None

    def counting(*args: object) -> object:
        nonlocal passes
        passes += 1
        return fill(*args)  # type: ignore[arg-type]

    c._batch_fill = counting  # type: ignore[assignment]
    c.decode_many = c._make_fast_decode_many()  # type: ignore[method-assign]
    frame = c.encode(bytes(range(256)) * 64)
    buf = Buffer()
    for i in range(0, len(frame) - 1000, 1000):
        buf.extend(frame[i : i + 1000])
        assert c.decode_many(buf, 256) == []
        assert c.decode_many(buf, 256) == []  # nothing new: no pass
    calls = passes
    assert calls == len(range(0, len(frame) - 1000, 1000))
    buf.extend(frame[len(range(0, len(frame) - 1000, 1000)) * 1000 :])
    assert c.decode_many(buf, 256) == [bytes(range(256)) * 64]
    assert passes == calls + 1
