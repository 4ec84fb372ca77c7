"""Faults: one misbehaving connection ends only its own session, with the right state event.

Each test keeps a well-behaved client connected to the same server for its whole length:
it completes an exchange before the fault, another one after it, and its session sees no
event but ``NEW_SESSION`` meanwhile (untouched).
"""

from __future__ import annotations

import os
import socket
import ssl
import struct
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
import construct as cs
import pytest

from codec import Codec, DecodeError, FrameTooLarge
from transport import Client, Processor, Server, Session, StateEvent

from .conftest import LOCAL, report, reset_socket, wait_until

pytestmark = pytest.mark.anyio

E = StateEvent
STRING16 = cs.PascalString(cs.Int16ub, "utf8")
MAX_FRAME = 4096


def frame16(text: str) -> bytes:
    body = text.encode()
    return struct.pack(">H", len(body)) + body


class Recorder(Processor[str]):
    """Echoes (``"boom"`` raises); records every session's events and their exceptions."""

    def __init__(self) -> None:
        self.events: dict[Session[str], list[StateEvent]] = {}
        self.errors: dict[Session[str], list[BaseException | None]] = {}
        self.ended: list[Session[str]] = []
        self._changed = anyio.Event()

    async def process(self, session: Session[str], msg: str) -> None:
        if msg == "boom":
            raise RuntimeError("boom")
        await session.send(msg)

    async def state_event(
        self, session: Session[str], event: StateEvent, exc: BaseException | None
    ) -> None:
        self.events.setdefault(session, []).append(event)
        self.errors.setdefault(session, []).append(exc)
        if event in (E.SESSION_CLOSED, E.ACCEPT_EXCEPTION, E.REJECT_ACCEPT):
            self.ended.append(session)
        self._changed.set()
        self._changed = anyio.Event()

    async def next_ended(self) -> Session[str]:
        """The next session whose last event was delivered."""
        while not self.ended:
            await self._changed.wait()
        return self.ended.pop(0)

    async def session_of(self, address: Any) -> Session[str]:
        """The server session of the client whose local address is ``address``."""
        while True:
            for session in self.events:
                if session.remote_address == address:
                    return session
            await self._changed.wait()

    async def wait_for(self, event: StateEvent) -> Session[str]:
        while True:
            for session, events in self.events.items():
                if event in events:
                    return session
            await self._changed.wait()


@asynccontextmanager
async def bystander(
    codec: Codec[str], port: int, proc: Recorder, **client: Any
) -> AsyncIterator[Session[str]]:
    """A well-behaved client: an exchange on entry and on exit, and its server session must
    have seen nothing but NEW_SESSION by then."""
    async with Client(codec, host=LOCAL, port=port, **client) as session:
        await session.send("before")
        assert await session.receive() == "before"
        yield session
        await session.send("after")
        assert await session.receive() == "after"
        mine = [s for s in proc.events if s.remote_address == session.local_address]
        assert len(mine) == 1
        assert proc.events[mine[0]] == [E.NEW_SESSION]


@pytest.fixture
def codec16() -> Codec[str]:
    return Codec(STRING16, max_frame_size=MAX_FRAME)


async def test_reset_in_the_middle_of_a_frame(codec16: Codec[str], engine: dict[str, Any]) -> None:
    proc = Recorder()
    with anyio.fail_after(15):
        async with Server(codec16, proc, host=LOCAL, port=0, **engine) as server:
            async with bystander(codec16, server.port, proc, **engine):
                sock = socket.create_connection((LOCAL, server.port))
                sock.sendall(frame16("whole") + frame16("x" * 100)[:40])  # half a frame
                # the server has the whole frame and the half one before the reset comes
                half = await proc.session_of(sock.getsockname())
                await wait_until(
                    lambda: half.statistics().bytes_received == len(frame16("whole")) + 40
                )
                reset_socket(sock)
                ended = await proc.next_ended()
    assert proc.events[ended] == [E.NEW_SESSION, E.INPUT_EXCEPTION, E.SESSION_CLOSED]
    assert isinstance(proc.errors[ended][1], (ConnectionError, anyio.BrokenResourceError))


