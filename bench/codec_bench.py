#!/usr/bin/env python3
"""Benchmark: wirekit's ``Codec`` against the fastest hand-written decoders and construct.

Run it with ``python3 dev.py bench`` (all ``bench/*_bench.py``) or directly::

    .venv/bin/python bench/codec_bench.py            # full run, a few minutes
    .venv/bin/python bench/codec_bench.py --quick    # well under a minute
    .venv/bin/python bench/codec_bench.py --only fixed13,frame64k --json bench/results/x.json
    .venv/bin/python bench/codec_bench.py --verify-only   # check agreement, time nothing

Five workloads (issue 4's "Benchmark" section), each delivered as a stream cut into
64 KiB chunks, 1460-byte chunks (one TCP segment) and random 1..100-byte chunks (seeded
RNG). Every contender gets the very same chunk objects and must produce the same messages.

Decoding contenders:

* ``codec``: ``Codec(schema).decode(buf)`` on a ``Buffer`` fed with ``buf.extend(chunk)``,
  called until it returns ``None`` - one message per call, as the API promises;
* ``codec ref``: the same with ``Codec(schema, fast=False)``, only if that keyword exists
  (the construct-interpreted reference path);
* ``hand``: the fastest pure-Python decoder of the format I could write (see each
  ``hand_*`` function for how). It returns plain tuples/str/bytes, as a person writing a
  decoder by hand would - not construct Containers;
* ``construct``: construct's interpreted ``schema.parse(frame)`` on each complete frame,
  the frame boundaries found by the same hand framer (``frames_*``) - construct has no
  incremental API, and this is the fastest fair way to use it on a stream (``parse_stream``
  on a BytesIO per chunk cannot tell a half frame from a bad one);
* ``compiled``: ``schema.compile().parse(frame)`` the same way (it does not check lengths,
  so it only ever sees complete frames); "n/a" when construct cannot compile the schema.

Encoding contenders: ``codec.encode(msg)``, ``codec.encode_into(msg, out)`` into one
bytearray, a hand-written encoder (``struct.pack``, concatenation, ``join``) taking the hand
decoder's tuples, ``schema.build(msg)`` and the compiled ``build``. The codec and construct
get plain dicts (what a user typically builds); every encoder must give the same bytes as
``schema.build``.

Method: one process, pinned to one CPU when the OS allows it; for each row the contenders
run interleaved (rotating order) for ``--repeats`` samples and the median is reported. A
fast contender repeats its pass within a sample (>= 50 ms per sample); one too slow for the
``--budget`` is timed on a prefix of the stream and flagged ``*`` (see ``time_row``).
The cyclic garbage collector is disabled during every timed pass, for every contender
alike (``gc.collect()`` runs before each pass). Before anything is timed, every
contender is checked against ``schema.parse`` on a sample of each stream and each chunking,
and the script exits with an error if any disagrees.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import inspect
import json
import math
import os
import platform
import random
import statistics
import struct
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import construct as cs

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing
    sys.path.insert(0, str(ROOT))

from bench.pinning import pin_cpu  # noqa: E402
from codec import Buffer, Codec  # noqa: E402

Feed = Callable[[bytes], list[Any]]

CHUNKINGS = ("64KiB", "1460B", "rand1-100")

#: largest frame the hand decoders accept (the codec's default max_frame_size)
MAX_FRAME = 1024 * 1024


# =========================================================================================
# Hand-written decoders
#
# What makes them fast (measured on CPython 3.11; see docs/performance.md):
# * Decode every complete frame of a chunk in one ``while`` loop with a local offset, and
#   return them as one list: no per-message call, no per-message buffer bookkeeping.
# * Small frames: keep the undecoded tail as ``bytes`` and decode from ``tail + chunk``.
#   Slicing ``bytes`` gives ``bytes`` directly (~40 ns), ``bytes.decode()`` and
#   ``unpack_from`` read it in place, and the tail is shorter than one frame, so the
#   concatenation costs O(chunk + one frame) - never quadratic. This beat the
#   ``bytearray`` + offset + ``del buf[:off]`` version by ~20% on every chunking.
# * Big frames (64 KiB): a ``bytearray`` (so a frame arriving in 1-byte chunks is not
#   copied again on every chunk), ``del buf[:off]`` once per chunk, a ``need`` count that
#   returns at once while the frame is incomplete, and the body copied out once with
#   ``memoryview(...)[a:b].tobytes()`` (half the cost of ``bytes(buf[a:b])``).
# * Precompiled ``struct.Struct(...).unpack_from`` bound to a local name for headers
#   (faster than indexing bytes and shifting); ``iter_unpack`` for runs of fixed records.
# * Locals for everything in the loop (``append = out.append``...), closures (cell
#   variables) instead of instance attributes.
# =========================================================================================


def hand_pascal8() -> Feed:
    """``PascalString(Int8ub, "utf8")`` -> ``str``."""
    tail = b""

    def feed(chunk: bytes) -> list[str]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[str] = []
        append = out.append
        while off < end:
            stop = off + 1 + data[off]
            if stop > end:
                break
            append(data[off + 1 : stop].decode())  # no argument: the fastest UTF-8 decode
            off = stop
        tail = data[off:]
        return out

    return feed


_CMDLEN_HDR = struct.Struct(">BH")


def hand_cmdlen() -> Feed:
    """``Struct(cmd u8, len u16, data Bytes(len))`` -> ``(cmd, data)``; ``len`` is implied."""
    tail = b""
    unpack_hdr = _CMDLEN_HDR.unpack_from

    def feed(chunk: bytes) -> list[tuple[int, bytes]]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[tuple[int, bytes]] = []
        append = out.append
        while off + 3 <= end:
            cmd, n = unpack_hdr(data, off)
            stop = off + 3 + n
            if stop > end:
                break
            append((cmd, data[off + 3 : stop]))
            off = stop
        tail = data[off:]
        return out

    return feed


_FIXED13 = struct.Struct(">IdB")  # '>' = standard sizes, no padding: 4 + 8 + 1 = 13 bytes


def hand_fixed13() -> Feed:
    """``Struct(id u32, value f64, flag u8)`` -> ``(id, value, flag)``.

    All frames have one size, so the whole complete region of a chunk is decoded by one
    ``iter_unpack`` (C loop, one tuple per record) - far faster than ``unpack_from`` per
    record.
    """
    tail = b""
    iter_unpack = _FIXED13.iter_unpack
    size = _FIXED13.size

    def feed(chunk: bytes) -> list[tuple[int, float, int]]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        n = len(data)
        cut = n - n % size
        tail = data[cut:]
        if cut == n:
            return list(iter_unpack(data))
        return list(iter_unpack(data[:cut]))

    return feed


_ITEM = struct.Struct(">Hi")


def _varint(data: bytes, off: int, end: int) -> tuple[int, int]:
    """Slow path of a VarInt (construct's: little-endian base 128): ``(value, next)`` or
    ``(-1, ...)`` when it is cut off."""
    value = shift = 0
    p = off
    while p < end:
        b = data[p]
        p += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, p
        shift += 7
        if shift > 63:
            raise ValueError("VarInt longer than 9 bytes")
    return -1, p


def hand_varint_array() -> Feed:
    """``Prefixed(VarInt, Struct(kind u8, items PrefixedArray(u8, Struct(k u16, v s32))))``
    -> ``(kind, [(k, v), ...])``.

    One-byte VarInt inline (the common case), longer ones in a helper; the item array is one
    ``iter_unpack`` over the body slice, after checking the count matches the body size.
    """
    tail = b""
    iter_items = _ITEM.iter_unpack
    item_size = _ITEM.size

    def feed(chunk: bytes) -> list[tuple[int, list[tuple[int, int]]]]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[tuple[int, list[tuple[int, int]]]] = []
        append = out.append
        while off < end:
            n = data[off]
            if n < 0x80:
                p = off + 1
            else:
                n, p = _varint(data, off, end)
                if n < 0:
                    break
            stop = p + n
            if stop > end:
                break
            if n < 2 or data[p + 1] * item_size != n - 2:
                raise ValueError(f"bad item count at offset {off}")
            append((data[p], list(iter_items(data[p + 2 : stop]))))
            off = stop
        tail = data[off:]
        return out

    return feed


_U32 = struct.Struct(">I")


def hand_frame64k() -> Feed:
    """``Prefixed(Int32ub, GreedyBytes)`` -> ``bytes`` (large bodies: ``frame64k`` and
    ``frame4k``): each body copied once out of a bytearray, consumed once per chunk."""
    buf = bytearray()
    need = 4  # bytes the frame at the front needs before anything can be decoded
    unpack_hdr = _U32.unpack_from

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal buf, need
        buf += chunk
        end = len(buf)
        if end < need:  # most tiny chunks of a big frame stop here
            return []
        off = 0
        out: list[bytes] = []
        need = 4
        with memoryview(buf) as view:
            while end - off >= 4:
                (n,) = unpack_hdr(buf, off)
                if n > MAX_FRAME:
                    raise ValueError(f"frame of {n} bytes at offset {off}")
                stop = off + 4 + n
                if stop > end:
                    need = stop - off
                    break
                out.append(view[off + 4 : stop].tobytes())  # one copy
                off = stop
        if off:
            del buf[:off]
        return out

    return feed


# -- framers: the same boundary finding, handing out whole frames for construct to parse ----


def frames_pascal8() -> Feed:
    tail = b""

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[bytes] = []
        while off < end:
            stop = off + 1 + data[off]
            if stop > end:
                break
            out.append(data[off:stop])
            off = stop
        tail = data[off:]
        return out

    return feed


def frames_cmdlen() -> Feed:
    tail = b""
    unpack_hdr = _CMDLEN_HDR.unpack_from

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[bytes] = []
        while off + 3 <= end:
            stop = off + 3 + unpack_hdr(data, off)[1]
            if stop > end:
                break
            out.append(data[off:stop])
            off = stop
        tail = data[off:]
        return out

    return feed


def frames_fixed13() -> Feed:
    tail = b""

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        cut = len(data) - len(data) % 13
        tail = data[cut:]
        return [data[i : i + 13] for i in range(0, cut, 13)]

    return feed


def frames_varint_array() -> Feed:
    tail = b""

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal tail
        data = tail + chunk if tail else chunk
        end = len(data)
        off = 0
        out: list[bytes] = []
        while off < end:
            n, p = _varint(data, off, end)
            if n < 0:
                break
            stop = p + n
            if stop > end:
                break
            out.append(data[off:stop])
            off = stop
        tail = data[off:]
        return out

    return feed


def frames_frame64k() -> Feed:
    buf = bytearray()
    unpack_hdr = _U32.unpack_from

    def feed(chunk: bytes) -> list[bytes]:
        nonlocal buf
        buf += chunk
        end = len(buf)
        off = 0
        out: list[bytes] = []
        with memoryview(buf) as view:
            while end - off >= 4:
                stop = off + 4 + unpack_hdr(buf, off)[0]
                if stop > end:
                    break
                out.append(view[off:stop].tobytes())
                off = stop
        if off:
            del buf[:off]
        return out

    return feed


# -- hand-written encoders ------------------------------------------------------------------

_pack_u8 = struct.Struct(">B").pack
_pack_cmdlen = _CMDLEN_HDR.pack
_pack_fixed13 = _FIXED13.pack
_pack_item = _ITEM.pack
_pack_u32 = _U32.pack


def enc_pascal8(s: str) -> bytes:
    b = s.encode()
    return _pack_u8(len(b)) + b  # struct.error above 255, like construct


def enc_cmdlen(msg: tuple[int, bytes]) -> bytes:
    cmd, data = msg
    return _pack_cmdlen(cmd, len(data)) + data


def enc_fixed13(msg: tuple[int, float, int]) -> bytes:
    return _pack_fixed13(*msg)


def enc_varint_array(msg: tuple[int, list[tuple[int, int]]]) -> bytes:
    kind, items = msg
    body = bytes((kind, len(items))) + b"".join([_pack_item(k, v) for k, v in items])
    n = len(body)
    if n < 0x80:
        return bytes((n,)) + body
    head = bytearray()
    while n >= 0x80:
        head.append((n & 0x7F) | 0x80)
        n >>= 7
    head.append(n)
    return bytes(head) + body


def enc_frame64k(body: bytes) -> bytes:
    return _pack_u32(len(body)) + body


# =========================================================================================
# Workloads
# =========================================================================================


@dataclass
class Workload:
    name: str
    title: str
    schema: cs.Construct
    make_values: Callable[[random.Random, int], list[Any]]  # values for schema.build
    to_hand: Callable[[Any], Any]  # a value as the hand encoder takes it
    from_hand: Callable[[Any], Any]  # a hand-decoded message as construct would return it
    hand: Callable[[], Feed]
    frames: Callable[[], Feed]
    hand_encode: Callable[[Any], bytes]
    count: int  # messages in the full run
    quick_count: int  # messages with --quick
    verify_count: int  # messages checked before timing (each chunking)
    values: list[Any] = field(default_factory=list)
    wire: list[bytes] = field(default_factory=list)  # one frame per value


def _ascii(rng: random.Random, n: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz-_") for _ in range(n))


def _pascal_values(rng: random.Random, n: int) -> list[Any]:
    return [_ascii(rng, rng.randint(8, 16)) for _ in range(n)]


def _cmdlen_values(rng: random.Random, n: int) -> list[Any]:
    out = []
    for _ in range(n):
        data = rng.randbytes(rng.randint(16, 64))
        out.append({"cmd": rng.randrange(256), "len": len(data), "data": data})
    return out


def _fixed13_values(rng: random.Random, n: int) -> list[Any]:
    return [
        {"id": rng.getrandbits(32), "value": rng.uniform(-1e6, 1e6), "flag": rng.randrange(256)}
        for _ in range(n)
    ]


def _varint_values(rng: random.Random, n: int) -> list[Any]:
    # 0..24 items: bodies of 2..146 bytes, so about a fifth need a 2-byte VarInt
    return [
        {
            "kind": rng.randrange(256),
            "items": [
                {"k": rng.randrange(65536), "v": rng.randint(-(2**31), 2**31 - 1)}
                for _ in range(rng.randint(0, 24))
            ],
        }
        for _ in range(n)
    ]


def _frame64k_values(rng: random.Random, n: int) -> list[Any]:
    return [rng.randbytes(65536) for _ in range(n)]


def _frame4k_values(rng: random.Random, n: int) -> list[Any]:
    return [rng.randbytes(rng.randint(1024, 8192)) for _ in range(n)]


def _container(**kw: Any) -> cs.Container:
    return cs.Container(**kw)


_KV = cs.Struct("k" / cs.Int16ub, "v" / cs.Int32sb)

WORKLOADS = [
    Workload(
        name="pascal8",
        title='PascalString(Int8ub, "utf8"), 8..16-char ASCII',
        schema=cs.PascalString(cs.Int8ub, "utf8"),
        make_values=_pascal_values,
        to_hand=lambda v: v,
        from_hand=lambda m: m,
        hand=hand_pascal8,
        frames=frames_pascal8,
        hand_encode=enc_pascal8,
        count=100_000,
        quick_count=10_000,
        verify_count=1_000,
    ),
    Workload(
        name="cmdlen",
        title="Struct(cmd u8, len u16, data Bytes(this.len)), 16..64-byte bodies",
        schema=cs.Struct("cmd" / cs.Int8ub, "len" / cs.Int16ub, "data" / cs.Bytes(cs.this.len)),
        make_values=_cmdlen_values,
        to_hand=lambda v: (v["cmd"], v["data"]),
        from_hand=lambda m: _container(cmd=m[0], len=len(m[1]), data=m[1]),
        hand=hand_cmdlen,
        frames=frames_cmdlen,
        hand_encode=enc_cmdlen,
        count=50_000,
        quick_count=3_000,
        verify_count=600,
    ),
    Workload(
        name="fixed13",
        title="Struct(id u32, value f64, flag u8), 13 bytes",
        schema=cs.Struct("id" / cs.Int32ub, "value" / cs.Float64b, "flag" / cs.Int8ub),
        make_values=_fixed13_values,
        to_hand=lambda v: (v["id"], v["value"], v["flag"]),
        from_hand=lambda m: _container(id=m[0], value=m[1], flag=m[2]),
        hand=hand_fixed13,
        frames=frames_fixed13,
        hand_encode=enc_fixed13,
        count=100_000,
        quick_count=10_000,
        verify_count=1_000,
    ),
    Workload(
        name="varint_array",
        title="Prefixed(VarInt, Struct(kind u8, items PrefixedArray(u8, Struct(k u16, v s32)))), "
        "0..24 items",
        schema=cs.Prefixed(
            cs.VarInt,
            cs.Struct(
                "kind" / cs.Int8ub,
                "items" / cs.PrefixedArray(cs.Int8ub, _KV),
            ),
        ),
        make_values=_varint_values,
        to_hand=lambda v: (v["kind"], [(i["k"], i["v"]) for i in v["items"]]),
        from_hand=lambda m: _container(
            kind=m[0], items=cs.ListContainer(_container(k=k, v=v) for k, v in m[1])
        ),
        hand=hand_varint_array,
        frames=frames_varint_array,
        hand_encode=enc_varint_array,
        count=15_000,
        quick_count=1_000,
        verify_count=400,
    ),
    Workload(
        name="frame64k",
        title="Prefixed(Int32ub, GreedyBytes), 64 KiB bodies",
        schema=cs.Prefixed(cs.Int32ub, cs.GreedyBytes),
        make_values=_frame64k_values,
        to_hand=lambda v: v,
        from_hand=lambda m: m,
        hand=hand_frame64k,
        frames=frames_frame64k,
        hand_encode=enc_frame64k,
        count=128,
        quick_count=40,
        verify_count=6,
    ),
    Workload(
        name="frame4k",
        title="Prefixed(Int32ub, GreedyBytes), 1..8 KiB bodies",
        schema=cs.Prefixed(cs.Int32ub, cs.GreedyBytes),
        make_values=_frame4k_values,
        to_hand=lambda v: v,
        from_hand=lambda m: m,
        hand=hand_frame64k,
        frames=frames_frame64k,
        hand_encode=enc_frame64k,
        count=4_000,
        quick_count=800,
        verify_count=100,
    ),
]


def chunked(stream: bytes, how: str, seed: int) -> list[bytes]:
    """The stream cut into chunks: fixed sizes, or random 1..100 bytes from a seeded RNG."""
    if how == "64KiB":
        return [stream[i : i + 65536] for i in range(0, len(stream), 65536)]
    if how == "1460B":
        return [stream[i : i + 1460] for i in range(0, len(stream), 1460)]
    rng = random.Random(seed)
    out = []
    i = 0
    while i < len(stream):
        n = rng.randint(1, 100)
        out.append(stream[i : i + n])
        i += n
    return out


# =========================================================================================
# Contenders: each is a callable over a list of chunks returning the message count
# (or, with collect=True, the messages themselves for verification).
# =========================================================================================


def codec_decoder(codec: Codec[Any]) -> Callable[[Sequence[bytes], bool], Any]:
    def run(chunks: Sequence[bytes], collect: bool = False) -> Any:
        buf = Buffer()
        extend = buf.extend
        decode = codec.decode
        if collect:
            got = []
            for chunk in chunks:
                extend(chunk)
                while (msg := decode(buf)) is not None:
                    got.append(msg)
            if buf:
                raise AssertionError(f"codec left {len(buf)} bytes undecoded")
            return got
        n = 0
        for chunk in chunks:
            extend(chunk)
            while decode(buf) is not None:
                n += 1
        return n

    return run


def batch_decoder(make_feed: Callable[[], Feed]) -> Callable[[Sequence[bytes], bool], Any]:
    def run(chunks: Sequence[bytes], collect: bool = False) -> Any:
        feed = make_feed()
        if collect:
            got = []
            for chunk in chunks:
                got += feed(chunk)
            return got
        n = 0
        for chunk in chunks:
            n += len(feed(chunk))
        return n

    return run


def framed_decoder(
    make_frames: Callable[[], Feed], parse: Callable[[bytes], Any]
) -> Callable[[Sequence[bytes], bool], Any]:
    def run(chunks: Sequence[bytes], collect: bool = False) -> Any:
        feed = make_frames()
        if collect:
            return [parse(frame) for chunk in chunks for frame in feed(chunk)]
        n = 0
        for chunk in chunks:
            for frame in feed(chunk):
                parse(frame)
                n += 1
        return n

    return run


def per_message(fn: Callable[[Any], bytes]) -> Callable[[Sequence[Any], bool], Any]:
    def run(msgs: Sequence[Any], collect: bool = False) -> Any:
        if collect:
            return b"".join([fn(m) for m in msgs])
        for m in msgs:
            fn(m)
        return len(msgs)

    return run


def into_buffer(
    fn: Callable[[Any, bytearray], None], per_flush: int
) -> Callable[[Sequence[Any], bool], Any]:
    """``encode_into`` a write buffer that is handed on (here: dropped) every ``per_flush``
    messages, i.e. about every 64 KiB, as a server flushes its output; one ever-growing
    bytearray would measure its reallocation instead of the encoder."""

    def run(msgs: Sequence[Any], collect: bool = False) -> Any:
        parts = []
        for i in range(0, len(msgs), per_flush):
            out = bytearray()
            for m in msgs[i : i + per_flush]:
                fn(m, out)
            if collect:
                parts.append(bytes(out))
        return b"".join(parts) if collect else len(msgs)

    return run


def feed_decoder(codec: Codec[Any]) -> Callable[[Sequence[bytes], bool], Any]:
    """``Codec.decoder().feed(chunk)``: the bulk API, which takes whole pre-decoded batches
    instead of one call per message."""

    def run(chunks: Sequence[bytes], collect: bool = False) -> Any:
        d = codec.decoder()
        feed = d.feed
        got: list[Any] = []
        for chunk in chunks:
            got.extend(feed(chunk))
        if collect and len(d):  # timed runs may cut the stream short
            raise AssertionError(f"codec left {len(d)} bytes undecoded")
        return got if collect else len(got)

    return run


def many_decoder(codec: Codec[Any]) -> Callable[[Sequence[bytes], bool], Any]:
    """``Codec.decode_many(buf)`` once per chunk: the eager bulk API, the shape of the hand
    decoders' per-chunk loop."""

    def run(chunks: Sequence[bytes], collect: bool = False) -> Any:
        buf = Buffer()
        extend = buf.extend
        many = codec.decode_many
        got: list[Any] = []
        n = 0
        for chunk in chunks:
            extend(chunk)
            if collect:
                got.extend(many(buf))
            else:
                n += len(many(buf))
        if collect and buf:
            raise AssertionError(f"codec left {len(buf)} bytes undecoded")
        return got if collect else n

    return run


def has_plain_flag() -> bool:
    return "plain" in inspect.signature(Codec).parameters


def has_fast_flag() -> bool:
    return "fast" in inspect.signature(Codec).parameters


def try_compile(schema: cs.Construct) -> tuple[Any, str]:
    """construct's compiled schema, or ``(None, reason)``."""
    try:
        return schema.compile(), ""
    except Exception as exc:  # construct raises several kinds here
        return None, f"{type(exc).__name__}: {exc}"


@dataclass
class Contenders:
    decode: dict[str, Callable[[Sequence[bytes], bool], Any] | None]
    encode: dict[str, Callable[[Sequence[Any], bool], Any] | None]
    notes: list[str]


def contenders_for(w: Workload) -> Contenders:
    codec = Codec(w.schema)
    per_flush = max(1, 65536 * len(w.wire) // sum(map(len, w.wire)))
    decode: dict[str, Any] = {"codec": codec_decoder(codec)}
    encode: dict[str, Any] = {
        "codec": per_message(codec.encode),
        "codec into": into_buffer(codec.encode_into, per_flush),
    }
    decode["codec feed"] = feed_decoder(codec)
    decode["codec many"] = many_decoder(codec)
    if has_plain_flag():
        decode["codec plain"] = many_decoder(Codec(w.schema, plain=True))  # type: ignore[call-arg]
    if has_fast_flag():
        ref = Codec(w.schema, fast=False)  # type: ignore[call-arg]
        decode["codec ref"] = codec_decoder(ref)
        encode["codec ref"] = per_message(ref.encode)
    decode["hand"] = batch_decoder(w.hand)
    encode["hand"] = per_message(w.hand_encode)
    decode["construct"] = framed_decoder(w.frames, w.schema.parse)
    encode["construct"] = per_message(w.schema.build)
    compiled, why = try_compile(w.schema)
    notes = []
    if compiled is None:
        decode["compiled"] = encode["compiled"] = None
        notes.append(f"{w.name}: construct cannot compile the schema ({why})")
    else:
        decode["compiled"] = framed_decoder(w.frames, compiled.parse)
        try:
            compiled.build(w.values[0])
            encode["compiled"] = per_message(compiled.build)
        except Exception as exc:
            encode["compiled"] = None
            notes.append(f"{w.name}: compiled build fails ({type(exc).__name__}: {exc})")
    return Contenders(decode, encode, notes)


# =========================================================================================
# Verification
# =========================================================================================


def shape(x: Any, strict: bool) -> Any:
    """A comparable picture of a decoded value: private keys (``_io``) dropped, floats as
    their bytes (NaN), leaf types kept (bytes is not bytearray, str is not
    EnumIntegerString); with ``strict`` the container types are kept too."""
    if isinstance(x, dict):
        kind = type(x).__qualname__ if strict else "map"
        items = [(k, shape(v, strict)) for k, v in x.items() if not str(k).startswith("_")]
        return (kind, items)
    if isinstance(x, list | tuple):
        kind = type(x).__qualname__ if strict else "seq"
        return (kind, [shape(v, strict) for v in x])
    if isinstance(x, float):
        return ("float", struct.pack(">d", x))
    return (type(x).__qualname__, x)


class Mismatch(AssertionError):
    pass


def _first_difference(a: list[Any], b: list[Any]) -> str:
    if len(a) != len(b):
        return f"{len(a)} messages instead of {len(b)}"
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if x != y:
            return f"message {i}: {x!r}\n    expected {y!r}"
    return "?"  # pragma: no cover


def verify(w: Workload, c: Contenders, seed: int) -> None:
    """Every contender against ``schema.parse``/``schema.build`` on a sample; raises
    :class:`Mismatch` on the first disagreement."""
    n = min(w.verify_count, len(w.values))
    values = w.values[:n]
    frames = w.wire[:n]
    stream = b"".join(frames)
    ref_msgs = [w.schema.parse(f) for f in frames]
    strict_ref = [shape(m, True) for m in ref_msgs]
    loose_ref = [shape(m, False) for m in ref_msgs]
    for how in CHUNKINGS:
        chunks = chunked(stream, how, seed)
        for name, run in c.decode.items():
            if run is None:
                continue
            got = run(chunks, True)
            if name == "hand":
                got = [w.from_hand(m) for m in got]
            if name.startswith("codec") and name != "codec plain":
                # the codec promises exactly schema.parse's types (plain=True opts out)
                pic, ref = [shape(m, True) for m in got], strict_ref
            else:
                pic, ref = [shape(m, False) for m in got], loose_ref
            if pic != ref:
                raise Mismatch(
                    f"{w.name}/{how}: decode contender {name!r} disagrees with schema.parse: "
                    + _first_difference(pic, ref)
                )
    hand_values = [w.to_hand(v) for v in values]
    for name, run in c.encode.items():
        if run is None:
            continue
        got = run(hand_values if name == "hand" else values, True)
        if got != stream:
            raise Mismatch(
                f"{w.name}: encode contender {name!r} does not give schema.build's bytes"
            )


# =========================================================================================
# Timing
# =========================================================================================


#: a timed sample of a fast contender repeats its pass until it lasts at least this long
#: (full run; a quarter of it with --quick), so that one preemption on a shared machine
#: cannot dominate it
MIN_SAMPLE_S = 0.05


#: seconds one contender may spend on one row (samples and probe); a contender whose full
#: pass would not fit is timed on a prefix of the stream instead, and flagged
BUDGET_S = 20.0


def _one_sample(run: Callable[[Any, bool], Any], arg: Any, loops: int) -> tuple[float, int]:
    """(seconds per pass averaged over ``loops`` passes, messages per pass); GC disabled
    during the passes, collected before."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(loops):
            n = run(arg, False)
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    return dt / loops, n


@dataclass
class Timing:
    times: list[float]  # seconds per pass, one per sample
    messages: int  # messages per pass
    fraction: float  # share of the stream (or message list) each pass covered


def time_row(
    runs: dict[str, Callable[[Any, bool], Any] | None],
    args: dict[str, Sequence[Any]],
    expected: int,
    repeats: int,
    min_sample: float = MIN_SAMPLE_S,
    budget: float = BUDGET_S,
) -> dict[str, Timing]:
    """Time each contender on its argument (chunks to decode, messages to encode).

    First an untimed probe pass over a tenth of the argument (warm-up, and an estimate of
    a full pass). A contender whose ``repeats`` full passes fit in ``budget`` seconds runs
    whole passes, repeated within a sample until it lasts ``min_sample`` seconds; a slower
    one runs on a prefix that fits (a pathological contender cannot stall the run). Then
    ``repeats`` samples, the contenders interleaved in rotating order.
    """
    names = [k for k, v in runs.items() if v is not None]
    plan: dict[str, tuple[Sequence[Any], int]] = {}
    for name in names:
        run = runs[name]
        assert run is not None
        arg = args[name]
        probe_len = max(1, len(arg) // 10)
        t_probe, _ = _one_sample(run, arg[:probe_len], 1)
        est = max(t_probe * len(arg) / probe_len, 1e-9)
        if est * (repeats + 1) <= budget:
            plan[name] = (arg, max(1, math.ceil(min_sample / est)))
        else:
            keep = max(probe_len, int(len(arg) * budget / (repeats + 1) / est))
            plan[name] = (arg[:keep], 1)
    out: dict[str, Timing] = {}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run = runs[name]
            assert run is not None
            arg, loops = plan[name]
            dt, n = _one_sample(run, arg, loops)
            whole = len(arg) == len(args[name])
            if whole and n != expected:
                raise Mismatch(f"{name} handled {n} messages instead of {expected}")
            if name not in out:
                out[name] = Timing([], n, len(arg) / len(args[name]))
            out[name].times.append(dt)
    return out


@dataclass
class Result:
    direction: str
    workload: str
    chunking: str
    contender: str
    messages: int  # per pass
    nbytes: int  # per pass (a prefix's share of the stream when partial)
    times: list[float]
    partial: bool = False  # timed on a prefix: a full pass would not fit the budget

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    @property
    def spread(self) -> float:
        """(slowest - fastest pass) / median: how noisy this figure is."""
        return (max(self.times) - min(self.times)) / self.median

    @property
    def msgs_per_s(self) -> float:
        return self.messages / self.median

    @property
    def mb_per_s(self) -> float:
        return self.nbytes / self.median / 1e6


def as_results(
    direction: str, workload: str, chunking: str, timings: dict[str, Timing], nbytes: int
) -> list[Result]:
    return [
        Result(
            direction,
            workload,
            chunking,
            name,
            t.messages,
            round(nbytes * t.fraction),
            t.times,
            t.fraction < 1,
        )
        for name, t in timings.items()
    ]


#: the linear-cost check: a frame of ``LINEAR_LARGE`` bytes fed in ``LINEAR_CHUNK``-byte
#: chunks must cost < ``LINEAR_GOAL`` x per byte what a ``LINEAR_SMALL`` one costs
LINEAR_CHUNK = 64
LINEAR_SMALL = 32 * 1024
LINEAR_LARGE = 2 * 1024 * 1024
LINEAR_GOAL = 1.5


def linear_cases() -> dict[str, tuple[Codec[Any], Callable[[int], bytes]]]:
    """Schemas whose one frame can be any size, and a frame of ``n`` body bytes for each:
    the ways a decoder could go quadratic (re-parsing from the frame's start on every
    chunk, copying the buffer per chunk, construct's byte-by-byte terminator search)."""
    from codec import Delimiter

    big = 4 * LINEAR_LARGE
    return {
        "length-prefix": (
            Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=big),
            lambda n: n.to_bytes(4, "big") + b"x" * n,
        ),
        "struct-length": (
            Codec(
                cs.Struct(
                    "t" / cs.Int8ub,
                    "n" / cs.Int32ub,
                    "body" / cs.Bytes(cs.this.n),
                    "crc" / cs.Int16ub,
                ),
                max_frame_size=big,
            ),
            lambda n: b"\x01" + n.to_bytes(4, "big") + b"x" * n + b"\x00\x00",
        ),
        "delimiter": (
            Codec(cs.GreedyBytes, framing=Delimiter(b"\n"), max_frame_size=big),
            lambda n: b"x" * n + b"\n",
        ),
        "cstring": (Codec(cs.CString("ascii"), max_frame_size=big), lambda n: b"x" * n + b"\0"),
        "array-of-strings": (
            Codec(
                cs.PrefixedArray(cs.Int32ub, cs.PascalString(cs.Int8ub, "ascii")),
                max_frame_size=big,
            ),
            lambda n: (n // 4).to_bytes(4, "big") + b"\x03abc" * (n // 4),
        ),
    }


def _feed_seconds(codec: Codec[Any], frame: bytes) -> float:
    """CPU seconds to decode ``frame`` fed in ``LINEAR_CHUNK``-byte chunks."""
    chunks = [frame[i : i + LINEAR_CHUNK] for i in range(0, len(frame), LINEAR_CHUNK)]
    d = codec.decoder()
    gc.disable()
    try:
        t0 = time.process_time()
        got = 0
        for chunk in chunks:
            got += sum(1 for _ in d.feed(chunk))
        spent = time.process_time() - t0
    finally:
        gc.enable()
    if got != 1:
        raise Mismatch(f"linear check: {got} messages from one frame")
    return spent


def linear_rows(repeats: int) -> list[tuple[str, float, float]]:
    """(case, ns per byte small, ns per byte large): medians of interleaved passes (the small
    frame repeated to about the large one's size per pass, so both are timed alike)."""
    rows = []
    for name, (codec, make) in linear_cases().items():
        small, large = make(LINEAR_SMALL), make(LINEAR_LARGE)
        reps = max(1, len(large) // len(small))
        per_small: list[float] = []
        per_large: list[float] = []
        for _ in range(repeats):
            per_small.append(
                sum(_feed_seconds(codec, small) for _ in range(reps)) / (reps * len(small))
            )
            per_large.append(_feed_seconds(codec, large) / len(large))
        rows.append((name, statistics.median(per_small) * 1e9, statistics.median(per_large) * 1e9))
    return rows


def call_overheads() -> dict[str, float]:
    """Nanoseconds per call of the codec's entry points on trivial input (pascal8)."""
    codec = Codec(cs.PascalString(cs.Int8ub, "utf8"))
    empty = Buffer()
    half = Buffer(b"\x0csmart")
    one = b"\x05hello"
    decode = codec.decode
    n = 50_000

    def loop_empty() -> None:
        for _ in range(n):
            decode(empty)

    def loop_half() -> None:
        for _ in range(n):
            decode(half)

    def loop_one() -> None:
        buf = Buffer()
        extend = buf.extend
        for _ in range(n):
            extend(one)
            decode(buf)

    def loop_base() -> None:
        for _ in range(n):
            pass

    out = {}
    base = min(_timeit(loop_base) for _ in range(3))
    for label, fn in [
        ("decode(empty Buffer) -> None", loop_empty),
        ("decode(half frame) -> None", loop_half),
        ("extend(6-byte frame) + decode() -> str", loop_one),
    ]:
        out[label] = (min(_timeit(fn) for _ in range(3)) - base) / n * 1e9
    return out


def _timeit(fn: Callable[[], None]) -> float:
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        fn()
        return time.perf_counter() - t0
    finally:
        gc.enable()


# =========================================================================================
# Output
# =========================================================================================


def fmt_rate(x: float) -> str:
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    if x >= 1e3:
        return f"{x / 1e3:.1f}k"
    return f"{x:.0f}"


def fmt_mb(x: float) -> str:
    return f"{x:.0f}" if x >= 100 else f"{x:.1f}"


def table(results: list[Result], direction: str, columns: list[str]) -> str:
    rows = [r for r in results if r.direction == direction]
    keys: list[tuple[str, str]] = []
    for r in rows:
        if (r.workload, r.chunking) not in keys:
            keys.append((r.workload, r.chunking))
    by = {(r.workload, r.chunking, r.contender): r for r in rows}
    base = "codec"
    hand_col = "hand"
    header = ["workload", "chunks", *columns, f"{base}/hand", f"{base}/construct"]
    if direction == "encode":
        header.insert(-1, "into/hand")
    else:
        header.insert(-1, "many/hand")
        if "codec plain" in columns:
            header.insert(-1, "plain/hand")
    lines = [header]
    for wl, ch in keys:
        line = [wl, ch]
        for col in columns:
            r = by.get((wl, ch, col))
            if r is None:
                line.append("n/a")
            else:
                flag = "*" if r.partial else ""
                line.append(f"{flag}{fmt_rate(r.msgs_per_s)} {fmt_mb(r.mb_per_s)}")

        def ratio(a: str, b: str, wl: str = wl, ch: str = ch) -> str:
            ra, rb = by.get((wl, ch, a)), by.get((wl, ch, b))
            return "n/a" if ra is None or rb is None else f"{ra.msgs_per_s / rb.msgs_per_s:.2f}"

        line.append(ratio(base, hand_col))
        if direction == "encode":
            line.append(ratio("codec into", hand_col))
        else:
            line.append(ratio("codec many", hand_col))
            if "codec plain" in columns:
                line.append(ratio("codec plain", hand_col))
        line.append(ratio(base, "construct"))
        lines.append(line)
    widths = [max(len(row[i]) for row in lines) for i in range(len(header))]
    out = []
    for i, row in enumerate(lines):
        cells = [
            c.ljust(w) if j < 2 else c.rjust(w)
            for j, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        out.append("| " + " | ".join(cells) + " |")
        if i == 0:
            out.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(out)


# =========================================================================================
# Main
# =========================================================================================


def select(only: str | None) -> list[Workload]:
    if not only:
        return list(WORKLOADS)
    names = [n.strip() for n in only.split(",") if n.strip()]
    known = {w.name: w for w in WORKLOADS}
    bad = [n for n in names if n not in known]
    if bad:
        raise SystemExit(f"unknown workload(s) {bad}; choose from {sorted(known)}")
    return [known[n] for n in names]


def prepare(workloads: Iterable[Workload], size: str, seed: int) -> None:
    """Values and frames of each workload: ``size`` is "full", "quick" or "verify"."""
    for w in workloads:
        rng = random.Random(f"{seed}/{w.name}")
        n = {"full": w.count, "quick": w.quick_count, "verify": w.verify_count}[size]
        n = max(n, w.verify_count)
        w.values = w.make_values(rng, n)
        w.wire = [w.schema.build(v) for v in w.values]


def run_verification(workloads: Sequence[Workload], seed: int) -> list[str]:
    """Build the contenders and check them all; returns notes (e.g. what cannot compile)."""
    notes: list[str] = []
    for w in workloads:
        c = contenders_for(w)
        notes += c.notes
        verify(w, c, seed)
    return notes


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smaller streams, 3 repeats (<1 min)")
    ap.add_argument("--only", metavar="NAMES", help="comma-separated workloads to run")
    ap.add_argument("--json", metavar="PATH", type=Path, help="also write results as JSON")
    ap.add_argument("--repeats", type=int, help="timed passes per contender (median)")
    ap.add_argument(
        "--budget",
        type=float,
        help=f"seconds per contender and row before it is timed on a prefix only "
        f"(default {BUDGET_S:.0f}, {BUDGET_S / 10:.0f} with --quick)",
    )
    ap.add_argument("--seed", type=int, default=4, help="seed of values and random chunks")
    ap.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed one)")
    ap.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    ap.add_argument("--verify-only", action="store_true", help="check agreement, time nothing")
    args = ap.parse_args(argv)

    workloads = select(args.only)
    repeats = args.repeats or (3 if args.quick else 5)
    min_sample = MIN_SAMPLE_S / 4 if args.quick else MIN_SAMPLE_S
    budget = args.budget or (BUDGET_S / 10 if args.quick else BUDGET_S)
    pinned = "not pinned (--no-pin)" if args.no_pin else pin_cpu(args.cpu)
    size = "verify" if args.verify_only else "quick" if args.quick else "full"
    prepare(workloads, size, args.seed)

    print(
        f"wirekit codec benchmark - Python {platform.python_version()}, construct "
        f"{'.'.join(map(str, cs.version))}, {platform.machine()}, {pinned}"
    )
    fast = has_fast_flag()
    print(f"Codec(fast=False) reference path: {'yes' if fast else 'not available'}")
    try:
        notes = run_verification(workloads, args.seed)
    except Mismatch as exc:
        print(f"VERIFICATION FAILED: {exc}", file=sys.stderr)
        return 1
    print(
        "verified: every contender gives schema.parse's messages and schema.build's bytes",
        flush=True,
    )
    for note in notes:
        print(f"note: {note}")
    if args.verify_only:
        return 0

    results: list[Result] = []
    t_start = time.perf_counter()
    for w in workloads:
        c = contenders_for(w)
        stream = b"".join(w.wire)
        n = len(w.values)
        for how in CHUNKINGS:
            chunks = chunked(stream, how, args.seed)
            timings = time_row(
                c.decode, dict.fromkeys(c.decode, chunks), n, repeats, min_sample, budget
            )
            results += as_results("decode", w.name, how, timings, len(stream))
            print(f"  timed decode {w.name}/{how}", file=sys.stderr, flush=True)
        hand_values = [w.to_hand(v) for v in w.values]
        enc_args = {k: hand_values if k == "hand" else w.values for k in c.encode}
        timings = time_row(c.encode, enc_args, n, repeats, min_sample, budget)
        results += as_results("encode", w.name, "-", timings, len(stream))
        print(f"  timed encode {w.name}", file=sys.stderr, flush=True)
    linear = linear_rows(repeats)
    print("  timed the linear-cost check", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - t_start
    overheads = call_overheads()

    dec_cols = [
        "codec",
        "codec feed",
        "codec many",
        *(["codec plain"] if has_plain_flag() else []),
        *(["codec ref"] if fast else []),
        "hand",
        "construct",
        "compiled",
    ]
    enc_cols = ["codec", "codec into", *(["codec ref"] if fast else []), "hand"]
    enc_cols += ["construct", "compiled"]
    legend = f"cells: messages/s MB/s (median of {repeats} passes); ratios of messages/s"
    print()
    print(f"DECODE ({legend}; hand decoders return plain tuples/str/bytes)")
    print(table(results, "decode", dec_cols))
    print()
    print(f"ENCODE ({legend}; hand encoders take plain tuples)")
    print(table(results, "encode", enc_cols))
    print()
    print(
        f"LINEAR COST (one frame fed in {LINEAR_CHUNK}-byte chunks, Decoder.feed; ns per byte, "
        f"median of {repeats}; goal: {LINEAR_LARGE >> 20} MiB / {LINEAR_SMALL >> 10} KiB "
        f"< {LINEAR_GOAL}x)"
    )
    print("| schema | 32 KiB frame | 2 MiB frame | large/small | |")
    print("|---|---:|---:|---:|---|")
    for name, small_ns, large_ns in linear:
        ratio = large_ns / small_ns
        verdict = "met" if ratio < LINEAR_GOAL else "NOT MET"
        print(f"| {name} | {small_ns:.1f} | {large_ns:.1f} | {ratio:.2f}x | {verdict} |")
    print()
    print("codec call overheads (pascal8, ns per call):")
    for label, ns in overheads.items():
        print(f"  {label:42s} {ns:7.0f}")
    if any(r.partial for r in results):
        print(
            f"* timed on a prefix of the stream: a full pass would exceed the {budget:.0f} s "
            "budget (MB/s approximate)"
        )
    noisy = sorted(results, key=lambda r: r.spread, reverse=True)[:3]
    print("\nnoisiest figures ((slowest - fastest pass) / median):")
    for r in noisy:
        print(f"  {r.direction} {r.workload}/{r.chunking} {r.contender}: {r.spread:.0%}")
    print(f"\ntimed in {elapsed:.0f} s; GC disabled during each timed pass, for every contender")

    if args.json:
        doc = {
            "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "implementation": platform.python_implementation(),
            "construct": ".".join(map(str, cs.version)),
            "machine": platform.machine(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "pinning": pinned,
            "quick": args.quick,
            "repeats": repeats,
            "budget_s": budget,
            "seed": args.seed,
            "gc": "disabled during each timed pass, for every contender",
            "codec_fast_flag": fast,
            "notes": notes,
            "call_overheads_ns": overheads,
            "linear_ns_per_byte": {
                name: {"small": small_ns, "large": large_ns} for name, small_ns, large_ns in linear
            },
            "results": [
                {
                    "direction": r.direction,
                    "workload": r.workload,
                    "chunking": r.chunking,
                    "contender": r.contender,
                    "messages": r.messages,
                    "bytes": r.nbytes,
                    "median_s": r.median,
                    "spread": r.spread,
                    "partial": r.partial,
                    "times_s": r.times,
                    "msgs_per_s": r.msgs_per_s,
                    "mb_per_s": r.mb_per_s,
                }
                for r in results
            ],
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=1) + "\n")
        print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
