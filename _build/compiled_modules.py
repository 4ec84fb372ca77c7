"""What the compiled build (``WIREKIT_COMPILE=1``) compiles: the one list.

The build backend (``wirekit_build``), ``bench/build_mypyc.py`` and the tests read it from
here. Plain data, no imports: the tests load it without setuptools or mypyc.
"""

from __future__ import annotations

#: the modules compiled (paths from the root): the hot path of one read with a plain ``def
#: process`` on the native engine: the engine, the session and its core, the receive
#: buffer, the codec's ``decode_many`` (a closure in ``_codec``) and ``encode_into`` (the
#: length-prefix shortcut, in ``_encoder``), and ``_splitter`` (the batch function for
#: length-prefixed ``bytes`` bodies, used only when compiled). The per-schema functions
#: the codec generates stay Python.
MODULES = [
    "transport/_native_engine.py",
    "transport/_session.py",
    "transport/_core.py",
    "codec/_buffer.py",
    "codec/_codec.py",
    "codec/_encoder.py",
    "codec/_splitter.py",
]

#: mypyc's group name: the shared library holding the compiled code is
#: ``codec/_compiled__mypyc.<abi>.so``, inside a package, so that it is found wherever the
#: package is (a wheel, an editable install, a checkout), not only at the top of ``sys.path``
GROUP = "codec._compiled"


def module_names() -> list[str]:
    """:data:`MODULES` as dotted module names (``codec._buffer``, ...)."""
    return [path.removesuffix(".py").replace("/", ".") for path in MODULES]
