"""``codec._splitter.LengthSplitter`` (the hand-written batch function for length-prefixed
``bytes`` bodies) returns what the generated ``fill`` returns, call for call, and the codec
built on it decodes what the generated one decodes, with the same buffer bookkeeping."""

from __future__ import annotations

import random
from typing import Any

import construct as cs
import pytest

from codec import Buffer, Codec, DecodeError, LengthField, _batch
from codec._splitter import LengthSplitter

SCHEMAS: list[tuple[Any, dict[str, Any]]] = [
    (cs.Prefixed(cs.Int32ub, cs.GreedyBytes), {}),
    (cs.Prefixed(cs.Int16ul, cs.GreedyBytes), {}),
    (cs.Prefixed(cs.Int8ub, cs.GreedyBytes), {}),
    (cs.Prefixed(cs.Int64ub, cs.GreedyBytes), {}),
    ("x" / cs.Prefixed(cs.Int32ul, cs.GreedyBytes), {}),
    (cs.GreedyBytes, {"framing": LengthField(length=2, strip=2)}),
    (cs.GreedyBytes, {"framing": LengthField(length=4)}),
    (cs.GreedyBytes, {"framing": LengthField(offset=1, length=2, strip=3, byteorder="little")}),
    (cs.GreedyBytes, {"framing": LengthField(length=2, adjustment=-2, strip=2)}),
    (cs.GreedyBytes, {"framing": LengthField(length=1, signed=True, strip=1)}),
    (cs.GreedyBytes, {"framing": LengthField(length=3, strip=3)}),
    (cs.GreedyBytes, {"framing": LengthField(length=8, signed=True, adjustment=-3)}),
]


def pair(schema: Any, monkeypatch: pytest.MonkeyPatch, **kw: Any) -> tuple[Codec[Any], Codec[Any]]:
    monkeypatch.setattr(_batch, "USE_SPLITTER", True)
    split = Codec(schema, **kw)
    monkeypatch.setattr(_batch, "USE_SPLITTER", False)
    generated = Codec(schema, **kw)
    assert isinstance(split._batch_fill, LengthSplitter)
    assert not isinstance(generated._batch_fill, LengthSplitter)
    return split, generated


def stream(rng: random.Random, schema: Any, codec: Codec[Any]) -> bytearray:
    """Frames (some too large for small limits, some bad), maybe cut, maybe misaligned."""
    fr = codec.framing
    assert isinstance(fr, LengthField)
    out = bytearray()
    big = rng.random() < 0.2
    for _ in range(rng.choice([1, 2, 3, 10, 40, 300])):
        n = rng.choice([0, 1, 5, 16, 100, 2100, 5000]) if big else rng.randrange(0, 40)
        if not codec.explicit:
            if fr.length == 1 and n > 255:
                n = 255
            out += schema.build(rng.randbytes(n))
        else:
            after = max(n, fr.strip - fr.header, 0)
            value = after - fr.adjustment
            try:
                head = value.to_bytes(fr.length, fr.byteorder, signed=fr.signed)
            except OverflowError:  # (a body too long for this length field: garbage)
                head = rng.randbytes(fr.length)
            out += rng.randbytes(fr.offset) + head + rng.randbytes(after)
        if rng.random() < 0.05:
            out += rng.randbytes(rng.randrange(1, 6))
    if rng.random() < 0.5:
        out = out[: rng.randrange(0, len(out) + 1)]
    if rng.random() < 0.3:
        out = out[rng.randrange(0, 4) :]
    return out


def comparable(result: tuple[Any, Any]) -> tuple[Any, Any]:
    stack, err = result
    if isinstance(err, tuple):
        err = (type(err[0]), err[0].args, err[1])
    return stack, err


def decoded(codec: Codec[Any], buf: Buffer, limit: int | None) -> Any:
    try:
        return codec.decode_many(buf, limit)
    except DecodeError as exc:
        return type(exc), str(exc), exc.frame_size


