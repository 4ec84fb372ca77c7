"""wirekit's build backend: setuptools, plus the optional mypyc-compiled accelerator.

``pyproject.toml`` names this module as the PEP 517 backend (``backend-path = ["_build"]``).
Every hook is setuptools' own; with ``WIREKIT_COMPILE=1`` in the environment:

* ``get_requires_for_build_wheel`` / ``_editable`` add :data:`MYPY` (mypyc comes with it)
  and what the packages import (mypyc type-checks them): the run-time dependencies and the
  ``trio`` extra;
* ``setup.py`` then passes :func:`extensions` to ``setup()``: the modules listed in
  ``compiled_modules.py`` compiled by mypyc into one shared library inside the ``codec``
  package, which makes a ``cp3xx-<platform>`` wheel instead of the pure ``py3-none-any``.

Without it (``0`` or unset) the build is exactly setuptools' pure-Python one.
``bench/build_mypyc.py`` reuses :func:`extensions` to compile in place.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from compiled_modules import GROUP, MODULES
from setuptools import build_meta as _setuptools
from setuptools.build_meta import (  # the hooks this module does not change
    build_editable,
    build_sdist,
    build_wheel,
    get_requires_for_build_sdist,
)

__all__ = [
    "GROUP",
    "MODULES",
    "MYPY",
    "build_editable",
    "build_sdist",
    "build_wheel",
    "compile_requested",
    "extensions",
    "get_requires_for_build_editable",
    "get_requires_for_build_sdist",
    "get_requires_for_build_wheel",
    "patch_weakref_clearing",
    "prepare_metadata_for_build_editable",
    "prepare_metadata_for_build_wheel",
]

ROOT = Path(__file__).resolve().parents[1]

#: the environment variable that asks for the compiled build
ENV = "WIREKIT_COMPILE"

#: mypyc's version is pinned: the compiled code, and the C patch below, are checked with it
MYPY = "mypy==2.4.1"

_T = TypeVar("_T")


def compile_requested() -> bool:
    """Whether ``WIREKIT_COMPILE`` asks for the compiled build (``1``; ``0`` or unset: no)."""
    value = os.environ.get(ENV, "").strip()
    if value in ("", "0"):
        return False
    if value == "1":
        return True
    raise ValueError(f"{ENV}={value!r}: expected 1 (compile with mypyc) or 0 (pure Python)")


#: set while setuptools runs ``setup.py`` only to learn the build's requirements or its
#: metadata: mypy is not installed yet for the former, and neither needs the compiled code
_no_extensions = False


def _compile_requires() -> list[str]:
    if not compile_requested():
        return []
    return [MYPY, *_type_check_requires()]


def _type_check_requires() -> list[str]:
    """What mypyc's type check of the packages imports: the run-time dependencies and the
    ``trio`` extra (``transport/_trio_socket.py``), read from ``pyproject.toml``."""
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # the tomli setuptools vendors (and puts on sys.path)
        import tomli as tomllib
    with open(ROOT / "pyproject.toml", "rb") as f:
        project = tomllib.load(f)["project"]
    requires: list[str] = [*project["dependencies"], *project["optional-dependencies"]["trio"]]
    return requires


def _without_extensions(hook: Callable[..., _T], *args: Any) -> _T:
    global _no_extensions
    _no_extensions = True
    try:
        return hook(*args)
    finally:
        _no_extensions = False


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires = _without_extensions(_setuptools.get_requires_for_build_wheel, config_settings)
    return [*requires, *_compile_requires()]


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    requires = _without_extensions(_setuptools.get_requires_for_build_editable, config_settings)
    return [*requires, *_compile_requires()]


def prepare_metadata_for_build_wheel(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    hook = _setuptools.prepare_metadata_for_build_wheel
    return str(_without_extensions(hook, metadata_directory, config_settings))


def prepare_metadata_for_build_editable(
    metadata_directory: str, config_settings: dict[str, Any] | None = None
) -> str:
    hook = _setuptools.prepare_metadata_for_build_editable
    return str(_without_extensions(hook, metadata_directory, config_settings))


def extensions(modules: list[str] | None = None, *, build_dir: str = "build") -> list[Any]:
    """The extension modules for ``setup()``: none unless ``WIREKIT_COMPILE=1`` (or
    ``modules`` given), else mypyc's, with its C patched (:func:`patch_weakref_clearing`).

    Runs mypyc (type checking and C generation) in the current directory, the root."""
    if modules is None:
        if _no_extensions or not compile_requested():
            return []
        modules = MODULES
    try:
        from mypy.version import __version__ as mypy_version
        from mypyc.build import mypycify
    except ImportError as exc:
        raise RuntimeError(f"{ENV}=1 needs mypyc: pip install '{MYPY}'") from exc
    if f"mypy=={mypy_version}" != MYPY:  # (a build without isolation, say)
        print(f"wirekit: warning: mypyc from mypy {mypy_version}; the build is checked with {MYPY}")
    built = mypycify(list(modules), opt_level="3", group_name=GROUP, target_dir=build_dir)
    patched = patch_weakref_clearing(Path(build_dir))
    print(f"wirekit: mypyc compiles {len(modules)} modules; weakref fix in {patched} deallocators")
    return list(built)


#: a compiled class's deallocator as mypyc 2.4.1 writes it: the name, the untracking line
_DEALLOC = re.compile(
    r"^([ \t]*)static void\n[ \t]*(\w+_dealloc)\(\w+ \*self\)\n[ \t]*\{\n", re.MULTILINE
)
_UNTRACK = "PyObject_GC_UnTrack(self);\n"
_CLEAR = "if (Py_TYPE(self)->tp_weaklistoffset) PyObject_ClearWeakRefs((PyObject *)self);\n"


def patch_weakref_clearing(build_dir: Path) -> int:
    """Make every compiled deallocator clear the instance's weak references.

    mypyc/mypyc#1102 (still so in mypyc 2.4.1, which has no ``mypyc_attr`` for weak
    references): a compiled class whose type has a ``__weakref__`` slot (``typing.Generic``
    as a base gives ``Session``, ``SessionCore`` and ``SessionPort`` one at run time) never
    clears its weak references when freed, so a ``weakref.ref(session)`` then points at
    freed memory (a segfault). CPython's own ``subtype_dealloc`` clears them first; this
    inserts the same call after ``PyObject_GC_UnTrack(self);`` in each deallocator.

    Loud, never silent: raises if a deallocator does not have the line this patches (mypyc
    changed its C: check whether it clears weak references itself now and update or drop
    this patch). Returns how many deallocators were patched (0 if the C already had it)."""
    patched = 0
    found = False
    for source in sorted(build_dir.rglob("*.c")):
        text = source.read_text()
        matches = list(_DEALLOC.finditer(text))
        if not matches:
            continue
        found = True
        pieces: list[str] = []
        last = 0
        for match in matches:
            body = text[match.end() : text.index(f"\n{match[1]}}}\n", match.end())]
            if "PyObject_ClearWeakRefs" in body:  # patched before, or mypyc does it now
                continue
            if _UNTRACK not in body:
                raise RuntimeError(
                    f"wirekit build: {source}: {match[2]} has no {_UNTRACK.strip()!r}:"
                    " mypyc's generated C changed; see patch_weakref_clearing in"
                    " _build/wirekit_build.py (mypyc/mypyc#1102)"
                )
            at = match.end() + body.index(_UNTRACK) + len(_UNTRACK)
            pieces.append(text[last:at])
            pieces.append(_CLEAR)
            last = at
            patched += 1
        if pieces:
            pieces.append(text[last:])
            source.write_text("".join(pieces))
    if not found:
        raise RuntimeError(
            f"wirekit build: no compiled deallocator found under {build_dir}: mypyc's"
            " generated C changed; see _build/wirekit_build.py patch_weakref_clearing"
        )
    return patched

