"""BlackList (who is served, IPv4/IPv6/CIDR/Unix, changed at run time) and RateLimit
(slowed, never cut: nothing dropped, the rate's lower bound holds), on every engine."""

from __future__ import annotations

import ipaddress
import socket
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Client, Server, StateEvent
from transport.plugins import AddressSet, BlackList, RateLimit, peer_ip

from .conftest import Recorder
from .test_seam import frame, read_exactly

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


def ipv6_loopback() -> str | None:
    """Why IPv6 on ``::1`` cannot be tested here, or ``None`` when it can."""
    if not socket.has_ipv6:
        return "Python was built without IPv6"
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
    except OSError as exc:
        return f"cannot bind ::1: {exc}"
    return None


async def refused(port: int, host: str = LOCAL) -> bool:
    """Whether the server closed a fresh connection without answering a message."""
    async with await anyio.connect_tcp(host, port) as stream:
        try:
            await stream.send(frame("hello"))
            return await stream.receive() == b""
        except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
            return True


async def served(port: int, host: str = LOCAL) -> bool:
    async with await anyio.connect_tcp(host, port) as stream:
        await stream.send(frame("hello"))
        return await read_exactly(stream, 6) == frame("hello")


# -- BlackList -----------------------------------------------------------------------------
def test_address_set_matches_networks_and_mapped_addresses() -> None:
    s = AddressSet(["192.0.2.7", "198.51.100.0/24", "2001:db8::/32", "10.1.2.3/8"])
    assert ipaddress.ip_address("192.0.2.7") in s
    assert ipaddress.ip_address("192.0.2.8") not in s
    assert ipaddress.ip_address("198.51.100.255") in s
    assert ipaddress.ip_address("2001:db8:1::5") in s
    assert ipaddress.ip_address("2001:db9::") not in s
    assert ipaddress.ip_address("10.200.0.1") in s  # host bits of "10.1.2.3/8" ignored
    assert [str(n) for n in s] == [
        "10.0.0.0/8",
        "198.51.100.0/24",
        "192.0.2.7/32",
        "2001:db8::/32",
    ]
    s.discard("198.51.100.0/24")
    assert ipaddress.ip_address("198.51.100.1") not in s
    assert len(s) == 3
    assert peer_ip(("::ffff:192.0.2.7", 1, 0, 0)) == ipaddress.ip_address("192.0.2.7")
    assert peer_ip(("fe80::1%lo", 1, 0, 1)) == ipaddress.ip_address("fe80::1")
    assert peer_ip("/run/app.sock") is None
    assert peer_ip(("not an address", 1)) is None
    with pytest.raises(ValueError, match="not an IP address"):
        AddressSet(["example.com"])
    bl = BlackList(deny=["192.0.2.0/24"])
    assert bl.is_allowed(("::ffff:192.0.2.1", 5, 0, 0)) is False  # a dual-stack listener
    assert bl.is_allowed(("192.0.3.1", 5)) is True
    assert bl.is_allowed("/run/app.sock") is True


async def test_denied_peer_is_refused_before_new_session_and_lists_change_at_run_time(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    bl = BlackList(deny=["127.0.0.0/8"])
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[bl], **engine
        ) as server:
            assert await refused(server.port)
            rejected = await recorder.next_closed()
            bl.remove("127.0.0.0/8")
            assert await served(server.port)
            ok = await recorder.next_closed()
            bl.deny_address("127.0.0.1")
            assert await refused(server.port)
            again = await recorder.next_closed()
            assert server.statistics().rejected == 2
    assert recorder.events[rejected] == [E.REJECT_ACCEPT]  # no NEW_SESSION, nothing read
    assert rejected.attributes["reject_reason"] == "BlackList: 127.0.0.1 is denied"
    assert recorder.messages.get(rejected) is None
    assert recorder.events[ok][0] is E.NEW_SESSION
    assert recorder.events[again] == [E.REJECT_ACCEPT]


async def test_allow_list(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    recorder = Recorder()
    bl = BlackList(allow=["10.0.0.0/8"])
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[bl], **engine
        ) as server:
            assert await refused(server.port)
            s = await recorder.next_closed()
            bl.allow_address("127.0.0.1")
            assert await served(server.port)
            await recorder.next_closed()
            bl.deny_address("127.0.0.1")  # deny wins over allow
            assert await refused(server.port)
            await recorder.next_closed()
    assert s.attributes["reject_reason"] == "BlackList: 127.0.0.1 is not allowed"


async def test_ipv6_addresses_and_networks(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    why = ipv6_loopback()
    if why is not None:
        pytest.skip(why)
    recorder = Recorder()
    bl = BlackList(deny=["2001:db8::/32"])
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host="::1", port=0, plugins=[bl], **engine
        ) as server:
            assert await served(server.port, "::1")
            await recorder.next_closed()
            bl.deny_address("::1/128")
            assert await refused(server.port, "::1")
            s = await recorder.next_closed()
    assert recorder.events[s] == [E.REJECT_ACCEPT]
    assert s.attributes["reject_reason"] == "BlackList: ::1 is denied"


