"""Whether a module runs compiled: one test for ``codec.COMPILED`` and for the choice of the
compiled length-prefix splitter (``codec._batch``)."""

from __future__ import annotations

from importlib.machinery import EXTENSION_SUFFIXES
from types import ModuleType


def is_compiled(module: ModuleType) -> bool:
    """``True`` when ``module`` was imported from an extension module (the build made with
    ``WIREKIT_COMPILE=1``), ``False`` when from its ``.py`` source."""
    return str(module.__file__).endswith(tuple(EXTENSION_SUFFIXES))
