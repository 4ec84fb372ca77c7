"""docs/tutorial.md runs as written, prints what it shows, and its diagram is current.

Every ``python`` block runs in order in one namespace (servers on 127.0.0.1, port 0); a
``text`` block right after a ``python`` block is that block's exact standard output. The
state diagram is redrawn from ``transport._state.TRANSITIONS`` by the docs script and
compared with the committed one.
"""

from __future__ import annotations

import contextlib
import io
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TUTORIAL = ROOT / "docs" / "tutorial.md"
SCRIPT = ROOT / "docs" / "scripts" / "state_diagram.py"

FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.S | re.M)


def test_tutorial_blocks_run_and_print_what_they_show() -> None:
    fences = [(m[1], m[2]) for m in FENCE.finditer(TUTORIAL.read_text(encoding="utf-8"))]
    namespace: dict[str, object] = {"__name__": "tutorial"}
    checked = ran = 0
    for i, (lang, code) in enumerate(fences):
        if lang != "python":
            continue
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"tutorial.md[{i}]", "exec"), namespace)
        ran += 1
        if i + 1 < len(fences) and fences[i + 1][0] == "text":
            assert out.getvalue() == fences[i + 1][1], f"block {i} printed other text"
            checked += 1
    assert ran >= 8
    assert checked >= 6


def test_the_half_and_sticky_demos_print_the_books_output() -> None:
    """The book's console output of chapter 3.1, to the letter."""
    text = TUTORIAL.read_text(encoding="utf-8")
    half = "完整消息长度:13\n半包：期望长度:12 ,实际剩余长度:11\nnull\n"  # noqa: RUF001
    sticky = "完整消息长度:13\n消息解码成功:smart-socket\n消息解码成功:smart-socket\n"
    assert f"```text\n{half}```" in text
    assert f"```text\n{sticky}```" in text


def test_state_diagram_is_drawn_from_the_transition_table() -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import state_diagram
    finally:
        sys.path.remove(str(SCRIPT.parent))
    from transport._state import TRANSITIONS

    drawn = state_diagram.mermaid()
    for (src, event), dst in TRANSITIONS.items():
        arrow = re.search(rf"^    {src.name} --> {dst.name}: (.*)$", drawn, re.M)
        assert arrow is not None, (src, dst)
        assert event.name in arrow[1].split("<br/>")
    assert drawn in TUTORIAL.read_text(encoding="utf-8")
