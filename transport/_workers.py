"""``wirekit serve``: N worker processes serving one port (``SO_REUSEPORT``), supervised.

The supervisor is a plain synchronous process (no event loop): it starts ``workers``
processes, each running ``FACTORY(host, port)``'s :class:`~transport.Server` with
``reuse_port`` on its own event loop, so the kernel spreads the connections among them.
It then waits for three things:

* a worker that dies is started again, at most ``restart_limit`` times in any
  ``restart_window`` seconds (a crash loop waits for the window instead of spinning);
* a worker that dies before it ever listened, during the first start, is a configuration
  error (the factory raised, the port is taken): everything stops, exit status 1;
* SIGTERM or SIGINT: SIGTERM goes to every worker, which leaves its ``async with Server``
  block normally, i.e. shuts down gracefully (stop accepting, finish and flush every
  session, within the server's ``shutdown_timeout``); after ``stop_timeout`` seconds the
  ones still running are killed. The exit status is 0 when every worker exited with 0.

Each worker also holds the read end of a pipe only the supervisor writes to (its
*lifeline*): if the supervisor itself dies (SIGKILL), every worker sees the pipe's end and
shuts down gracefully instead of serving on as an orphan.

With ``port=0`` the supervisor reserves an ephemeral port first (a bound, non-listening
``SO_REUSEPORT`` socket it keeps open: it receives no connections, and keeps the port
while workers come and go) and gives that port to every worker. Once every worker listens,
the supervisor prints ``listening on HOST:PORT`` as its first line of standard output; its
log lines (starts, exits, restarts) go to standard error.

``--workers 1`` is the same: one supervised worker process (restarted when it dies).
"""

from __future__ import annotations

import collections
import dataclasses
import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import IO, Any

__all__ = ["BACKENDS", "RestartBudget", "Supervisor", "load_factory", "run_worker"]

#: what ``--backend`` accepts
BACKENDS = ("asyncio", "uvloop", "trio")


class FactoryError(Exception):
    """The ``FILE_OR_MODULE:FACTORY`` spec cannot be used."""


def load_factory(spec: str) -> Callable[[str, int], Any]:
    """The callable named by ``module:NAME`` or ``path/to/file.py:NAME``."""
    from codec.cli import CliError, load_schema_object

    try:
        factory = load_schema_object(spec)
    except CliError as exc:
        raise FactoryError(str(exc).replace("bad schema", "bad factory", 1)) from exc
    if not callable(factory):
        raise FactoryError(f"bad factory {spec!r}: {type(factory).__name__} is not callable")
    return factory  # type: ignore[no-any-return]


# -- the worker process --------------------------------------------------------------------
def run_worker(spec: str, host: str, port: int, backend: str, ready_fd: int, lifeline: int) -> int:
    """A worker's whole life: serve ``FACTORY(host, port)`` until SIGTERM/SIGINT or until the
    supervisor's lifeline pipe ends, then leave the server's block (graceful shutdown)."""
    import anyio

    from ._server import Server

    factory = load_factory(spec)

    async def main() -> None:
        server = factory(host, port)
        if not isinstance(server, Server):
            raise TypeError(f"{spec} returned {type(server).__name__}, not a transport.Server")
        if server._path is not None:
            raise ValueError(f"{spec} returned a Unix socket server: workers share a TCP port")
        server._reuse_port = True
        with anyio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async with server, anyio.create_task_group() as tg:
                os.write(ready_fd, f"{os.getpid()} {server.port}\n".encode())
                os.close(ready_fd)

                async def on_signal() -> None:
                    async for _ in signals:
                        break
                    tg.cancel_scope.cancel()

                async def on_orphaned() -> None:
                    await anyio.wait_readable(lifeline)  # EOF: the supervisor is gone
                    tg.cancel_scope.cancel()

                tg.start_soon(on_signal)
                tg.start_soon(on_orphaned)
            # leaving ``async with server`` normally: the graceful shutdown

    if backend == "trio":
        anyio.run(main, backend="trio")
    else:
        anyio.run(main, backend="asyncio", backend_options={"use_uvloop": backend == "uvloop"})
    return 0


# -- the supervisor ------------------------------------------------------------------------
class RestartBudget:
    """At most ``limit`` (re)starts in any ``window`` seconds: :meth:`next_start` books the
    earliest time the next one may happen (now, while under the limit)."""

    def __init__(self, limit: int, window: float) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("restart limit and window must be positive")
        self.limit = limit
        self.window = window
        self._times: collections.deque[float] = collections.deque()  # booked, ascending

    def next_start(self, now: float) -> float:
        times = self._times
        while times and times[0] <= now - self.window:
            times.popleft()
        when = now if len(times) < self.limit else times[-self.limit] + self.window
        times.append(when)
        return when


@dataclasses.dataclass
class _Worker:
    proc: subprocess.Popen[bytes]
    ready_fd: int
    ready: bool = False


