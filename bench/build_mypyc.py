#!/usr/bin/env python3
"""Compile wirekit's hot modules with mypyc in place, for benchmarks in this checkout.

    python bench/build_mypyc.py            # build; the .so files land next to the .py files
    python bench/build_mypyc.py --clean    # remove them: back to pure Python
    python bench/build_mypyc.py --modules transport/_session.py codec/_buffer.py

The compiled build proper is a wheel: ``WIREKIT_COMPILE=1 pip install .`` (see
``docs/performance.md``). This script runs the same build (the module list in
``_build/compiled_modules.py``, mypyc's C patched by ``_build/wirekit_build.py``) but puts
the result into the checkout, which an editable install or ``python`` run from the root
then imports: Python imports an extension module in preference to the .py beside it, so
the compiled modules replace the pure-Python ones until ``--clean``. Needs ``pip install
mypy==2.4.1`` (mypyc comes with it) and a C compiler, in the interpreter that will import
the result (the .so files are for that Python version only).

The build runs in a temporary copy of the checkout and the .so files are then renamed into
place: overwriting a shared library that a running process has mapped (a benchmark, a
callgrind count) would crash that process, a rename does not.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_build"))
sys.path.insert(0, str(ROOT))
from compiled_modules import MODULES  # noqa: E402

import dev  # noqa: E402  (the checkout's dev.py: copy_checkout)

#: what runs in the copy: the build's own extensions (mypyc, the C patch), compiled in place
#: (a bare Distribution: pyproject.toml's metadata is not needed, nor a recent setuptools)
SETUP = r"""
import sys
from setuptools import Distribution
sys.path.insert(0, "_build")
from wirekit_build import extensions
dist = Distribution({"name": "wirekit", "ext_modules": extensions(sys.argv[1:])})
dist.script_name, dist.script_args = "setup.py", ["build_ext", "--inplace"]
dist.parse_command_line()
dist.run_commands()
"""


def built_files(root: Path) -> list[Path]:
    return sorted(
        p
        for pattern in ("*.so", "codec/*.so", "transport/*.so", "schemas/*.so")
        for p in root.glob(pattern)
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--modules", nargs="+", default=MODULES, help="paths from the root")
    ap.add_argument("--clean", action="store_true", help="remove the compiled modules")
    args = ap.parse_args()
    old = set(built_files(ROOT))
    if args.clean:
        for path in old:
            os.unlink(path)  # (a running process keeps its mapping of the unlinked file)
            print(f"removed {path.relative_to(ROOT)}")
        return 0
    with tempfile.TemporaryDirectory(prefix="wirekit-mypyc-") as tmp:
        work = Path(tmp)
        dev.copy_checkout(work)
        subprocess.run([sys.executable, "-c", SETUP, *args.modules], cwd=work, check=True)
        for built in built_files(work):
            target = ROOT / built.relative_to(work)
            shutil.copy2(built, str(target) + ".tmp")
            os.replace(str(target) + ".tmp", target)
            old.discard(target)
            print(f"built {target.relative_to(ROOT)}")
    for path in old:  # compiled before, not this time
        os.unlink(path)
        print(f"removed {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
