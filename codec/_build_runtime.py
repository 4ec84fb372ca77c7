"""What the generated builders call at run time (see :mod:`codec._encoder`).

Each helper reproduces one piece of construct's ``_build`` with construct's own error
classes and messages, so that a compiled builder fails where ``schema.build`` fails and the
codec's :class:`EncodeError` reads the same; :func:`_fallback` runs construct itself for one
node, on a stream that keeps construct's positions.
"""

from __future__ import annotations

import io
import struct
from typing import Any

import construct as cs
from construct.lib import integer2bytes

from ._framing import parse_context, struct_context

__all__ = [
    "HELPERS",
    "Reseek",
]


class Reseek(BaseException):
    """A node built by construct needs the stream before its own start, or moved the
    position away from the end; the generated function starts over with construct.

    A ``BaseException`` so that construct's ``stream_seek`` (``except Exception``) does not
    turn it into a ``StreamError``.
    """


def _context(parent: Any, obj: Any, subcons: Any) -> Any:
    """The context construct's ``Struct._build`` gives its fields (all values visible)."""
    ctx = struct_context(parent, subcons, index=parent.get("_index"), building=True)
    if type(obj) is dict or type(obj) is cs.Container:
        dict.update(ctx, obj)  # what Container.update does for them, in C
    else:
        ctx.update(obj)
    return ctx


def _top() -> Any:
    return parse_context(building=True)


def _greedy(data: Any, path: str) -> bytes:
    """``GreedyBytes._build``: a bytearray is converted, anything else must be bytes
    (``len`` is taken first, as construct does: a value without one is a ``TypeError``)."""
    out = bytes(data) if type(data) is bytearray else data
    len(out)
    if not isinstance(out, bytes):
        raise cs.StringError(f"given non-bytes value, perhaps unicode? {out!r}", path=path)
    return out


def _write_bytes(data: Any, length: int, path: str) -> bytes:
    """``Bytes._build``: an int becomes ``length`` big-endian bytes, a bytearray is
    converted, anything else must be bytes of exactly ``length``."""
    if isinstance(data, int):
        data = integer2bytes(data, length)
    out = _greedy(data, path)
    if length < 0:
        raise cs.StreamError(f"length must be non-negative, found {length}", path=path)
    if len(out) != length:
        raise cs.StreamError(
            f"bytes object of wrong length, expected {length}, found {len(out)}", path=path
        )
    return out


def _blame(
    packers: tuple[struct.Struct, ...], values: tuple[Any, ...], paths: tuple[str, ...]
) -> None:
    """After a merged ``struct.pack`` failed: raise construct's error for the field at fault."""
    for packer, value, path in zip(packers, values, paths, strict=True):
        try:
            packer.pack(value)
        except struct.error as exc:
            raise cs.FormatFieldError(
                f"struct {packer.format!r} error during building, given value {value!r}",
                path=path,
            ) from exc
    raise cs.FormatFieldError("struct error during building", path=paths[0])  # pragma: no cover


def _varint(value: int, path: str) -> bytes:
    if not isinstance(value, int):
        raise cs.IntegerError(f"value {value} is not an integer", path=path)
    if value < 0:
        raise cs.IntegerError(f"VarInt cannot build from negative number {value}", path=path)
    out = bytearray()
    while value > 0x7F:
        out.append(0x80 | (value & 0x7F))
        value >>= 7
    out.append(value)
    return bytes(out)


