"""One registry: for each construct class, how the codec parses, builds, measures and
analyses it.

Each of the codec's four walks over a schema (the parse generator in ``_compiler``, the
build generator in ``_encoder``, the measuring walk in ``_measure`` and the framing
analysis in ``_analysis``) asks this registry what to do with a node, by the node's class:
:func:`resolve` goes up ``type(node).__mro__`` to the nearest registered class, so a
subclass is handled as its nearest registered base, unless it overrides ``_parse`` or
``_build`` (``_decode``/``_encode``): then its own code runs for it. A part the entry
leaves out (``None``) means what an unregistered class gets: construct's own
``_parse``/``_build`` for that node, a trial parse to measure it, nothing special to the
analysis.

The built-in entries are in :mod:`codec._constructs` (the coverage list); users add theirs
with :func:`register_construct` (see ``docs/codec.md``, "Your own constructs"). The registry
is read while a :class:`~codec.Codec` is built, never while it decodes or encodes: the
generated code is the same however the emitters are found.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import construct as cs

if TYPE_CHECKING:
    from ._compiler import ParseGen
    from ._encoder import BuildGen

__all__ = [
    "Analysis",
    "BuildEmitter",
    "CodeGen",
    "Entry",
    "MeasureFunction",
    "ParseEmitter",
    "RegistryError",
    "builtin_as",
    "emitted",
    "entries",
    "register_construct",
    "resolve",
    "unregister_construct",
]

#: a user's parse emitter: emit code parsing ``node`` at ``pos``, return the variable
#: holding its value (see ``ParseGen``)
ParseEmitter = Callable[["ParseGen", Any], str]
#: a user's build emitter: emit code appending ``node`` built from the value in
#: ``gen.value``, return the variable holding what construct's ``_build`` returns
BuildEmitter = Callable[["BuildGen", Any], str]
#: ``measure(node, data, pos, end)``: where the field starting at ``data[pos]`` ends,
#: reading ``data[pos:end]`` at most; ``None`` when those bytes are not enough to tell
MeasureFunction = Callable[[Any, "bytes | bytearray", int, int], "int | None"]


class RegistryError(TypeError):
    """A registration the codec cannot use (not a construct class, not callable, twice)."""


class _Lines(Protocol):
    """What a generator keeps its lines in (``_compiler.Emitter``, ``_BuildCompiler``)."""

    depth: int

    def line(self, text: str) -> None: ...
    def var(self, prefix: str = ...) -> str: ...
    def const(self, obj: Any, prefix: str = ...) -> str: ...


class CodeGen:
    """What parse and build emitters share: lines, blocks and names of the generated code."""

    def __init__(self, lines: _Lines, path: str) -> None:
        self._lines = lines
        #: where the node is in the schema, as construct's errors say it
        self.path = path

    def line(self, code: str) -> None:
        """Add one line of Python at the current indentation."""
        self._lines.line(code)

    @contextmanager
    def block(self) -> Iterator[None]:
        """Indent the lines added inside: the body of an ``if``/``for`` just emitted."""
        self._lines.depth += 1
        try:
            yield
        finally:
            self._lines.depth -= 1

    def var(self, prefix: str = "u") -> str:
        """A fresh variable name."""
        return self._lines.var(prefix)

    def const(self, obj: object) -> str:
        """The name under which the generated code sees ``obj`` (a table, a function)."""
        return self._lines.const(obj, "U")


@dataclass(frozen=True)
class Analysis:
    """What the framing analysis needs to know about a construct class.

    * ``greedy``: it reads to the end of its stream (``GreedyBytes``), so a stream of
      frames made of it has no boundaries; a callable decides per node.
    * ``children``: the constructs it parses in turn from its own stream, where a greedy
      one would read to that stream's end (a ``Struct``'s fields, a ``Switch``'s cases).
    * ``overreads``: it may read past what it consumes (``Peek``) or to its stream's end.
    * ``bounded``: it parses what it wraps from a stream of its own (``Prefixed``,
      ``FixedSized``): the constructs it still reads from the enclosing stream.
    * ``seeks``: it moves the stream position (``Seek``, ``Pointer``): only a trial parse of
      the whole frame follows it.
    * ``choice``: it may or may not consume the next byte (``Select``, ``Optional``).
    """

    greedy: bool | Callable[[Any], bool] = False
    children: Callable[[Any], Sequence[Any]] | None = None
    overreads: bool = False
    bounded: Callable[[Any], Sequence[Any]] | None = None
    seeks: bool = False
    choice: bool = False

    def is_greedy(self, node: Any) -> bool:
        return self.greedy(node) if callable(self.greedy) else self.greedy


@dataclass(frozen=True)
class Entry:
    """The registered parts of one construct class (``None``: the default for that part).

    Built-in entries (``builtin``) hold the generators' own internal emitters; a user's
    entry holds the public ones, which the walkers call through ``ParseGen``/``BuildGen``.
    """

    cls: type
    parse: Callable[..., Any] | None = None
    build: Callable[..., Any] | None = None
    #: built-in only: the build emitter inside a ``Bitwise`` region
    build_bits: Callable[..., Any] | None = None
    measure: Callable[..., Any] | None = None
    analysis: Analysis | None = None
    builtin: bool = False


_ENTRIES: dict[type, Entry] = {}
_loaded = False


def _load_builtins() -> None:
    """Register the built-in entries, once (``codec/__init__`` imports them; this is for a
    walker used before that import finished). A second thread waits on the import lock."""
    global _loaded
    if not _loaded:
        from . import _constructs  # noqa: F401  (registers the built-in entries)

        _loaded = True


def entries() -> dict[type, Entry]:
    """Every registered class and its entry (built-in ones first)."""
    _load_builtins()
    return dict(_ENTRIES)


def resolve(cls: type) -> Entry | None:
    """The entry of ``cls``'s nearest registered class in its MRO, or ``None``."""
    _load_builtins()
    for base in cls.__mro__:
        entry = _ENTRIES.get(base)
        if entry is not None:
            return entry
    return None


