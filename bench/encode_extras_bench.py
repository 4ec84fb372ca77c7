#!/usr/bin/env python3
"""Benchmark: the codec's generated encoder on the constructs ``codec_bench.py`` lacks.

Run it with ``python3 dev.py bench`` (all ``bench/*_bench.py``) or directly::

    .venv/bin/python bench/encode_extras_bench.py            # about 10 seconds
    .venv/bin/python bench/encode_extras_bench.py --quick    # a few seconds
    .venv/bin/python bench/encode_extras_bench.py --only ipv4,switch --repeats 9
    .venv/bin/python bench/encode_extras_bench.py --verify-only   # agreement, no timing

One workload per construct the encoder compiles since issue 4's "compiled fast path" work,
and one for the per-field fallback:

* ``ipv4``: an IPv4 header, three ``BitStruct``s (a ``Const`` and an ``Enum`` inside);
* ``mqtt``: MQTT's fixed header (a ``BitStruct`` of an ``Enum`` nibble and flags), a
  ``VarInt`` length ``Rebuild`` from the body, the body;
* ``flags``: a record with two ``FlagsEnum`` fields, built from dicts of booleans;
* ``switch``: a message whose body is a ``Switch`` on an ``Enum`` type field (a ``Struct``,
  a ``PaddedString``, a ``FlagsEnum``, a ``PascalString``, a default);
* ``padded``: a record of ``PaddedString``s (utf8, utf16 with its BOM, ascii);
* ``exotic``: compiled fields around one ``Checksum`` that construct builds per field;

and, since issue 15 (BitStruct, FlagsEnum, Switch and PaddedString together, as real
protocols use them):

* ``mqtt_switch``: an MQTT-like packet: the fixed-header ``BitStruct``, a ``VarInt``-prefixed
  body that is a ``Switch`` on the header's type (a CONNACK ``BitStruct``, a PUBLISH
  ``Struct``, a SUBSCRIBE with a ``FlagsEnum``, a PUBACK id, nothing for PINGREQ);
* ``websocket``: a WebSocket frame: two header ``BitStruct``s, the extended length a
  ``Switch`` on the 7-bit length, the masking key under ``If``, the payload;
* ``bits_switch``: a ``Switch`` *inside* a ``BitStruct`` (construct's variable-size
  ``Bitwise``), cases of different widths and a ``FlagsEnum`` over bits;
* ``names``: a directory record of ``PaddedString``s in utf32/utf16-le/ascii behind a
  ``FlagsEnum``;
* ``bits_fallback``: a ``BitStruct`` with one ``Mapping`` field that construct builds on its
  own (on a bit stream), the rest generated.

Contenders, each over the same list of plain-dict messages: ``Codec(schema).encode(msg)``,
``encode_into(msg, out)`` into a bytearray replaced every ~64 KiB of output (as a server
flushes its write buffer), construct's ``schema.build(msg)`` and ``schema.compile().build``
("n/a" when construct cannot compile the schema or its compiled build disagrees). Before
anything is timed every contender must give ``schema.build``'s bytes for every message, and
the codec must really use its generated builder (not ``schema.build`` for the whole
message); the script exits with an error otherwise, and notes the nodes construct builds
(per field). The last line says on how many workloads ``codec/construct`` reaches issue 15's
goal of 3.

Method: one process, pinned to one CPU with ``os.sched_setaffinity`` where available. For
each workload the contenders take turns in rotating order for ``--repeats`` samples (5, 3
with ``--quick``); a sample repeats the contender's pass over all messages until it lasts at
least 50 ms (20 ms with ``--quick``). The cyclic garbage collector is disabled during every
timed pass, after a ``gc.collect()``. Reported: the median messages per second, and the
ratios codec/construct (what the generated builder gains over the schema's own build).
"""

from __future__ import annotations

import argparse
import gc
import math
import platform
import random
import statistics
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import construct as cs
from construct import this

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script from a checkout without installing
    sys.path.insert(0, str(ROOT))

from bench.pinning import pin_cpu  # noqa: E402
from codec import Codec  # noqa: E402