async def test_unix_peers_have_no_ip(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    """A Unix-socket peer is in no network: served by a deny-list, refused by an allow-list."""
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "s.sock")
        for bl, ok in ((BlackList(deny=["0.0.0.0/0", "::/0"]), True), (BlackList(allow=[]), False)):
            recorder = Recorder()
            with anyio.fail_after(10):
                async with Server(
                    string_codec, recorder, path=path, plugins=[bl], **engine
                ) as server:
                    assert server.addresses
                    async with await anyio.connect_unix(path) as stream:
                        await stream.send(frame("hi"))
                        try:
                            got = await read_exactly(stream, 3)
                        except (anyio.EndOfStream, anyio.BrokenResourceError):
                            got = b""
                    assert (got == frame("hi")) is ok
                    s = await recorder.next_closed()
            assert (recorder.events[s][0] is E.NEW_SESSION) is ok


# -- RateLimit -----------------------------------------------------------------------------
async def test_rate_limit_slows_a_burst_and_drops_nothing(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    """60 messages in one write at 100/s with a burst of 10: all processed, in order, and
    no faster than (60 - 10) / 100 s."""
    words = [f"w{i}" for i in range(60)]
    data = b"".join(frame(w) for w in words)
    limit = RateLimit(messages_per_second=100, burst=10)
    with anyio.fail_after(20):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[limit], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                start = anyio.current_time()
                await stream.send(data)  # one read holds them all
                assert await read_exactly(stream, len(data)) == data
                elapsed = anyio.current_time() - start
            s = await recorder.next_closed()
    assert recorder.messages[s] == words
    assert recorder.events[s] == [E.NEW_SESSION, E.INPUT_SHUTDOWN, E.SESSION_CLOSED]
    assert 0.48 <= elapsed < 10
    assert limit.holds >= 1


async def test_byte_rate(bytes_codec: Codec[bytes], engine: dict[str, Any]) -> None:
    """64 KiB at 128 KiB/s with a burst of 16 KiB: no faster than 48 KiB / 128 KiB/s."""
    recorder = Recorder()
    limit = RateLimit(bytes_per_second=128 * 1024, burst=16 * 1024)
    chunks = [bytes([i]) * 1020 for i in range(64)]  # 1024 bytes a frame with its prefix
    data = b"".join(len(c).to_bytes(4, "big") + c for c in chunks)
    with anyio.fail_after(20):
        async with Server(
            bytes_codec, recorder, host=LOCAL, port=0, plugins=[limit], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                start = anyio.current_time()
                await stream.send(data)
                assert await read_exactly(stream, len(data)) == data
                elapsed = anyio.current_time() - start
            s = await recorder.next_closed()
    assert recorder.messages[s] == chunks
    assert 0.36 <= elapsed < 10


async def test_per_address_shares_the_bucket(
    string_codec: Codec[str], engine: dict[str, Any]
) -> None:
    """Two connections from one address get one rate between them."""
    recorder = Recorder()
    limit = RateLimit(messages_per_second=100, burst=10, per="address")
    data = b"".join(frame(f"m{i}") for i in range(30))
    with anyio.fail_after(20):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[limit], **engine
        ) as server:
            start = anyio.current_time()
            async with anyio.create_task_group() as tg:
                for _ in range(2):

                    async def one() -> None:
                        async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                            await stream.send(data)
                            assert await read_exactly(stream, len(data)) == data

                    tg.start_soon(one)
            elapsed = anyio.current_time() - start
            for _ in range(2):
                await recorder.next_closed()
    assert 0.48 <= elapsed < 10  # (60 - 10) / 100: per session it would take 0.2 s


async def test_rate_limit_on_a_client(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    """Plugins serve clients too: a client that limits how fast it takes pushed messages."""
    done = anyio.Event()

    class Counting(Recorder):
        async def process(self, session: Any, msg: Any) -> None:
            await super().process(session, msg)
            if len(self.messages[session]) == 25:
                done.set()

    recorder = Counting(echo=False)

    class Push(Recorder):
        async def process(self, session: Any, msg: Any) -> None:
            for i in range(25):
                session.write(f"p{i}")

    limit = RateLimit(messages_per_second=100, burst=5)
    with anyio.fail_after(20):
        async with Server(string_codec, Push(), host=LOCAL, port=0, **engine) as server:
            async with Client(
                string_codec, recorder, host=LOCAL, port=server.port, plugins=[limit], **engine
            ) as session:
                start = anyio.current_time()
                await session.send("go")
                await done.wait()
                elapsed = anyio.current_time() - start
    assert recorder.messages[session] == [f"p{i}" for i in range(25)]
    assert 0.18 <= elapsed < 10


def test_rate_limit_arguments() -> None:
    with pytest.raises(ValueError, match="messages_per_second=, bytes_per_second="):
        RateLimit()
    with pytest.raises(ValueError, match="positive"):
        RateLimit(messages_per_second=0)
    with pytest.raises(ValueError, match="burst"):
        RateLimit(messages_per_second=10, burst=0.5)
    with pytest.raises(ValueError, match="per"):
        RateLimit(messages_per_second=10, per="host")


def test_token_bucket() -> None:
    from transport.plugins import TokenBucket

    bucket = TokenBucket(rate=10, capacity=5, now=0.0)
    assert [bucket.take(1, 0.0, 1.0) for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert bucket.take(1, 0.0, 1.0) == pytest.approx(0.1)  # empty: a token in 0.1 s
    assert bucket.take(1, 0.05, 1.0) == pytest.approx(0.15)  # into debt, never refused
    bucket.refill(10.0)
    assert bucket.tokens == 5  # capped at the burst
    assert bucket.full(10.0)
    assert bucket.take(8, 10.0, 0.0) == pytest.approx(0.3)  # a read of 8 owes 3 tokens