class Supervisor:
    """Runs ``workers`` worker processes on one port until stopped (see the module doc)."""

    def __init__(
        self,
        spec: str,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        workers: int = 1,
        backend: str = "asyncio",
        stop_timeout: float = 30.0,
        restart_limit: int = 5,
        restart_window: float = 10.0,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, not {backend!r}")
        if not hasattr(socket, "SO_REUSEPORT"):
            raise ValueError("this platform has no SO_REUSEPORT: one process per port only")
        self.spec = spec
        self.host = host
        self.port = port
        self.workers = workers
        self.backend = backend
        self.stop_timeout = stop_timeout
        self.budget = RestartBudget(restart_limit, restart_window)
        self.out = out if out is not None else sys.stdout
        self.err = err if err is not None else sys.stderr
        self._live: dict[int, _Worker] = {}  # by pid
        self._statuses: list[int] = []
        self._stopping = False
        self._sel = selectors.DefaultSelector()

    def log(self, text: str) -> None:
        self.err.write(f"wirekit serve: {text}\n")
        self.err.flush()

    def run(self) -> int:
        """Serve until SIGTERM/SIGINT; the exit status (0: every worker stopped cleanly)."""
        load_factory(self.spec)  # a bad spec fails here, once, not in every worker
        reservation = self._reserve_port()
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_r, False)
        os.set_blocking(wake_w, False)
        lifeline_r, lifeline_w = os.pipe()
        old_handlers = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGCHLD)
        }
        old_wakeup = signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
        self._sel.register(wake_r, selectors.EVENT_READ, None)
        try:
            return self._supervise(lifeline_r)
        except BaseException:
            for worker in self._live.values():  # never leave workers behind
                worker.proc.kill()
                worker.proc.wait()
            raise
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in old_handlers.items():
                signal.signal(sig, handler)
            self._sel.close()
            for fd in (wake_r, wake_w, lifeline_r, lifeline_w):
                os.close(fd)
            if reservation is not None:
                reservation.close()

    def _on_signal(self, signum: int, frame: Any) -> None:
        if signum != signal.SIGCHLD:
            self._stopping = True

    def _reserve_port(self) -> socket.socket | None:
        if self.port != 0:
            return None
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, 0))
        self.port = sock.getsockname()[1]
        return sock

    def _start(self, lifeline: int) -> None:
        ready_r, ready_w = os.pipe()
        command = [
            sys.executable,
            "-m",
            "transport._workers",
            self.spec,
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--backend",
            self.backend,
            "--ready-fd",
            str(ready_w),
            "--lifeline",
            str(lifeline),
        ]
        try:
            proc = subprocess.Popen(command, pass_fds=(ready_w, lifeline))
        finally:
            os.close(ready_w)
        self._live[proc.pid] = _Worker(proc, ready_r)
        self._sel.register(ready_r, selectors.EVENT_READ, proc.pid)
        self.log(f"worker {proc.pid} started")

    def _supervise(self, lifeline: int) -> int:
        for _ in range(self.workers):
            self._start(lifeline)
        announced = False
        restarts_due: list[float] = []
        while not self._stopping:
            now = time.monotonic()
            while restarts_due and restarts_due[0] <= now:
                restarts_due.pop(0)
                self._start(lifeline)
            timeout = min([0.5, *(t - now for t in restarts_due)])
            for key, _ in self._sel.select(max(timeout, 0.0)):
                if key.data is None:
                    _drain(key.fd)
                else:
                    self._read_ready(key.data)
            for pid, worker in list(self._live.items()):
                status = worker.proc.poll()
                if status is None:
                    continue
                self._forget(pid)
                if not announced:
                    self.log(f"worker {pid} failed to start (exit status {status}): stopping")
                    self._stopping = True
                    self._statuses.append(status or 1)
                    break
                now = time.monotonic()
                when = self.budget.next_start(now)
                self.log(
                    f"worker {pid} exited with status {status}: restarting"
                    + (f" in {when - now:.1f} s (restart limit reached)" if when > now else "")
                )
                restarts_due.append(when)
                restarts_due.sort()
            if (
                not announced
                and len(self._live) == self.workers
                and all(w.ready for w in self._live.values())
            ):
                announced = True
                self.out.write(f"listening on {self.host}:{self.port}\n")
                self.out.flush()
        return self._stop_all()

    def _read_ready(self, pid: int) -> None:
        worker = self._live.get(pid)
        if worker is None:
            return
        data = os.read(worker.ready_fd, 256)
        if data:
            worker.ready = True
            self.log(f"worker {pid} listening")
        self._sel.unregister(worker.ready_fd)
        os.close(worker.ready_fd)
        worker.ready_fd = -1

    def _forget(self, pid: int) -> None:
        worker = self._live.pop(pid)
        if worker.ready_fd >= 0:
            self._sel.unregister(worker.ready_fd)
            os.close(worker.ready_fd)

    def _stop_all(self) -> int:
        """SIGTERM every worker, wait up to ``stop_timeout``, then kill the rest."""
        live = list(self._live.values())
        if live:
            self.log(f"stopping {len(live)} worker(s)")
        for worker in live:
            try:
                worker.proc.send_signal(signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + self.stop_timeout
        for worker in live:
            try:
                status = worker.proc.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.log(
                    f"worker {worker.proc.pid} still running after {self.stop_timeout} s: killed"
                )
                worker.proc.kill()
                status = worker.proc.wait()
            self._statuses.append(status)
        for pid in list(self._live):
            self._forget(pid)
        bad = [s for s in self._statuses if s != 0]
        if bad:
            self.log(f"exit statuses of workers: {self._statuses}")
        return 1 if bad else 0


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 4096):
            pass
    except BlockingIOError:
        pass


def _worker_main(argv: Sequence[str]) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m transport._workers")
    ap.add_argument("spec")
    ap.add_argument("--host", required=True)
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--backend", choices=BACKENDS, default="asyncio")
    ap.add_argument("--ready-fd", type=int, required=True)
    ap.add_argument("--lifeline", type=int, required=True)
    args = ap.parse_args(argv)
    return run_worker(args.spec, args.host, args.port, args.backend, args.ready_fd, args.lifeline)


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