Run = Callable[[Sequence[Any]], int]

#: issue 15's goal: the generated encoder at least this many times construct's build
GOAL = 3.0


class Mismatch(Exception):
    """A contender disagrees with ``schema.build``, or the codec is not compiled."""


# -- schemas ---------------------------------------------------------------------------------
IPV4 = cs.Struct(
    "vi"
    / cs.BitStruct(
        "version" / cs.Const(4, cs.Nibble),
        "ihl" / cs.Nibble,
        "dscp" / cs.BitsInteger(6),
        "ecn" / cs.Enum(cs.BitsInteger(2), not_ect=0, ect1=1, ect0=2, ce=3),
    ),
    "total_length" / cs.Int16ub,
    "identification" / cs.Int16ub,
    "frag"
    / cs.BitStruct(cs.Padding(1), "df" / cs.Flag, "mf" / cs.Flag, "offset" / cs.BitsInteger(13)),
    "ttl" / cs.Int8ub,
    "protocol" / cs.Enum(cs.Int8ub, icmp=1, tcp=6, udp=17),
    "checksum" / cs.Int16ub,
    "source" / cs.Bytes(4),
    "destination" / cs.Bytes(4),
)

MQTT = cs.Struct(
    "header"
    / cs.BitStruct(
        "type" / cs.Enum(cs.Nibble, CONNECT=1, CONNACK=2, PUBLISH=3, PUBACK=4, PINGREQ=12),
        "dup" / cs.Flag,
        "qos" / cs.BitsInteger(2),
        "retain" / cs.Flag,
    ),
    "length" / cs.Rebuild(cs.VarInt, cs.len_(this.body)),
    "body" / cs.Bytes(this.length),
)

PERMS = cs.FlagsEnum(cs.Int16ub, read=1, write=2, exec=4, sticky=0x200, admin=0x8000)
MODE = cs.FlagsEnum(cs.Int8ub, a=1, b=2, c=4, d=8)
FLAGS = cs.Struct("id" / cs.Int32ub, "perms" / PERMS, "mode" / MODE)

SWITCH = cs.Struct(
    "type" / cs.Enum(cs.Int8ub, point=1, name=2, perms=3, text=4),
    "body"
    / cs.Switch(
        this.type,
        {
            "point": cs.Struct("x" / cs.Int16sb, "y" / cs.Int16sb, "z" / cs.Int16sb),
            "name": cs.PaddedString(12, "utf8"),
            "perms": PERMS,
            "text": cs.PascalString(cs.Int8ub, "utf8"),
        },
        default=cs.Bytes(4),
    ),
)

PADDED = cs.Struct(
    "id" / cs.Int32ub,
    "name" / cs.PaddedString(16, "utf8"),
    "city" / cs.PaddedString(24, "utf16"),
    "code" / cs.PaddedString(3, "ascii"),
)

EXOTIC = cs.Struct(
    "id" / cs.Int32ub,
    "kind" / cs.Int8ub,
    "len" / cs.Rebuild(cs.Int16ub, cs.len_(this.data)),
    "data" / cs.Bytes(this.len),
    "crc" / cs.Checksum(cs.Int32ub, zlib.crc32, this.data),
)


MQTT_TYPE = cs.Enum(cs.Nibble, CONNECT=1, CONNACK=2, PUBLISH=3, PUBACK=4, SUBSCRIBE=8, PINGREQ=12)
MQTT_SWITCH = cs.Struct(
    "header"
    / cs.BitStruct(
        "type" / MQTT_TYPE, "dup" / cs.Flag, "qos" / cs.BitsInteger(2), "retain" / cs.Flag
    ),
    "body"
    / cs.Prefixed(
        cs.VarInt,
        cs.Switch(
            this.header.type,
            {
                "CONNACK": cs.BitStruct(
                    cs.Padding(7), "session_present" / cs.Flag, "code" / cs.Octet
                ),
                "PUBLISH": cs.Struct(
                    "topic" / cs.PascalString(cs.Int16ub, "utf8"),
                    "id" / cs.Int16ub,
                    "payload" / cs.GreedyBytes,
                ),
                "PUBACK": cs.Int16ub,
                "SUBSCRIBE": cs.Struct(
                    "id" / cs.Int16ub,
                    "topic" / cs.PascalString(cs.Int16ub, "utf8"),
                    "opts" / cs.FlagsEnum(cs.Int8ub, qos1=1, qos2=2, nl=4, rap=8),
                ),
            },
        ),
    ),
)

