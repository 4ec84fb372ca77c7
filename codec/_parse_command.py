"""``wirekit parse``: files in, records out, problems reported the same way for every format.

Each input is opened once and read front to back (pipes, FIFOs and ``-`` included). Whatever
goes wrong in a file - a truncated or corrupt capture, a hex dump with a line that is not
hex, a stream that cannot be decoded, a raw file that ends inside a frame - the messages
completed before it are written first, then one line on stderr names the file, the offset
and the problem, and the exit status is non-zero (1 for an undecodable stream, 3 for a
file that is not of its format). Other files given in the same call are still decoded.

With ``--jobs N`` each file is decoded in a worker process into a temporary file, and the
parent copies those to the output in the order the files were given: output order never
depends on which worker finishes first, and memory holds one batch, not a file's records.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib
import multiprocessing
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from ._errors import DecodeError
from .cli import EXIT_DECODE, EXIT_FILE, OUTPUT_FORMATS, CliError, load_protocol

__all__ = ["run_parse"]

STDIN = "-"


@dataclass(frozen=True)
class _Job:
    """Everything a worker process needs to decode one file (picklable)."""

    schema: str
    udp_schema: str | None
    max_frame_size: int | None
    ports: tuple[int, ...]
    hosts: tuple[str, ...]
    flows: tuple[tuple[str, str], ...]
    proto: str | None
    window: int | None
    skip_errors: bool
    input_format: str | None
    output: str
    path: str
    #: the file column / key, or None to leave it out (one JSON or table input)
    label: str | None


@dataclass
class _Outcome:
    """How decoding one file went."""

    name: str
    stats: Any
    status: int = 0
    #: the one line naming the file, the offset and the problem
    error: str | None = None
    size: int = 0
    #: a worker's output, to be copied to the real output
    temp: str | None = None
    hints: list[str] = field(default_factory=list)


# -- set-up ---------------------------------------------------------------------------------
def _filter(job: _Job) -> Any:
    from .capture import PacketFilter

    if any(not 0 <= p <= 0xFFFF for p in job.ports):
        raise CliError("--port must be between 0 and 65535")
    try:
        return PacketFilter(
            ports=list(job.ports), hosts=list(job.hosts), flows=list(job.flows), proto=job.proto
        )
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def _flows(texts: list[str]) -> tuple[tuple[str, str], ...]:
    flows = []
    for text in texts:
        a, sep, b = text.partition(",")
        if not sep:
            raise CliError(f"--flow wants HOST:PORT,HOST:PORT, got {text!r}")
        flows.append((a.strip(), b.strip()))
    return tuple(flows)


def _progress_bar(show: str, total: int | None) -> Any:
    """A tqdm bar on stderr with rate and ETA, or ``None``: never drawn into a pipe."""
    if show == "never" or (show == "auto" and not sys.stderr.isatty()):
        return None
    try:
        tqdm = importlib.import_module("tqdm").tqdm
    except ImportError:
        if show == "always":
            raise CliError("--progress always needs tqdm: pip install 'wirekit[capture]'") from None
        return None
    try:
        width = os.get_terminal_size(sys.stderr.fileno()).columns
    except (OSError, ValueError):
        width = 0
    return tqdm(
        total=total,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        file=sys.stderr,
        # a terminal that reports no size (a bare pty) gets 80 columns, not an empty bar
        dynamic_ncols=width > 0,
        ncols=None if width > 0 else 80,
        mininterval=0.2,
        leave=False,
    )


# -- decoding one file ----------------------------------------------------------------------
def _open_stdin() -> IO[bytes]:
    return open(sys.stdin.fileno(), "rb", buffering=0, closefd=False)


def _decode_file(
    job: _Job,
    protocol: Any,
    udp_protocol: Any,
    packet_filter: Any,
    write: Callable[[Any], None],
    advance: Callable[[int], None] | None,
) -> _Outcome:
    """Decode one file, handing every record to ``write``; problems become the outcome."""
    from .capture import DEFAULT_WINDOW, CaptureFileError, ParseStats, open_source, parse_file

    stats = ParseStats()
    name = "<stdin>" if job.path == STDIN else job.path
    outcome = _Outcome(name, stats)
    try:
        source = open_source(_open_stdin() if job.path == STDIN else job.path, job.input_format)
    except OSError as exc:
        outcome.status = EXIT_FILE
        outcome.error = f"{name}: cannot read: {exc.strerror or exc}"
        return outcome
    with source:
        outcome.size = source.size or 0
        if source.format in ("raw", "hex") and not packet_filter.empty:
            raise CliError(
                f"--port/--host/--flow/--proto apply to captures, not to {source.format} "
                f"files ({name})"
            )
        records = parse_file(
            protocol,
            source,
            udp_protocol=udp_protocol,
            skip_errors=job.skip_errors,
            packet_filter=packet_filter,
            window=job.window or DEFAULT_WINDOW,
            stats=stats,
            progress=advance,
        )
        try:
            for rec in records:
                write(rec)
        except CaptureFileError as exc:
            outcome.status = EXIT_FILE
            outcome.error = f"{name}: {exc}"
        except DecodeError as exc:
            outcome.status = EXIT_DECODE
            outcome.error = f"{name}: undecodable stream: {exc}"
            if not job.skip_errors:
                outcome.hints.append("use --skip-errors to skip bad frames and go on")
        except BrokenPipeError:
            raise
        except OSError as exc:
            outcome.status = EXIT_FILE
            outcome.error = f"{name}: cannot read: {exc.strerror or exc}"
        finally:
            records.close()
    return outcome


class _Writer:
    """One output for several files: JSON lines, a table or Parquet."""

    def __init__(self, kind: str, out: IO[str] | None, binary: Any, width: int) -> None:
        from .capture._output import JsonLinesWriter, ParquetWriter, TableWriter

        self.kind = kind
        self.impl: Any
        if kind == "parquet":
            self.impl = ParquetWriter(binary)
        elif kind == "table":
            assert out is not None
            self.impl = TableWriter(out, width)
        else:
            assert out is not None
            self.impl = JsonLinesWriter(out)

    def label(self, name: str | None) -> None:
        self.impl.file = name

    def close(self) -> None:
        self.impl.close()


def _worker(job: _Job) -> _Outcome:
    """Decode one file in a worker process into a temporary file of the output's kind."""
    protocol = load_protocol(job.schema, job.max_frame_size)
    udp = load_protocol(job.udp_schema, job.max_frame_size) if job.udp_schema else None
    packet_filter = _filter(job)
    fd, temp = tempfile.mkstemp(prefix="wirekit-", suffix="." + job.output)
    try:
        if job.output == "parquet":
            os.close(fd)
            writer = _Writer("parquet", None, temp, 0)
            writer.label(job.label)
            outcome = _decode_file(job, protocol, udp, packet_filter, writer.impl.write, None)
            writer.close()
        else:
            with open(fd, "w", encoding="utf-8", newline="\n") as text:
                writer = _Writer(job.output, text, None, 0)
                writer.impl.header = True  # the parent writes the table's header once
                writer.label(job.label)
                outcome = _decode_file(job, protocol, udp, packet_filter, writer.impl.write, None)
    except BaseException:
        os.unlink(temp)
        raise
    outcome.temp = temp
    return outcome


