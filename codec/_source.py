"""Generated source that stays visible: compiled under a ``linecache`` name, kept readable.

The codec generates one Python function per schema and direction (the batch decoder in
:mod:`codec._batch`, the builder and ``encode_into`` in :mod:`codec._encoder`). Compiled
from a string, such a function would show in a traceback as ``File "<string>"`` with no
line: the one place a user needs to see what their schema became. So every generated
source goes through :func:`exec_generated`, which

* compiles it under a unique pseudo file name, ``<wirekit-codec KIND NAME 0xN>``;
* registers the text with :mod:`linecache` under that name, so ``traceback`` (and pdb)
  print the generated line; the entry is dropped when the code object is collected (a
  process that creates codecs in a loop does not keep every source forever, and a
  traceback that still holds a frame keeps the code object, hence its lines);
* keeps the text on the function as ``__wirekit_source__`` and the name as
  ``__wirekit_filename__`` (what :meth:`codec.Codec.source` shows).
"""

from __future__ import annotations

import itertools
import linecache
import weakref
from collections.abc import Callable
from typing import Any

from ._framing import TrialParse

__all__ = ["codec_source", "exec_generated", "generated_source"]

_SERIAL = itertools.count(1)


def _forget(filename: str) -> None:
    linecache.cache.pop(filename, None)


def exec_generated(text: str, kind: str, name: str, namespace: dict[str, Any], func: str) -> Any:
    """Compile and run ``text`` in ``namespace``; return its function ``func``.

    Args:
        text: the generated module source (one or more ``def``).
        kind: what it does (``decode``, ``build``, ``encode``), shown in the file name.
        name: what it was generated from (the schema's class), shown in the file name.
        namespace: the globals the generated code sees; ``func`` is defined in it.
        func: the name of the function to return.
    """
    filename = f"<wirekit-codec {kind} {name} 0x{next(_SERIAL):x}>"
    code = compile(text, filename, "exec")
    lines = text.splitlines(keepends=True)
    # (size, mtime, lines, name): an mtime of None tells linecache.checkcache to keep it
    linecache.cache[filename] = (len(text), None, lines, filename)
    exec(code, namespace)
    fn = namespace[func]
    # the function's own code object lives as long as the function or any frame of it
    weakref.finalize(fn.__code__, _forget, filename)
    fn.__wirekit_source__ = text
    fn.__wirekit_filename__ = filename
    return fn


def generated_source(fn: Callable[..., Any] | None) -> tuple[str, str] | None:
    """``(pseudo file name, source)`` of a generated function, ``None`` for any other."""
    text = getattr(fn, "__wirekit_source__", None)
    if text is None:
        return None
    return getattr(fn, "__wirekit_filename__", "<wirekit-codec>"), text


def codec_source(codec: Any, batch_fill: Any, builder: Any, build_note: str) -> str:
    """The text of :meth:`codec.Codec.source`: every generated part of ``codec``, each
    under a comment naming its pseudo file name (as tracebacks show it), and a comment in
    place of a part that is not generated, saying what runs instead.

    ``codec`` hands over what is not public: its batch function (``None`` when frames are
    not decoded in batches), its builder (``None`` when construct builds) and why not.
    """
    parts: list[str] = []

    def part(title: str, fn: Any, instead: str) -> None:
        found = generated_source(fn)
        if found is None:
            parts.append(f"# {title}: not generated; {instead}\n")
        else:
            filename, text = found
            parts.append(f"# {title}: {filename}\n{text}")

    if batch_fill is not None:
        part(
            "decode (a batch of frames)",
            batch_fill,
            "a hand-written length-prefix splitter (codec._splitter.LengthSplitter) copies "
            "out each frame's body",
        )
    else:
        why = (
            "a trial parse finds the frames"
            if isinstance(codec.framing, TrialParse)
            else "fast=False"
        )
        part("decode", None, f"schema.parse parses each frame ({why})")
    why = f"schema.build builds each message ({build_note})"
    part("build (one message)", builder, why)
    if builder is not None:
        enc = codec.encode_into
        general = getattr(enc, "__wirekit_general__", None)
        if general is not None:
            parts.append(
                "# encode_into: a bytes value short enough is appended behind its length "
                "prefix directly (codec._encoder.blob_encode_into); any other value goes to:\n"
            )
            enc = general
        if generated_source(enc) is not None:
            part("encode_into (one message, appended)", enc, "")
        elif codec.explicit:
            parts.append("# encode_into: the build function above, then the explicit framing\n")
        else:
            parts.append(
                "# encode_into: the build function above, wrapped to roll back and map errors "
                "(it falls back to construct for some node, so it is not inlined)\n"
            )
    return "\n".join(parts)