WEBSOCKET = cs.Struct(
    "b0"
    / cs.BitStruct(
        "fin" / cs.Flag,
        "rsv" / cs.BitsInteger(3),
        "opcode" / cs.Enum(cs.Nibble, cont=0, text=1, binary=2, close=8, ping=9, pong=10),
    ),
    "b1" / cs.BitStruct("masked" / cs.Flag, "len7" / cs.BitsInteger(7)),
    "ext" / cs.Switch(this.b1.len7, {126: cs.Int16ub, 127: cs.Int64ub}),
    "key" / cs.If(this.b1.masked, cs.Bytes(4)),
    "payload" / cs.Bytes(lambda ctx: ctx.ext if ctx.b1.len7 >= 126 else ctx.b1.len7),
)

BITS_SWITCH = cs.Struct(
    "id" / cs.Int16ub,
    "bits"
    / cs.BitStruct(
        "kind" / cs.Nibble,
        "value"
        / cs.Switch(
            this.kind,
            {
                1: cs.Nibble,
                2: cs.BitsInteger(12),
                3: cs.Struct("neg" / cs.Flag, "v" / cs.BitsInteger(19, signed=True)),
                4: cs.FlagsEnum(cs.BitsInteger(12), a=1, b=2, c=0x800),
            },
            default=cs.BitsInteger(4),
        ),
    ),
)

NAMES = cs.Struct(
    "flags" / cs.FlagsEnum(cs.Int16ul, dir=1, hidden=2, system=4, archive=0x20, link=0x400),
    "name" / cs.PaddedString(32, "utf_32_le"),
    "owner" / cs.PaddedString(16, "utf_16_le"),
    "ext" / cs.PaddedString(4, "ascii"),
)

BITS_FALLBACK = cs.Struct(
    "h"
    / cs.BitStruct(
        "version" / cs.Nibble,
        "color" / cs.Mapping(cs.Nibble, {"red": 1, "green": 2, "blue": 3}),
        "len" / cs.Octet,
    ),
    "body" / cs.Bytes(this.h.len),
)


# -- messages --------------------------------------------------------------------------------
def _word(rng: random.Random, lo: int, hi: int) -> str:
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(lo, hi)))


def _ipv4(rng: random.Random) -> dict[str, Any]:
    return {
        "vi": {"version": 4, "ihl": 5, "dscp": rng.randint(0, 63), "ecn": "not_ect"},
        "total_length": rng.randint(20, 1500),
        "identification": rng.randint(0, 0xFFFF),
        "frag": {"df": rng.random() < 0.5, "mf": False, "offset": 0},
        "ttl": 64,
        "protocol": rng.choice(["tcp", "udp", "icmp"]),
        "checksum": rng.randint(0, 0xFFFF),
        "source": rng.randbytes(4),
        "destination": rng.randbytes(4),
    }


def _mqtt(rng: random.Random) -> dict[str, Any]:
    body = rng.randbytes(rng.randint(0, 180))
    header = {
        "type": rng.choice(["PUBLISH", "PUBACK", "PINGREQ"]),
        "dup": False,
        "qos": rng.randint(0, 2),
        "retain": rng.random() < 0.1,
    }
    return {"header": header, "length": None, "body": body}


def _flags(rng: random.Random) -> dict[str, Any]:
    return {
        "id": rng.randint(0, 2**32 - 1),
        "perms": {f: rng.random() < 0.5 for f in ("read", "write", "exec", "sticky", "admin")},
        "mode": {f: rng.random() < 0.5 for f in "abcd"},
    }


