"""The ``wirekit`` console script.

``wirekit parse SCHEMA FILE``: decode a raw file, a hex dump or a pcap/pcapng capture with a
construct schema (or a :class:`~codec.Codec` / :class:`~codec.Protocol` object) and print one
JSON object a line (or a table with ``--table``).

``wirekit show SCHEMA``: print the Python source generated for the schema
(:meth:`codec.Codec.source`).

Exit status: 0 on success; 1 when a stream cannot be decoded (without ``--skip-errors``);
2 for a usage error, including a schema that cannot be loaded or used; 3 for a file that
cannot be read or is not of its format; 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

import construct as cs

from ._analysis import SchemaError
from ._codec import DEFAULT_MAX_FRAME_SIZE, Codec
from ._errors import DecodeError

__all__ = ["load_protocol", "load_schema_object", "main"]

EXIT_DECODE = 1
EXIT_USAGE = 2
EXIT_FILE = 3


class CliError(Exception):
    """A message for the user and the exit status that goes with it."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


# -- schema loading -----------------------------------------------------------------------
def load_schema_object(spec: str) -> Any:
    """The object named by ``module:attr`` or ``path/to/file.py:attr`` (dotted attrs ok)."""
    target, sep, attr = spec.rpartition(":")
    if not sep or not target or not attr:
        raise CliError(
            f"bad schema {spec!r}: expected MODULE:NAME (e.g. schemas.mqtt:PACKET) "
            "or path/to/file.py:NAME"
        )
    if target.endswith(".py") or os.sep in target or "/" in target:
        path = Path(target)
        if not path.is_file():
            raise CliError(f"bad schema {spec!r}: no such file {target!r}")
        name = f"_wirekit_schema_{abs(hash(str(path.resolve())))}"
        loader_spec = importlib.util.spec_from_file_location(name, path)
        if loader_spec is None or loader_spec.loader is None:
            raise CliError(f"bad schema {spec!r}: cannot load {target!r} as Python")
        module = importlib.util.module_from_spec(loader_spec)
        sys.modules[name] = module
        try:
            loader_spec.loader.exec_module(module)
        except Exception as exc:
            raise CliError(f"bad schema {spec!r}: {target} failed to import: {exc!r}") from exc
    else:
        if "" not in sys.path and os.getcwd() not in sys.path:
            sys.path.insert(0, os.getcwd())  # like `python -m`: modules of the current dir
        try:
            module = importlib.import_module(target)
        except Exception as exc:
            raise CliError(f"bad schema {spec!r}: cannot import {target!r}: {exc!r}") from exc
    obj: Any = module
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise CliError(f"bad schema {spec!r}: {target!r} has no attribute {attr!r}") from None
    return obj


def load_protocol(spec: str, max_frame_size: int | None) -> Any:
    """A ``Codec``/``Protocol`` from ``spec``: a Construct is compiled into a ``Codec``."""
    obj = load_schema_object(spec)
    limit = max_frame_size if max_frame_size is not None else DEFAULT_MAX_FRAME_SIZE
    try:
        if isinstance(obj, cs.Construct):
            return Codec(obj, max_frame_size=limit)
        if isinstance(obj, Codec):
            if max_frame_size is None or max_frame_size == obj.max_frame_size:
                return obj
            explicit = obj.framing if obj._explicit else None
            return Codec(obj.schema, max_frame_size=limit, framing=explicit)
    except (SchemaError, ValueError, TypeError) as exc:
        raise CliError(f"bad schema {spec!r}: {exc}") from exc
    if callable(getattr(obj, "decode", None)):
        if isinstance(obj, type):
            raise CliError(f"bad schema {spec!r}: {obj.__name__} is a class; name an instance")
        return obj
    raise CliError(
        f"bad schema {spec!r}: {type(obj).__name__} is neither a construct schema nor a "
        "codec.Codec/Protocol (an object with decode(buf))"
    )


# -- output -------------------------------------------------------------------------------
def _record_dict(rec: Any) -> dict[str, Any]:
    from .capture import to_jsonable

    return {
        "flow": rec.flow.as_dict() if rec.flow is not None else None,
        "direction": rec.direction.value if rec.direction is not None else None,
        "timestamp": rec.timestamp,
        "offset": rec.offset,
        "message": to_jsonable(rec.message),
    }


