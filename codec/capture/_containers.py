"""pcap and pcapng container readers: ``(timestamp, link type, frame)`` for every packet.

Both formats are read here with :mod:`struct`, not with a library, for three reasons a
user sees: a file cut short or damaged is always an error naming the byte where it went
wrong (dpkt, used before, yielded the cut packet of a truncated pcap as if it were whole and
ended with status 0, and reported a truncated pcapng as ``NeedData()``); a corrupt length
field cannot make the reader swallow gigabytes (a record or block over :data:`MAX_BLOCK`
is an error, so memory stays bounded by one packet); and a pcapng file whose interfaces have
different link types (``dumpcap -i eth0 -i any``) is read with each packet's own link type.

The readers need nothing but a binary file object whose ``read(n)`` returns ``n`` bytes
unless the file ends (any ``io.BufferedReader``, pipes included): they never seek or tell.

Formats: pcap (microsecond and nanosecond, both byte orders; the FCS bits of the link type
field are masked off) and pcapng (several sections, either byte order; Enhanced, Simple
and the obsolete Packet blocks; ``if_tsresol`` and ``if_tsoffset``; every other block is
skipped).
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import IO

__all__ = ["MAX_BLOCK", "CaptureFileError", "read_pcap", "read_pcapng"]

#: largest pcap record or pcapng block accepted, in bytes: far above any real frame
#: (jumbo frames are 9 KiB, tcpdump's snapshot length 256 KiB), low enough that a corrupt
#: length field is reported instead of read into memory.
MAX_BLOCK = 64 << 20

_PCAP_HEADER = struct.Struct("IHHiIII")
_PCAP_MAGIC_US = 0xA1B2C3D4
_PCAP_MAGIC_NS = 0xA1B23C4D

_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_BOM = 0x1A2B3C4D
_IDB, _PB, _SPB, _EPB = 1, 2, 3, 6
_OPT_TSRESOL, _OPT_TSOFFSET = 9, 14


class CaptureFileError(ValueError):
    """A file that cannot be read as the capture format it claims (or was given) to be.

    ``offset`` is the byte of the file where the problem starts (``None`` when no single
    byte is to blame, e.g. a missing extra); it is also part of the message.
    """

    def __init__(self, reason: str, *, offset: int | None = None) -> None:
        self.reason = reason
        self.offset = offset
        super().__init__(reason if offset is None else f"{reason} (at byte {offset})")


def _cut(fmt: str, what: str, offset: int, need: int, got: int) -> CaptureFileError:
    return CaptureFileError(
        f"corrupt or truncated {fmt} file: {what} needs {need} bytes, the file ends after {got}",
        offset=offset,
    )


def read_pcap(f: IO[bytes]) -> Iterator[tuple[float, int, bytes]]:
    """Every packet of a classic pcap file, in file order."""
    head = f.read(_PCAP_HEADER.size)
    if len(head) < 4:
        raise _cut("pcap", "the file header", 0, _PCAP_HEADER.size, len(head))
    order = ""
    for candidate in ("<", ">"):
        (magic,) = struct.unpack(candidate + "I", head[:4])
        if magic in (_PCAP_MAGIC_US, _PCAP_MAGIC_NS):
            order = candidate
            break
    if not order:
        raise CaptureFileError(f"not a pcap file: magic number {head[:4].hex()}", offset=0)
    if len(head) < _PCAP_HEADER.size:
        raise _cut("pcap", "the file header", 0, _PCAP_HEADER.size, len(head))
    magic, major, _minor, _zone, _sigfigs, _snaplen, network = struct.unpack(
        order + _PCAP_HEADER.format, head
    )
    if major != 2:
        raise CaptureFileError(f"pcap version {major} is not supported (only 2)", offset=4)
    linktype = network & 0xFFFF  # the upper bits say whether frames carry an FCS
    divisor = 1e9 if magic == _PCAP_MAGIC_NS else 1e6
    record = struct.Struct(order + "IIII")
    unpack = record.unpack
    rsize = record.size
    read = f.read
    pos = _PCAP_HEADER.size
    while True:
        hdr = read(rsize)
        if len(hdr) < rsize:
            if hdr:
                raise _cut("pcap", "a packet record header", pos, rsize, len(hdr))
            return
        sec, frac, caplen, _origlen = unpack(hdr)
        if caplen > MAX_BLOCK:
            raise CaptureFileError(
                f"corrupt pcap file: a packet record of {caplen} bytes (over {MAX_BLOCK})",
                offset=pos,
            )
        data = read(caplen)
        if len(data) < caplen:
            raise _cut("pcap", "a packet record", pos, rsize + caplen, rsize + len(data))
        pos += rsize + caplen
        yield sec + frac / divisor, linktype, data


class _Interface:
    __slots__ = ("divisor", "linktype", "offset", "snaplen")

    def __init__(self, linktype: int, snaplen: int, divisor: float, offset: int) -> None:
        self.linktype = linktype
        self.snaplen = snaplen
        self.divisor = divisor
        self.offset = offset


def _interface(body: bytes, order: str, pos: int) -> _Interface:
    """An Interface Description Block's link type, snapshot length and time options."""
    if len(body) < 8:
        raise CaptureFileError("corrupt pcapng file: interface block too short", offset=pos)
    linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", body)
    divisor, tsoffset = 1e6, 0
    i = 8
    while i + 4 <= len(body):
        code, length = struct.unpack_from(order + "HH", body, i)
        value = body[i + 4 : i + 4 + length]
        if code == 0:
            break
        if code == _OPT_TSRESOL and length >= 1:
            res = value[0]
            divisor = float(2 ** (res & 0x7F) if res & 0x80 else 10 ** (res & 0x7F))
        elif code == _OPT_TSOFFSET and length >= 8:
            (tsoffset,) = struct.unpack_from(order + "q", value)
        i += 4 + (length + 3) // 4 * 4
    return _Interface(linktype, snaplen, divisor, tsoffset)