@pytest.mark.parametrize(("schema", "kw"), SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
@pytest.mark.parametrize("max_frame_size", [16, 100, 5000, 1 << 20])
def test_splitter_is_the_generated_fill(
    schema: Any, kw: dict[str, Any], max_frame_size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    split, generated = pair(schema, monkeypatch, max_frame_size=max_frame_size, **kw)
    rng = random.Random(f"{schema}{kw}{max_frame_size}")
    for _ in range(60):
        out = stream(rng, schema, split)
        pre = rng.randrange(0, 3)
        data = bytearray(rng.randbytes(pre)) + out + rng.randbytes(2)
        # the batch function itself: over the whole stream, then anywhere in the storage
        for i in range(4):
            start = rng.randrange(0, len(data)) if i or not out else pre
            end = rng.randrange(start + 1, len(data) + 1) if i or not out else pre + len(out)
            a = split._batch_fill(data, start, end, max_frame_size, None)  # type: ignore[misc]
            b = generated._batch_fill(data, start, end, max_frame_size, None)  # type: ignore[misc]
            assert comparable(a) == comparable(b)
        # the codec over it, fed in pieces, with and without limits
        ba, bb = Buffer(), Buffer()
        pos = 0
        while pos < len(out):
            k = rng.randrange(1, 200)
            ba.extend(out[pos : pos + k])
            bb.extend(out[pos : pos + k])
            pos += k
            limit = rng.choice([None, None, 1, 3])
            va, vb = decoded(split, ba, limit), decoded(generated, bb, limit)
            assert va == vb
            assert (ba.start, ba.end, ba.base, len(ba)) == (bb.start, bb.end, bb.base, len(bb))
            if isinstance(va, tuple):
                break


def test_other_schemas_keep_the_generated_fill(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_batch, "USE_SPLITTER", True)
    for schema in (
        cs.Prefixed(cs.Int32sb, cs.GreedyBytes),  # signed prefix
        cs.Prefixed(cs.Int32ub, cs.GreedyBytes, includelength=True),
        cs.Prefixed(cs.VarInt, cs.GreedyBytes),
        cs.Prefixed(cs.Int32ub, cs.Struct("a" / cs.Int8ub, "b" / cs.GreedyBytes)),
        cs.PascalString(cs.Int8ub, "utf8"),
    ):
        assert not isinstance(Codec(schema)._batch_fill, LengthSplitter), schema
    assert not isinstance(
        Codec(cs.Int8ub[2], framing=LengthField(length=2, strip=2))._batch_fill, LengthSplitter
    )


@pytest.mark.parametrize(("schema", "kw"), SCHEMAS, ids=[str(i) for i in range(len(SCHEMAS))])
@pytest.mark.parametrize("body", [0, 3, 300, 3000])
def test_long_runs_stop_where_the_generated_fill_stops(
    schema: Any, kw: dict[str, Any], body: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many clean frames: the batch limit, the snapshot window and the frame limit's cut."""
    for max_frame_size in (5000, 1 << 20):
        split, generated = pair(schema, monkeypatch, max_frame_size=max_frame_size, **kw)
        fr = split.framing
        assert isinstance(fr, LengthField)
        n = min(body, 2 ** (8 * fr.length - 1) - 1 + fr.adjustment)
        after = max(n, fr.strip - fr.header, 0)
        head = (after - fr.adjustment).to_bytes(fr.length, fr.byteorder, signed=fr.signed)
        frame = b"\x07" * fr.offset + head + b"\x05" * after
        for count in (1, 2, 255, 256, 257, 600):
            out = bytearray(frame * count)
            for data in (out, out + frame[:-1]):
                for start in (0, len(frame)):
                    if start >= len(data):
                        continue  # (the codec never asks about an empty buffer)
                    a = split._batch_fill(data, start, len(data), max_frame_size, None)  # type: ignore[misc]
                    b = generated._batch_fill(data, start, len(data), max_frame_size, None)  # type: ignore[misc]
                    assert comparable(a) == comparable(b)
