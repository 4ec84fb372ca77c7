"""HalfStream: one direction of TCP, segment by segment."""

from __future__ import annotations

import itertools
import random

import pytest

from codec.capture import Gap, HalfStream

DATA = bytes(range(256)) * 4


def collect(items: list[bytes | Gap]) -> bytes:
    assert all(isinstance(i, bytes) for i in items), items
    return b"".join(i for i in items if isinstance(i, bytes))


def segments(isn: int, data: bytes, size: int) -> list[tuple[int, bytes]]:
    return [((isn + 1 + i) % (1 << 32), data[i : i + size]) for i in range(0, len(data), size)]


@pytest.mark.parametrize("isn", [0, 1000, (1 << 32) - 1, (1 << 32) - 300])
def test_in_order_and_wraparound(isn: int) -> None:
    s = HalfStream()
    assert s.syn(isn)
    out = b""
    for seq, chunk in segments(isn, DATA, 100):
        out += collect(s.segment(seq, chunk, False))
    assert out == DATA
    assert s.next == len(DATA)


@pytest.mark.parametrize("seed", range(20))
def test_any_order_with_duplicates_and_overlaps(seed: int) -> None:
    rng = random.Random(seed)
    isn = rng.choice([5, (1 << 32) - 500])
    base = segments(isn, DATA, rng.randint(1, 90))
    segs = list(base)
    # overlapping copies: a segment spanning two neighbours
    for _ in range(5):
        i = rng.randrange(len(base) - 1)
        seq, a = base[i]
        segs.append((seq, a + base[i + 1][1]))
    segs += rng.sample(segs, 5)  # retransmissions
    rng.shuffle(segs)
    s = HalfStream()
    s.syn(isn)
    out = b"".join(collect(s.segment(seq, chunk, False)) for seq, chunk in segs)
    assert out == DATA
    assert s.pending == 0
    assert s.retransmitted > 0


def test_first_copy_wins_on_overlap() -> None:
    s = HalfStream()
    s.syn(0)
    assert collect(s.segment(1, b"abcd", False)) == b"abcd"
    # overlaps the delivered bytes with different content: only new bytes come out
    assert collect(s.segment(3, b"XXef", False)) == b"ef"


def test_fin_finishes_after_last_byte_even_out_of_order() -> None:
    s = HalfStream()
    s.syn(0)
    assert s.segment(4, b"def", True) == []
    finished_early = s.finished  # (a name: mypy would keep s.finished narrowed to False)
    assert not finished_early
    assert collect(s.segment(1, b"abc", False)) == b"abcdef"
    assert s.finished
    assert s.segment(1, b"abc", False) == []


def test_window_overflow_becomes_a_gap() -> None:
    s = HalfStream(window=10)
    s.syn(0)
    assert collect(s.segment(1, b"ab", False)) == b"ab"
    assert s.segment(10, b"123456", False) == []
    out = s.segment(16, b"789012", False)  # 12 bytes waiting > window
    assert out[0] == Gap(offset=2, size=7)
    assert out[1:] == [b"123456", b"789012"]
    assert s.pending == 0


def test_flush_reports_holes_at_end() -> None:
    s = HalfStream()
    s.syn(0)
    s.segment(1, b"ab", False)
    s.segment(6, b"fg", False)
    assert s.flush() == [Gap(2, 3), b"fg"]
    assert s.finished


def test_abort_drops_what_waits_out_of_order() -> None:
    s = HalfStream()
    s.syn(0)
    s.segment(1, b"ab", False)
    s.segment(6, b"fg", False)
    assert s.pending == 2
    s.abort()
    assert s.finished
    assert s.pending == 0
    assert s.flush() == []  # nothing is delivered after a reset


def test_midstream_start_without_syn() -> None:
    s = HalfStream()
    assert collect(s.segment(123456, b"abc", False)) == b"abc"
    assert s.midstream
    assert collect(s.segment(123459, b"def", False)) == b"def"
    # a SYN after data on the same direction is a new connection
    assert not s.syn(99)


def test_syn_retransmission_is_the_same_connection() -> None:
    s = HalfStream()
    assert s.syn(77)
    assert s.syn(77)
    assert not s.syn(78)


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_every_order_of_four_segments(order: tuple[int, ...]) -> None:
    segs = segments((1 << 32) - 6, b"0123456789ab", 3)
    s = HalfStream()
    s.syn((1 << 32) - 6)
    out = b"".join(collect(s.segment(*segs[i], False)) for i in order)
    assert out == b"0123456789ab"
