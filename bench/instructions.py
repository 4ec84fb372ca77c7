#!/usr/bin/env python3
"""Instructions per message for the transport's in-process path, counted by callgrind.

Timings on a shared 2-core machine move by 10-30% between runs (sometimes 2x), which hides
the 2-5% a change to the read loop is worth. Instruction counts do not move: the same code,
input and interpreter execute the same instructions whatever else the machine is doing. This
runs ``bench/session_cost.py`` (the engine, the session, the processor and the protocol fed
from in-process reads, no sockets) under ``valgrind --tool=callgrind`` twice, with two
message counts, and divides the difference by the extra messages: start-up, imports and
compiling the codec cancel out. ``--base`` counts another checkout (a ``git worktree`` of an
older commit) the same way, for an A/B of a change.

    python bench/instructions.py --frames 1 5 100
    python bench/instructions.py --base ../wt-base --engine anyio --loop trio

Counts include ``session_cost``'s harness (the loop callbacks that deliver the reads) and
say nothing about syscalls or cache misses: they rank changes to Python code, the echo
benchmark (``bench/echo_bench.py``) measures the whole server. Needs valgrind (Debian:
``apt install valgrind``); each count takes a few seconds to a minute.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def instructions(checkout: Path, args: argparse.Namespace, frames: int, messages: int) -> int:
    """Instructions executed by one ``session_cost.py`` run (the whole process)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        command = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            str(checkout / "bench" / "session_cost.py"),
            "--engine",
            args.engine,
            "--loop",
            args.loop,
            "--body",
            str(args.body),
            "--frames",
            str(frames),
            "--messages",
            str(messages),
            *(["--codec"] if not args.hand else []),
            *(["--sync"] if args.sync else []),
            *(["--plugins"] if args.plugins else []),
        ]
        subprocess.run(command, check=True, capture_output=True)
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError(f"no instruction total in callgrind's output for {checkout}")


def per_message(checkout: Path, args: argparse.Namespace, frames: int) -> float:
    low = max(args.messages // 5, frames)
    high = low + args.messages
    high -= high % frames  # whole reads only
    low -= low % frames
    extra = instructions(checkout, args, frames, high) - instructions(checkout, args, frames, low)
    return extra / (high - low)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--engine", choices=["native", "anyio"], default="native")
    ap.add_argument("--loop", choices=["asyncio", "uvloop", "trio"], default="asyncio")
    ap.add_argument("--frames", type=int, nargs="*", default=[1, 5, 100], help="frames per read")
    ap.add_argument("--messages", type=int, default=20_000, help="the extra messages counted")
    ap.add_argument("--body", type=int, default=16, help="frame body size in bytes")
    ap.add_argument("--hand", action="store_true", help="a hand-written protocol, not codec.Codec")
    ap.add_argument("--sync", action="store_true", help="a plain def process (Session.write)")
    ap.add_argument("--plugins", action="store_true", help="IdleTimeout(both=60) + MonitorPlugin")
    ap.add_argument("--base", help="another checkout to count the same way (A/B)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        ap.error("valgrind is not installed (Debian: apt install valgrind)")
    if args.engine == "native" and args.loop == "trio":
        ap.error("the native engine runs on asyncio only")
    base = Path(args.base).resolve() if args.base else None
    if base is not None and not (base / "bench" / "session_cost.py").exists():
        ap.error(f"--base {base}: no bench/session_cost.py there")
    protocol = "hand-written protocol" if args.hand else "codec.Codec"
    protocol += ", def process" if args.sync else ", async def process"
    protocol += ", IdleTimeout + MonitorPlugin" if args.plugins else ""
    print(
        f"# python {sys.version.split()[0]}, {args.engine} engine on {args.loop}, {protocol}, "
        f"{args.body} B frames; instructions per message (callgrind)"
    )
    if base is None:
        print("| frames/read | instructions/message | instructions/read |")
        print("|---:|---:|---:|")
    else:
        print(f"| frames/read | this | base ({base.name}) | this/base |")
        print("|---:|---:|---:|---:|")
    for frames in args.frames:
        this = per_message(ROOT, args, frames)
        if base is None:
            print(f"| {frames} | {this:,.0f} | {this * frames:,.0f} |", flush=True)
        else:
            before = per_message(base, args, frames)
            print(f"| {frames} | {this:,.0f} | {before:,.0f} | {this / before:.3f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
