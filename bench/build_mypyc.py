#!/usr/bin/env python3
"""Experiment (branch ``mypyc``): compile the transport's hot modules with mypyc, in place.

    python bench/build_mypyc.py            # build; the .so files land next to the .py files
    python bench/build_mypyc.py --clean    # remove them: back to pure Python
    python bench/build_mypyc.py --modules transport/_session.py codec/_buffer.py

Needs ``pip install mypy`` (mypyc comes with it) and a C compiler, in the interpreter that
will import the result (the .so files are for that Python version only). Python imports an
extension module in preference to the .py beside it, so the compiled modules replace the
pure-Python ones for every import from this checkout; ``--clean`` restores them.

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

#: the hot path of one read with a plain ``def process`` on the native engine: the engine,
#: the session and its core, the receive buffer, and the codec's ``decode_many`` (a closure
#: in ``_codec``) and ``encode_into`` (the length-prefix shortcut, a closure in
#: ``_encoder``). The per-schema functions the codec generates and execs stay Python, but
#: for length-prefixed ``bytes`` bodies the batch function is ``_splitter``'s, compiled.
MODULES = [
    "transport/_native_engine.py",
    "transport/_session.py",
    "transport/_core.py",
    "codec/_buffer.py",
    "codec/_codec.py",
    "codec/_encoder.py",
    "codec/_splitter.py",
]


#: what runs in the copy: mypyc writes the C, the weak-reference fix goes in, the C compiles
SETUP = r"""
import sys
from pathlib import Path
from setuptools import setup
from mypyc.build import mypycify

extensions = mypycify(sys.argv[1:], opt_level="3")
# mypyc/mypyc#1102: a compiled class whose type has a __weakref__ slot (typing.Generic as a
# base gives Session, SessionCore and SessionPort one at run time) does not clear its weak
# references when it is freed: a weakref.ref(session) then points at freed memory (a
# segfault, or another object). Clear them first in every deallocator, as CPython does.
UNTRACK = "PyObject_GC_UnTrack(self);\n"
CLEAR = "if (Py_TYPE(self)->tp_weaklistoffset) PyObject_ClearWeakRefs((PyObject *)self);\n"
for source in Path("build").rglob("*.c"):
    text = source.read_text()
    if UNTRACK in text:
        source.write_text(text.replace(UNTRACK, UNTRACK + CLEAR))
setup(name="wirekit-mypyc", ext_modules=extensions, script_args=["build_ext", "--inplace"])
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
    files = (
        subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        .stdout.decode()
        .split("\0")
    )
    with tempfile.TemporaryDirectory(prefix="wirekit-mypyc-") as tmp:
        work = Path(tmp)
        for name in filter(None, files):
            source = ROOT / name
            if source.is_file():
                (work / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(source, work / name)
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
