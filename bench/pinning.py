"""Pinning a benchmark process to one CPU, shared by the ``bench/*_bench.py`` scripts."""

from __future__ import annotations

import os

__all__ = ["pin_cpu"]


def pin_cpu(cpu: int | None) -> str:
    """Pin this process to ``cpu`` (the last allowed one when ``None``); say what was done."""
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (no sched_setaffinity)"
    allowed = sorted(os.sched_getaffinity(0))
    target = allowed[-1] if cpu is None else cpu
    try:
        os.sched_setaffinity(0, {target})
    except OSError as exc:
        return f"not pinned ({exc})"
    return f"pinned to CPU {target} of {len(allowed)}"
