"""Buffer: transactional reads, amortised compaction, zero-copy views, reserve/commit."""

from __future__ import annotations

import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

import codec
from codec import Buffer


def test_extend_take_consume_offset() -> None:
    buf = Buffer(b"abc")
    buf.extend(b"def")
    assert len(buf) == 6
    assert buf.take(2) == b"ab"
    assert buf.offset == 2
    buf.consume(1)
    assert bytes(buf) == b"def"
    assert buf.peek(2) == b"de"
    assert buf.find(b"f") == 2
    assert buf.offset == 3
    buf.clear()
    assert not buf
    assert buf.offset == 6


def test_consume_more_than_readable_is_refused() -> None:
    buf = Buffer(b"ab")
    with pytest.raises(ValueError, match="cannot consume 3"):
        buf.consume(3)
    with pytest.raises(ValueError, match="cannot take -1"):
        buf.take(-1)
    assert bytes(buf) == b"ab"


def test_view_is_readonly_and_zero_copy_and_survives_growth() -> None:
    buf = Buffer(b"hello")
    view = buf.view()
    assert view.readonly
    assert bytes(view) == b"hello"
    # a live view blocks in-place growth; extend moves to new storage instead of failing
    buf.extend(b" world" * 100)
    assert bytes(view) == b"hello"
    assert buf.peek(11) == b"hello world"
    view.release()


def test_reserve_and_commit_fill_in_place() -> None:
    buf = Buffer(b"ab")
    with buf.reserve(4) as room:
        room[:3] = b"cde"
    assert len(buf) == 2  # nothing readable before commit
    buf.commit(3)
    assert bytes(buf) == b"abcde"
    with pytest.raises(ValueError, match="cannot commit"):
        buf.commit(1 << 20)
    buf.extend(b"f")  # extend after a reserve overwrites the unused slack
    assert bytes(buf) == b"abcdef"


@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("extend"), st.binary(max_size=50)),
            st.tuples(st.just("consume"), st.integers(0, 60)),
            st.tuples(st.just("consume_to"), st.integers(0, 60)),
            st.tuples(st.just("reserve"), st.binary(min_size=1, max_size=50)),
        ),
        max_size=60,
    )
)
@pytest.mark.parametrize("scale", [1, 211], ids=["small", "compacting"])
def test_matches_a_bytes_model(scale: int, ops: list[tuple[str, object]]) -> None:
    """``scale`` stretches every operation (data repeated, counts multiplied) so that the
    storage is compacted, with and without overlap between the live bytes and their
    destination."""
    buf = Buffer()
    model = b""
    consumed = 0
    for op, arg in ops:
        if op == "extend":
            assert isinstance(arg, bytes)
            arg *= scale
            buf.extend(arg)
            model += arg
        elif op == "reserve":
            assert isinstance(arg, bytes)
            arg *= scale
            with buf.reserve(len(arg) + 3) as room:
                room[: len(arg)] = arg
            buf.commit(len(arg))
            model += arg
        else:
            assert isinstance(arg, int)
            n = min(arg * scale + arg % 7, len(model))
            if op == "consume":
                buf.consume(n)
            else:
                buf.consume_to(buf.start + n)
            model = model[n:]
            consumed += n
        assert bytes(buf) == model
        assert len(buf) == len(model)
        assert buf.offset == consumed
        # the internal seam describes the same bytes
        assert 0 <= buf.start <= buf.end <= len(buf.storage)
        assert buf.storage[buf.start : buf.end] == model
        assert buf.base + buf.start == consumed


def test_consume_to_moves_the_front_and_leaves_the_batch_to_its_caller() -> None:
    """``consume_to`` is the codec's ``consume``: an absolute storage index, no check, and
    the pre-decoded batch untouched (the codec sets it itself); every public consuming
    method drops the batch."""
    buf = Buffer(b"abcdef")
    batch: tuple[object, list[object], int] = (object(), [], -1)
    buf.batch = batch
    buf.consume_to(buf.start + 2)
    assert bytes(buf) == b"cdef"
    assert (buf.start, buf.end, buf.base, buf.offset) == (2, 6, 0, 2)
    assert buf.batch is batch
    buf.consume_to(buf.end + 5)  # past the end: everything, and the storage rewinds
    assert not buf
    assert (buf.start, buf.end, buf.base, buf.offset) == (0, 0, 6, 6)
    for drop in ("consume", "take", "clear"):
        buf.extend(b"xy")
        buf.batch = batch
        if drop == "clear":
            buf.clear()
        else:
            getattr(buf, drop)(1)
        assert buf.batch is None, drop


