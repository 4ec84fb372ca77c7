"""The ``wirekit`` console script.

``wirekit parse SCHEMA FILE...``: decode raw files, hex dumps or pcap/pcapng captures (or
standard input, ``-``) with a construct schema (or a :class:`~codec.Codec` /
:class:`~codec.Protocol` object) and print one JSON object a line, a table, or write Parquet.
The command itself lives in :mod:`codec._parse_command`.

``wirekit show SCHEMA``: print the Python source generated for the schema
(:meth:`codec.Codec.source`).

Exit status: 0 on success; 1 when a stream cannot be decoded (without ``--skip-errors``);
2 for a usage error, including a schema that cannot be loaded or used; 3 for a file that
cannot be read, is truncated or is not of its format; 130 on Ctrl-C; 141 when the reader
of standard output went away.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import construct as cs

from ._analysis import SchemaError
from ._codec import DEFAULT_MAX_FRAME_SIZE, Codec
from ._version import __version__

__all__ = ["load_protocol", "load_schema_object", "main"]

EXIT_DECODE = 1
EXIT_USAGE = 2
EXIT_FILE = 3
EXIT_INTERRUPTED = 130
EXIT_PIPE = 141


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
            explicit = obj.framing if obj.explicit else None
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


# -- the parse command --------------------------------------------------------------------
#: what ``--format`` writes (the input types raw/hex/pcap/pcapng are accepted there too,
#: as the older spelling of ``--input-format``)
OUTPUT_FORMATS = ("json", "table", "parquet")


def _add_parse_command(sub: Any) -> None:
    from .capture import FORMATS

    p = sub.add_parser(
        "parse",
        help="decode captures, hex dumps or raw files with a schema",
        description=(
            "Decode every message in FILE with SCHEMA and print one JSON object a line: "
            "flow, direction, timestamp, offset, message. TCP streams in pcap/pcapng files "
            "are reassembled per flow and direction; UDP datagrams are decoded one by one. "
            "FILE may be '-' (standard input), a pipe or a FIFO. Several FILEs are decoded "
            "one after the other, or --jobs at a time; their records are written in the "
            "order the FILEs are given, each file's in capture order."
        ),
        epilog=(
            "exit status: 0 ok, 1 undecodable stream, 2 usage or schema error, "
            "3 unreadable, truncated or corrupt file, 130 interrupted, 141 output closed "
            "early (as `| head`; the status a shell reports for tools killed by SIGPIPE)"
        ),
    )
    p.add_argument(
        "schema",
        metavar="SCHEMA",
        help="MODULE:NAME or path/to/file.py:NAME - a construct schema, a codec.Codec or "
        "any object with decode(buf)",
    )
    p.add_argument(
        "files",
        nargs="+",
        metavar="FILE",
        help="captures, hex dumps or raw byte files; '-' is standard input",
    )
    p.add_argument(
        "--format",
        choices=OUTPUT_FORMATS + FORMATS,
        metavar="{" + ",".join(OUTPUT_FORMATS) + "}",
        help="output: json (default: JSON lines), table, or parquet (one row per message; "
        "needs the parquet extra and -o or a non-terminal standard output); "
        "raw/hex/pcap/pcapng are still read as --input-format, their older spelling",
    )
    p.add_argument(
        "--input-format",
        choices=FORMATS,
        help="input type (default: pcap/pcapng by magic number, hex for a hex dump, else raw)",
    )
    p.add_argument("-o", "--output", metavar="PATH", help="write there, not to standard output")
    p.add_argument(
        "-j",
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="decode up to N files at once in worker processes (0: one per CPU); output "
        "order stays that of the FILE arguments",
    )
    p.add_argument(
        "--udp-schema",
        metavar="SCHEMA",
        help="another schema for UDP datagrams (e.g. DNS without the TCP length prefix)",
    )
    p.add_argument("--table", action="store_true", help="the same as --format table")
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
        help="progress bar with rate and ETA on stderr (auto: only when stderr is a "
        "terminal; needs the capture extra, tqdm)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no summary on stderr")


def _add_show_command(sub: Any) -> None:
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


def _show(args: argparse.Namespace) -> int:
    protocol = load_protocol(args.schema, None)
    if not isinstance(protocol, Codec):
        raise CliError(
            f"{args.schema} is a hand-written {type(protocol).__name__}: wirekit generated "
            "nothing for it"
        )
    sys.stdout.write(protocol.source())
    return 0


def _parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="wirekit", description="wirekit: construct schemas as incremental decoders."
    )
    top.add_argument("--version", action="version", version=f"wirekit {__version__}")
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_parse_command(sub)
    _add_show_command(sub)
    _add_serve_parser(sub)
    return top


# -- the serve command (transport/_workers.py does the work) ------------------------------
def _add_serve_parser(sub: Any) -> None:
    p = sub.add_parser(
        "serve",
        help="run a transport.Server in N worker processes sharing one port",
        description=(
            "Serve FACTORY(host, port)'s transport.Server in N worker processes that share "
            "the port (SO_REUSEPORT). A worker that dies is restarted (at most "
            "--restart-limit times in --restart-window seconds); SIGTERM or SIGINT stops "
            "every worker gracefully. Prints 'listening on HOST:PORT' once all listen."
        ),
        epilog="exit status: 0 clean stop, 1 a worker failed to start or stop, 2 usage error",
    )
    p.add_argument("factory", metavar="FILE_OR_MODULE:FACTORY")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port (0: an ephemeral one, printed)")
    p.add_argument("--workers", type=int, default=1, help="worker processes (1)")
    p.add_argument(
        "--backend", choices=("asyncio", "uvloop", "trio"), default="asyncio", help="event loop"
    )
    p.add_argument(
        "--stop-timeout",
        type=float,
        default=30.0,
        metavar="SECONDS",
        help="how long SIGTERM waits for the workers' graceful exit before killing them (30)",
    )
    p.add_argument("--restart-limit", type=int, default=5, metavar="N")
    p.add_argument("--restart-window", type=float, default=10.0, metavar="SECONDS")


def _serve(args: argparse.Namespace) -> int:
    from transport._workers import FactoryError, Supervisor

    try:
        supervisor = Supervisor(
            args.factory,
            host=args.host,
            port=args.port,
            workers=args.workers,
            backend=args.backend,
            stop_timeout=args.stop_timeout,
            restart_limit=args.restart_limit,
            restart_window=args.restart_window,
        )
        return supervisor.run()
    except (FactoryError, ValueError) as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:  # the port could not be reserved
        raise CliError(f"cannot listen on {args.host}:{args.port}: {exc}") from exc


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``wirekit`` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "show":
            return _show(args)
        from ._parse_command import run_parse

        return run_parse(args)
    except CliError as exc:
        sys.stderr.write(f"wirekit: error: {exc}\n")
        return exc.status
    except KeyboardInterrupt:
        sys.stderr.write("\nwirekit: interrupted\n")
        return 130
    except BrokenPipeError:
        return _output_closed()


def _output_closed() -> int:
    """The reader went away (``wirekit parse ... | head``): end quietly, as Unix tools do.

    Standard output is pointed at ``/dev/null`` so that the interpreter's last flush does
    not fail again, and the status is 141 (128 + SIGPIPE), what a shell reports for
    ``cat`` or ``grep`` in the same place: a pipeline under ``set -o pipefail`` sees the
    same as with them.
    """
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    finally:
        os.close(devnull)
    return EXIT_PIPE


if __name__ == "__main__":
    # `python -m codec.cli`: run the importable module's main, so that the errors raised by
    # the modules it imports (codec._parse_command) are the classes it catches
    from codec.cli import main as _main

    sys.exit(_main())
