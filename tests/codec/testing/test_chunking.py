"""chunked: every split of a stream; feed_chunks: a bounded decode loop."""

from __future__ import annotations

import construct as cs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from codec import Buffer, Codec
from codec.testing import chunked, feed_chunks, split_at

STRING8 = Codec(cs.PascalString(cs.Int8ub, "utf8"))


@given(st.binary(max_size=64).flatmap(lambda b: st.tuples(st.just(b), chunked(b))))
def test_chunks_join_back_and_are_non_empty(case: tuple[bytes, list[bytes]]) -> None:
    data, chunks = case
    assert b"".join(chunks) == data
    assert all(chunks)


def test_split_at_ignores_out_of_range_and_duplicate_cuts() -> None:
    assert split_at(b"abcdef", [3, 3, 0, 6, 1]) == [b"a", b"bc", b"def"]
    assert split_at(b"", [1]) == []


@given(st.data())
def test_any_chunking_of_sticky_packets_gives_every_message(data: st.DataObject) -> None:
    msgs = data.draw(st.lists(st.text(max_size=10), max_size=5))
    stream = b"".join(STRING8.encode(m) for m in msgs)
    chunks = data.draw(chunked(stream))
    assert feed_chunks(STRING8, chunks) == msgs


def test_feed_chunks_stops_a_decoder_that_makes_no_progress() -> None:
    class Stuck:
        def decode(self, buf: Buffer) -> bytes | None:
            return buf.peek() or None

        def encode(self, msg: bytes) -> bytes:
            return msg

    with pytest.raises(AssertionError, match="without consuming"):
        feed_chunks(Stuck(), [b"ab"])


def test_shrinks_to_the_fewest_cuts() -> None:
    """A failure that needs one cut anywhere shrinks to a single cut."""
    from hypothesis import find

    found = find(chunked(bytes(range(20))), lambda chunks: len(chunks) > 1)
    assert len(found) == 2


def test_one_byte_at_a_time_is_reachable() -> None:
    from hypothesis import find

    found = find(chunked(bytes(range(20))), lambda chunks: len(chunks) == 20)
    assert found == [bytes([i]) for i in range(20)]
