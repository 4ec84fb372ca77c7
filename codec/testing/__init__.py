"""Hypothesis helpers to fuzz any ``codec.Protocol`` (work in progress)."""

from __future__ import annotations

__all__: list[str] = []
