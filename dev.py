#!/usr/bin/env python3
"""One entry point for every developer task; needs nothing but Python >= 3.10.

    python3 dev.py demo    # set up .venv, then run the loopback demo (the main job)
    python3 dev.py test    # set up .venv, then lint, format check, type check and the test suite
    python3 dev.py bench   # set up .venv, then run the benchmarks under bench/

Set-up is idempotent: the virtual environment in ``.venv`` is created on first use and
re-installed whenever ``pyproject.toml`` changes (a stamp file records its hash).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".wirekit-installed"


def run(*cmd: str | os.PathLike[str]) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True)


def setup() -> None:
    """Create ``.venv`` and install the project with its dev extras when needed."""
    want = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if PY.exists() and STAMP.exists() and STAMP.read_text() == want:
        return
    if not PY.exists():
        print(f"+ creating {VENV}", flush=True)
        venv.create(VENV, with_pip=True)
    run(PY, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(PY, "-m", "pip", "install", "--quiet", "-e", ".[dev]")
    STAMP.write_text(want)


def demo(args: list[str]) -> None:
    run(PY, "examples/demo.py", *args)


def test(args: list[str]) -> None:
    run(PY, "-m", "ruff", "check", ".")
    run(PY, "-m", "ruff", "format", "--check", ".")
    run(PY, "-m", "mypy")
    env_profile = "ci" if os.environ.get("CI") else "dev"
    os.environ.setdefault("HYPOTHESIS_PROFILE", env_profile)
    run(PY, "-m", "pytest", *args)


def bench(args: list[str]) -> None:
    scripts = sorted((ROOT / "bench").glob("*_bench.py"))
    for script in scripts:
        run(PY, script, *args)


TASKS = {"demo": demo, "test": test, "bench": bench}


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in TASKS:
        print(__doc__)
        return 2
    try:
        setup()
        TASKS[sys.argv[1]](sys.argv[2:])
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
