"""Offline parsing: the same codecs on raw files, hex dumps and pcap/pcapng captures.

>>> import construct as cs
>>> from codec import Codec
>>> from codec.capture import parse_file
>>> codec = Codec(cs.PascalString(cs.Int8ub, "utf8"))
>>> for rec in parse_file(codec, "capture.pcap"):  # doctest: +SKIP
...     print(rec.flow, rec.direction, rec.timestamp, rec.offset, rec.message)

TCP streams are reassembled per flow and direction (out of order, retransmitted and
overlapping segments, sequence wrap-around, SYN/FIN/RST) and decoded incrementally; UDP
datagrams are decoded one by one. Memory stays bounded by the largest frame plus the
reassembly window, whatever the file's size. pcap and pcapng are read
without any extra; nothing here is imported by ``import codec``.
"""

from __future__ import annotations

from ._dissect import LINKTYPES, Segment, dissect
from ._files import (
    FORMATS,
    CaptureFileError,
    Source,
    detect_format,
    open_source,
    parse_file,
    read_frames,
)
from ._filter import PacketFilter
from ._hexdump import HexDumpError, parse_hex_lines
from ._jsonify import to_jsonable
from ._output import PARQUET_COLUMNS, JsonLinesWriter, ParquetWriter, TableWriter, record_dict
from ._parser import CaptureParser, decode_stream
from ._reassembly import DEFAULT_WINDOW, Gap, HalfStream
from ._records import CaptureDecodeError, Direction, Flow, ParseStats, Record, StreamGap

__all__ = [
    "DEFAULT_WINDOW",
    "FORMATS",
    "LINKTYPES",
    "PARQUET_COLUMNS",
    "CaptureDecodeError",
    "CaptureFileError",
    "CaptureParser",
    "Direction",
    "Flow",
    "Gap",
    "HalfStream",
    "HexDumpError",
    "JsonLinesWriter",
    "PacketFilter",
    "ParquetWriter",
    "ParseStats",
    "Record",
    "Segment",
    "Source",
    "StreamGap",
    "TableWriter",
    "decode_stream",
    "detect_format",
    "dissect",
    "open_source",
    "parse_file",
    "parse_hex_lines",
    "read_frames",
    "record_dict",
    "to_jsonable",
]