class _Table:
    """A readable fixed-width table; the message column is compact JSON."""

    def __init__(self, out: IO[str], width: int) -> None:
        self.out = out
        self.width = width
        self.header = False

    def write(self, rec: Any) -> None:
        from .capture import to_jsonable

        if not self.header:
            self.out.write(f"{'time':<17} {'flow':<44} {'offset':>8}  message\n")
            self.header = True
        ts = f"{rec.timestamp:.6f}" if rec.timestamp is not None else "-"
        flow = rec.flow.describe(rec.direction) if rec.flow is not None else "-"
        msg = json.dumps(to_jsonable(rec.message), separators=(", ", "="))
        line = f"{ts:<17} {flow:<44} {rec.offset:>8}  {msg}"
        if self.width and len(line) > self.width:
            line = line[: self.width - 3] + "..."
        self.out.write(line + "\n")


class _Progress:
    """A plain progress bar on stderr, redrawn at most a few times a second."""

    def __init__(self, total: int, stream: IO[str]) -> None:
        self.total = max(total, 1)
        self.stream = stream
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, done: int) -> None:
        now = time.monotonic()
        if now - self.last < 0.2 and done < self.total:
            return
        self.last = now
        frac = min(done / self.total, 1.0)
        bar = "#" * int(frac * 30)
        rate = done / max(now - self.start, 1e-9) / 1e6
        self.stream.write(f"\r[{bar:<30}] {frac:6.1%} {done / 1e6:8.1f} MB {rate:6.1f} MB/s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 72 + "\r")
        self.stream.flush()


# -- the parse command --------------------------------------------------------------------
def _parser() -> argparse.ArgumentParser:
    from .capture import FORMATS

    top = argparse.ArgumentParser(
        prog="wirekit", description="wirekit: construct schemas as incremental decoders."
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    p = sub.add_parser(
        "parse",
        help="decode a capture, hex dump or raw file with a schema",
        description=(
            "Decode every message in FILE with SCHEMA and print one JSON object a line: "
            "flow, direction, timestamp, offset, message. TCP streams in pcap/pcapng files "
            "are reassembled per flow and direction; UDP datagrams are decoded one by one."
        ),
        epilog=(
            "exit status: 0 ok, 1 undecodable stream, 2 usage or schema error, 3 unreadable file"
        ),
    )
    p.add_argument(
        "schema",
        metavar="SCHEMA",
        help="MODULE:NAME or path/to/file.py:NAME - a construct schema, a codec.Codec or "
        "any object with decode(buf)",
    )
    p.add_argument("file", metavar="FILE", help="the capture, hex dump or raw byte file")
    p.add_argument(
        "--format",
        choices=FORMATS,
        help="file type (default: pcap/pcapng by magic number, hex for a hex dump, else raw)",
    )
    p.add_argument(
        "--udp-schema",
        metavar="SCHEMA",
        help="another schema for UDP datagrams (e.g. DNS without the TCP length prefix)",
    )
    p.add_argument("--table", action="store_true", help="print a readable table, not JSON")
    p.add_argument(
        "--port", type=int, action="append", default=[], help="keep packets to/from this port"
    )
    p.add_argument(
        "--host", action="append", default=[], help="keep packets to/from this IP address"
    )
    p.add_argument(
        "--flow",
        action="append",
        default=[],
        metavar="A:P,B:P",
        help="keep the packets between two endpoints (IPv6 as [ADDR]:PORT)",
    )
    p.add_argument("--proto", choices=("tcp", "udp"), help="keep only TCP or only UDP")
    p.add_argument(
        "--max-frame-size",
        type=int,
        metavar="BYTES",
        help=f"largest frame accepted (default {DEFAULT_MAX_FRAME_SIZE})",
    )
    p.add_argument(
        "--window",
        type=int,
        metavar="BYTES",
        help="out-of-order bytes held per TCP direction before a hole is given up",
    )
    p.add_argument(
        "--skip-errors",
        action="store_true",
        help="skip bad frames (or the rest of a stream when a frame's extent is unknown) "
        "and go on; counts are reported at the end",
    )
    p.add_argument(
        "--progress",
        choices=("auto", "always", "never"),
        default="auto",
        help="progress bar on stderr (auto: only when stderr is a terminal)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")
    show = sub.add_parser(
        "show",
        help="print the Python source generated for a schema",
        description=(
            "Print what SCHEMA became: the source of the decoder and encoder functions "
            "wirekit generated for it (the text of Codec.source()), each under the pseudo "
            "file name a traceback through it shows."
        ),
        epilog="exit status: 0 ok, 2 usage or schema error",
    )
    show.add_argument(
        "schema",
        metavar="SCHEMA",
        help="MODULE:NAME or path/to/file.py:NAME - a construct schema or a codec.Codec",
    )
    return top


def _show(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.schema, None)
    if not isinstance(protocol, Codec):
        raise CliError(
            f"{args.schema} is a hand-written {type(protocol).__name__}: wirekit generated "
            "nothing for it"
        )
    sys.stdout.write(protocol.source())
    return 0


def _filter(args: argparse.Namespace) -> Any:
    from .capture import PacketFilter

    flows = []
    for text in args.flow:
        a, sep, b = text.partition(",")
        if not sep:
            raise CliError(f"--flow wants HOST:PORT,HOST:PORT, got {text!r}")
        flows.append((a.strip(), b.strip()))
    ports = args.port
    if any(not 0 <= p <= 0xFFFF for p in ports):
        raise CliError("--port must be between 0 and 65535")
    try:
        return PacketFilter(ports=ports, hosts=args.host, flows=flows, proto=args.proto)
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _parse(args: argparse.Namespace) -> int:
    from .capture import (
        DEFAULT_WINDOW,
        CaptureFileError,
        ParseStats,
        detect_format,
        parse_file,
    )

    if args.max_frame_size is not None and args.max_frame_size <= 0:
        raise CliError("--max-frame-size must be positive")
    protocol = load_protocol(args.schema, args.max_frame_size)
    udp_protocol = load_protocol(args.udp_schema, args.max_frame_size) if args.udp_schema else None
    packet_filter = _filter(args)
    path = Path(args.file)
    try:
        size = path.stat().st_size
        fmt = args.format or detect_format(path)
    except OSError as exc:
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", EXIT_FILE) from exc
    if fmt in ("raw", "hex") and not packet_filter.empty:
        raise CliError(f"--port/--host/--flow/--proto apply to captures, not to {fmt} files")

    stats = ParseStats()
    show = args.progress == "always" or (args.progress == "auto" and sys.stderr.isatty())
    progress = _Progress(size, sys.stderr) if show else None
    out = sys.stdout
    table = _Table(out, 0 if not out.isatty() else os.get_terminal_size(out.fileno()).columns)
    dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
    status = 0
    try:
        records = parse_file(
            protocol,
            path,
            format=fmt,
            udp_protocol=udp_protocol,
            skip_errors=args.skip_errors,
            packet_filter=packet_filter,
            window=args.window or DEFAULT_WINDOW,
            stats=stats,
            progress=progress,
        )
        write = out.write
        for rec in records:
            if args.table:
                table.write(rec)
            else:
                write(dumps(_record_dict(rec)))
                write("\n")
    except CaptureFileError as exc:
        raise CliError(f"cannot read {args.file} as {fmt}: {exc}", EXIT_FILE) from exc
    except OSError as exc:
        if isinstance(exc, BrokenPipeError):
            raise
        raise CliError(f"cannot read {args.file}: {exc.strerror or exc}", EXIT_FILE) from exc
    except DecodeError as exc:
        if progress is not None:
            progress.close()
        sys.stderr.write(f"wirekit: undecodable stream in {args.file}: {exc}\n")
        if not args.skip_errors:
            sys.stderr.write("wirekit: use --skip-errors to skip bad frames and go on\n")
        status = EXIT_DECODE
    finally:
        out.flush()
    if progress is not None and status == 0:
        progress.close()
    if not args.quiet:
        sys.stderr.write(f"wirekit: {stats.summary()}\n")
        for problem in stats.problems:
            sys.stderr.write(f"wirekit: skipped: {problem}\n")
        if stats.errors > len(stats.problems):
            sys.stderr.write(f"wirekit: ... and {stats.errors - len(stats.problems)} more\n")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wirekit`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        return _show(args) if args.command == "show" else _parse(args)
    except CliError as exc:
        sys.stderr.write(f"wirekit: error: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write("\nwirekit: interrupted\n")
        return 130
    except BrokenPipeError:
        # the reader went away (`wirekit parse ... | head`): not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


if __name__ == "__main__":
    sys.exit(main())
