"""Capture files: format detection, readers, and :func:`parse_file` on top of them.

A file is read once, front to back, and never reopened: the bytes read to detect its
format are put back in front of the rest, so a pipe, a FIFO or standard input (``-`` on
the command line) is read like a regular file. pcap and pcapng are read by
:mod:`codec.capture._containers` (no extra needed).
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Generator, Iterator
from typing import IO, Any

from .._protocol import Protocol
from ._containers import CaptureFileError, read_pcap, read_pcapng
from ._dissect import LINKTYPES
from ._filter import PacketFilter
from ._hexdump import HexDumpError, looks_like_hexdump, parse_hex_lines
from ._parser import CaptureParser, decode_stream
from ._reassembly import DEFAULT_WINDOW
from ._records import ParseStats, Record

__all__ = [
    "FORMATS",
    "CaptureFileError",
    "Source",
    "detect_format",
    "open_source",
    "parse_file",
    "read_frames",
]

#: every value ``format=`` accepts
FORMATS = ("raw", "hex", "pcap", "pcapng")

_PCAP_MAGICS = {
    b"\xd4\xc3\xb2\xa1",
    b"\xa1\xb2\xc3\xd4",
    b"\x4d\x3c\xb2\xa1",
    b"\xa1\xb2\x3c\x4d",
}
_PCAPNG_MAGIC = b"\x0a\x0d\x0d\x0a"

#: bytes looked at to detect a format
_HEAD = 4096

#: how often (in packets or chunks) the progress callback is called
_PROGRESS_EVERY = 2048


def _format_of(head: bytes) -> str:
    if head[:4] in _PCAP_MAGICS:
        return "pcap"
    if head[:4] == _PCAPNG_MAGIC:
        return "pcapng"
    if looks_like_hexdump(head):
        return "hex"
    return "raw"


def detect_format(path: str | os.PathLike[str]) -> str:
    """``"pcap"`` or ``"pcapng"`` by magic number, ``"hex"`` for a hex dump, else ``"raw"``.

    Reads the file's first 4 KiB. For a pipe or standard input use :func:`open_source`,
    which keeps the bytes it looked at.
    """
    with open(path, "rb") as f:
        return _format_of(_read_head(f))


def _read_head(f: IO[bytes]) -> bytes:
    """Up to :data:`_HEAD` bytes, waiting for a slow writer (a pipe may return less)."""
    head = b""
    while len(head) < _HEAD:
        more = f.read(_HEAD - len(head))
        if not more:
            break
        head += more
    return head


class _PutBack(io.RawIOBase):
    """A stream that cannot seek, with the bytes already read from it put back in front.

    Counts the bytes handed out, for progress: a pipe has no ``tell``.
    """

    def __init__(self, head: bytes, raw: IO[bytes], owned: bool) -> None:
        super().__init__()
        self._head = memoryview(head)
        self._raw = raw
        self._owned = owned
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._head:
            n = min(len(b), len(self._head))
            b[:n] = self._head[:n]
            self._head = self._head[n:]
        else:
            n = self._raw.readinto(b)  # type: ignore[attr-defined]
        self.position += n
        return n

    def close(self) -> None:
        try:
            if self._owned:
                self._raw.close()
        finally:
            super().close()


class Source:
    """An opened input: its format, a buffered binary file and how far it has been read.

    Made by :func:`open_source`; a context manager that closes what it opened.
    """

    def __init__(
        self,
        file: IO[bytes],
        fmt: str,
        name: str,
        size: int | None,
        position: Callable[[], int],
        close: Callable[[], None],
    ) -> None:
        #: the bytes, from the first one (nothing consumed by format detection)
        self.file = file
        #: one of :data:`FORMATS`
        self.format = fmt
        #: what to call the input in messages (``"<stdin>"`` for standard input)
        self.name = name
        #: the size in bytes of a regular file; ``None`` for a pipe, FIFO or socket
        self.size = size
        #: bytes read so far (for progress)
        self.position = position
        self._close = close

    def close(self) -> None:
        """Close what :func:`open_source` opened (a caller's file object stays open)."""
        self._close()

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_source(source: str | os.PathLike[str] | IO[bytes], format: str | None = None) -> Source:
    """Open a file, a FIFO, a pipe or a binary file object for reading once, front to back.

    ``source`` is a path (``"-"`` is *not* special here; the command line maps it to
    standard input) or a binary file object (not closed afterwards). The format is
    ``format`` or detected from the first 4 KiB, which are kept: nothing is reopened or
    read twice, so a pipe loses no byte. Raises ``OSError`` as ``open`` does.
    """
    if format is not None and format not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
    owned = not hasattr(source, "read")
    if owned:
        name = os.fsdecode(source)  # type: ignore[arg-type]
        raw: IO[bytes] = open(source, "rb", buffering=0)  # type: ignore[arg-type]  # noqa: SIM115
    else:
        raw = source  # type: ignore[assignment]
        name = str(getattr(raw, "name", "<stream>"))
    try:
        size: int | None = None
        try:
            regular = _is_regular(os.fstat(raw.fileno()).st_mode)
        except (OSError, ValueError, io.UnsupportedOperation):  # no file descriptor
            regular = False
        if regular:
            size = os.fstat(raw.fileno()).st_size
        if raw.seekable() and (regular or not owned):
            start = raw.tell()
            head = _read_head(raw) if format is None else b""
            raw.seek(start)
            buffered: IO[bytes] = (
                io.BufferedReader(raw, 1 << 16)  # type: ignore[type-var]
                if owned
                else raw
            )
            fmt = format or _format_of(head)
            close = buffered.close if owned else _nothing
            return Source(buffered, fmt, name, size, buffered.tell, close)
        head = _read_head(raw) if format is None else b""
        put_back = _PutBack(head, raw, owned)
        reader = io.BufferedReader(put_back, 1 << 16)
        fmt = format or _format_of(head)
        return Source(reader, fmt, name, size, lambda: put_back.position, reader.close)
    except BaseException:
        if owned:
            raw.close()
        raise


def _nothing() -> None:
    pass


def _is_regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def read_frames(f: IO[bytes], fmt: str) -> Generator[tuple[float, int, bytes], None, None]:
    """``(timestamp, link type, frame bytes)`` for every packet of a pcap/pcapng file.

    pcapng: each packet comes with its own interface's link type. Raises
    :class:`CaptureFileError` (with the file offset) on a truncated or corrupt file, and
    for a packet of a link type that is not dissected.
    """
    reader = read_pcap(f) if fmt == "pcap" else read_pcapng(f)
    checked: set[int] = set()
    for ts, linktype, frame in reader:
        if linktype not in checked:
            if linktype not in LINKTYPES:
                raise CaptureFileError(
                    f"link type {linktype} is not supported (supported: "
                    + ", ".join(sorted({f"{v} ({k})" for k, v in LINKTYPES.items()}))
                    + ")"
                )
            checked.add(linktype)
        yield ts, linktype, frame


def _raw_chunks(f: IO[bytes], size: int = 1 << 20) -> Generator[bytes, None, None]:
    # read1: what is there now (up to size), so a slow producer's messages come out as
    # they arrive instead of after a whole MiB has gathered
    read1 = getattr(f, "read1", f.read)
    while chunk := read1(size):
        yield chunk


def _hex_chunks(f: IO[bytes]) -> Generator[bytes, None, None]:
    """The bytes of a hex dump; errors name the line and its byte offset in the file."""
    # newline="": lines keep their ends, so their lengths add up to file offsets
    text = io.TextIOWrapper(f, encoding="ascii", errors="strict", newline="")
    starts: dict[int, int] = {}  # line number -> offset, for the last lines only
    end = 0
    count = 0

    def lines() -> Iterator[str]:
        nonlocal end, count
        for n, line in enumerate(text, 1):
            count = n
            starts[n] = end
            if len(starts) > 4096:
                del starts[next(iter(starts))]
            end += len(line)
            yield line

    try:
        yield from parse_hex_lines(lines())
    except UnicodeDecodeError as exc:
        bad = exc.object[exc.start : exc.start + 1].hex()
        raise CaptureFileError(
            f"not a hex dump: byte 0x{bad} is not ASCII (after line {count})",
            offset=end,
        ) from exc
    except HexDumpError as exc:
        raise CaptureFileError(f"not a hex dump: {exc}", offset=starts.get(exc.line)) from exc
    finally:
        if not f.closed:
            text.detach()


def parse_file(
    protocol: Protocol[Any],
    path: str | os.PathLike[str] | IO[bytes] | Source,
    *,
    format: str | None = None,
    udp_protocol: Protocol[Any] | None = None,
    skip_errors: bool = False,
    packet_filter: PacketFilter | None = None,
    window: int = DEFAULT_WINDOW,
    stats: ParseStats | None = None,
    progress: Callable[[int], None] | None = None,
) -> Generator[Record, None, None]:
    """Decode every message in a capture file, streaming.

    Args:
        protocol: a :class:`~codec.Codec` (or any :class:`~codec.Protocol`) for TCP streams,
            raw files and hex dumps.
        path: the file: a path (a FIFO too), a binary file object (a pipe, standard
            input; left open), or a :class:`Source` from :func:`open_source`.
        format: one of :data:`FORMATS`; ``None`` detects it (magic number, then hex text).
        udp_protocol: for UDP datagrams, when they are framed differently (DNS over UDP
            has no length prefix); defaults to ``protocol``.
        skip_errors: skip undecodable frames and go on; see :class:`CaptureParser`.
        packet_filter: which packets to decode (pcap/pcapng only).
        window: bytes held out of order per TCP direction before a hole is given up.
        stats: a :class:`ParseStats` to fill (counters, skipped problems).
        progress: called now and then with the number of bytes of the file read so far.

    Yields:
        The decoded messages as :class:`Record` s, in capture order: every message
        completed before a problem is yielded before the problem is raised.

    Raises:
        CaptureFileError: a truncated or corrupt file, with the byte offset where it
            goes wrong.
        CaptureDecodeError: an undecodable stream, or a raw file or hex dump that ends
            inside a frame (a :class:`~codec.DecodeError`, with the stream offset).
        OSError: as ``open`` raises it.
    """
    if isinstance(path, Source):
        if format is not None and format != path.format:
            raise ValueError(f"the source was opened as {path.format}, not {format}")
        yield from _parse_source(
            protocol, path, udp_protocol, skip_errors, packet_filter, window, stats, progress
        )
        return
    with open_source(path, format) as src:
        yield from _parse_source(
            protocol, src, udp_protocol, skip_errors, packet_filter, window, stats, progress
        )


def _counting(
    frames: Iterator[tuple[float, int, bytes]],
    progress: Callable[[int], None],
    position: Callable[[], int],
) -> Iterator[tuple[float, int, bytes]]:
    """``frames``, calling ``progress`` with the bytes read every few thousand frames."""
    for count, item in enumerate(frames, 1):
        yield item
        if count % _PROGRESS_EVERY == 0:
            progress(position())


def _parse_source(
    protocol: Protocol[Any],
    src: Source,
    udp_protocol: Protocol[Any] | None,
    skip_errors: bool,
    packet_filter: PacketFilter | None,
    window: int,
    stats: ParseStats | None,
    progress: Callable[[int], None] | None,
) -> Generator[Record, None, None]:
    stats = stats if stats is not None else ParseStats()
    f = src.file
    position = src.position
    if src.format in ("raw", "hex"):
        chunks = _raw_chunks(f) if src.format == "raw" else _hex_chunks(f)
        records = decode_stream(protocol, chunks, skip_errors=skip_errors, stats=stats)
        try:
            for n, rec in enumerate(records, 1):
                yield rec
                if progress is not None and n % _PROGRESS_EVERY == 0:
                    progress(position())
        finally:
            # finish the readers now, while the file is open (not when collected later)
            records.close()
            chunks.close()
        if progress is not None:
            progress(position())
        return
    parser = CaptureParser(
        protocol,
        udp_protocol=udp_protocol,
        skip_errors=skip_errors,
        packet_filter=packet_filter,
        window=window,
        stats=stats,
    )
    frames = read_frames(f, src.format)
    counted = frames if progress is None else _counting(frames, progress, position)
    try:
        yield from parser.frames(counted)
    finally:
        frames.close()
    yield from parser.finish()
    if progress is not None:
        progress(position())
