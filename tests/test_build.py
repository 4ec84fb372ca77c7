"""The build: pure Python by default, the mypyc-compiled modules with ``WIREKIT_COMPILE=1``
(``_build/``). The compiled build itself is tested by the compiled leg of ``dev.py test``
(``tests/codec`` and ``tests/transport`` against an installed compiled wheel)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "_build"))
sys.path.insert(0, str(ROOT))
from compiled_modules import GROUP, MODULES, module_names  # noqa: E402

import dev  # noqa: E402

sys.path.remove(str(ROOT))
sys.path.remove(str(ROOT / "_build"))


@pytest.fixture
def backend() -> Iterator[ModuleType]:
    pytest.importorskip("setuptools.build_meta")
    sys.path.insert(0, str(ROOT / "_build"))
    try:
        import wirekit_build

        yield wirekit_build
    finally:
        sys.path.remove(str(ROOT / "_build"))


def test_the_compiled_modules_are_the_packages_modules() -> None:
    import codec
    import transport

    assert len(set(MODULES)) == len(MODULES)
    for path, name in zip(MODULES, module_names(), strict=True):
        assert (ROOT / path).is_file(), path
        assert name.split(".")[0] in ("codec", "transport"), name
    # the shared library lives in a package (importable from a wheel or an editable install)
    assert GROUP.startswith("codec.")
    assert isinstance(codec.COMPILED, bool)
    assert isinstance(transport.COMPILED, bool)


def test_compile_is_asked_for_with_1_only(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIREKIT_COMPILE", raising=False)
    assert backend.compile_requested() is False
    assert backend._compile_requires() == []
    assert backend.extensions() == []
    monkeypatch.setenv("WIREKIT_COMPILE", "0")
    assert backend.compile_requested() is False
    assert backend.extensions() == []
    monkeypatch.setenv("WIREKIT_COMPILE", "yes")
    with pytest.raises(ValueError, match="WIREKIT_COMPILE='yes'"):
        backend.compile_requested()
    monkeypatch.setenv("WIREKIT_COMPILE", "1")
    assert backend.compile_requested() is True
    requires = backend._compile_requires()
    assert requires[0] == backend.MYPY == "mypy==2.4.1"
    names = [r.split(">")[0].split("<")[0].split("=")[0] for r in requires]
    assert {"construct", "anyio", "trio"} <= set(names)


def test_no_compiling_while_setuptools_only_asks_for_requirements(
    backend: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    """setuptools runs setup.py to learn the requirements and the metadata, before mypy is
    installed: ``extensions()`` returns nothing then, even with ``WIREKIT_COMPILE=1``."""
    monkeypatch.setenv("WIREKIT_COMPILE", "1")
    seen = backend._without_extensions(lambda: backend.extensions())
    assert seen == []
    assert backend._no_extensions is False


DEALLOCS = """\
static void
_buffer___Buffer_dealloc(codec____buffer___BufferObject *self)
{
    PyObject_GC_UnTrack(self);
    CPy_TRASHCAN_BEGIN(self, _buffer___Buffer_dealloc)
    CPyDef__buffer___Buffer_clear((PyObject *)self);
    Py_TYPE(self)->tp_free((PyObject *)self);
    CPy_TRASHCAN_END(self)
    done: ;
}

        static void
        _codec___env_dealloc(codec____codec___envObject *self)
        {
            PyObject_GC_UnTrack(self);
            if (_codec___env_free_instance == NULL) {
                _codec___env_free_instance = self;
                return;
            }
            Py_TYPE(self)->tp_free((PyObject *)self);
        }
"""


def test_the_weakref_patch_goes_into_every_deallocator(backend: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "codec").mkdir()
    source = tmp_path / "codec" / "__native.c"
    source.write_text(DEALLOCS)
    assert backend.patch_weakref_clearing(tmp_path) == 2
    text = source.read_text()
    clear = "if (Py_TYPE(self)->tp_weaklistoffset) PyObject_ClearWeakRefs((PyObject *)self);\n"
    assert text.count("PyObject_GC_UnTrack(self);\n" + clear) == 2
    assert text.replace(clear, "") == DEALLOCS
    assert backend.patch_weakref_clearing(tmp_path) == 0  # once only
    assert source.read_text() == text


def test_the_weakref_patch_fails_loudly_when_mypycs_c_changed(
    backend: ModuleType, tmp_path: Path
) -> None:
    source = tmp_path / "__native.c"
    source.write_text(DEALLOCS.replace("    PyObject_GC_UnTrack(self);\n", "", 1))
    with pytest.raises(RuntimeError, match="_buffer___Buffer_dealloc has no"):
        backend.patch_weakref_clearing(tmp_path)
    source.write_text("static void\nsomething_else(void)\n{\n}\n")
    with pytest.raises(RuntimeError, match="no compiled deallocator found"):
        backend.patch_weakref_clearing(tmp_path)


@pytest.mark.slow
def test_the_default_wheel_is_pure_python(tmp_path: Path) -> None:
    """Without ``WIREKIT_COMPILE`` the wheel is ``py3-none-any`` with no extension module.
    Built from a copy of the checkout (pip's build isolation fetches setuptools)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs the git checkout")
    work = tmp_path / "wirekit"
    dev.copy_checkout(work, skip=("tests", "docs", "bench"))
    env = {k: v for k, v in os.environ.items() if k != "WIREKIT_COMPILE"}
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp_path, work],
        check=True,
        env=env,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("wirekit-*.whl")
    assert wheel.name.endswith("-py3-none-any.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "codec/_buffer.py" in names
    assert not [n for n in names if n.endswith((".so", ".pyd", ".c"))]
