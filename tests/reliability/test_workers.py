"""Serving past one core: ``Server(reuse_port=True)`` and ``wirekit serve --workers N``.

The ``wirekit serve`` tests run the real console script (``python -m codec.cli serve``) with
``tests/reliability/pid_echo.py``'s factory, whose replies carry the worker's pid.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Client, Processor, Server, Session
from transport._workers import RestartBudget

from .conftest import LOCAL, frame

ROOT = Path(__file__).resolve().parents[2]
FACTORY = "tests.reliability.pid_echo:make_server"


class Echo(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        await session.send(msg)


# -- Server(reuse_port=True), in one process -----------------------------------------------
@pytest.mark.anyio
async def test_reuse_port_two_servers_share_a_port(codec32: Codec[bytes]) -> None:
    with anyio.fail_after(20):
        async with Server(codec32, Echo(), host=LOCAL, port=0, reuse_port=True) as one:
            port = one.port
            async with Server(codec32, Echo(), host=LOCAL, port=port, reuse_port=True) as two:
                for i in range(64):  # the kernel spreads connections by their 4-tuple hash
                    async with Client(codec32, host=LOCAL, port=port) as session:
                        await session.send(b"%d" % i)
                        assert await session.receive() == b"%d" % i
                accepted = (one.statistics().accepted, two.statistics().accepted)
    assert sum(accepted) == 64
    assert min(accepted) > 0, accepted  # both served (all 64 on one: p = 2**-63)


@pytest.mark.anyio
async def test_without_reuse_port_the_port_is_taken(codec32: Codec[bytes]) -> None:
    with anyio.fail_after(10):
        async with Server(codec32, Echo(), host=LOCAL, port=0, reuse_port=True) as one:
            with pytest.raises(OSError, match=r"[Aa]ddress already in use|in use"):
                async with Server(codec32, Echo(), host=LOCAL, port=one.port):
                    pass


def test_reuse_port_is_tcp_only(codec32: Codec[bytes], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reuse_port"):
        Server(codec32, Echo(), path=tmp_path / "s.sock", reuse_port=True)


def test_reuse_port_needs_so_reuseport(
    codec32: Codec[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(socket, "SO_REUSEPORT")
    with pytest.raises(ValueError, match="SO_REUSEPORT"):
        Server(codec32, Echo(), host=LOCAL, reuse_port=True)


def test_restart_budget() -> None:
    budget = RestartBudget(limit=3, window=10.0)
    assert [budget.next_start(100.0) for _ in range(3)] == [100.0, 100.0, 100.0]
    assert budget.next_start(101.0) == 110.0  # the 4th waits for the window
    assert budget.next_start(101.0) == 110.0
    assert budget.next_start(101.0) == 110.0
    assert budget.next_start(101.0) == 120.0  # a crash loop is paced at 3 per 10 s
    assert budget.next_start(200.0) == 200.0  # the window passed


# -- wirekit serve ---------------------------------------------------------------------------
class Serve:
    """``wirekit serve`` in a child process: its first stdout line, its stderr lines."""

    def __init__(self, *args: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "codec.cli", "serve", *args],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        assert self.proc.stderr is not None
        self._reader = threading.Thread(target=self._read, args=(self.proc.stderr,), daemon=True)
        self._reader.start()
        self.log: list[str] = []

    def _read(self, stream: Any) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def port(self, timeout: float = 30.0) -> int:
        assert self.proc.stdout is not None
        box: list[str] = []
        reader = threading.Thread(target=lambda: box.append(self.proc.stdout.readline()))  # type: ignore[union-attr]
        reader.start()
        reader.join(timeout)
        assert box, f"no 'listening on' line within {timeout} s: {self.drain()}"
        line = box[0].strip()
        assert line.startswith("listening on "), (line, self.drain())
        return int(line.rsplit(":", 1)[1])

    def expect(self, needle: str, timeout: float = 30.0) -> str:
        """The next stderr line containing ``needle`` (within ``timeout`` seconds)."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            assert left > 0, f"no stderr line with {needle!r}: {self.log}"
            try:
                line = self.lines.get(timeout=left)
            except queue.Empty:
                continue
            self.log.append(line)
            if needle in line:
                return line

    def drain(self) -> list[str]:
        while not self.lines.empty():
            self.log.append(self.lines.get_nowait())
        return self.log

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)
        self._reader.join(10)  # EOF once the supervisor and its workers are gone
        assert self.proc.stdout is not None
        assert self.proc.stderr is not None
        self.proc.stdout.close()
        self.proc.stderr.close()


