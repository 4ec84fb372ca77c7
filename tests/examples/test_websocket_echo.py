"""examples/websocket_echo.py against the ``websockets`` client library (an implementation no
one here wrote), plus raw bytes for what a polite client never sends.

The server runs as a subprocess, as a user would start it: ``--port 0``, the first line of
its output says where it listens. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from codec import Buffer
from schemas import websocket as ws

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "websocket_echo.py"
TIMEOUT = 20.0
T = TypeVar("T")


def start(path: Path, *args: str) -> tuple[subprocess.Popen[str], str, int]:
    """Start an example server; return it with the host and port of its first line."""
    proc = subprocess.Popen(
        [sys.executable, str(path), "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(TIMEOUT)
    if not lines or not lines[0].startswith("listening on "):
        stop(proc)
        pytest.fail(f"{path.name} did not say where it listens: {lines!r}")
    host, _, port = lines[0].removeprefix("listening on ").strip().rpartition(":")
    return proc, host, int(port)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    proc, host, port = start(EXAMPLE)
    try:
        yield host, port
    finally:
        stop(proc)


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(TIMEOUT)
    if proc.stdout is not None:
        proc.stdout.close()


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)

    return asyncio.run(bounded())


SIZES = [0, 125, 126, 65535, 65536, 1 << 20]


@pytest.mark.parametrize("size", SIZES)
def test_echoes_text_and_binary_of_every_size(server: tuple[str, int], size: int) -> None:
    host, port = server
    binary = os.urandom(size)
    text = ("wirekit ✓ " * (size // 8 + 1))[:size]

    async def go() -> None:
        async with connect(f"ws://{host}:{port}/", max_size=None) as client:
            await client.send(binary)
            assert await client.recv() == binary
            await client.send(text)
            assert await client.recv() == text

    run(go())


def test_fragmented_messages_come_back_whole(server: tuple[str, int]) -> None:
    host, port = server
    parts = [os.urandom(n) for n in (1, 0, 126, 70_000, 5)]

    async def go() -> None:
        async with connect(f"ws://{host}:{port}/", max_size=None) as client:
            await client.send(parts)  # websockets sends one frame per part (5.4)
            assert await client.recv() == b"".join(parts)
            await client.send(["frag", "ment", "é"])
            assert await client.recv() == "fragmenté"

    run(go())


def test_ping_is_answered_and_close_is_echoed(server: tuple[str, int]) -> None:
    host, port = server

    async def go() -> tuple[int | None, str | None]:
        async with connect(f"ws://{host}:{port}/") as client:
            pong = await client.ping(b"are you there")  # completes on a matching pong
            await asyncio.wait_for(pong, TIMEOUT)
            await client.send("after the ping")
            assert await client.recv() == "after the ping"
            await client.close(code=4001, reason="done")
            with pytest.raises(ConnectionClosed):
                await client.recv()
            assert client.close_code == 4001  # the server echoed our status code
            return client.close_code, client.close_reason

    assert run(go())[0] == 4001


def test_many_clients_at_once(server: tuple[str, int]) -> None:
    host, port = server

    async def one(i: int) -> None:
        async with connect(f"ws://{host}:{port}/") as client:
            for j in range(20):
                await client.send(f"{i}:{j}")
                assert await client.recv() == f"{i}:{j}"

    async def go() -> None:
        await asyncio.gather(*(one(i) for i in range(20)))

    run(go())


# -- raw bytes: what the websockets library would not send ------------------------------------
KEY = base64.b64encode(b"0123456789abcdef").decode()


def request(version: str = "13", upgrade: str = "websocket") -> bytes:
    return (
        "GET /chat HTTP/1.1\r\nHost: localhost\r\n"
        f"Upgrade: {upgrade}\r\nConnection: keep-alive, Upgrade\r\n"
        f"Sec-WebSocket-Key: {KEY}\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    ).encode()


async def send_all(host: str, port: int, data: bytes) -> bytes:
    """Send ``data``, return everything received until the server closes."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(data)
    received = await reader.read(-1)
    writer.close()
    await writer.wait_closed()
    return received


async def exchange(host: str, port: int, data: bytes) -> list[Any]:
    """Send ``data`` and decode everything until the server closes (head, then frames)."""
    buf = Buffer(await send_all(host, port, data))
    out: list[Any] = []
    while (msg := ws.STREAM.decode(buf)) is not None:
        out.append(msg)
    assert not buf
    return out


def test_the_handshake_answer(server: tuple[str, int]) -> None:
    host, port = server
    close = ws.CODEC.encode(ws.frame("CLOSE", ws.close_payload(1000), mask=b"abcd"))
    head, reply = run(exchange(host, port, request() + close))
    lines = str(head).split("\r\n")
    assert lines[0] == "HTTP/1.1 101 Switching Protocols"
    assert f"Sec-WebSocket-Accept: {ws.accept_key(KEY)}" in lines
    assert (reply.header.opcode, reply.header.masked) == ("CLOSE", False)  # 5.1: unmasked
    assert ws.parse_close(reply.payload) == (1000, "")


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (request(upgrade="h2c"), 400),
        (request(version="8"), 426),
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
    ],
    ids=["not-websocket", "old-version", "post", "garbage"],
)
def test_bad_upgrades_get_an_http_error(server: tuple[str, int], data: bytes, status: int) -> None:
    host, port = server
    answer = run(send_all(host, port, data))
    assert answer.startswith(f"HTTP/1.1 {status} ".encode())


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (ws.frame("TEXT", b"unmasked"), ws.CloseCode.PROTOCOL_ERROR),
        (ws.frame("TEXT", b"\xff\xfe", mask=b"abcd"), ws.CloseCode.INVALID_DATA),
        (ws.frame("BINARY", b"x", mask=b"abcd", rsv1=True), ws.CloseCode.PROTOCOL_ERROR),
        (ws.frame(3, b"x", mask=b"abcd"), ws.CloseCode.PROTOCOL_ERROR),
        (ws.frame("CONTINUATION", b"x", mask=b"abcd"), ws.CloseCode.PROTOCOL_ERROR),
        (ws.frame("CLOSE", b"\x03", mask=b"abcd"), ws.CloseCode.PROTOCOL_ERROR),
        (ws.frame("CLOSE", b"\x03\xed", mask=b"abcd"), ws.CloseCode.PROTOCOL_ERROR),  # 1005
    ],
    ids=[
        "unmasked",
        "bad-utf8",
        "rsv1",
        "reserved-opcode",
        "stray-continuation",
        "short-close",
        "close-1005",
    ],
)
def test_protocol_errors_fail_the_connection(
    server: tuple[str, int], frame: Any, code: int
) -> None:
    host, port = server
    wire = request() + ws.CODEC.encode(frame) + ws.CODEC.encode(ws.frame("TEXT", b"late"))
    head, reply = run(exchange(host, port, wire))
    assert str(head).startswith("HTTP/1.1 101 ")
    assert reply.header.opcode == "CLOSE"
    assert ws.parse_close(reply.payload)[0] == code  # and nothing after it: not echoed


def test_a_frame_the_schema_refuses_gets_a_close_frame(server: tuple[str, int]) -> None:
    host, port = server
    long_ping = bytes.fromhex("89fe007e") + b"abcd" + bytes(126)  # 5.5: at most 125
    _head, reply = run(exchange(host, port, request() + long_ping))
    assert ws.parse_close(reply.payload)[0] == ws.CloseCode.PROTOCOL_ERROR