def overrides(cls: type, entry: Entry, methods: tuple[str, ...]) -> bool:
    """True when ``cls`` (resolved to ``entry``) defines one of ``methods`` differently
    from the registered class: a user's emitter is for what the registered class does."""
    return any(getattr(cls, m, None) is not getattr(entry.cls, m, None) for m in methods)


#: what a subclass overrides to parse or build differently from its registered class
PARSE_METHODS = ("_parse", "_decode")
BUILD_METHODS = ("_build", "_encode")


def builtin_as(node: Any, cls: type) -> bool:
    """True when ``node`` is compiled as the built-in class ``cls``: its class resolves to
    ``cls``'s entry and parses and builds as ``cls`` does (a subclass of yours that
    overrides ``_parse`` or ``_build``, or that you registered, is not)."""
    entry = resolve(type(node))
    if entry is None or entry.cls is not cls or not entry.builtin:
        return False
    return type(node) is cls or not overrides(type(node), entry, PARSE_METHODS + BUILD_METHODS)


def emitted(part: str, node: Any, result: object, depth: int, depth_after: int) -> str:
    """Check what a user's ``part`` emitter returned for ``node``: the name of a variable,
    with every block it opened closed (``depth`` the indentation before, ``depth_after``
    after)."""
    if not isinstance(result, str) or not result:
        raise TypeError(
            f"the {part} emitter of {type(node).__name__} returned {result!r}, not the name "
            "of the variable holding its result"
        )
    if depth_after != depth:
        raise TypeError(f"the {part} emitter of {type(node).__name__} left a block open")
    return result


def register_builtin(classes: type | tuple[type, ...], **parts: Any) -> None:
    """Register a construct class the codec supports out of the box (``_constructs``)."""
    for cls in classes if isinstance(classes, tuple) else (classes,):
        if cls in _ENTRIES:
            raise RegistryError(f"{cls.__name__} is registered twice in codec._constructs")
        _ENTRIES[cls] = Entry(cls, builtin=True, **parts)


def register_construct(
    cls: type[cs.Construct],
    *,
    parse: ParseEmitter | None = None,
    build: BuildEmitter | None = None,
    measure: MeasureFunction | None = None,
    analysis: Analysis | None = None,
    replace: bool = False,
) -> None:
    """Teach the codec your own ``construct.Construct`` subclass.

    Each part is optional; one left out is handled as for a class the codec does not know:

    * ``parse(gen, node) -> str``: emits the Python lines that parse ``node`` (see
      :class:`codec.ParseGen`); without it, construct's own ``_parse`` parses that field.
    * ``build(gen, node) -> str``: emits the lines that build it (see
      :class:`codec.BuildGen`); without it, construct's own ``_build`` builds that field.
    * ``measure(node, data, pos, end) -> int | None``: where the field starting at
      ``data[pos]`` ends, reading no further than ``data[end - 1]``, or ``None`` when the
      bytes so far do not tell yet (it is asked again with more); without it, the field is
      measured by parsing it (or by the ``parse`` emitter's code).
    * ``analysis``: an :class:`codec.Analysis` (reads to the end of its stream, the
      constructs it parses...); without it, nothing special.

    A subclass of ``cls`` is handled by these parts too, unless it overrides ``_parse``
    (``_decode`` for an adapter) or ``_build`` (``_encode``): then the emitter does not
    describe it and construct's own code runs; register the subclass to change that.

    Registering a class twice raises :class:`codec.RegistryError` unless ``replace=True``;
    so does a class that is not a ``construct.Construct`` subclass, a part that is not
    callable. Replacing a built-in entry (``replace=True`` on a class the codec supports,
    say ``construct.Struct``) is at your own risk: the codec's tests do not cover it.
    """
    _load_builtins()
    if not isinstance(cls, type) or not issubclass(cls, cs.Construct):
        raise RegistryError(f"register_construct needs a construct.Construct subclass, not {cls!r}")
    for name, part in (("parse", parse), ("build", build), ("measure", measure)):
        if part is not None and not callable(part):
            raise RegistryError(
                f"{cls.__name__}: {name}= must be a callable, not {type(part).__name__}"
            )
    if analysis is not None and not isinstance(analysis, Analysis):
        raise RegistryError(
            f"{cls.__name__}: analysis= must be a codec.Analysis, not {type(analysis).__name__}"
        )
    old = _ENTRIES.get(cls)
    if old is not None and not replace:
        what = "codec supports it already" if old.builtin else "it is registered already"
        raise RegistryError(
            f"{cls.__module__}.{cls.__qualname__} cannot be registered: {what} "
            "(replace=True replaces its entry)"
        )
    _ENTRIES[cls] = Entry(cls, parse=parse, build=build, measure=measure, analysis=analysis)


def unregister_construct(cls: type[cs.Construct]) -> None:
    """Forget a class registered with :func:`register_construct` (built-in ones stay)."""
    entry = _ENTRIES.get(cls)
    if entry is None or entry.builtin:
        raise RegistryError(f"{cls.__qualname__} is not a class registered by the user")
    del _ENTRIES[cls]
