"""The examples in docs/fuzzing.md run as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[3] / "docs" / "fuzzing.md"
BLOCKS = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)


def test_the_guide_has_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example_runs(index: int, capsys: pytest.CaptureFixture[str]) -> None:
    exec(compile(BLOCKS[index], f"{DOC.name}[{index}]", "exec"), {"__name__": "docs_example"})
    out = capsys.readouterr().out
    if "except AssertionError" in BLOCKS[index]:
        # the failure shown in the guide is the one hypothesis really finds
        shown = DOC.read_text(encoding="utf-8").split("```text\n", 1)[1].split("```", 1)[0]
        assert out == shown
