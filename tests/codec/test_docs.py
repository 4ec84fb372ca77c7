"""docs/codec.md: every Python block runs as written, in order, in one namespace."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "codec.md"


def test_codec_tutorial_runs() -> None:
    text = DOC.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    namespace: dict[str, object] = {"__name__": "codec_tutorial"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"{DOC.name}[{i}]", "exec"), namespace)


def test_framing_reprs_in_the_tutorial_are_current() -> None:
    import construct as cs
    from construct import this

    from codec import Codec

    text = DOC.read_text(encoding="utf-8")
    assert repr(Codec(cs.PascalString(cs.Int8ub, "utf8")).framing) in text
    cmd = cs.Struct("cmd" / cs.Int8ub, "len" / cs.Int16ub, "data" / cs.Bytes(this.len))
    assert repr(Codec(cmd).framing) in text