def _switch(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["point", "name", "perms", "text", 9])
    body: Any
    if kind == "point":
        body = {"x": rng.randint(-500, 500), "y": rng.randint(-500, 500), "z": 0}
    elif kind == "name":
        body = _word(rng, 1, 12)
    elif kind == "perms":
        body = {"read": True, "write": rng.random() < 0.5}
    elif kind == "text":
        body = _word(rng, 0, 40)
    else:
        body = rng.randbytes(4)
    return {"type": kind, "body": body}


def _padded(rng: random.Random) -> dict[str, Any]:
    return {
        "id": rng.randint(0, 2**32 - 1),
        "name": _word(rng, 1, 16),
        "city": _word(rng, 0, 10),
        "code": _word(rng, 3, 3).upper(),
    }


def _exotic(rng: random.Random) -> dict[str, Any]:
    return {"id": rng.randint(0, 2**32 - 1), "kind": 1, "data": rng.randbytes(rng.randint(0, 64))}


def _mqtt_switch(rng: random.Random) -> dict[str, Any]:
    kind = rng.choice(["CONNACK", "PUBLISH", "PUBLISH", "PUBACK", "SUBSCRIBE", "PINGREQ"])
    body: Any = None
    if kind == "CONNACK":
        body = {"session_present": rng.random() < 0.5, "code": rng.randint(0, 5)}
    elif kind == "PUBLISH":
        body = {
            "topic": "sensors/" + _word(rng, 1, 12),
            "id": rng.randint(1, 0xFFFF),
            "payload": rng.randbytes(rng.randint(0, 64)),
        }
    elif kind == "PUBACK":
        body = rng.randint(1, 0xFFFF)
    elif kind == "SUBSCRIBE":
        body = {"id": rng.randint(1, 0xFFFF), "topic": _word(rng, 1, 20), "opts": {"qos1": True}}
    header = {"type": kind, "dup": False, "qos": rng.randint(0, 2), "retain": False}
    return {"header": header, "body": body}


def _websocket(rng: random.Random) -> dict[str, Any]:
    size = rng.choice([rng.randint(0, 125), rng.randint(126, 400)])
    masked = rng.random() < 0.5
    return {
        "b0": {"fin": True, "rsv": 0, "opcode": rng.choice(["text", "binary", "ping"])},
        "b1": {"masked": masked, "len7": size if size < 126 else 126},
        "ext": size if size >= 126 else None,
        "key": rng.randbytes(4) if masked else None,
        "payload": rng.randbytes(size),
    }


def _bits_switch(rng: random.Random) -> dict[str, Any]:
    kind = rng.randint(1, 5)
    value: Any
    if kind == 1:
        value = rng.randint(0, 15)
    elif kind == 2:
        value = rng.randint(0, 4095)
    elif kind == 3:
        value = {"neg": rng.random() < 0.5, "v": rng.randint(-(2**18), 2**18 - 1)}
    elif kind == 4:
        value = {"a": True, "b": rng.random() < 0.5, "c": rng.random() < 0.5}
    else:
        value = rng.randint(0, 15)
    return {"id": rng.randint(0, 0xFFFF), "bits": {"kind": kind, "value": value}}


def _names(rng: random.Random) -> dict[str, Any]:
    return {
        "flags": {f: rng.random() < 0.3 for f in ("dir", "hidden", "system", "archive", "link")},
        "name": _word(rng, 1, 8),
        "owner": _word(rng, 1, 7),
        "ext": _word(rng, 0, 4),
    }


def _bits_fallback(rng: random.Random) -> dict[str, Any]:
    body = rng.randbytes(rng.randint(0, 32))
    color = rng.choice(["red", "green", "blue"])
    return {"h": {"version": 1, "color": color, "len": len(body)}, "body": body}


@dataclass(frozen=True)
class Workload:
    name: str
    schema: cs.Construct
    make: Callable[[random.Random], dict[str, Any]]
    what: str


