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
    out = capsys.readouterr().out
    assert f"verified: {len(bench.WORKLOADS)} workloads" in out
    assert len(bench.WORKLOADS) >= 11
    # construct builds single nodes only where it must: the Checksum, the Mapping in bits
    assert "exotic: 1 node(s) built by construct" in out
    assert "bits_fallback: 1 node(s) built by construct" in out
    assert "mqtt_switch: " not in out


def test_a_codec_left_to_schema_build_is_refused(
    bench: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codec._codec
    from codec._compiler import CompileError

    def refuse(schema: object) -> None:
        raise CompileError("pretend the generator cannot")

    monkeypatch.setattr(codec._codec, "compile_builder", refuse)
    assert bench.main(["--verify-only", "--no-pin", "--only", "ipv4"]) == 1


def test_table_prints(bench: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--quick", "--only", "flags", "--messages", "20", "--repeats", "1", "--no-pin"]
    assert bench.main(argv) == 0
    out = capsys.readouterr().out
    assert "| flags |" in out
    assert "goal codec/construct >= 3: met on" in out


@pytest.mark.parametrize("name", ["mqtt_switch", "websocket", "bits_switch", "names"])
def test_issue_15_workloads_are_generated_whole(bench: ModuleType, name: str) -> None:
    """No node of the issue's workloads is left to construct."""
    from codec import Codec
    from codec._source import generated_source

    workload = next(w for w in bench.WORKLOADS if w.name == name)
    codec = Codec(workload.schema)
    found = generated_source(codec._builder)
    assert found is not None  # a generated builder
    source = found[1]
    assert "_fallback(" not in source
    assert "SCHEMA.build" not in source
