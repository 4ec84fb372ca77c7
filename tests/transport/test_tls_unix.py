"""TLS (certificates made at test time with trustme), Unix sockets, and leak checks."""

from __future__ import annotations

import os
import ssl
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
import trustme

from codec import Codec
from transport import Client, Server, StateEvent

from .conftest import Recorder, reads_the_socket_itself

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


async def test_tls_round_trip(
    string_codec: Codec[str],
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    engine: dict[str, Any],
) -> None:
    recorder = Recorder()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, ssl_context=server_context, **engine
        ) as server:
            async with Client(
                string_codec, host=LOCAL, port=server.port, ssl=client_context, **engine
            ) as session:
                for word in ("smart", "socket", "tls"):
                    await session.send(word)
                assert [await session.receive() for _ in range(3)] == ["smart", "socket", "tls"]
                assert not reads_the_socket_itself(session)  # TLS: through the TLS stream
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]


async def test_tls_client_verifies_by_default(
    string_codec: Codec[str], server_context: ssl.SSLContext, engine: dict[str, Any]
) -> None:
    """``ssl=True`` trusts the system CAs only: our test CA's certificate is refused."""
    recorder = Recorder()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, ssl_context=server_context, **engine
        ) as server:
            with pytest.raises((ssl.SSLError, anyio.BrokenResourceError)):
                async with Client(string_codec, host=LOCAL, port=server.port, ssl=True):
                    pass
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.ACCEPT_EXCEPTION]


async def test_tls_untrusted_client_certificate_is_rejected(
    string_codec: Codec[str],
    ca: trustme.CA,
    server_context: ssl.SSLContext,
    client_context: ssl.SSLContext,
    engine: dict[str, Any],
) -> None:
    server_context.verify_mode = ssl.CERT_REQUIRED
    ca.configure_trust(server_context)
    rogue = trustme.CA()  # the client's certificate comes from a CA the server does not trust
    rogue.issue_cert("client@example.org").configure_cert(client_context)
    recorder = Recorder()
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, ssl_context=server_context, **engine
        ) as server:
            with pytest.raises((ssl.SSLError, anyio.BrokenResourceError, anyio.EndOfStream)):
                # TLS 1.3: the client learns of the rejection on its first read
                async with Client(
                    string_codec, host=LOCAL, port=server.port, ssl=client_context
                ) as session:
                    await session.send("hello")
                    await session.receive()
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.ACCEPT_EXCEPTION]
    assert not recorder.messages


async def test_unix_socket(
    string_codec: Codec[str],
    tmp_path: Path,
    engine: dict[str, Any],
    anyio_backend: tuple[str, Any],
) -> None:
    path = tmp_path / "wirekit.sock"
    with anyio.fail_after(10):
        async with Server(string_codec, Recorder(), path=path, **engine) as server:
            assert server.addresses == [str(path)]
            async with Client(string_codec, path=path, **engine) as session:
                await session.send("unix")
                assert await session.receive() == "unix"
                assert reads_the_socket_itself(session) == (anyio_backend[0] == "trio")
    assert not path.exists()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
async def test_no_leak_after_many_cycles(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    """1,000 connect/disconnect cycles leave no session, task or socket behind."""
    cycles = 1000
    recorder = Recorder()
    with anyio.fail_after(100):
        async with Server(string_codec, recorder, host=LOCAL, port=0, **engine) as server:
            # warm up: the loop's lazily created resources (uvloop's, the resolver's threads)
            async with Client(string_codec, host=LOCAL, port=server.port, **engine):
                pass
            await recorder.next_closed()
            await anyio.wait_all_tasks_blocked()  # the accept loops are running
            before_fds = open_fds()
            before_tasks = len(anyio.get_running_tasks())
            for i in range(cycles):
                async with Client(string_codec, host=LOCAL, port=server.port, **engine) as s:
                    if i % 10 == 0:  # every tenth does a round trip
                        await s.send("x")
                        assert await s.receive() == "x"
            for _ in range(cycles):
                await recorder.next_closed()
            await anyio.wait_all_tasks_blocked()  # the last sessions' tasks have returned
            assert server.sessions == []
            assert server.statistics().active == 0
            assert server.statistics().accepted == cycles + 1
            assert len(anyio.get_running_tasks()) == before_tasks
            assert open_fds() == before_fds
    assert all(events[-1] is E.SESSION_CLOSED for events in recorder.events.values())
    assert all(events.count(E.SESSION_CLOSED) == 1 for events in recorder.events.values())