@contextmanager
def serve(*args: str) -> Iterator[Serve]:
    s = Serve(*args)
    try:
        yield s
    finally:
        s.stop()


def ask(port: int, body: bytes = b"hi", timeout: float = 10.0) -> int:
    """One exchange on a new connection; the pid of the worker that served it."""
    with socket.create_connection((LOCAL, port), timeout=timeout) as sock:
        sock.sendall(frame(body))
        data = b""
        while len(data) < 4 or len(data) < 4 + int.from_bytes(data[:4], "big"):
            chunk = sock.recv(4096)
            assert chunk, "the server closed the connection without a reply"
            data += chunk
    pid, _, echoed = data[4:].partition(b":")
    assert echoed == body
    return int(pid)


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting for its reaper does not)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


def worker_pids(s: Serve, n: int) -> list[int]:
    return [int(s.expect(" listening").split()[3]) for _ in range(n)]


@pytest.mark.parametrize("backend", ["asyncio", "uvloop", "trio"])
def test_serve_workers_share_restart_and_stop(backend: str) -> None:
    """Two workers share the port; a killed worker is restarted while the other serves on;
    SIGTERM stops everything with status 0, replying to a request still in flight."""
    with serve(FACTORY, "--workers", "2", "--backend", backend, "--stop-timeout", "20") as s:
        port = s.port()
        pids = set(worker_pids(s, 2))
        seen = {ask(port) for _ in range(64)}  # 64 connections: both workers serve
        assert seen == pids

        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        s.expect(f"worker {victim} exited with status -9: restarting")
        # the port keeps serving while the replacement starts (the survivor, or it)
        survivor = (pids - {victim}).pop()
        assert victim not in {ask(port) for _ in range(8)}
        (replacement,) = worker_pids(s, 1)
        assert replacement not in pids
        seen = {ask(port) for _ in range(64)}
        assert seen == {survivor, replacement}

        # a request in flight across SIGTERM still gets its reply
        with socket.create_connection((LOCAL, port), timeout=10) as sock:
            sock.sendall(frame(b"late"))
            started = time.monotonic()
            s.proc.send_signal(signal.SIGTERM)
            data = b""
            while True:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            assert data[4:].split(b":", 1)[1] == b"late"
        assert s.proc.wait(30) == 0, s.drain()
        elapsed = time.monotonic() - started
        assert not alive(survivor)
        assert not alive(replacement)
    print(f"\n[reliability] serve --workers 2 ({backend}): SIGTERM to exit {elapsed:.2f} s")
    assert elapsed < 15


def test_serve_paces_a_crash_loop() -> None:
    """A worker that keeps dying is restarted at once while under the restart budget, then
    only when the window allows (the supervisor does not spin)."""
    with serve(FACTORY, "--restart-limit", "2", "--restart-window", "60") as s:
        port = s.port()
        (pid,) = worker_pids(s, 1)
        for restart in range(3):
            with socket.create_connection((LOCAL, port), timeout=10) as sock:
                sock.sendall(frame(b"die"))
                assert sock.recv(100) == b""  # the worker died without replying
            line = s.expect(f"worker {pid} exited with status 3: restarting")
            if restart < 2:
                assert "limit" not in line
                (pid,) = worker_pids(s, 1)
            else:
                assert "restart limit reached" in line, line
        s.proc.send_signal(signal.SIGTERM)  # stops while the restart waits
        assert s.proc.wait(10) == 0


def test_serve_factory_that_fails_stops_everything() -> None:
    with serve("tests.reliability.pid_echo:broken", "--workers", "2") as s:
        assert s.proc.wait(60) == 1
        assert "failed to start" in "\n".join(s.drain())


def test_serve_bad_spec_is_a_usage_error() -> None:
    with serve("tests.reliability.no_such_module:make_server") as s:
        assert s.proc.wait(30) == 2
        assert "bad factory" in "\n".join(s.drain())
    with serve(FACTORY, "--workers", "0") as s:
        assert s.proc.wait(30) == 2
        assert "workers must be at least 1" in "\n".join(s.drain())


def test_workers_stop_when_the_supervisor_dies() -> None:
    """SIGKILL the supervisor: its workers see their lifeline pipe end and exit by
    themselves (no orphans left serving)."""
    with serve(FACTORY, "--workers", "2") as s:
        port = s.port()
        pids = worker_pids(s, 2)
        assert ask(port) in pids
        s.proc.kill()
        s.proc.wait(10)
        deadline = time.monotonic() + 20
        while any(alive(p) for p in pids):
            assert time.monotonic() < deadline, "workers outlived their supervisor"
            time.sleep(0.05)  # polling a process we cannot wait for (not our child)
