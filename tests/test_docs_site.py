"""The MkDocs site holds together: every page in the nav exists, every relative link
between pages resolves (``mkdocs build --strict`` checks the same with the docs extra)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_nav_pages_exist() -> None:
    nav = re.findall(r":\s*(\S+\.md)\s*$", (ROOT / "mkdocs.yml").read_text(), re.M)
    assert "codec.md" in nav
    assert "performance.md" in nav
    for page in nav:
        assert (DOCS / page).is_file(), page


def test_relative_links_resolve() -> None:
    for page in DOCS.glob("*.md"):
        for target in re.findall(r"\]\(([^)#:]+\.md)(?:#[^)]*)?\)", page.read_text()):
            assert (page.parent / target).is_file(), f"{page.name} links to missing {target}"