# -- the command ----------------------------------------------------------------------------
def _jobs(args: argparse.Namespace, output: str) -> list[_Job]:
    several = len(args.files) > 1
    flows = _flows(args.flow)
    return [
        _Job(
            schema=args.schema,
            udp_schema=args.udp_schema,
            max_frame_size=args.max_frame_size,
            ports=tuple(args.port),
            hosts=tuple(args.host),
            flows=flows,
            proto=args.proto,
            window=args.window,
            skip_errors=args.skip_errors,
            input_format=args.input_format,
            output=output,
            path=path,
            label=("<stdin>" if path == STDIN else path)
            if several or output == "parquet"
            else None,
        )
        for path in args.files
    ]


def _output_kind(args: argparse.Namespace) -> str:
    fmt = args.format
    if fmt is not None and fmt not in OUTPUT_FORMATS:  # the older --format raw|hex|pcap|pcapng
        if args.input_format is not None and args.input_format != fmt:
            raise CliError(f"--format {fmt} and --input-format {args.input_format} disagree")
        args.input_format = fmt
        fmt = None
    if args.table:
        if fmt not in (None, "table"):
            raise CliError(f"--table and --format {fmt} disagree")
        fmt = "table"
    return fmt or "json"


@contextlib.contextmanager
def _opened_output(args: argparse.Namespace, kind: str) -> Iterator[tuple[IO[str] | None, Any]]:
    """``(text stream, binary sink)`` for the output: standard output or ``--output``."""
    if kind == "parquet":
        if args.output is None and sys.stdout.isatty():
            raise CliError("--format parquet writes binary: give -o FILE or redirect stdout")
        if args.output is not None:
            yield None, args.output
        else:
            sys.stdout.flush()
            yield None, sys.stdout.buffer
        return
    if args.output is None:
        yield sys.stdout, None
        return
    try:
        f = open(args.output, "w", encoding="utf-8", newline="\n")  # noqa: SIM115
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    with f:
        yield f, None


def _report(outcomes: list[_Outcome], quiet: bool) -> int:
    """The summaries, then each file's problem on one line; the exit status."""
    err = sys.stderr
    several = len(outcomes) > 1
    status = 0
    for o in outcomes:
        if not quiet:
            lead = f"{o.name}: " if several else ""
            err.write(f"wirekit: {lead}{o.stats.summary()}\n")
            for problem in o.stats.problems:
                err.write(f"wirekit: skipped: {problem}\n")
            if o.stats.errors > len(o.stats.problems):
                err.write(f"wirekit: ... and {o.stats.errors - len(o.stats.problems)} more\n")
    for o in outcomes:
        if o.error is not None:
            hint = "".join(f"; {h}" for h in o.hints)
            err.write(f"wirekit: error: {o.error}{hint}\n")
            status = status or o.status
    return status


