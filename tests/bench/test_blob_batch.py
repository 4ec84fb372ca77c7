"""The blob batch benchmark runs and both of its decoders hand out every frame."""

from __future__ import annotations

import pytest

from .scripts import loaded


def test_runs_both_ways_and_restores_the_threshold(capsys: pytest.CaptureFixture[str]) -> None:
    import codec._batch as batch

    before = batch.BLOB_DIRECT
    with loaded("blob_batch") as bench:
        # the script asserts that every frame of every read came out
        assert bench.main(["--sizes", "64", "4096", "--samples", "1"]) == 0
    out = capsys.readouterr().out
    assert "| 64 |" in out
    assert "| 4096 |" in out
    assert before == batch.BLOB_DIRECT
