"""The MkDocs site holds together and builds with ``mkdocs build --strict``.

The strict build is what catches a docstring the API reference cannot parse (one style,
Google's, throughout), a page missing from the nav, or a broken link; it runs here so that
``python3 dev.py test`` and CI fail on it, not a later docs deploy.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
REPO = "https://github.com/wirekit/wirekit"


def test_nav_pages_exist() -> None:
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert "codec.md" in nav
    assert "performance.md" in nav
    assert "tutorial.md" in nav
    for page in nav:
        assert (DOCS / page).is_file(), page


def test_relative_links_resolve() -> None:
    for page in DOCS.rglob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"


def test_api_reference_pages_cover_the_public_packages() -> None:
    for module in ("codec", "codec.testing", "transport", "transport.plugins", "schemas"):
        page = DOCS / "reference" / (module.replace(".", "-") + ".md")
        assert f"::: {module}\n" in page.read_text(), page


def test_repository_links_are_real_and_agree() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    assert re.search(r"^repo_url: (\S+)$", config, re.M)[1] == REPO  # type: ignore[index]
    urls = importlib.metadata.metadata("wirekit").get_all("Project-URL") or []
    assert f"Repository, {REPO}" in urls
    assert "example.invalid" not in config


def test_readme_links_are_absolute() -> None:
    """The README is also the package index page, where relative links lead nowhere."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    links = re.findall(r"\]\(([^)]+)\)", readme)
    assert links
    for link in links:
        assert link.startswith("https://"), link
    for link in re.findall(rf"\]\(({REPO}/blob/main/[^)#]+)", readme):
        path = ROOT / link.removeprefix(f"{REPO}/blob/main/")
        assert path.is_file(), link


def test_license_file_matches_the_declared_license() -> None:
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text
    assert "Version 2.0, January 2004" in text
    assert importlib.metadata.metadata("wirekit")["License-Expression"] == "Apache-2.0"


def test_home_page_quick_start_runs_and_links_the_tutorial() -> None:
    text = (DOCS / "index.md").read_text(encoding="utf-8")
    first_screen = text[: text.index("## Quick start")]
    assert "(tutorial.md)" in first_screen
    assert "pip install wirekit" in first_screen
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert blocks
    namespace: dict[str, object] = {"__name__": "index"}
    for i, block in enumerate(blocks):
        exec(compile(block, f"index.md[{i}]", "exec"), namespace)


def test_mkdocs_build_strict(tmp_path: Path) -> None:
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings")
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reference = (tmp_path / "site" / "reference" / "transport" / "index.html").read_text()
    assert "Server" in reference
    assert "high_water" in reference  # generated from the docstrings
    for page in (tmp_path / "site" / "reference").rglob("*.html"):
        assert not re.search(r":(class|func|meth|mod|data|attr):<code>", page.read_text()), page
