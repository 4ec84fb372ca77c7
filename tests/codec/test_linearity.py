"""Cost is linear in the bytes received however the stream is chunked: a large frame fed in
small chunks costs about the same per byte as a small one (a ratio, not a time limit)."""

from __future__ import annotations

import time
from collections.abc import Callable

import construct as cs
import pytest
from construct import this

from codec import Codec, Delimiter

CHUNK = 64
SMALL = 32 * 1024
LARGE = 2 * 1024 * 1024


def per_byte_cost(codec: Codec[object], frame: bytes) -> float:
    best = float("inf")
    for _ in range(3):
        d = codec.decoder()
        t0 = time.process_time()
        out: list[object] = []
        for i in range(0, len(frame), CHUNK):
            out.extend(d.feed(frame[i : i + CHUNK]))
        best = min(best, time.process_time() - t0)
        assert len(out) == 1
    return best / len(frame)


CASES: dict[str, tuple[cs.Construct, Callable[[int], bytes], dict[str, object]]] = {
    "length-prefix": (
        cs.Prefixed(cs.Int32ub, cs.GreedyBytes),
        lambda n: n.to_bytes(4, "big") + b"x" * n,
        {},
    ),
    "struct-length": (
        cs.Struct("t" / cs.Int8ub, "n" / cs.Int32ub, "body" / cs.Bytes(this.n), "crc" / cs.Int16ub),
        lambda n: b"\x01" + n.to_bytes(4, "big") + b"x" * n + b"\x00\x00",
        {},
    ),
    "delimiter": (cs.GreedyBytes, lambda n: b"x" * n + b"\n", {"framing": Delimiter(b"\n")}),
    # construct's own NullTerminated parse is quadratic (it appends byte by byte); the
    # generated parser slices up to the terminator it found
    "cstring": (cs.CString("ascii"), lambda n: b"x" * n + b"\0", {}),
    "array-of-strings": (
        cs.PrefixedArray(cs.Int32ub, cs.PascalString(cs.Int8ub, "ascii")),
        lambda n: (n // 4).to_bytes(4, "big") + b"\x03abc" * (n // 4),
        {},
    ),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CASES))
def test_per_byte_cost_of_large_frames_matches_small_ones(name: str) -> None:
    schema, make, kwargs = CASES[name]
    codec: Codec[object] = Codec(schema, max_frame_size=4 * LARGE, **kwargs)  # type: ignore[arg-type]
    small = per_byte_cost(codec, make(SMALL))
    large = per_byte_cost(codec, make(LARGE))
    # quadratic re-parsing or copying would make this ratio ~64; linear keeps it near 1
    assert large / small < 4.0, f"{name}: {large * 1e9:.1f} ns/B vs {small * 1e9:.1f} ns/B"
