"""``Codec``'s type variable, in a module of its own (never compiled).

mypyc compiles ``if TYPE_CHECKING: ... else: ...`` with the ``else`` branch as unreachable
(mypy treats ``TYPE_CHECKING`` as true) and raises at import; kept here, the run-time
``TypeVar`` and the type checker's defaulting one stay as they were.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

__all__ = ["T"]

if TYPE_CHECKING:
    # PEP 696: construct has no type hints, so ``Codec(STRING8)`` gives a type checker
    # nothing to infer ``T`` from; the default makes it ``Codec[Any]`` instead of an error
    # ("Need type annotation"). (typing's own TypeVar takes ``default`` from Python 3.13.)
    from typing_extensions import TypeVar as _DefaultingTypeVar

    T = _DefaultingTypeVar("T", default=Any)
else:
    T = TypeVar("T")
