"""Reliability suite fixtures: the backends, and helpers that every test shares.

Every test here is loopback only and bounded in count and time; the figures each one
measures are printed (``pytest -s`` shows them) and recorded in ``docs/reliability.md``.
"""

from __future__ import annotations

import os
import resource
import socket
import struct
from collections.abc import Callable
from typing import Any

import anyio
import construct as cs
import pytest

from codec import Codec

LOCAL = "127.0.0.1"
BYTES32 = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)

#: the backends of the suite: asyncio (its default, native engine) and trio
BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("trio", {}), id="trio"),
]
#: the same plus uvloop, for the tests cheap enough to run three times
ALL_BACKENDS = [
    *BACKENDS[:1],
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    *BACKENDS[1:],
]
#: every (backend, engine) pair, for the cheap tests of one session's behaviour
ENGINES = [
    pytest.param(("asyncio", {}), {"engine": "native"}, id="asyncio-native"),
    pytest.param(("asyncio", {}), {"engine": "anyio"}, id="asyncio-anyio"),
    pytest.param(("asyncio", {"use_uvloop": True}), {"engine": "native"}, id="uvloop-native"),
    pytest.param(("trio", {}), {"engine": "anyio"}, id="trio-anyio"),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """``engine`` -> every (backend, engine) pair; ``anyio_backend`` alone -> asyncio and
    trio, unless the test parametrizes it itself (``ALL_BACKENDS``)."""
    chosen = any(
        "anyio_backend" in str(m.args[0]) for m in metafunc.definition.iter_markers("parametrize")
    )
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize(("anyio_backend", "engine"), ENGINES, indirect=["anyio_backend"])
    elif "anyio_backend" in metafunc.fixturenames and not chosen:
        metafunc.parametrize("anyio_backend", BACKENDS, indirect=True)


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def codec32() -> Codec[bytes]:
    """4-byte big-endian length + body, frames up to 64 KiB."""
    return Codec(BYTES32, max_frame_size=64 * 1024)


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def raise_fd_limit(want: int) -> tuple[int, int, int]:
    """Raise the soft ``RLIMIT_NOFILE`` towards ``want`` as far as the hard limit allows;
    returns (the soft limit before, the soft limit now, the hard limit)."""
    before, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if before < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return before, resource.getrlimit(resource.RLIMIT_NOFILE)[0], hard


def open_fds() -> int:
    """This process's open file descriptors (Linux: ``/proc/self/fd``)."""
    return len(os.listdir("/proc/self/fd"))


def reset_socket(sock: socket.socket) -> None:
    """Close ``sock`` with an RST instead of a FIN (SO_LINGER on, 0 seconds)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


def report(name: str, **figures: Any) -> None:
    """Print one measured figure line (``pytest -s`` shows it)."""
    items = ", ".join(
        f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in figures.items()
    )
    print(f"\n[reliability] {name}: {items}")


async def wait_until(condition: Callable[[], bool], interval: float = 0.01) -> None:
    """Poll ``condition`` until true: for counters the transport exposes without an event
    (a caller bounds it with ``anyio.fail_after``)."""
    while True:
        if condition():
            return
        await anyio.sleep(interval)
