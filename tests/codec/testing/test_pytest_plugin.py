"""The pytest11 entry point: a user's test suite gets check_codec with no glue."""

from __future__ import annotations

import pytest

USER_TESTS = '''
import construct as cs
from hypothesis import strategies as st

from codec import Buffer, Codec


class Hand:
    """The seed's 1-byte-length string format, with a half-packet bug."""

    def decode(self, buf: Buffer):
        if not buf:
            return None
        n = buf.take(1)[0]
        if len(buf) < n:
            return None
        return buf.take(n).decode("utf-8", "replace")

    def encode(self, msg):
        body = msg.encode()
        return bytes([len(body)]) + body


def test_codec(check_codec):
    check_codec(Codec(cs.PascalString(cs.Int8ub, "utf8")), max_examples=10)


def test_hand(check_codec):
    check_codec(Hand(), st.text(max_size=10), max_examples=10)


def test_strategy(from_schema):
    from hypothesis import find

    assert find(from_schema(cs.Int8ub), lambda v: v > 200) == 201
'''


def test_fixtures_come_from_the_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user=USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=1, warnings=None)
    result.stdout.fnmatch_lines(["*property 'half-packet' failed for Hand*"])


def test_fixture_directly(check_codec: object) -> None:
    from codec.testing import check_codec as real

    assert check_codec is real
