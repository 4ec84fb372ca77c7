"""Ready-made wire formats written with construct."""

from __future__ import annotations

__all__: list[str] = []
