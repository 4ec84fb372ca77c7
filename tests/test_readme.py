"""The README's quick start runs as written, and it tells a new user how to install."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def test_readme_examples_run() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    namespace: dict[str, object] = {"__name__": "readme"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"README.md[{i}]", "exec"), namespace)


def test_readme_says_how_to_install_and_what_each_extra_brings() -> None:
    text = README.read_text(encoding="utf-8")
    assert "$ pip install wirekit\n" in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    section = pyproject.split("[project.optional-dependencies]")[1].split("\n[")[0]
    extras = re.findall(r"^([a-z][\w-]*) = \[", section, re.M)
    assert "parquet" in extras
    internal = {"test", "dev", "bench", "examples"}  # the project's own, not a user's
    for extra in set(extras) - internal:
        assert f"| `wirekit[{extra}]` |" in text, extra