def run_parse(args: argparse.Namespace) -> int:
    """Run ``wirekit parse`` with parsed arguments; returns the exit status."""
    if args.max_frame_size is not None and args.max_frame_size <= 0:
        raise CliError("--max-frame-size must be positive")
    if args.jobs < 0:
        raise CliError("--jobs must be 0 (one per CPU) or more")
    if args.files.count(STDIN) > 1:
        raise CliError("standard input ('-') can be read only once")
    kind = _output_kind(args)
    protocol = load_protocol(args.schema, args.max_frame_size)
    udp = load_protocol(args.udp_schema, args.max_frame_size) if args.udp_schema else None
    jobs = _jobs(args, kind)
    packet_filter = _filter(jobs[0])
    workers = min(args.jobs or os.cpu_count() or 1, len(jobs))
    if workers > 1 and STDIN in args.files:
        raise CliError("standard input ('-') cannot be decoded by --jobs workers; use -j 1")
    with _opened_output(args, kind) as (text, binary):
        if workers > 1:
            outcomes = _run_parallel(jobs, workers, kind, text, binary, args.progress)
        else:
            outcomes = _run_serial(jobs, kind, text, binary, protocol, udp, packet_filter, args)
    return _report(outcomes, args.quiet)


def _sizes(paths: list[str]) -> int | None:
    total = 0
    for path in paths:
        try:
            st = os.stat(path) if path != STDIN else None
        except OSError:
            continue
        if st is None or not _regular(st.st_mode):
            return None
        total += st.st_size
    return total


def _regular(mode: int) -> bool:
    import stat

    return stat.S_ISREG(mode)


def _run_serial(
    jobs: list[_Job],
    kind: str,
    text: IO[str] | None,
    binary: Any,
    protocol: Any,
    udp: Any,
    packet_filter: Any,
    args: argparse.Namespace,
) -> list[_Outcome]:
    width = 0
    if kind == "table" and text is not None and text.isatty():
        width = os.get_terminal_size(text.fileno()).columns
    writer = _Writer(kind, text, binary, width)
    bar = _progress_bar(args.progress, _sizes([j.path for j in jobs]))
    outcomes: list[_Outcome] = []
    done = 0  # bytes of the files finished
    try:
        for job in jobs:
            writer.label(job.label)
            advance = None
            if bar is not None:

                def advance(pos: int, _base: int = done) -> None:
                    bar.update(_base + pos - bar.n)

            outcome = _decode_file(job, protocol, udp, packet_filter, writer.impl.write, advance)
            outcomes.append(outcome)
            done += outcome.size
    finally:
        if bar is not None:
            bar.close()
        try:
            writer.close()
        finally:
            if text is not None:
                text.flush()
    return outcomes


def _run_parallel(
    jobs: list[_Job],
    workers: int,
    kind: str,
    text: IO[str] | None,
    binary: Any,
    progress: str,
) -> list[_Outcome]:
    bar = _progress_bar(progress, _sizes([j.path for j in jobs]))
    outcomes: list[_Outcome] = []
    writer = _Writer(kind, text, binary, 0) if kind == "parquet" else None
    if kind == "table" and text is not None:
        lead = "file  " if len(jobs) > 1 else ""
        text.write(f"{lead}{'time':<17} {'flow':<44} {'offset':>8}  message\n")
    # spawn: a worker starts clean (no copy of the parent's threads or open files)
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = [pool.submit(_worker, job) for job in jobs]
        try:
            for future in futures:  # in the order of the FILE arguments
                outcome = future.result()
                outcomes.append(outcome)
                assert outcome.temp is not None
                try:
                    _copy(outcome.temp, kind, text, writer)
                finally:
                    os.unlink(outcome.temp)
                if bar is not None:
                    bar.update(outcome.size)
        except BaseException:
            for future in futures:
                future.cancel()
            for future in futures:
                with contextlib.suppress(BaseException):
                    temp = future.result().temp if future.done() else None
                    if temp is not None and os.path.exists(temp):
                        os.unlink(temp)
            raise
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
    return outcomes


def _copy(temp: str, kind: str, text: IO[str] | None, writer: _Writer | None) -> None:
    """Append a worker's output to the real output, a bounded piece at a time."""
    if kind == "parquet":
        pq = importlib.import_module("pyarrow.parquet")
        assert writer is not None
        parquet = pq.ParquetFile(temp)
        for batch in parquet.iter_batches(batch_size=65536):
            writer.impl.write_table(_table_of(batch))
        parquet.close()
        return
    assert text is not None
    with open(temp, encoding="utf-8", newline="\n") as f:
        shutil.copyfileobj(f, text, 1 << 20)


def _table_of(batch: Any) -> Any:
    return importlib.import_module("pyarrow").Table.from_batches([batch])
