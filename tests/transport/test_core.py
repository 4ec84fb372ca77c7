"""The sans-I/O core and the state table, without any socket or event loop."""

# The tests assert a flag (``assert not core.has_output``), call what changes it, and
# assert it again: mypy keeps a property narrowed across those calls and would call the
# rest of the test unreachable.
# mypy: disable-error-code="unreachable"

from __future__ import annotations

import types
from typing import Any

import construct as cs
import pytest

import transport
from codec import Buffer, Codec, DecodeError, FrameTooLarge
from transport import SessionCore, SessionState, StateEvent
from transport._core import ReadSizer
from transport._state import TRANSITIONS, next_state

E = StateEvent
S = SessionState
STRING8 = cs.PascalString(cs.Int8ub, "utf8")


def test_all_matches_exports() -> None:
    names = {
        n
        for n, v in vars(transport).items()
        if n.isidentifier() and not n.startswith("_") and not isinstance(v, types.ModuleType)
    }
    public = names - {"annotations"}
    assert set(transport.__all__) == public
    for name in ("Server", "Client", "Session", "Processor", "StateEvent", "Plugin"):
        assert name in transport.__all__


@pytest.fixture
def core() -> SessionCore[str]:
    return SessionCore(Codec(STRING8), high_water=100, low_water=10)


def test_half_packets_byte_by_byte(core: SessionCore[str]) -> None:
    data = b"\x05smart\x07-socket\x00"
    out: list[str] = []
    for i in range(len(data)):
        core.receive_data(data[i : i + 1])
        while (msg := core.next_message()) is not None:
            out.append(msg)
        if i < 5:
            assert out == []
    assert out == ["smart", "-socket", ""]
    assert core.messages_received == 3
    assert core.bytes_received == len(data)


def test_sticky_packets_one_per_call(core: SessionCore[str]) -> None:
    core.receive_data(b"\x01a\x01b\x01c\x01")
    assert [core.next_message() for _ in range(4)] == ["a", "b", "c", None]
    assert len(core.buffer) == 1


def test_reading_into_the_buffer(core: SessionCore[str]) -> None:
    view = core.get_buffer(16)
    view[:3] = b"\x02hi"
    view.release()
    core.buffer_updated(3)
    assert core.next_message() == "hi"


def test_decode_error_and_broken_hand_written_protocol() -> None:
    core = SessionCore(Codec(STRING8))
    core.receive_data(b"\x02\xff\xfe")
    with pytest.raises(DecodeError):
        core.next_message()

    class Broken:
        def decode(self, buf: Buffer) -> str | None:
            raise IndexError("oops")

        def encode(self, msg: str) -> bytes:
            return msg.encode()

    core2: SessionCore[str] = SessionCore(Broken())
    core2.receive_data(b"x")
    with pytest.raises(DecodeError, match="IndexError"):
        core2.next_message()


def test_max_buffered_caps_half_packets() -> None:
    class Never:
        """A hand-written protocol that never finds a frame end."""

        def decode(self, buf: Buffer) -> bytes | None:
            return None

        def encode(self, msg: bytes) -> bytes:
            return msg

    core: SessionCore[bytes] = SessionCore(Never(), max_buffered=8)
    core.receive_data(b"12345678")
    assert core.next_message() is None
    core.receive_data(b"9")
    with pytest.raises(FrameTooLarge):
        core.next_message()


def test_output_batches_and_water_marks(core: SessionCore[str]) -> None:
    assert not core.has_output
    for _ in range(3):
        core.queue(b"x" * 40)
    assert core.has_output
    assert core.over_high_water  # 120 > 100
    data = core.data_to_send()  # one write for the whole batch
    assert data == b"x" * 120
    assert not core.has_output
    assert core.pending == 120  # still in flight
    core.sent(105)
    assert not core.over_high_water
    assert not core.under_low_water
    core.sent(15)
    assert core.under_low_water
    assert core.bytes_sent == 120
    assert core.messages_sent == 3


def test_state_table_rules() -> None:
    # rule 1: a connection never opened sees one event only
    for first in (E.REJECT_ACCEPT, E.ACCEPT_EXCEPTION, E.INTERNAL_EXCEPTION):
        assert next_state(S.NEW, first) is S.REJECTED
        assert not [ev for (st, ev) in TRANSITIONS if st is S.REJECTED]
    # rule 2: NEW_SESSION first, SESSION_CLOSED last and only once
    assert next_state(S.NEW, E.SESSION_CLOSED) is None
    assert not [ev for (st, ev) in TRANSITIONS if st is S.CLOSED]
    for state in (S.OPEN, S.INPUT_CLOSED, S.CLOSING, S.ABORTING):
        assert next_state(state, E.SESSION_CLOSED) is S.CLOSED
        assert next_state(state, E.PROCESS_EXCEPTION) is state
        assert next_state(state, E.NEW_SESSION) is None
    # rule 3: one end cause
    for cause in (E.INPUT_SHUTDOWN, E.INPUT_EXCEPTION, E.DECODE_EXCEPTION):
        assert next_state(S.OPEN, cause) is S.INPUT_CLOSED
        assert next_state(S.INPUT_CLOSED, cause) is None
    # rule 5: aborting admits only PROCESS_EXCEPTION and SESSION_CLOSED
    assert {ev for (st, ev) in TRANSITIONS if st is S.ABORTING} == {
        E.PROCESS_EXCEPTION,
        E.SESSION_CLOSED,
    }