WORKLOADS = [
    Workload("ipv4", IPV4, _ipv4, "IPv4 header: 3 BitStructs, Const/Enum in bits"),
    Workload("mqtt", MQTT, _mqtt, "MQTT fixed header BitStruct + VarInt + body"),
    Workload("flags", FLAGS, _flags, "two FlagsEnum fields from dicts"),
    Workload("switch", SWITCH, _switch, "Switch on an Enum type, 5 kinds of body"),
    Workload("padded", PADDED, _padded, "PaddedString utf8/utf16/ascii"),
    Workload("exotic", EXOTIC, _exotic, "compiled fields + one Checksum by construct"),
    Workload("mqtt_switch", MQTT_SWITCH, _mqtt_switch, "MQTT BitStruct header + Switch body"),
    Workload("websocket", WEBSOCKET, _websocket, "WebSocket frame: BitStructs, Switch, If"),
    Workload("bits_switch", BITS_SWITCH, _bits_switch, "a Switch inside a BitStruct"),
    Workload("names", NAMES, _names, "FlagsEnum + PaddedString utf32-le/utf16-le/ascii"),
    Workload("bits_fallback", BITS_FALLBACK, _bits_fallback, "BitStruct with a Mapping field"),
]


# -- contenders ------------------------------------------------------------------------------
def per_message(fn: Callable[[Any], bytes]) -> Run:
    def run(msgs: Sequence[Any]) -> int:
        for m in msgs:
            fn(m)
        return len(msgs)

    return run


def into_buffer(fn: Callable[[Any, bytearray], None], per_flush: int) -> Run:
    """``encode_into`` a bytearray handed on (here: dropped) every ``per_flush`` messages,
    about every 64 KiB; one ever-growing bytearray would time its reallocations."""

    def run(msgs: Sequence[Any]) -> int:
        for i in range(0, len(msgs), per_flush):
            out = bytearray()
            for m in msgs[i : i + per_flush]:
                fn(m, out)
        return len(msgs)

    return run


