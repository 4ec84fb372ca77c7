#!/usr/bin/env python3
"""``decode_many`` per frame for length-prefixed blobs of one size: where BLOB_DIRECT sits.

The batch decoder hands out ``Prefixed(Int32ub, GreedyBytes)`` values in one of two ways:
sliced out of one ``bytes`` snapshot of the batch (two copies per frame, but ``bytes``
slicing is the cheapest way to make many small values), or, when the batch starts with a
frame of at least ``codec._batch.BLOB_DIRECT`` bytes, each copied straight out of the buffer
through a ``memoryview`` (one copy, a slice object per frame). This times both on the same
input, ~256 KiB of frames plus half a frame per read, best of several samples:

    python bench/blob_batch.py                    # bodies of 64 B .. 8 KiB
    python bench/blob_batch.py --sizes 1024 2048 4096

``--threshold N`` sets BLOB_DIRECT for the "direct" column (default 0: always direct), so
the two columns show each way on every size.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import construct as cs  # noqa: E402

import codec._batch as batch  # noqa: E402
from codec import Buffer, Codec  # noqa: E402

SCHEMA = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)


def codec_with(threshold: int) -> Codec[bytes]:
    """A codec whose batch decoder was generated with ``BLOB_DIRECT = threshold``."""
    saved = batch.BLOB_DIRECT
    batch.BLOB_DIRECT = threshold
    try:
        return Codec(SCHEMA, max_frame_size=1 << 20)
    finally:
        batch.BLOB_DIRECT = saved


def ns_per_frame(codec: Codec[bytes], body: int, samples: int) -> float:
    frame = body.to_bytes(4, "big") + b"x" * body
    n = max(1, 262144 // len(frame))
    read = frame * n + frame[: len(frame) // 2]
    rest = frame[len(frame) // 2 :]
    best = float("inf")
    for _ in range(samples):
        t0 = time.perf_counter()
        for _ in range(20):
            buf = Buffer()
            buf.extend(read)
            got = 0
            while taken := len(codec.decode_many(buf, 1024)):  # as a session takes them
                got += taken
            buf.extend(rest)
            got += len(codec.decode_many(buf, 1024))
            assert got == n + 1
        best = min(best, (time.perf_counter() - t0) / 20 / (n + 1))
    return best * 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", type=int, nargs="*", default=[64, 256, 1024, 2048, 4096, 8192])
    ap.add_argument("--threshold", type=int, default=0, help="BLOB_DIRECT for 'direct'")
    ap.add_argument("--samples", type=int, default=7)
    args = ap.parse_args(argv)
    snapshot = codec_with(1 << 30)  # never direct (but a frame alone in the buffer)
    direct = codec_with(args.threshold)
    print(f"# python {sys.version.split()[0]}; ns per frame, best of {args.samples}")
    print(f"# BLOB_DIRECT in this checkout: {batch.BLOB_DIRECT}")
    print("| body | snapshot | direct | direct/snapshot |")
    print("|---:|---:|---:|---:|")
    for body in args.sizes:
        a = ns_per_frame(snapshot, body, args.samples)
        b = ns_per_frame(direct, body, args.samples)
        print(f"| {body} | {a:,.0f} | {b:,.0f} | {b / a:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
