"""Capture files: format detection, readers, and :func:`parse_file` on top of them.

pcap and pcapng are read with dpkt (the ``capture`` extra): it is maintained, pure Python,
has no dependencies and reads both formats (plus nanosecond pcap) from any file object, one
packet at a time, which is what streaming needs. Only its container readers are used; the
frames themselves are dissected by :mod:`codec.capture._dissect`. dpkt is imported here,
lazily, so ``import codec`` never loads it.
"""

from __future__ import annotations

import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import IO, Any

from .._protocol import Protocol
from ._dissect import LINKTYPES
from ._filter import PacketFilter
from ._hexdump import HexDumpError, looks_like_hexdump, parse_hex_lines
from ._parser import CaptureParser, decode_stream
from ._reassembly import DEFAULT_WINDOW
from ._records import ParseStats, Record

__all__ = ["FORMATS", "CaptureFileError", "detect_format", "parse_file", "read_frames"]

#: every value ``format=`` accepts
FORMATS = ("raw", "hex", "pcap", "pcapng")

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

#: how often (in packets or chunks) the progress callback is called
_PROGRESS_EVERY = 2048


class CaptureFileError(ValueError):
    """A file that cannot be read as the capture format it claims (or was given) to be."""


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"pcap"`` or ``"pcapng"`` by magic number, ``"hex"`` for a hex dump, else ``"raw"``."""
    with open(path, "rb") as f:
        head = f.read(4096)
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:4] == _PCAPNG_MAGIC:
        return "pcapng"
    if looks_like_hexdump(head):
        return "hex"
    return "raw"


def _dpkt() -> Any:
    try:
        import dpkt
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise CaptureFileError(
            "reading pcap/pcapng needs dpkt: pip install 'wirekit[capture]'"
        ) from exc
    return dpkt


def read_frames(f: IO[bytes], fmt: str) -> Iterator[tuple[float, int, bytes]]:
    """``(timestamp, link type, frame bytes)`` for every packet of a pcap/pcapng file.

    pcapng: the link type and timestamp resolution are those of the file's first
    interface (dpkt's reader reads one interface per file, as dumpcap writes for one
    capture interface).
    """
    dpkt = _dpkt()
    try:
        reader = dpkt.pcap.Reader(f) if fmt == "pcap" else dpkt.pcapng.Reader(f)
    except (ValueError, struct.error, dpkt.Error) as exc:
        raise CaptureFileError(f"not a readable {fmt} file: {exc}") from exc
    linktype = reader.datalink()
    if linktype not in LINKTYPES:
        raise CaptureFileError(
            f"link type {linktype} is not supported (supported: "
            + ", ".join(sorted({f"{v} ({k})" for k, v in LINKTYPES.items()}))
            + ")"
        )
    it = iter(reader)
    while True:
        try:
            ts, frame = next(it)
        except StopIteration:
            return
        except (ValueError, struct.error, dpkt.Error) as exc:
            where = f" near byte {f.tell()}" if f.seekable() else ""
            raise CaptureFileError(f"corrupt or truncated {fmt} file{where}: {exc!r}") from exc
        yield float(ts), linktype, frame


def _raw_chunks(f: IO[bytes], size: int = 1 << 20) -> Iterator[bytes]:
    while chunk := f.read(size):
        yield chunk


def _hex_chunks(f: IO[bytes]) -> Iterator[bytes]:
    text = io.TextIOWrapper(f, encoding="ascii", errors="strict", newline=None)
    try:
        yield from parse_hex_lines(text)
    except UnicodeDecodeError as exc:
        raise CaptureFileError(f"not a hex dump (non-ASCII text): {exc}") from exc
    except HexDumpError as exc:
        raise CaptureFileError(f"not a hex dump: {exc}") from exc
    finally:
        text.detach()


def parse_file(
    protocol: Protocol[Any],
    path: str | os.PathLike[str],
    *,
    format: str | None = None,
    udp_protocol: Protocol[Any] | None = None,
    skip_errors: bool = False,
    packet_filter: PacketFilter | None = None,
    window: int = DEFAULT_WINDOW,
    stats: ParseStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Iterator[Record]:
    """Decode every message in a capture file, streaming.

    Args:
        protocol: a :class:`~codec.Codec` (or any :class:`~codec.Protocol`) for TCP streams,
            raw files and hex dumps.
        path: the file.
        format: one of :data:`FORMATS`; ``None`` detects it (magic number, then hex text).
        udp_protocol: for UDP datagrams, when they are framed differently (DNS over UDP
            has no length prefix); defaults to ``protocol``.
        skip_errors: skip undecodable frames and go on; see :class:`CaptureParser`.
        packet_filter: which packets to decode (pcap/pcapng only).
        window: bytes held out of order per TCP direction before a hole is given up.
        stats: a :class:`ParseStats` to fill (counters, skipped problems).
        progress: called now and then with the number of bytes of the file read so far.

    Yields :class:`Record` s in capture order. Raises :class:`CaptureFileError` for a file
    that is not of its format and :class:`~codec.capture.CaptureDecodeError` (a
    :class:`~codec.DecodeError`) for an undecodable stream; ``OSError`` as ``open`` does.
    """
    fmt = format if format is not None else detect_format(path)
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    stats = stats if stats is not None else ParseStats()
    with open(path, "rb") as f:
        if fmt in ("raw", "hex"):
            chunks = _raw_chunks(f) if fmt == "raw" else _hex_chunks(f)
            records = decode_stream(protocol, chunks, skip_errors=skip_errors, stats=stats)
            for n, rec in enumerate(records, 1):
                yield rec
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(f.tell())
            return
        parser = CaptureParser(
            protocol,
            udp_protocol=udp_protocol,
            skip_errors=skip_errors,
            packet_filter=packet_filter,
            window=window,
            stats=stats,
        )
        frame = parser.frame
        for count, (ts, linktype, data) in enumerate(read_frames(f, fmt), 1):
            found = frame(ts, linktype, data)
            if found:
                yield from found
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(f.tell())
        yield from parser.finish()
        if progress is not None:
            progress(f.tell())
