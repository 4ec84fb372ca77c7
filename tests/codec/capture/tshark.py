"""Run tshark on a capture and collect dissected fields, for the comparison tests."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

TSHARK = shutil.which("tshark")
DUMPCAP = shutil.which("dumpcap")

needs_tshark = pytest.mark.skipif(
    TSHARK is None,
    reason="tshark not installed (apt-get install tshark; .ci/run installs it on CI)",
)


def fields(path: Path, decode_as: str, names: list[str]) -> dict[str, list[str]]:
    """Every occurrence of each field, in frame order (tshark's own reassembly, with
    out-of-order segments allowed), as strings."""
    assert TSHARK is not None
    cmd = [
        TSHARK,
        "-n",
        "-r",
        str(path),
        "-o",
        "tcp.reassemble_out_of_order:TRUE",
        "-d",
        decode_as,
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=|",
    ]
    for name in names:
        cmd += ["-e", name]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=True)
    out: dict[str, list[str]] = {n: [] for n in names}
    for line in proc.stdout.splitlines():
        for name, value in zip(names, line.split("\t"), strict=True):
            if value:
                out[name] += value.split("|")
    return out


def num(values: list[str]) -> list[int]:
    """tshark prints some integers in hex (``0x0100``), others in decimal."""
    return [int(v, 0) for v in values]
