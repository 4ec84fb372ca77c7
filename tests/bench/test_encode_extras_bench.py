"""The encoding benchmark of the newer builders still runs, its contenders agree with
construct and the codec really uses its generated builder (no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "encode_extras_bench.py"


@pytest.fixture(scope="module")
def bench() -> Iterator[ModuleType]:
    spec = importlib.util.spec_from_file_location("encode_extras_bench", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while defining
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)


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
