"""The codec benchmark still runs and its contenders agree (no timing is asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from .scripts import loaded


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with loaded("codec_bench") as module:
        yield module


def test_every_contender_agrees_with_construct(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--verify-only", "--no-pin"]) == 0
    assert "verified" in capsys.readouterr().out


def test_verification_catches_a_wrong_decoder(bench: ModuleType) -> None:
    w = next(w for w in bench.WORKLOADS if w.name == "fixed13")
    bench.prepare([w], "verify", seed=1)
    c = bench.contenders_for(w)
    right = c.decode["hand"]
    c.decode["hand"] = lambda chunks, collect: right(chunks, collect)[1:]
    with pytest.raises(bench.Mismatch, match="'hand' disagrees"):
        bench.verify(w, c, seed=1)


def test_tables_print(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    # a tiny timed run: proves the timing and table code paths, asserts nothing about speed
    assert (
        bench.main(
            ["--quick", "--only", "pascal8", "--repeats", "1", "--budget", "0.3", "--no-pin"]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "codec/hand" in out
    assert "| pascal8" in out
