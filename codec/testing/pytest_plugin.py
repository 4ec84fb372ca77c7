"""pytest plugin entry point (``pytest11``): wirekit's fixtures for users' test suites.

Installed with wirekit, so ``pytest`` users get the fixtures without any ``conftest.py``:

    def test_my_decoder(check_codec):
        check_codec(MyDecoder(), values=st.text(max_size=50))

Imports nothing heavy at load time: hypothesis is imported inside the fixture, so pytest
still runs (and other tests pass) where hypothesis is not installed; a test asking for the
fixture is then skipped with a hint to install ``wirekit[testing]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest


@pytest.fixture
def check_codec() -> Callable[..., None]:
    """:func:`codec.testing.check_codec`: fuzz a Codec or a hand-written Protocol in one call."""
    pytest.importorskip(
        "hypothesis",
        reason="the check_codec fixture needs hypothesis: pip install wirekit[testing]",
    )
    from codec.testing import check_codec as run

    return run


@pytest.fixture
def from_schema() -> Callable[..., Any]:
    """:func:`codec.testing.from_schema`: a hypothesis strategy of a schema's values."""
    pytest.importorskip(
        "hypothesis",
        reason="the from_schema fixture needs hypothesis: pip install wirekit[testing]",
    )
    from codec.testing import from_schema as derive

    return derive
