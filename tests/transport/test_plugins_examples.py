"""The plugin examples run, on asyncio, uvloop and trio, pass ``mypy --strict`` as a user's
code, and docs/plugins.md shows each one exactly as it runs here (a ``py`` block whose first
line names the file holds the whole file; whole files, so they are type-checked one by one
here rather than joined into one module per page as ``tests/test_doc_types.py`` does)."""

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
    blocks = re.findall(r"```py\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    shown = [b for b in blocks if b.startswith(f"# examples/{name}.py\n")]
    assert len(shown) == 1, f"docs/plugins.md must show examples/{name}.py once"
    source = (ROOT / "examples" / f"{name}.py").read_text(encoding="utf-8")
    assert shown[0].removeprefix(f"# examples/{name}.py\n") == source


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    config = tmp_path / "mypy.ini"  # a user's configuration, as tests/test_doc_types.py has it
    config.write_text(
        "[mypy]\nstrict = True\n\n[mypy-construct.*]\nignore_missing_imports = True\n"
        "\n[mypy-construct]\nignore_missing_imports = True\n"
    )
    files = [str(ROOT / "examples" / f"{name}.py") for name in EXAMPLES]
    out, err, status = api.run(
        ["--config-file", str(config), "--cache-dir", str(tmp_path / "cache"), *files]
    )
    assert status == 0, out + err


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
