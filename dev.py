#!/usr/bin/env python3
"""One entry point for every developer task; needs nothing but Python >= 3.10.

    python3 dev.py demo    # set up .venv, then run the loopback demo (the main job)
    python3 dev.py test    # set up .venv, then lint, format check, type check and the test suite
                           # (pure Python), then the compiled leg (below); with pytest
                           # arguments, only the pure run, with those arguments
    python3 dev.py test-compiled  # just the compiled leg (pytest arguments go to it)
    python3 dev.py bench   # set up .venv, then run the benchmarks under bench/

Set-up is idempotent: the virtual environment in ``.venv`` is created on first use and
re-installed whenever ``pyproject.toml`` changes (a stamp file records its hash).

The compiled leg: a wheel built with ``WIREKIT_COMPILE=1`` (mypyc; a minute or so) from a
temporary copy of the checkout, installed into ``.venv-compiled`` with the test extra, then
``pytest tests/codec tests/transport`` run in that copy without the packages' sources, so
that the installed compiled modules are the ones imported (``WIREKIT_TEST_COMPILED=1``:
``tests/conftest.py`` checks it). No ``.so`` file is left in the checkout. Without a C
compiler or Python's headers the leg is skipped and says so, except under ``CI``: fails.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import venv
from collections.abc import Collection
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PY = BIN / ("python.exe" if os.name == "nt" else "python")
STAMP = VENV / ".wirekit-installed"
VENV_COMPILED = ROOT / ".venv-compiled"
PY_COMPILED = VENV_COMPILED / PY.relative_to(VENV)
#: what the compiled leg tests: the packages that have compiled modules
COMPILED_TESTS = ["tests/codec", "tests/transport"]
#: what the compiled leg leaves to the pure run: type-checking the examples with mypy (not
#: installed there) checks sources, not the build
COMPILED_DESELECT = [
    "--deselect",
    "tests/transport/test_plugins_examples.py::test_examples_pass_mypy_strict",
]
#: the packages' sources, left out of the copy the compiled leg's tests run in
PACKAGES = ["codec", "transport", "schemas"]


def run(*cmd: str | os.PathLike[str], cwd: Path = ROOT, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=cwd, check=True, env=env)


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
    use_hypothesis_profile()
    run(PY, "-m", "pytest", *args)
    if args:
        print("+ (the compiled leg runs with no pytest arguments: dev.py test-compiled)")
        return
    test_compiled([])


def use_hypothesis_profile() -> None:
    """The tests' hypothesis profile, unless one is set: bounded and deterministic under
    ``CI`` (``tests/conftest.py``)."""
    os.environ.setdefault("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev")


def missing_toolchain() -> str | None:
    """What building C extensions for this Python lacks (a compiler, the headers), if any."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc or shutil.which(cc[0]) is None:
        return f"no C compiler ({cc[0] if cc else 'CC unset'})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return f"no Python headers (Python.h in {sysconfig.get_paths()['include']})"
    return None


def copy_checkout(target: Path, skip: Collection[str] = ()) -> None:
    """Copy the checkout's files (tracked, and untracked but not ignored) to ``target``,
    but for those under the top-level folders named in ``skip`` (also used by
    ``bench/build_mypyc.py`` and ``tests/test_build.py``)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file() and name.split("/")[0] not in skip:
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)


def test_compiled(args: list[str]) -> None:
    """Build the compiled wheel, install it into ``.venv-compiled``, run the codec's and
    the transport's tests against it (see the module's docstring)."""
    missing = missing_toolchain()
    if missing:
        if os.environ.get("CI"):
            raise SystemExit(f"compiled leg: {missing}; CI must run it")
        print(f"+ compiled leg skipped: {missing}", flush=True)
        return
    use_hypothesis_profile()
    if not PY_COMPILED.exists():
        print(f"+ creating {VENV_COMPILED}", flush=True)
        venv.create(VENV_COMPILED, with_pip=True)
    with tempfile.TemporaryDirectory(prefix="wirekit-compiled-") as tmp:
        work, dist = Path(tmp) / "wirekit", Path(tmp) / "dist"
        copy_checkout(work)
        run(PY_COMPILED, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", dist, work,
            env={**os.environ, "WIREKIT_COMPILE": "1"})  # fmt: skip
        (wheel,) = dist.glob("wirekit-*.whl")
        run(PY_COMPILED, "-m", "pip", "install", "--quiet", "--force-reinstall", "--no-deps", wheel)
        run(PY_COMPILED, "-m", "pip", "install", "--quiet", f"{wheel}[test]")
        for name in [*PACKAGES, "build"]:  # the tests import the installed packages
            shutil.rmtree(work / name, ignore_errors=True)
        # pytest's arguments; the codec's and the transport's tests unless they name a path
        named = any((work / arg.split("::")[0]).exists() for arg in args)
        tests = args if named else [*COMPILED_TESTS, *COMPILED_DESELECT, *args]
        run(PY_COMPILED, "-m", "pytest", "-p", "no:cacheprovider", *tests,
            cwd=work, env={**os.environ, "WIREKIT_TEST_COMPILED": "1"})  # fmt: skip


def bench(args: list[str]) -> None:
    scripts = sorted((ROOT / "bench").glob("*_bench.py"))
    for script in scripts:
        run(PY, script, *args)


TASKS = {"demo": demo, "test": test, "test-compiled": test_compiled, "bench": bench}


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