def _int_error(value: Any, width: int, signed: bool, path: str, bits: bool) -> None:
    """Raise the ``IntegerError`` construct's ``BitsInteger``/``BytesInteger`` raises for a
    value that is not an integer or does not fit (called once the fast check failed)."""
    if not isinstance(value, int):
        raise cs.IntegerError(f"value {value} is not an integer", path=path)
    if not bits:
        raise cs.IntegerError(
            f"number {value} does not fit width {width}, signed {signed}", path=path
        )
    lo, hi = (-(2**width // 2), 2**width // 2 - 1) if signed else (0, 2**width - 1)
    raise cs.IntegerError(f"number {value} is out of range (min={lo}, max={hi})", path=path)


def _flags(obj: Any, flags: dict[str, Any], known: dict[str, Any], path: str) -> Any:
    """``FlagsEnum._encode``: an integer as is, ``"a|b"`` labels or a dict of booleans
    or-ed together; an unknown label or object is construct's ``MappingError``.

    ``known`` holds the flags construct would look up for a dict key (names not starting
    with ``_``), so the usual key costs one ``get`` instead of ``startswith`` and a lookup.
    """
    try:
        if isinstance(obj, int):
            return obj
        if isinstance(obj, bytes | str):
            labels: Any = obj  # bytes fail in split, with construct's TypeError
            value = 0
            for name in labels.split("|"):
                name = name.strip()
                if name:
                    value |= flags[name]
            return value
        if isinstance(obj, dict):
            value = 0
            for name, on in obj.items():
                bit = known.get(name)
                if bit is not None:
                    if on:
                        value |= bit
                elif not name.startswith("_") and on:
                    value |= flags[name]
            return value
        raise cs.MappingError(f"building failed, unknown object: {obj!r}", path=path)
    except KeyError:
        raise cs.MappingError(f"building failed, unknown label: {obj!r}", path=path) from None


def _encode_error(value: str, encoding: str, path: str) -> cs.StringError:
    """``StringEncoded._encode``'s error (construct leaves the path out; the codec names
    the field, which is what a user needs)."""
    return cs.StringError(f"cannot use encoding {encoding!r} to encode {value!r}", path=path)


class _FieldStream(io.BytesIO):
    """The stream a node built by construct writes to: empty, but its positions are those of
    construct's stream at that point (``_offset`` bytes already written before it).

    ``_offset`` is set after creation: a BytesIO subclass with its own ``__init__`` costs
    twice as much to create."""

    __slots__ = ("_offset",)
    _offset: int

    def tell(self) -> int:
        return super().tell() + self._offset

    def seek(self, pos: int, whence: int = 0, /) -> int:
        if whence == 0:
            pos -= self._offset
        elif whence == 1:
            pos += super().tell()
        else:
            pos += super().seek(0, 2)
        if pos < 0:
            raise Reseek
        return super().seek(pos) + self._offset


def _fallback(node: Any, obj: Any, ctx: Any, path: str, out: bytearray, base: int) -> Any:
    """Build one node with construct itself and append its bytes to ``out``.

    ``base`` is where construct's stream starts in ``out`` (the frame's first byte, or 0 in
    a scratch buffer for a ``Prefixed``/``FixedSized`` body, as construct uses a fresh
    stream there). Returns what the node's ``_build`` returns (later fields see it).
    """
    stream = _FieldStream()
    stream._offset = len(out) - base
    own = "_io" in ctx
    if own:
        ctx["_io"] = stream
    try:
        ret = node._build(obj, stream, ctx, path)
    finally:
        if own:
            ctx["_io"] = None
    data = stream.getvalue()
    if stream.tell() - stream._offset != len(data):
        raise Reseek
    out += data
    return ret


#: the names the generated code sees
HELPERS: dict[str, Any] = {
    "_context": _context,
    "_top": _top,
    "_write_bytes": _write_bytes,
    "_varint": _varint,
    "_blame": _blame,
    "_greedy": _greedy,
    "_int_error": _int_error,
    "_flags": _flags,
    "_encode_error": _encode_error,
    "_fallback": _fallback,
    "_Reseek": Reseek,
    "struct": struct,
    "Container": cs.Container,
    "ListContainer": cs.ListContainer,
    "ConstError": cs.ConstError,
    "MappingError": cs.MappingError,
    "RangeError": cs.RangeError,
    "StringError": cs.StringError,
    "PaddingError": cs.PaddingError,
    "IntegerError": cs.IntegerError,
}
