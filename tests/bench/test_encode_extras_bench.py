"""The encoding benchmark of the newer builders still runs, its contenders agree with
construct and the codec really uses its generated builder (no timing is asserted)."""

from __future__ import annotations

from collections.abc import Iterator
from types import ModuleType

import pytest

from .scripts import loaded


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    with loaded("encode_extras_bench") as module:
        yield module


def test_every_contender_agrees_with_construct(
    bench: ModuleType, capsys: pytest.CaptureFixture[str]
) -> None:
    assert bench.main(["--verify-only", "--no-pin"]) == 0
    assert "verified: 6 workloads" in capsys.readouterr().out


def test_a_codec_left_to_schema_build_is_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codec._codec

    def refuse(schema: object) -> None:
        raise codec._codec.CompileError("pretend the generator cannot")

    monkeypatch.setattr(codec._codec, "compile_builder", refuse)
    assert bench.main(["--verify-only", "--no-pin", "--only", "ipv4"]) == 1


def test_table_prints(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--quick", "--only", "flags", "--messages", "20", "--repeats", "1", "--no-pin"]
    assert bench.main(argv) == 0
    assert "| flags |" in capsys.readouterr().out
