"""The README's and the docs' Python examples pass ``mypy --strict`` as a user would write them.

construct has no type hints, so a user's ``c = Codec(STRING8)`` gives mypy nothing to infer
the message type from: it is ``Codec[Any]`` (the type variable's default), and the examples
say the type where they can (``Codec[str]``). Each page's blocks are checked as one module, in
order, the way the docs tests run them.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S)


def _user_config(tmp_path: Path) -> Path:
    """A user's mypy configuration, not the project's: strict, and construct's missing type
    hints acknowledged the way the README tells users to."""
    config = tmp_path / "mypy.ini"
    config.write_text(
        "[mypy]\nstrict = True\n\n[mypy-construct.*]\nignore_missing_imports = True\n"
        "\n[mypy-construct]\nignore_missing_imports = True\n"
    )
    return config


def test_examples_pass_mypy_strict(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    files = []
    for page in PAGES:
        blocks = _blocks(page)
        if blocks:
            module = tmp_path / f"doc_{page.stem.lower().replace('-', '_')}.py"
            module.write_text("\n".join(blocks), encoding="utf-8")
            files.append(str(module))
    assert len(files) >= 5
    config = _user_config(tmp_path)
    cache = ROOT / ".mypy_cache" / "docs"
    out, err, status = api.run(["--config-file", str(config), "--cache-dir", str(cache), *files])
    assert status == 0, out + err


def test_an_unannotated_codec_passes_mypy_strict(tmp_path: Path) -> None:
    """``c = Codec(STRING8)`` as a newcomer writes it: ``Codec[Any]``, not an error."""
    api = pytest.importorskip("mypy.api")
    module = tmp_path / "newcomer.py"
    module.write_text(
        "import construct as cs\n"
        "from codec import Codec\n"
        'STRING8 = cs.PascalString(cs.Int8ub, "utf8")\n'
        "c = Codec(STRING8)\n"
        "reveal_type(c)\n"
        'assert c.decode_all(c.encode("hi")) == ["hi"]\n',
        encoding="utf-8",
    )
    config = _user_config(tmp_path)
    cache = ROOT / ".mypy_cache" / "docs"
    out, err, status = api.run(
        ["--config-file", str(config), "--cache-dir", str(cache), str(module)]
    )
    assert status == 0, out + err
    assert 'Revealed type is "codec._codec.Codec[Any]"' in out
