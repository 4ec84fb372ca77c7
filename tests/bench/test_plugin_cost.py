"""bench/plugin_cost.py's servers echo exactly what they are sent, with and without the
plugins (no timing is asserted: a server that lost frames would flatter the ratio)."""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from .scripts import loaded


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with loaded("echo_bench"), loaded("plugin_cost") as module:
        yield module


@pytest.mark.parametrize("plugins", ["none", "idle+monitor"])
@pytest.mark.parametrize("kind", ["sync-native-asyncio", "async-anyio-trio"])
def test_server_echoes_every_frame_in_order(bench: ModuleType, kind: str, plugins: str) -> None:
    rng = random.Random(kind + plugins)
    sizes = [rng.choice([0, 1, 16, 600, 4096]) for _ in range(200)]
    data = b"".join(n.to_bytes(4, "big") + rng.randbytes(n) for n in sizes)
    proc, port = bench.start(kind, plugins, core=None)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            pos = 0
            while pos < len(data):
                step = rng.choice([1, 7, 1500, 9000])
                sock.sendall(data[pos : pos + step])
                pos += step
            got = bytearray()
            deadline = time.monotonic() + 10
            while len(got) < len(data) and time.monotonic() < deadline:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                got += chunk
        assert bytes(got) == data
    finally:
        proc.kill()
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def test_plugins_are_the_measured_ones(bench: ModuleType) -> None:
    assert bench.make_plugins("none") == []
    idle, monitor = bench.make_plugins("idle+monitor")
    assert repr(idle) == "IdleTimeout(both=60)"
    assert type(monitor).__name__ == "MonitorPlugin"
