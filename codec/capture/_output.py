"""Where decoded records go: JSON lines, a readable table, or Parquet for data tools.

Each writer takes records one at a time and holds at most one batch of rows, so memory
stays flat whatever the capture's size. Parquet needs the ``parquet`` extra (pyarrow); it
is imported only when a Parquet file is written.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import IO, Any

from ._jsonify import to_jsonable
from ._records import Record

__all__ = ["PARQUET_COLUMNS", "JsonLinesWriter", "ParquetWriter", "TableWriter", "record_dict"]

#: the Parquet file's columns, in order (one row per message)
PARQUET_COLUMNS = (
    "file",
    "proto",
    "client",
    "client_port",
    "server",
    "server_port",
    "direction",
    "timestamp",
    "offset",
    "message",
)


def _not_serializable(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _make_dumps() -> Callable[[Any], str]:
    """``json.dumps(value, ensure_ascii=False, separators=(",", ":"))``, made once.

    The json module's C encoder is built once here instead of on every call (what
    ``JSONEncoder.encode`` does): 40% less per message. Where it is missing or does not
    give ``JSONEncoder``'s output on a sample, ``JSONEncoder.encode`` is used.
    """
    public = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return public
    try:
        encode = make(
            None, _not_serializable, json.encoder.encode_basestring, None, ":", ",",
            False, False, True,
        )  # fmt: skip
        sample = {"a": [1, 2.5, None, True], "é": 'x\n"', "n": {}}
        if "".join(encode(sample, 0)) != public(sample):
            return public
    except Exception:
        return public
    join = "".join
    return lambda value: join(encode(value, 0))


_dumps = _make_dumps()


def record_dict(rec: Record, file: str | None = None) -> dict[str, Any]:
    """The JSON object ``wirekit parse`` prints for one record (``file`` first when given)."""
    out: dict[str, Any] = {} if file is None else {"file": file}
    out["flow"] = rec.flow.as_dict() if rec.flow is not None else None
    out["direction"] = rec.direction.value if rec.direction is not None else None
    out["timestamp"] = rec.timestamp
    out["offset"] = rec.offset
    out["message"] = to_jsonable(rec.message)
    return out


class JsonLinesWriter:
    """One compact JSON object a line, the same as ``json.dumps(record_dict(rec))``.

    The part of a line that only depends on the flow and direction (the file, the flow's
    five fields, the direction) is serialised once per flow and reused: in a capture of
    short messages it was a third of the cost of a line.
    """

    #: flows whose line prefix is remembered; then the memory starts again
    MAX_FLOWS = 4096

    def __init__(self, out: IO[str], file: str | None = None) -> None:
        self._write = out.write
        self._heads: dict[tuple[Any, Any], str] = {}
        self._lead = ""
        self.file = file

    @property
    def file(self) -> str | None:
        """The input's name, written first as ``"file"`` (``None``: left out)."""
        return self._file

    @file.setter
    def file(self, name: str | None) -> None:
        self._file = name
        self._lead = "{" if name is None else '{"file":' + _dumps(name) + ","
        self._heads = {}

    def write(self, rec: Record) -> None:
        flow, direction = rec.flow, rec.direction
        head = self._heads.get((flow, direction))
        if head is None:
            if len(self._heads) >= self.MAX_FLOWS:
                self._heads.clear()
            head = self._lead + (
                '"flow":'
                + _dumps(None if flow is None else flow.as_dict())
                + ',"direction":'
                + _dumps(None if direction is None else direction.value)
                + ","
            )
            self._heads[flow, direction] = head
        ts = rec.timestamp
        self._write(
            f'{head}"timestamp":{_float(ts) if type(ts) is float else _dumps(ts)},'
            f'"offset":{rec.offset},"message":{_dumps(to_jsonable(rec.message))}}}\n'
        )

    def close(self) -> None:
        pass


_float = float.__repr__  # what json writes for a finite float


