"""MkDocs hook: Sphinx cross-reference roles in docstrings shown as code in the API reference.

wirekit's docstrings follow Google style and name other objects the way Sphinx does
(``:class:`~codec.Codec```), which reads well in the source and in ``help()``. mkdocstrings
renders Markdown and leaves the role in front of the code span (``:class:Codec``); this
hook drops the role and, as Sphinx does for a ``~`` target, keeps the last name only.
"""

from __future__ import annotations

import re
from typing import Any

_ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc|obj|const):(<code>)(~?)([^<]*)(</code>)")


def _code(m: re.Match[str]) -> str:
    target = m[3].rsplit(".", 1)[-1] if m[2] else m[3]
    return f"{m[1]}{target}{m[4]}"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles of one rendered page."""
    return _ROLE.sub(_code, html)
