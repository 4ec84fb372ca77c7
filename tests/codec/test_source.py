"""The generated source is visible: in tracebacks (``linecache``), through
``Codec.source()``, and through ``wirekit show SCHEMA``."""

from __future__ import annotations

import gc
import linecache
import re
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import construct as cs
import pytest
from construct import this

from codec import Buffer, Codec, DecodeError, LengthField, _batch
from codec.cli import main

ROOT = Path(__file__).resolve().parents[2]
_FILENAME = re.compile(r"<wirekit-codec \w+ \w+ 0x[0-9a-f]+>")


class Boom(RuntimeError):
    """Not an error the codec maps: it comes out of the generated function as it is."""


def explode(ctx: Any) -> int:
    raise Boom("from the user's lambda")


def generated_line(source: str, needle: str) -> str:
    """The one line of ``source`` containing ``needle``, stripped."""
    found = [line.strip() for line in source.splitlines() if needle in line]
    assert len(found) >= 1, source
    return found[0]


def test_a_traceback_through_the_encoder_shows_the_generated_line() -> None:
    schema = cs.Struct("n" / cs.Int8ub, "m" / cs.Rebuild(cs.Int8ub, explode))
    codec = Codec(schema)
    with pytest.raises(Boom) as info:
        codec.encode({"n": 1})
    text = "".join(traceback.format_exception(info.value))
    frames = [
        f for f in traceback.extract_tb(info.value.__traceback__) if "wirekit-codec" in f.filename
    ]
    assert frames, text
    assert _FILENAME.fullmatch(frames[0].filename)
    # the line the traceback prints is the generated line that called the lambda
    assert frames[0].line
    assert frames[0].line in codec.source()
    assert generated_line(codec.source(), frames[0].line) in text
    # encode_into is generated too (inlined builder): its traceback also shows the line
    with pytest.raises(Boom) as info:
        codec.encode_into({"n": 1}, bytearray())
    frames = [
        f for f in traceback.extract_tb(info.value.__traceback__) if "wirekit-codec" in f.filename
    ]
    assert frames[0].filename.startswith("<wirekit-codec encode ")
    assert frames[0].line
    assert frames[0].line in codec.source()


def test_a_decode_error_cause_shows_the_generated_decoder_line() -> None:
    schema = cs.Struct("n" / cs.Int8ub, "m" / cs.Computed(explode))
    codec = Codec(schema)
    with pytest.raises(DecodeError) as info:
        codec.decode(Buffer(b"\x01"))
    cause = info.value.__cause__
    assert isinstance(cause, Boom)
    frames = [f for f in traceback.extract_tb(cause.__traceback__) if "wirekit-codec" in f.filename]
    assert frames
    assert frames[0].filename.startswith("<wirekit-codec decode ")
    assert frames[0].line
    assert frames[0].line in codec.source()


def test_linecache_entries_go_with_the_codec() -> None:
    """Sources are registered while their functions live, not forever."""
    codec = Codec(cs.Struct("a" / cs.Int16ub, "b" / cs.PascalString(cs.Int8ub, "utf8")))
    names = set(_FILENAME.findall(codec.source()))
    assert len(names) == 3  # decoder, builder, encode_into
    for name in names:
        assert linecache.getline(name, 1).startswith("def ")
    del codec
    gc.collect()
    assert not names & set(linecache.cache)


#: what ``source()`` shows for a length-prefixed bytes body: the hand-written splitter when
#: it is in use (``codec._splitter`` compiled), else the generated batch function
_FILL = "length-prefix splitter" if _batch.USE_SPLITTER else "def fill"


def every_def_compiles(source: str) -> None:
    compile(source, "<shown>", "exec")


@pytest.mark.parametrize(
    ("codec", "parts"),
    [
        (Codec(cs.PascalString(cs.Int8ub, "utf8")), ("def fill", "def build", "def encode_into")),
        (
            Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes)),
            (_FILL, "def build", "shortcut"),
        ),
        (Codec(cs.Int32ub, fast=False), ("not generated", "fast=False")),
        (
            Codec(cs.GreedyBytes, framing=LengthField(offset=0, length=2, strip=2)),
            (_FILL, "def build", "explicit framing"),
        ),
        (
            Codec(cs.Struct("a" / cs.Int8ub, "c" / cs.Checksum(cs.Int8ub, sum, this.a))),
            ("def fill", "_fallback(", "not inlined"),
        ),
        (
            Codec(cs.Struct("a" / cs.Int8ub, "p" / cs.Pointer(8, cs.Int8ub))),
            ("schema.build builds each message",),
        ),
    ],
    ids=["string8", "blob", "reference", "explicit", "fallback", "whole"],
)
def test_source_says_what_runs(codec: Codec[Any], parts: tuple[str, ...]) -> None:
    source = codec.source()
    every_def_compiles(source)
    for part in parts:
        assert part in source.replace("blob_encode_into", "shortcut"), source


def test_wirekit_show_prints_source_that_compiles(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["show", "schemas.basic:STRING8"]) == 0
    out = capsys.readouterr().out
    every_def_compiles(out)
    assert "def fill(" in out
    assert "def build(" in out
    assert "def encode_into(" in out
    assert len(_FILENAME.findall(out)) == 3


def test_wirekit_show_from_a_file_and_its_errors(tmp_path: Path) -> None:
    script = tmp_path / "proto.py"
    script.write_text(
        "import construct as cs\n"
        "HEADER = cs.BitStruct('kind' / cs.Nibble, 'flags' / cs.Nibble)\n"
        "class Hand:\n"
        "    def decode(self, buf): return None\n"
        "    def encode(self, msg): return b''\n"
        "HAND = Hand()\n"
    )

    def show(spec: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "codec.cli", "show", spec],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )

    proc = show(f"{script}:HEADER")
    assert proc.returncode == 0, proc.stderr
    every_def_compiles(proc.stdout)
    assert "to_bytes(1, 'big')" in proc.stdout  # the BitStruct packed into one integer
    proc = show(f"{script}:HAND")
    assert proc.returncode == 2
    assert "generated nothing" in proc.stderr
    proc = show(f"{script}:NOPE")
    assert proc.returncode == 2
    assert "has no attribute" in proc.stderr
