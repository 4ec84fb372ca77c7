"""Graceful shutdown under load: nothing the server decoded before shutdown began is lost.

Eight clients pipeline 1 KiB frames at an echo server; four read their replies all along,
four read nothing until shutdown began (their replies pile up against the high-water mark
and in the kernel's buffers). The server's block is left while all of them are still
sending. Then every message the server decoded before that moment must have been
processed, and every processed message's reply must reach its client: 0 lost. Both
processor shapes: ``async def process`` + ``await session.send`` and, once the transport
has it, the seed's plain ``def process`` + ``session.write``.

A second test gives shutdown a bound (``shutdown_timeout``) that clients which never read
make it exceed: the server must give up then, close at once, and say so with events.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import anyio
import pytest
from anyio.abc import SocketStream

from codec import Codec
from transport import Processor, Server, Session, StateEvent

from .conftest import LOCAL, frame, report, wait_until

pytestmark = pytest.mark.anyio

E = StateEvent
BODY = b"x" * 1024
FRAME = frame(BODY)
CLIENTS = 8
LAZY = 4  # of them read only after shutdown began
MAX_FRAMES = 2000  # per client (2 MiB): a bound on the load, never reached before shutdown
#: shutdown begins once every session processed this many messages (with small kernel
#: buffers a lazy session is held after ~170: see WHERE)
BUSY = {"kernel": 200, "session": 100}
#: where the lazy clients' unread replies are when shutdown begins: "kernel" (default socket
#: buffers take them all), or "session": a small server SO_SNDBUF makes them overflow the
#: kernel's buffers (~150 KB with the client's receive buffer), so shutdown begins with
#: replies pending in the sessions themselves, their processors waiting in ``send``
WHERE = {"kernel": (), "session": ((socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024),)}


def count_decodes(codec: Codec[bytes]) -> list[int]:
    """Wrap the codec's decoders (instance attributes: what a session binds) to count the
    messages they return; ``counter[0]`` is the total."""
    counter = [0]
    decode, decode_many = codec.decode, codec.decode_many

    def counting_decode(buf: Any) -> bytes | None:
        msg = decode(buf)
        if msg is not None:
            counter[0] += 1
        return msg

    def counting_decode_many(buf: Any, limit: int | None = None) -> list[bytes]:
        msgs = decode_many(buf, limit)
        counter[0] += len(msgs)
        return msgs

    codec.decode = counting_decode  # type: ignore[method-assign]
    codec.decode_many = counting_decode_many  # type: ignore[method-assign]
    return counter


class Counting(Processor[bytes]):
    """Echoes; counts processed messages and records events per remote port."""

    def __init__(self) -> None:
        self.processed: dict[int, int] = {}
        self.events: dict[int, list[StateEvent]] = {}
        self.errors: dict[int, list[BaseException | None]] = {}
        self.all_closed = anyio.Event()

    def _count(self, session: Session[bytes]) -> None:
        port = session.remote_address[1]
        self.processed[port] = self.processed.get(port, 0) + 1

    async def state_event(
        self, session: Session[bytes], event: StateEvent, exc: BaseException | None
    ) -> None:
        port = session.remote_address[1]
        self.events.setdefault(port, []).append(event)
        self.errors.setdefault(port, []).append(exc)


class AsyncEcho(Counting):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        self._count(session)
        await session.send(msg)


class SyncEcho(Counting):
    def process(self, session: Session[bytes], msg: bytes) -> None:
        self._count(session)
        session.write(msg)


SHAPES: dict[str, Callable[[], Counting]] = {"async": AsyncEcho, "sync": SyncEcho}


class LoadClient:
    """One pipelining client on a raw socket: sends frames in writes of 16 until the server
    closes; reads (from the start, or only once shutdown began) until the end of the
    stream, counting whole replies, and then closes its side too (a well-behaved peer)."""

    def __init__(self, stream: SocketStream, lazy: bool) -> None:
        self.stream = stream
        self.lazy = lazy
        self.port = stream.extra(anyio.abc.SocketAttribute.local_port)
        self.sent = 0
        self.received_bytes = 0
        self.read_error: BaseException | None = None

    async def send_all(self) -> None:
        chunk = FRAME * 16
        try:
            while self.sent < MAX_FRAMES:
                await self.stream.send(chunk)
                self.sent += 16
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
            pass  # the server closed: sending ends

    async def read_all(self, shutdown_began: anyio.Event) -> None:
        if self.lazy:
            await shutdown_began.wait()
        try:
            while True:
                self.received_bytes += len(await self.stream.receive(1 << 20))
        except anyio.EndOfStream:
            # the server is done with us: stop sending and close (a server that drains
            # input before closing waits for this)
            await self.stream.aclose()
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
            self.read_error = exc  # a reset: what was still in flight is lost

    @property
    def replies(self) -> int:
        return self.received_bytes // len(FRAME)


@pytest.mark.parametrize("where", list(WHERE))
@pytest.mark.parametrize("shape", list(SHAPES))
async def test_graceful_shutdown_loses_nothing(
    codec32: Codec[bytes], engine: dict[str, Any], shape: str, where: str
) -> None:
    decoded = count_decodes(codec32)
    proc = SHAPES[shape]()
    clients: list[LoadClient] = []
    shutdown_began = anyio.Event()
    with anyio.fail_after(60):
        async with anyio.create_task_group() as tg:
            async with Server(
                codec32,
                proc,
                host=LOCAL,
                port=0,
                socket_options=WHERE[where],
                **engine,
            ) as server:
                for i in range(CLIENTS):
                    stream = await anyio.connect_tcp(LOCAL, server.port)
                    client = LoadClient(stream, lazy=i < LAZY)
                    clients.append(client)
                    tg.start_soon(client.send_all)
                    tg.start_soon(client.read_all, shutdown_began)
                lazy_ports = {c.port for c in clients if c.lazy}

                def busy() -> bool:
                    if len(proc.processed) < CLIENTS or min(proc.processed.values()) < BUSY[where]:
                        return False
                    return where == "kernel" or all(
                        sess.statistics().pending_write_bytes > 0
                        for sess in server.sessions
                        if sess.remote_address[1] in lazy_ports
                    )

                await wait_until(busy, 0.001)
                pending_at_shutdown = sum(
                    sess.statistics().pending_write_bytes for sess in server.sessions
                )
                decoded_at_shutdown = decoded[0]
                processed_at_shutdown = sum(proc.processed.values())
                shutdown_began.set()
                started = time.monotonic()
            shutdown_seconds = time.monotonic() - started
        for client in clients:
            await client.stream.aclose()

    processed = sum(proc.processed.values())
    replies = sum(c.replies for c in clients)
    lost = {
        c.port: proc.processed.get(c.port, 0) - c.replies
        for c in clients
        if proc.processed.get(c.port, 0) != c.replies
    }
    report(
        f"graceful shutdown ({engine['engine']}, {shape} process, replies in {where})",
        decoded_before=decoded_at_shutdown,
        processed_before=processed_at_shutdown,
        pending_KiB_at_shutdown=pending_at_shutdown // 1024,
        decoded_total=decoded[0],
        processed_total=processed,
        replies_delivered=replies,
        lost=processed - replies,
        not_processed=max(0, decoded_at_shutdown - processed),
        shutdown_s=shutdown_seconds,
        resets=sum(c.read_error is not None for c in clients),
        refused_sends=sum(
            isinstance(exc, anyio.ClosedResourceError)
            for errors in proc.errors.values()
            for exc in errors
        ),
    )
    assert processed >= decoded_at_shutdown, (
        f"{decoded_at_shutdown - processed} messages decoded before shutdown began were "
        "never processed"
    )
    assert not lost, (
        f"replies processed but not delivered, per client port: {lost}; their clients' read "
        f"errors: { {c.port: c.read_error for c in clients if c.port in lost} }; their events: "
        f"{ {p: [e.name for e in proc.events[p]] for p in lost} }"
    )
    for port, events in proc.events.items():
        assert events[0] is E.NEW_SESSION, (port, events)
        assert events[-1] is E.SESSION_CLOSED, (port, events)
        assert E.OUTPUT_EXCEPTION not in events, (port, events, proc.errors[port])
        # (a reply refused by send() during the close is a lost reply too)
        assert E.PROCESS_EXCEPTION not in events, (port, events, proc.errors[port])
        assert E.INTERNAL_EXCEPTION not in events, (port, events, proc.errors[port])
    assert shutdown_seconds < 10.0  # the default shutdown_timeout: it was not needed


class Flooder(Counting):
    """On ``b"flood"``, sends 32 KiB replies until the session stops it (a client that never
    reads keeps it waiting in ``send``: backpressure)."""

    async def process(self, session: Session[bytes], msg: bytes) -> None:
        if msg != b"flood":
            await session.send(msg)
            return
        try:
            for _ in range(2048):  # 64 MiB at most: far past any buffer on the way
                await session.send(b"y" * 32768)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            pass  # the session is closing or aborted


SMALL_BUFFER = 16 * 1024


async def test_shutdown_timeout_bounds_the_wait(
    codec32: Codec[bytes], engine: dict[str, Any]
) -> None:
    """Clients that never read keep their sessions' replies pending: shutdown waits
    ``shutdown_timeout`` (and not longer: an idle peer that neither reads nor closes must
    not hold a lingering close past it either), then closes them at once, and their events
    say the pending output was dropped (``OUTPUT_EXCEPTION`` with a ``TimeoutError``, as
    when ``close_timeout`` runs out), still ending with ``SESSION_CLOSED`` once. A session
    with nothing pending closes gracefully within the bound, untouched."""
    proc = Flooder()
    timeout = 0.5
    # small kernel buffers on both sides, so the pending output provably cannot fit them
    options = [(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_BUFFER)]
    stuck: list[socket.socket] = []
    with anyio.fail_after(30):
        async with Server(
            codec32,
            proc,
            host=LOCAL,
            port=0,
            shutdown_timeout=timeout,
            socket_options=options,
            **engine,
        ) as server:
            for _ in range(3):
                sock = socket.socket()
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL_BUFFER)
                sock.connect((LOCAL, server.port))  # (loopback: completes without an accept)
                sock.sendall(frame(b"flood"))
                stuck.append(sock)
            ports = [sock.getsockname()[1] for sock in stuck]
            capacity = stuck[0].getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) * 2
            idle = await anyio.connect_tcp(LOCAL, server.port)
            await idle.send(FRAME)
            got = b""
            while len(got) < len(FRAME):
                got += await idle.receive()
            # the stuck sessions hold more pending output than both kernel buffers on the
            # way can take: their graceful close cannot finish while the clients do not read
            await wait_until(
                lambda: (
                    len(server.sessions) == 4
                    and all(
                        sess.statistics().pending_write_bytes > capacity
                        for sess in server.sessions
                        if sess.remote_address[1] in ports
                    )
                )
            )
            started = time.monotonic()
        elapsed = time.monotonic() - started
        await idle.aclose()
        for sock in stuck:
            sock.close()

    report(
        f"shutdown_timeout={timeout} ({engine['engine']})",
        exit_s=elapsed,
        stuck_events=[[e.name for e in proc.events[p]] for p in ports],
    )
    idle_port = next(p for p in proc.events if p not in ports)
    assert proc.events[idle_port] == [E.NEW_SESSION, E.SESSION_CLOSED]
    for port in ports:
        events = proc.events[port]
        assert events[0] is E.NEW_SESSION, events
        assert events[-1] is E.SESSION_CLOSED, events
        assert events.count(E.SESSION_CLOSED) == 1
    # two requirements, reported together when both fail
    problems = []
    if not timeout <= elapsed < timeout + 1.0:
        problems.append(f"shutdown took {elapsed:.2f} s with shutdown_timeout={timeout}")
    for port in ports:
        events = proc.events[port]
        if E.OUTPUT_EXCEPTION not in events:
            problems.append(f"pending output dropped without an event: {events}")
        elif not isinstance(proc.errors[port][events.index(E.OUTPUT_EXCEPTION)], TimeoutError):
            problems.append(f"OUTPUT_EXCEPTION without a TimeoutError: {proc.errors[port]}")
    assert not problems, problems
