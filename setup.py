"""setuptools' entry point: everything is in ``pyproject.toml`` except the optional
compiled modules (``WIREKIT_COMPILE=1``, see ``_build/wirekit_build.py``)."""

import sys
from pathlib import Path

from setuptools import setup

sys.path.insert(0, str(Path(__file__).resolve().parent / "_build"))
from wirekit_build import extensions

setup(ext_modules=extensions())
