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


def _struct_error(obj: Any, node: Any) -> None:
    """After reading a ``Struct``'s given values failed (or for a value of another type than
    dict/Container): raise what construct's ``Struct._build`` raises first for ``obj``, its
    context's ``update`` (a value that is no mapping) or its lookups in field order (``get``
    for fields built from nothing, ``[]`` for the others). Returns when construct would
    accept ``obj``. (No context argument: the generated code drops contexts nothing reads,
    and mentioning one here would keep it.)"""
    cs.Container().update(obj)
    for sc in node.subcons:
        if sc.flagbuildnone:
            obj.get(sc.name, None)
        else:
            obj[sc.name]


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
    out = bytes(data) if type(data) is bytearray else data
    if not isinstance(out, bytes):  # (construct takes no len() here, unlike GreedyBytes)
        raise cs.StringError(f"given non-bytes value, perhaps unicode? {out!r}", path=path)
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


def _construct_build(node: Any, obj: Any, ctx: Any, path: str, offset: int) -> tuple[Any, bytes]:
    """What construct's ``node._build`` returns and writes, on a stream at ``offset``."""
    stream = _FieldStream()
    stream._offset = offset
    own = "_io" in ctx
    if own:
        ctx["_io"] = stream
    try:
        ret = node._build(obj, stream, ctx, path)
    finally:
        if own:
            ctx["_io"] = None
    data = stream.getvalue()
    if stream.tell() - offset != len(data):
        raise Reseek
    return ret, data


def _fallback(node: Any, obj: Any, ctx: Any, path: str, out: bytearray, base: int) -> Any:
    """Build one node with construct itself and append its bytes to ``out``.

    ``base`` is where construct's stream starts in ``out`` (the frame's first byte, or 0 in
    a scratch buffer for a ``Prefixed``/``FixedSized`` body, as construct uses a fresh
    stream there). Returns what the node's ``_build`` returns (later fields see it).
    """
    # (the body of _construct_build, inlined: one call less on every fallback field)
    stream = _FieldStream()
    stream._offset = offset = len(out) - base
    own = "_io" in ctx
    if own:
        ctx["_io"] = stream
    try:
        ret = node._build(obj, stream, ctx, path)
    finally:
        if own:
            ctx["_io"] = None
    data = stream.getvalue()
    if stream.tell() - offset != len(data):
        raise Reseek
    out += data
    return ret


#: bytes.translate table: a bit stream's b"\x00"/b"\x01" to the digits "0"/"1"
_BIT_DIGITS = bytes(range(256)).replace(b"\x00\x01", b"01", 1)


def _bits_fallback(node: Any, obj: Any, ctx: Any, path: str, pos: int) -> tuple[Any, int, int]:
    """Build one node of a Bitwise region with construct itself, on a bit stream at bit
    ``pos`` of the region (construct's own bit stream starts at the region's start).

    Returns what ``_build`` returns, and the bits it wrote as an integer and a width. A
    node that writes anything but bits (``bits2bytes`` would fail on it, at a moment that
    depends on what follows) makes the generated function start over with construct.
    """
    ret, data = _construct_build(node, obj, ctx, path, pos)
    if not data:
        return ret, 0, 0
    if data.translate(None, b"\x00\x01"):
        raise Reseek
    return ret, int(data.translate(_BIT_DIGITS), 2), len(data)


def _bits_value(value: int, width: Any, signed: bool, swapped: bool, path: str) -> int:
    """``BitsInteger._build`` with a width known at run time: the bits of ``value`` as a
    non-negative integer of ``width`` bits, or construct's ``IntegerError``."""
    if width <= 0:
        raise cs.IntegerError(f"length {width} must be positive", path=path)
    lo, hi = (-(2**width // 2), 2**width // 2 - 1) if signed else (0, 2**width - 1)
    if not lo <= value <= hi:
        raise cs.IntegerError(f"number {value} is out of range (min={lo}, max={hi})", path=path)
    bits: int = value & ((1 << width) - 1)
    if swapped:
        if width % 8:
            raise cs.IntegerError(
                f"little-endianness is only defined if data length {width} is multiple of 8",
                path=path,
            )
        bits = int.from_bytes(bits.to_bytes(width // 8, "little"), "big")
    return bits


def _bits_amount(count: int, size: int | None, path: str) -> None:
    """Raise what construct raises for a Bitwise region of ``count`` bits: ``bits2bytes``'s
    ``ValueError`` (not whole bytes), ``Transformed``'s ``StreamError`` (not its ``size``
    bytes), or, for a Restreamed region (``size`` None), its stream's ``ValueError``."""
    if size is None:
        raise ValueError(
            f"closing stream but {count % 8} unwritten bytes remain, 8 is encoded unit"
        )
    if count % 8:
        raise ValueError(f"data length {count} must be a multiple of 8")
    raise cs.StreamError(
        "encoding transformation produced wrong amount of bytes, "
        f"{count // 8} instead of expected {size}",
        path=path,
    )


#: the names the generated code sees
HELPERS: dict[str, Any] = {
    "_context": _context,
    "_top": _top,
    "_struct_error": _struct_error,
    "_write_bytes": _write_bytes,
    "_varint": _varint,
    "_blame": _blame,
    "_greedy": _greedy,
    "_int_error": _int_error,
    "_flags": _flags,
    "_encode_error": _encode_error,
    "_fallback": _fallback,
    "_bits_fallback": _bits_fallback,
    "_bits_value": _bits_value,
    "_bits_amount": _bits_amount,
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
    "StreamError": cs.StreamError,
    "ExplicitError": cs.ExplicitError,
}
