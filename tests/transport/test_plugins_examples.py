"""The plugin examples run, on asyncio, uvloop and trio, and docs/plugins.md shows each one
exactly as it runs here (a block whose first line names the file holds the whole file)."""

from __future__ import annotations

import importlib.util
import logging
import re
from pathlib import Path
from types import ModuleType

import anyio
import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p.stem for p in (ROOT / "examples").glob("plugins_*.py"))
DOC = ROOT / "docs" / "plugins.md"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_plugin_has_an_example() -> None:
    assert {
        "plugins_idle",
        "plugins_heartbeat",
        "plugins_blacklist",
        "plugins_ratelimit",
        "plugins_stream_monitor",
        "plugins_proxy",
        "plugins_prometheus",
        "plugins_reconnect",
        "plugins_pool",
    } <= set(EXAMPLES)


@pytest.mark.parametrize("name", EXAMPLES)
def test_the_docs_show_the_example_as_it_runs(name: str) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    shown = [b for b in blocks if b.startswith(f"# examples/{name}.py\n")]
    assert len(shown) == 1, f"docs/plugins.md must show examples/{name}.py once"
    source = (ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8")
    assert shown[0].removeprefix(f"# examples/{name}.py\n") == source


@pytest.mark.anyio
@pytest.mark.parametrize("name", EXAMPLES)
async def test_example_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    stream_logger = logging.getLogger("transport.stream")
    level = stream_logger.level
    try:
        with anyio.fail_after(30):
            await load(name).main()
    finally:
        stream_logger.setLevel(level)  # (the stream monitor example turns DEBUG on)
    assert capsys.readouterr().out