def contenders(w: Workload, msgs: Sequence[Any]) -> tuple[dict[str, Run | None], list[str]]:
    """The contenders of a workload, each checked against ``schema.build`` on ``msgs``."""
    notes: list[str] = []
    codec: Codec[Any] = Codec(w.schema)
    if codec._builder is None:
        raise Mismatch(f"{w.name}: the codec encodes with schema.build, not a generated builder")
    source: str = codec._builder.__wirekit_source__  # type: ignore[attr-defined]
    if "SCHEMA.build" in source and "_fallback(" not in source:
        raise Mismatch(f"{w.name}: the generated builder hands the message to schema.build")
    by_construct = source.count("_fallback(")
    if by_construct:
        notes.append(f"{w.name}: {by_construct} node(s) built by construct, the rest generated")
    want = [w.schema.build(m) for m in msgs]
    if [codec.encode(m) for m in msgs] != want:
        raise Mismatch(f"{w.name}: codec.encode disagrees with schema.build")
    out = bytearray()
    for m in msgs:
        codec.encode_into(m, out)
    if out != b"".join(want):
        raise Mismatch(f"{w.name}: codec.encode_into disagrees with schema.build")
    per_flush = max(1, 65536 * len(want) // max(1, sum(map(len, want))))
    runs: dict[str, Run | None] = {
        "codec": per_message(codec.encode),
        "codec into": into_buffer(codec.encode_into, per_flush),
        "construct": per_message(w.schema.build),
        "compiled": None,
    }
    try:
        compiled = w.schema.compile()
        if [compiled.build(m) for m in msgs] == want:
            runs["compiled"] = per_message(compiled.build)
        else:
            notes.append(f"{w.name}: construct's compiled build gives other bytes (n/a)")
    except Exception as exc:  # construct's compiler raises several kinds
        notes.append(f"{w.name}: construct cannot compile it ({type(exc).__name__}) (n/a)")
    return runs, notes


# -- timing ----------------------------------------------------------------------------------
def one_sample(run: Run, msgs: Sequence[Any], loops: int) -> float:
    """Seconds per pass over ``msgs``, averaged over ``loops`` passes with the cyclic GC off."""
    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        for _ in range(loops):
            run(msgs)
        dt = time.perf_counter() - t0
    finally:
        gc.enable()
    return dt / loops


def time_workload(
    runs: dict[str, Run | None], msgs: Sequence[Any], repeats: int, min_sample: float
) -> dict[str, float]:
    """Median messages per second of each contender, samples interleaved in rotating order."""
    names = [n for n, r in runs.items() if r is not None]
    loops: dict[str, int] = {}
    for name in names:
        run = runs[name]
        assert run is not None
        probe = one_sample(run, msgs, 1)  # warm-up, and the pass's length
        loops[name] = max(1, math.ceil(min_sample / max(probe, 1e-9)))
    samples: dict[str, list[float]] = {n: [] for n in names}
    for r in range(repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            run = runs[name]
            assert run is not None
            samples[name].append(len(msgs) / one_sample(run, msgs, loops[name]))
    return {n: statistics.median(v) for n, v in samples.items()}


def rate(x: float | None) -> str:
    if x is None:
        return "n/a"
    if x >= 1e6:
        return f"{x / 1e6:.2f}M"
    return f"{x / 1e3:.1f}k"


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b is None else f"{a / b:.2f}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--quick", action="store_true", help="fewer messages and samples")
    p.add_argument("--only", help="comma-separated workload names")
    p.add_argument("--repeats", type=int, help="samples per contender (default 5, quick 3)")
    p.add_argument("--messages", type=int, help="messages per workload (default 2000)")
    p.add_argument("--seed", type=int, default=4)
    p.add_argument("--cpu", type=int, help="CPU to pin to (default: the last allowed)")
    p.add_argument("--no-pin", action="store_true", help="do not pin to one CPU")
    p.add_argument("--verify-only", action="store_true", help="check agreement, time nothing")
    args = p.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    count = args.messages or (500 if args.quick else 2000)
    min_sample = 0.02 if args.quick else 0.05
    wanted = {n.strip() for n in args.only.split(",")} if args.only else None
    workloads = [w for w in WORKLOADS if wanted is None or w.name in wanted]
    if wanted is not None and len(workloads) != len(wanted):
        known = ", ".join(w.name for w in WORKLOADS)
        print(f"unknown workload in {args.only!r}; known: {known}", file=sys.stderr)
        return 2

    prepared = []
    notes: list[str] = []
    try:
        for w in workloads:
            rng = random.Random(f"{args.seed}:{w.name}")
            msgs = [w.make(rng) for _ in range(count)]
            runs, why = contenders(w, msgs)
            notes += why
            prepared.append((w, msgs, runs))
    except Mismatch as exc:
        print(f"verification failed: {exc}", file=sys.stderr)
        return 1
    print(f"verified: {len(prepared)} workloads, every contender gives schema.build's bytes")
    for note in notes:
        print(f"  note: {note}")
    if args.verify_only:
        return 0

    pinned = "not pinned" if args.no_pin else pin_cpu(args.cpu)
    print(
        f"CPython {platform.python_version()}, construct {cs.__version__}, "
        f"{pinned}; {count} messages per workload, median of {repeats} interleaved samples"
    )
    header = (
        "| workload | codec | codec into | construct | compiled "
        "| codec/construct | into/construct | codec/compiled |"
    )
    print()
    print(header)
    print("|" + "---|" * 8)
    below: list[str] = []
    for w, msgs, runs in prepared:
        got = time_workload(runs, msgs, repeats, min_sample)
        c, i, k, m = (got.get(n) for n in ("codec", "codec into", "construct", "compiled"))
        print(
            f"| {w.name} | {rate(c)} | {rate(i)} | {rate(k)} | {rate(m)} "
            f"| {ratio(c, k)} | {ratio(i, k)} | {ratio(c, m)} |"
        )
        if c is not None and k is not None and c < GOAL * k:
            below.append(w.name)
    print("\n(messages per second)")
    met = len(prepared) - len(below)
    print(
        f"goal codec/construct >= {GOAL:g}: met on {met} of {len(prepared)} workloads"
        + (f" (below: {', '.join(below)})" if below else "")
    )
    for w in workloads:
        print(f"  {w.name}: {w.what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
