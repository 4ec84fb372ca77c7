"""The echo benchmark's servers echo exactly what they are sent (no timing is asserted).

A baseline that dropped, merged or reordered frames would still produce figures, and
flattering ones; so every server kind the benchmark can start is checked here over a real
loopback connection, with frames split and glued at awkward places.
"""

from __future__ import annotations

import random
import socket
import time
from collections.abc import Iterator
from types import ModuleType

import pytest

from .scripts import loaded

#: one of each family on asyncio's default loop, and trio's own (the uvloop variants share
#: the code with their loop swapped; the transport suites test wirekit on every loop)
KINDS = [
    "raw-buffered-asyncio",
    "raw-protocol-asyncio",
    "floor-asyncio",
    "wirekit-native-asyncio",
    "wirekit-sync-native-asyncio",
    "streams-asyncio",
    "raw-trio",
    "floor-trio",
    "wirekit-sync-trio",
    "twisted",
]


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with loaded("echo_bench") as module:
        yield module


def frames(rng: random.Random) -> bytes:
    """Bodies of 0..600 bytes (both sides of the floor's small/large split) and 4 KiB."""
    sizes = [rng.choice([0, 1, 16, 255, 256, 600, 4096]) for _ in range(300)]
    return b"".join(n.to_bytes(4, "big") + rng.randbytes(n) for n in sizes)


@pytest.mark.parametrize("kind", KINDS)
def test_server_echoes_every_frame_in_order(bench: ModuleType, kind: str) -> None:
    rng = random.Random(kind)
    data = frames(rng)
    proc, port = bench.start_server(kind, core=None)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            pos = 0
            while pos < len(data):  # pieces that cut headers and bodies anywhere
                step = rng.choice([1, 3, 7, 100, 1500, 9000])
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
        proc.stdout.close()


def test_ratios_name_the_right_servers(bench: ModuleType) -> None:
    assert bench.baseline("wirekit-native-uvloop") == "raw-buffered-uvloop"
    assert bench.baseline("floor-asyncio") == "raw-buffered-asyncio"
    assert bench.baseline("wirekit-trio") == "raw-trio"
    assert bench.baseline("raw-trio") is None
    assert bench.design_floor("wirekit-anyio-asyncio") == "floor-asyncio"
    assert bench.design_floor("base:wirekit-native-uvloop") == "floor-uvloop"
    assert bench.design_floor("wirekit-trio") == "floor-trio"
    assert bench.baseline("floor-trio") == "raw-trio"
    assert bench.design_floor("floor-asyncio") is None
    assert bench.baseline("wirekit-sync-native-uvloop") == "raw-buffered-uvloop"
    assert bench.baseline("streams-uvloop") == "raw-buffered-uvloop"
    assert bench.baseline("twisted") == "raw-buffered-asyncio"