async def test_garbage(codec16: Codec[str], engine: dict[str, Any]) -> None:
    proc = Recorder()
    with anyio.fail_after(15):
        async with Server(codec16, proc, host=LOCAL, port=0, **engine) as server:
            async with bystander(codec16, server.port, proc, **engine):
                async with await anyio.connect_tcp(LOCAL, server.port) as bad:
                    await bad.send(frame16("ok"))
                    assert await bad.receive() == frame16("ok")
                    await bad.send(b"\x00\x04\xff\xfe\xfd\xfc")  # not UTF-8
                    ended = await proc.next_ended()
    assert proc.events[ended] == [E.NEW_SESSION, E.DECODE_EXCEPTION, E.SESSION_CLOSED]
    assert isinstance(proc.errors[ended][1], DecodeError)


async def test_frame_over_max_frame_size(codec16: Codec[str], engine: dict[str, Any]) -> None:
    """The header alone announces too much: ``FrameTooLarge`` as soon as it is read,
    without waiting for (or buffering) the body."""
    proc = Recorder()
    with anyio.fail_after(15):
        async with Server(codec16, proc, host=LOCAL, port=0, **engine) as server:
            async with bystander(codec16, server.port, proc, **engine):
                async with await anyio.connect_tcp(LOCAL, server.port) as bad:
                    await bad.send(struct.pack(">H", MAX_FRAME + 1) + b"x" * 10)
                    ended = await proc.next_ended()
                    with pytest.raises((anyio.EndOfStream, anyio.BrokenResourceError)):
                        await bad.receive()
    assert proc.events[ended] == [E.NEW_SESSION, E.DECODE_EXCEPTION, E.SESSION_CLOSED]
    assert isinstance(proc.errors[ended][1], FrameTooLarge)


async def test_process_raises_and_the_session_goes_on(
    codec16: Codec[str], engine: dict[str, Any]
) -> None:
    proc = Recorder()
    with anyio.fail_after(15):
        async with Server(codec16, proc, host=LOCAL, port=0, **engine) as server:
            async with bystander(codec16, server.port, proc, **engine):
                async with Client(codec16, host=LOCAL, port=server.port, **engine) as s:
                    await s.send("boom")
                    await s.send("still here")
                    assert await s.receive() == "still here"
                    raised = await proc.wait_for(E.PROCESS_EXCEPTION)
                ended = await proc.next_ended()
    assert ended is raised
    assert proc.events[ended] == [
        E.NEW_SESSION,
        E.PROCESS_EXCEPTION,
        E.INPUT_SHUTDOWN,
        E.SESSION_CLOSED,
    ]
    assert isinstance(proc.errors[ended][1], RuntimeError)


# -- TLS -----------------------------------------------------------------------------------
HANDSHAKE_TIMEOUT = 0.5


@pytest.mark.parametrize("misbehaviour", ["garbage", "stalled", "half-hello"])
async def test_tls_client_misbehaves(
    codec16: Codec[str],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    engine: dict[str, Any],
    misbehaviour: str,
) -> None:
    """Garbage instead of a ClientHello, or a handshake never finished (nothing sent, or
    half a ClientHello): ``ACCEPT_EXCEPTION`` (and no NEW_SESSION), within
    ``handshake_timeout`` for the stalled ones, while a TLS bystander is served."""
    proc = Recorder()
    with anyio.fail_after(20):
        async with Server(
            codec16,
            proc,
            host=LOCAL,
            port=0,
            ssl_context=server_context,
            handshake_timeout=HANDSHAKE_TIMEOUT,
            **engine,
        ) as server:
            async with bystander(
                codec16,
                server.port,
                proc,
                ssl=client_context,
                server_hostname="localhost",
                **engine,
            ):
                sock = socket.create_connection((LOCAL, server.port))
                started = time.monotonic()
                if misbehaviour == "garbage":
                    sock.sendall(os.urandom(16) + b"\x00" * 1000)
                elif misbehaviour == "half-hello":
                    sock.sendall(_client_hello()[:30])
                ended = await proc.next_ended()
                elapsed = time.monotonic() - started
                sock.close()
    assert proc.events[ended] == [E.ACCEPT_EXCEPTION]
    assert proc.errors[ended][0] is not None
    report(f"TLS {misbehaviour} ({engine['engine']})", accept_exception_after_s=elapsed)
    if misbehaviour != "garbage":
        assert HANDSHAKE_TIMEOUT * 0.9 <= elapsed < HANDSHAKE_TIMEOUT + 2.0
        assert isinstance(proc.errors[ended][0], TimeoutError), proc.errors[ended][0]


def _client_hello() -> bytes:
    """The first bytes a real TLS client sends (its ClientHello record)."""
    ctx = ssl.create_default_context()
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()