def test_start_moved_by_a_codec_rewinds_on_extend() -> None:
    """A codec handing out messages it decoded ahead moves ``start`` itself; once it
    reaches ``end`` the next ``extend`` rewinds to the front of the storage, and the
    absolute offset stays right."""
    buf = Buffer(b"0123456789")
    buf.start = 10
    assert not buf
    assert buf.offset == 10
    buf.extend(b"ab")
    assert (buf.start, buf.end, buf.base) == (0, 2, 10)
    assert bytes(buf) == b"ab"
    assert buf.offset == 10


def test_the_seam_is_plain_slots() -> None:
    """The hot paths read the seam as attributes: no property, no per-instance dict. As
    Python the fields are ``__slots__`` (member descriptors); compiled (``codec.COMPILED``)
    the native class's C fields (getset descriptors; mypyc lists them in
    ``__mypyc_attrs__``, a native class has no ``__slots__``)."""
    kind: type
    if codec.COMPILED:
        fields, kind = getattr(Buffer, "__mypyc_attrs__"), types.GetSetDescriptorType  # noqa: B009
    else:
        fields, kind = Buffer.__slots__, types.MemberDescriptorType
    for name in ("storage", "start", "end", "base", "batch", "hint"):
        assert name in fields
        assert type(Buffer.__dict__[name]) is kind, name
    assert not hasattr(Buffer(), "__dict__")


def test_compaction_is_amortised() -> None:
    """Consuming from the front never moves more than a bounded multiple of the bytes fed:
    measured by the storage's size staying bounded by twice the live data plus a chunk and
    the small dead prefix that is not worth a move."""
    from codec._buffer import _COMPACT_MIN

    buf = Buffer()
    chunk = b"x" * 100
    for _ in range(10_000):
        buf.extend(chunk)
        buf.consume(90)  # a slowly growing backlog
        assert len(buf.storage) <= 2 * len(buf) + 2 * len(chunk) + _COMPACT_MIN + 64


def test_a_buffer_emptied_by_a_codec_rewinds_on_the_next_read() -> None:
    import construct as cs

    from codec import Codec

    c = Codec(cs.PascalString(cs.Int8ub, "utf8"))
    buf = Buffer(c.encode("ab") * 3)
    while c.decode(buf) is not None:
        pass
    assert len(buf) == 0
    assert buf.offset == 9
    with buf.reserve(16) as room:
        room[:3] = c.encode("xy")
    buf.commit(3)
    assert buf.start == 0  # rewound: no growth, no compaction needed
    assert buf.offset == 9
    assert c.decode(buf) == "xy"


@pytest.mark.parametrize("dead", [3, 4, 5, 9])
def test_compaction_moves_live_bytes_whether_or_not_they_overlap_their_target(dead: int) -> None:
    data = bytes(range(9))
    buf = Buffer(data)
    buf.consume(dead)
    buf._compact()  # what extend()/reserve() call once the dead prefix is large
    assert buf.start == 0
    assert bytes(buf) == data[dead:]
    assert buf.offset == dead


def test_a_read_loops_reserved_storage_survives_emptying() -> None:
    """The transport reserves up to 256 KiB past the live bytes for each read; a
    hand-written decoder's ``take`` that empties the buffer must not release that storage
    (the next read would allocate and zero it again), while a much larger one, left by a
    large frame, is released."""
    buf = Buffer()
    for _ in range(3):
        with buf.reserve(256 * 1024) as view:
            view[:10] = b"0123456789"
        buf.commit(10)
        buf.take(4)
        with buf.reserve(256 * 1024) as view:  # past the 6 live bytes: > 256 KiB of storage
            view[:2] = b"ab"
        buf.commit(2)
        storage = buf.storage
        assert len(storage) > 256 * 1024
        assert buf.take(8) == b"456789ab"  # empties it
        assert buf.storage is storage
    big = Buffer(bytes(2 * 1024 * 1024))
    big.take(len(big))
    assert len(big.storage) == 0
