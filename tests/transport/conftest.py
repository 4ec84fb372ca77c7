"""Transport test fixtures: every test runs on asyncio, asyncio+uvloop and trio, and on
every session engine that runs there (the anyio-streams engine everywhere, the native
``BufferedProtocol`` engine on asyncio and uvloop)."""

from __future__ import annotations

import contextlib
import gc
import weakref
from collections.abc import Iterator
from typing import Any

import anyio
import construct as cs
import pytest

from codec import Codec
from transport import Processor, Session, StateEvent
from transport._trio_socket import TrioSocketIO

STRING8 = cs.PascalString(cs.Int8ub, "utf8")
BYTES32 = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)


BACKENDS = [
    pytest.param(("asyncio", {}), id="asyncio"),
    pytest.param(("asyncio", {"use_uvloop": True}), id="uvloop"),
    pytest.param(("trio", {}), id="trio"),
]


@pytest.fixture
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    """anyio's backend for the test: parametrized by ``pytest_generate_tests`` below."""
    return request.param  # type: ignore[no-any-return]


#: every (backend, engine) pair that exists: the native engine runs on asyncio and uvloop
ENGINES = [
    pytest.param(("asyncio", {}), {"engine": "anyio"}, id="asyncio-anyio"),
    pytest.param(("asyncio", {}), {"engine": "native"}, id="asyncio-native"),
    pytest.param(("asyncio", {"use_uvloop": True}), {"engine": "anyio"}, id="uvloop-anyio"),
    pytest.param(("asyncio", {"use_uvloop": True}), {"engine": "native"}, id="uvloop-native"),
    pytest.param(("trio", {}), {"engine": "anyio"}, id="trio-anyio"),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test taking ``engine`` (the extra keyword arguments that select the engine for
    Server and Client) runs on every backend with every engine that runs there."""
    if "engine" in metafunc.fixturenames:
        metafunc.parametrize(("anyio_backend", "engine"), ENGINES, indirect=["anyio_backend"])
    elif "anyio_backend" in metafunc.fixturenames and not _chooses_its_backend(metafunc):
        metafunc.parametrize("anyio_backend", BACKENDS, indirect=True)


def _chooses_its_backend(metafunc: pytest.Metafunc) -> bool:
    """Whether the test parametrizes ``anyio_backend`` itself (a test of one backend)."""
    return any(
        "anyio_backend" in str(marker.args[0])
        for marker in metafunc.definition.iter_markers("parametrize")
    )


@pytest.fixture
def string_codec() -> Codec[str]:
    return Codec(STRING8, max_frame_size=256)


@pytest.fixture
def bytes_codec() -> Codec[bytes]:
    return Codec(BYTES32, max_frame_size=1 << 20)


def reads_the_socket_itself(session: Session[Any]) -> bool:
    """Whether the session's engine reads and writes its socket directly (the anyio engine
    on trio over a plain TCP or Unix socket) rather than through anyio's stream."""
    return isinstance(getattr(session._engine, "_io", None), TrioSocketIO)


FINAL = (StateEvent.SESSION_CLOSED, StateEvent.REJECT_ACCEPT, StateEvent.ACCEPT_EXCEPTION)


E = StateEvent


class Recorder(Processor[Any]):
    """Echoes (unless ``echo=False``) and records every event and message per session."""

    #: the processor shape this recorder has (``SHAPES``)
    shape = "async"

    def __init__(self, echo: bool = True) -> None:
        self.echo = echo
        self.events: dict[Session[Any], list[StateEvent]] = {}
        self.errors: dict[Session[Any], list[BaseException | None]] = {}
        self.messages: dict[Session[Any], list[Any]] = {}
        self.closed: list[Session[Any]] = []
        self._taken = 0
        self._wake: anyio.Event | None = None

    async def process(self, session: Session[Any], msg: Any) -> None:
        self.messages.setdefault(session, []).append(msg)
        if msg == "boom":
            raise RuntimeError("boom")
        if self.echo:
            await session.send(msg)

    async def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        self.record(session, event, exc)

    def record(self, session: Session[Any], event: StateEvent, exc: BaseException | None) -> None:
        self.events.setdefault(session, []).append(event)
        self.errors.setdefault(session, []).append(exc)
        # the last event: SESSION_CLOSED, or the only event of a connection never opened
        if event is StateEvent.SESSION_CLOSED or self.events[session][0] is not E.NEW_SESSION:
            self.closed.append(session)
            if self._wake is not None:
                self._wake.set()

    async def next_closed(self) -> Session[Any]:
        """The next session whose last event was delivered (in delivery order)."""
        while self._taken >= len(self.closed):
            self._wake = anyio.Event()
            await self._wake.wait()
        self._taken += 1
        return self.closed[self._taken - 1]


class SyncRecorder(Recorder):
    """:class:`Recorder` in the seed's shape: a plain ``def process`` replying with
    ``Session.write`` and a plain ``def state_event``."""

    shape = "sync"

    def process(self, session: Session[Any], msg: Any) -> None:  # type: ignore[override]
        self.messages.setdefault(session, []).append(msg)
        if msg == "boom":
            raise RuntimeError("boom")
        if self.echo:
            session.write(msg)

    def state_event(  # type: ignore[override]
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        self.record(session, event, exc)


class MixedRecorder(SyncRecorder):
    """A plain ``def process`` with an ``async def state_event``: shapes may be mixed."""

    shape = "mixed"

    async def state_event(  # type: ignore[override]
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        self.record(session, event, exc)


#: processor shapes, by the recorder of that shape
RECORDERS: dict[str, type[Recorder]] = {
    "async": Recorder,
    "sync": SyncRecorder,
    "mixed": MixedRecorder,
}


@pytest.fixture(params=list(RECORDERS))
def shape(request: pytest.FixtureRequest) -> str:
    """The processor shape of the test: ``async``, ``sync`` (the seed's plain ``def``) or
    ``mixed`` (a plain ``process``, an ``async`` ``state_event``)."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def recorder(shape: str) -> Recorder:
    """A :class:`Recorder` of every processor shape, in turn."""
    return RECORDERS[shape]()


class Tracked(Processor[Any]):
    """Echoes with ``Session.write`` (then closes, with ``close=True``) and keeps a weak
    reference to every session it saw begin: for tests that closed sessions are freed."""

    def __init__(self, close: bool = False) -> None:
        self.close = close
        self.refs: list[weakref.ref[Session[Any]]] = []

    def process(self, session: Session[Any], msg: Any) -> None:
        session.write(msg)
        if self.close:
            session.close_nowait()

    def state_event(
        self, session: Session[Any], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            self.refs.append(weakref.ref(session))

    def alive(self) -> list[Session[Any]]:
        """The sessions still in memory."""
        return [s for s in (r() for r in self.refs) if s is not None]


@contextlib.contextmanager
def without_cycle_collector() -> Iterator[None]:
    """The cyclic garbage collector off (after one collection): what a reference cycle
    keeps stays in memory."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