class TableWriter:
    """A readable fixed-width table; the message column is compact JSON.

    ``width`` cuts long lines (a terminal's width); 0 keeps them whole.
    """

    def __init__(self, out: IO[str], width: int = 0, file: str | None = None) -> None:
        self.out = out
        self.width = width
        self.file = file
        self.header = False

    def write(self, rec: Record) -> None:
        if not self.header:
            lead = "file  " if self.file is not None else ""
            self.out.write(f"{lead}{'time':<17} {'flow':<44} {'offset':>8}  message\n")
            self.header = True
        ts = f"{rec.timestamp:.6f}" if rec.timestamp is not None else "-"
        flow = rec.flow.describe(rec.direction) if rec.flow is not None else "-"
        msg = json.dumps(to_jsonable(rec.message), separators=(", ", "="))
        lead = f"{self.file}  " if self.file is not None else ""
        line = f"{lead}{ts:<17} {flow:<44} {rec.offset:>8}  {msg}"
        if self.width and len(line) > self.width:
            line = line[: self.width - 3] + "..."
        self.out.write(line + "\n")

    def close(self) -> None:
        pass


def _pyarrow() -> Any:
    # imported by name: pyarrow has no type hints, and a user's mypy need not be told so
    try:
        pa = importlib.import_module("pyarrow")
        pq = importlib.import_module("pyarrow.parquet")
    except ImportError as exc:
        raise ImportError("writing Parquet needs pyarrow: pip install 'wirekit[parquet]'") from exc
    return pa, pq


class ParquetWriter:
    """Records as rows of a Parquet file, for pandas, DuckDB, Polars or Spark.

    Columns (:data:`PARQUET_COLUMNS`): ``file`` (the input's name), the flow's ``proto``,
    ``client``, ``client_port``, ``server``, ``server_port`` (null for raw files and hex
    dumps), ``direction`` (``"c2s"``/``"s2c"``), ``timestamp`` (UTC, microseconds),
    ``offset`` (in the direction's stream) and ``message``, the decoded message as the
    same JSON text ``wirekit parse`` prints: one column fits every schema, and every
    data tool reads JSON (DuckDB: ``message->>'$.transaction_id'``).

    Rows are written ``batch_size`` at a time, so memory holds one batch, not the file.

    Args:
        sink: a path or a binary file object (written front to back; a pipe works).
        batch_size: rows per row group.
    """

    def __init__(self, sink: str | IO[bytes], *, batch_size: int = 65536) -> None:
        pa, pq = _pyarrow()
        self._pa = pa
        self.schema = pa.schema(
            [
                ("file", pa.string()),
                ("proto", pa.string()),
                ("client", pa.string()),
                ("client_port", pa.uint16()),
                ("server", pa.string()),
                ("server_port", pa.uint16()),
                ("direction", pa.string()),
                ("timestamp", pa.timestamp("us", tz="UTC")),
                ("offset", pa.int64()),
                ("message", pa.string()),
            ]
        )
        self._writer = pq.ParquetWriter(sink, self.schema, compression="zstd")
        self.batch_size = batch_size
        self.file: str | None = None
        self.rows = 0
        self._cols: list[list[Any]] = [[] for _ in PARQUET_COLUMNS]

    def write(self, rec: Record) -> None:
        """Add one record as a row."""
        c = self._cols
        flow = rec.flow
        c[0].append(self.file)
        if flow is None:
            for i in range(1, 6):
                c[i].append(None)
        else:
            c[1].append(flow.proto)
            c[2].append(flow.client)
            c[3].append(flow.client_port)
            c[4].append(flow.server)
            c[5].append(flow.server_port)
        c[6].append(None if rec.direction is None else rec.direction.value)
        ts = rec.timestamp
        c[7].append(None if ts is None else round(ts * 1e6))
        c[8].append(rec.offset)
        c[9].append(_dumps(to_jsonable(rec.message)))
        if len(c[9]) >= self.batch_size:
            self.flush()

    def write_table(self, table: Any) -> None:
        """Append the rows of a pyarrow table of this schema (another writer's output)."""
        self.flush()
        self._writer.write_table(table)
        self.rows += table.num_rows

    def flush(self) -> None:
        """Write the rows gathered so far as one row group."""
        if not self._cols[0]:
            return
        pa = self._pa
        arrays = [
            pa.array(col, type=field.type)
            for col, field in zip(self._cols, self.schema, strict=True)
        ]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self.schema))
        self.rows += len(self._cols[0])
        self._cols = [[] for _ in PARQUET_COLUMNS]

    def close(self) -> None:
        """Write what is gathered and the file's footer."""
        self.flush()
        self._writer.close()

    def __enter__(self) -> ParquetWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
