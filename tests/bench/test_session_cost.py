"""bench/session_cost.py's in-process harness delivers every byte it is given and the
engine echoes all of it (its runners assert that the fake transport saw every frame),
including reads larger than the engine's buffer offers at once (100 x 4 KiB frames)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType
from typing import Any

import anyio
import construct as cs
import pytest

from codec import Codec

from .scripts import loaded


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with loaded("session_cost") as module:
        yield module


@pytest.mark.parametrize("body", [16, 4096])
@pytest.mark.parametrize("shape", ["sync", "async"])
def test_native_runner_echoes_reads_larger_than_the_buffer(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch, shape: str, body: int
) -> None:
    monkeypatch.setattr(bench, "PROCESSOR", bench.SyncEcho if shape == "sync" else bench.Echo)
    protocol: Any = Codec(cs.Prefixed(cs.Int32ub, cs.GreedyBytes), max_frame_size=1 << 20)
    chunk = (body.to_bytes(4, "big") + b"x" * body) * 100  # 410 KB a read at 4 KiB
    spent = anyio.run(bench.run_native, protocol, chunk, 5)  # (asserts every byte echoed)
    assert spent >= 0