def read_pcapng(f: IO[bytes]) -> Iterator[tuple[float, int, bytes]]:
    """Every packet of a pcapng file, in file order, each with its interface's link type."""
    read = f.read
    pos = 0
    order = ""
    interfaces: list[_Interface] = []
    version_needed = False
    while True:
        head = read(8)
        if len(head) < 8:
            if head:
                raise _cut("pcapng", "a block header", pos, 8, len(head))
            if not order:
                raise CaptureFileError("not a pcapng file: it is empty", offset=0)
            return
        btype = struct.unpack_from("<I", head)[0]
        if btype == _PCAPNG_SHB:
            bom = read(4)
            if len(bom) < 4:
                raise _cut("pcapng", "a section header block", pos, 12, 8 + len(bom))
            if bom == b"\x4d\x3c\x2b\x1a":
                order = "<"
            elif bom == b"\x1a\x2b\x3c\x4d":
                order = ">"
            else:
                raise CaptureFileError(
                    f"corrupt pcapng file: byte-order magic {bom.hex()}", offset=pos + 8
                )
            length = struct.unpack_from(order + "I", head, 4)[0]
            body_len = length - 16  # type, length, byte-order magic ... length
            interfaces = []  # a new section: interface numbers start again
            prefix = bom
            version_needed = True
        elif not order:
            raise CaptureFileError(
                "not a pcapng file: it does not start with a section header block", offset=0
            )
        else:
            length = struct.unpack_from(order + "I", head, 4)[0]
            body_len = length - 12
            prefix = b""
        if length % 4 or body_len < 0 or length > MAX_BLOCK:
            raise CaptureFileError(
                f"corrupt pcapng file: a block of type {btype:#x} claims {length} bytes",
                offset=pos,
            )
        rest = read(body_len + 4)
        if len(rest) < body_len + 4:
            raise _cut("pcapng", f"a block of type {btype:#x}", pos, length, 8 + len(rest))
        if struct.unpack_from(order + "I", rest, body_len)[0] != length:
            raise CaptureFileError(
                f"corrupt pcapng file: the block of type {btype:#x} ends with another length",
                offset=pos,
            )
        # (the block's body; for speed a packet block's keeps the trailing length field)
        body = prefix + rest[:body_len] if prefix else rest
        if version_needed:
            version_needed = False
            major = struct.unpack_from(order + "H", body, 4)[0] if len(body) >= 6 else -1
            if major != 1:
                raise CaptureFileError(
                    f"pcapng version {major} is not supported (only 1)", offset=pos + 12
                )
        start = pos
        pos += length
        if btype in (_EPB, _PB):
            if body_len < 20:
                raise CaptureFileError("corrupt pcapng file: packet block too short", offset=start)
            if btype == _EPB:
                iface, high, low, caplen, _orig = struct.unpack_from(order + "IIIII", body)
            else:
                iface, _drops, high, low, caplen, _orig = struct.unpack_from(order + "HHIIII", body)
            if 20 + caplen > body_len:
                raise CaptureFileError(
                    f"corrupt pcapng file: {caplen} captured bytes in a block of {length}",
                    offset=start,
                )
            if iface >= len(interfaces):
                raise CaptureFileError(
                    f"corrupt pcapng file: packet on interface {iface}, which was not "
                    f"described ({len(interfaces)} interfaces)",
                    offset=start,
                )
            idb = interfaces[iface]
            ts = ((high << 32) | low) / idb.divisor + idb.offset
            yield ts, idb.linktype, body[20 : 20 + caplen]
        elif btype == _SPB:
            if not interfaces or body_len < 4:
                raise CaptureFileError(
                    "corrupt pcapng file: simple packet block without an interface",
                    offset=start,
                )
            idb = interfaces[0]
            (orig,) = struct.unpack_from(order + "I", body)
            caplen = min(orig, idb.snaplen or orig, body_len - 4)
            yield 0.0, idb.linktype, body[4 : 4 + caplen]
        elif btype == _IDB:
            interfaces.append(_interface(body[:body_len], order, start))
