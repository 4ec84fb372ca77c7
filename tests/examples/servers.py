"""Starting and stopping the example servers as a user runs them (shared by their tests).

``python examples/NAME.py --host 127.0.0.1 --port 0`` must print ``listening on HOST:PORT``
as its first line; SIGTERM, as a service manager sends it, must stop it.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

#: how long a server may take to say where it listens, or to exit
TIMEOUT = 20.0


def start(path: Path, *args: str) -> tuple[subprocess.Popen[str], str, int]:
    """Start an example server; return it with the host and port its first line gives."""
    proc = subprocess.Popen(
        [sys.executable, str(path), "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    out = proc.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(out.readline()), daemon=True)
    reader.start()
    reader.join(TIMEOUT)
    if not lines or not lines[0].startswith("listening on "):
        stop(proc)
        pytest.fail(f"{path.name} did not say where it listens: {lines!r}")
    host, _, port = lines[0].removeprefix("listening on ").strip().rpartition(":")
    return proc, host, int(port)


def stop(proc: subprocess.Popen[str]) -> int | None:
    """SIGTERM; the exit status (None if it had to be killed)."""
    proc.send_signal(signal.SIGTERM)
    try:
        status: int | None = proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)
        status = None
    if proc.stdout is not None:
        proc.stdout.close()
    return status