@pytest.mark.parametrize(
    ("events", "delivered"),
    [
        (
            [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSING, E.SESSION_CLOSED],
            [True, True, True, True],
        ),
        (
            [E.NEW_SESSION, E.OUTPUT_EXCEPTION, E.INPUT_EXCEPTION, E.SESSION_CLOSED],
            [True, True, False, True],
        ),
        ([E.NEW_SESSION, E.SESSION_CLOSED, E.SESSION_CLOSED], [True, True, False]),
        ([E.INPUT_SHUTDOWN], [False]),
    ],
)
def test_fire_follows_the_table(
    core: SessionCore[str], events: list[StateEvent], delivered: list[bool]
) -> None:
    assert [core.fire(ev) for ev in events] == delivered


def test_abort_drops_output(core: SessionCore[str]) -> None:
    core.fire(E.NEW_SESSION)
    core.queue(b"abc")
    assert core.writable
    core.fire(E.OUTPUT_EXCEPTION)
    assert core.state is S.ABORTING
    assert core.pending == 0
    assert not core.writable


def test_read_sizes_grow_while_reads_fill_their_space() -> None:
    sizer = ReadSizer(256 * 1024)
    assert sizer.size == 64 * 1024
    sizes = []
    for _ in range(4):
        sizer.record(sizer.size, sizer.size)  # the read filled all it was given
        sizes.append(sizer.size)
    assert sizes == [256 * 1024] * 4  # four times larger, up to the maximum
    sizer.record(100_000, 300_000)  # more space than asked for, not filled: no change
    assert sizer.size == 256 * 1024


def test_read_sizes_shrink_after_two_small_reads_in_a_row() -> None:
    sizer = ReadSizer(256 * 1024, minimum=4096, initial=32 * 1024)
    sizer.record(100, 32 * 1024)
    assert sizer.size == 32 * 1024  # one small read is not a trend
    sizer.record(20_000, 32 * 1024)  # a read of more than a quarter resets the count
    sizer.record(100, 32 * 1024)
    assert sizer.size == 32 * 1024
    sizer.record(8 * 1024, 32 * 1024)  # exactly a quarter counts as small
    assert sizer.size == 16 * 1024
    for _ in range(20):
        sizer.record(1, sizer.size)
    assert sizer.size == 4096  # down to the minimum, never below


def test_read_sizes_stay_within_small_maximums() -> None:
    sizer = ReadSizer(1000)
    assert (sizer.minimum, sizer.size, sizer.maximum) == (1000, 1000, 1000)
    sizer.record(1000, 1000)
    sizer.record(1, 1000)
    sizer.record(1, 1000)
    assert sizer.size == 1000
    with pytest.raises(ValueError, match="positive"):
        ReadSizer(0)
    with pytest.raises(ValueError, match="positive"):
        ReadSizer(1024, minimum=0)


def test_read_sizer_asks_to_be_told_only_what_can_change_it() -> None:
    """The read loops skip ``record`` for a read that neither fills its space nor counts
    as small while no small reads are being counted; that skip must change nothing."""
    sizer = ReadSizer(256 * 1024, minimum=4096, initial=16384)
    assert sizer.small_below == 16384 // 4 + 1
    for _ in range(4):  # two small reads in a row halve it: 16 -> 8 -> 4 KiB
        sizer.record(1, sizer.size)
    assert sizer.size == 4096
    assert sizer.small_below == -1  # at the minimum a small read changes nothing
    sizer.record(4096, 4096)
    assert (sizer.size, sizer.small_below) == (16384, 4097)


@pytest.mark.parametrize(
    "options",
    [
        {"high_water": 64},  # under the default low-water mark
        {"high_water": 1024, "low_water": 2048},
        {"low_water": -1},
        {"read_buffer_size": 0},
    ],
)
def test_bad_options_are_refused_where_they_are_given(options: dict[str, Any]) -> None:
    codec = Codec(cs.PascalString(cs.Int8ub, "utf8"))
    with pytest.raises(ValueError, match=r"water|read_buffer_size"):
        transport.Server(codec, transport.Processor(), host="127.0.0.1", port=0, **options)
    with pytest.raises(ValueError, match=r"water|read_buffer_size"):
        transport.Client(codec, host="127.0.0.1", port=1, **options)
