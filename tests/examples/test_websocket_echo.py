"""examples/websocket_echo.py against the ``websockets`` client library (an implementation no
one here wrote), plus raw bytes for what a polite client never sends.

The server runs as a subprocess, as a user would start it: ``--port 0``, the first line of
its output says where it listens. Every wait is bounded.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from codec import Buffer
from schemas import websocket as ws

from .servers import TIMEOUT, start, stop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "websocket_echo.py"
T = TypeVar("T")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    proc, host, port = start(EXAMPLE)
    try:
        yield host, port
    finally:
        stop(proc)


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


# -- a capture of a real exchange, against tshark's WebSocket dissector ----------------------
async def relay_exchange(host: str, port: int) -> list[tuple[str, bytes]]:
    """The websockets client talks to the example through a relay that records every chunk
    each side sent, in the order the relay saw them."""
    seen: list[tuple[str, bytes]] = []
    done = asyncio.Event()

    async def pump(side: str, src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
        while chunk := await src.read(65536):
            seen.append((side, chunk))
            dst.write(chunk)
            await dst.drain()
        dst.close()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(host, port)
        await asyncio.gather(pump("c", reader, up_writer), pump("s", up_reader, writer))
        done.set()

    relay = await asyncio.start_server(handle, "127.0.0.1", 0)
    relay_port = relay.sockets[0].getsockname()[1]
    async with relay:
        async with connect(f"ws://127.0.0.1:{relay_port}/", max_size=None) as client:
            await client.send("hello ✓")
            assert await client.recv() == "hello ✓"
            await client.send(bytes(range(256)) * 2)
            assert await client.recv() == bytes(range(256)) * 2
            await client.send(b"\x01" * 70_000)  # a 64-bit length
            assert await client.recv() == b"\x01" * 70_000
            await client.send(["frag", "ment"])
            assert await client.recv() == "fragment"
            await asyncio.wait_for(await client.ping(b"p1"), TIMEOUT)
            await client.close(1000, "bye")
        await done.wait()
    return seen


TSHARK_FIELDS = [
    "websocket.fin",
    "websocket.rsv",
    "websocket.opcode",
    "websocket.mask",
    "websocket.payload_length",
    "websocket.payload_length_ext_16",
    "websocket.payload_length_ext_64",
    "websocket.masking_key",
    "websocket.payload.text",
    "websocket.payload.continue",
    "websocket.payload.ping",
    "websocket.payload.pong",
    "websocket.payload.close.status_code",
    "websocket.payload.close.reason",
]


@pytest.mark.peer
@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark not installed")
def test_wirekit_parse_agrees_with_tshark(server: tuple[str, int], tmp_path: Path) -> None:
    from tests.codec.capture.pcapgen import Capture, Tcp
    from tests.codec.capture.tshark import fields

    host, port = server
    seen = run(relay_exchange(host, port))
    cap = Capture()
    t = Tcp(cap, ("10.0.0.1", 50000), ("10.0.0.2", 8080))
    for frame in t.handshake():
        cap.add(frame)
    for side, chunk in seen:
        for frame in t.data(side, chunk):
            cap.add(frame)
    for frame in t.close():
        cap.add(frame)
    path = cap.write(tmp_path / "websocket.pcap")

    proc = subprocess.run(
        [sys.executable, "-m", "codec.cli", "parse", "schemas.websocket:STREAM", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=EXAMPLE.parents[1],
        check=True,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines()]
    heads = [r for r in records if isinstance(r["message"], str)]
    assert [h["message"].split("\r\n")[0] for h in heads] == [
        "GET / HTTP/1.1",
        "HTTP/1.1 101 Switching Protocols",
    ]
    ours: dict[str, list[str]] = {name: [] for name in TSHARK_FIELDS}
    for r in records:
        if isinstance(r["message"], str):
            continue
        f = r["message"]
        h = f["header"]
        payload = bytes.fromhex(f["payload"])
        ours["websocket.fin"].append(str(int(h["fin"])))
        ours["websocket.rsv"].append(str(h["rsv1"] << 2 | h["rsv2"] << 1 | h["rsv3"]))
        ours["websocket.opcode"].append(str(ws.OPCODE.encmapping[h["opcode"]]))
        ours["websocket.mask"].append(str(int(h["masked"])))
        ours["websocket.payload_length"].append(str(h["length7"]))
        if h["length7"] == 126:
            ours["websocket.payload_length_ext_16"].append(str(f["extended_length"]))
        if h["length7"] == 127:
            ours["websocket.payload_length_ext_64"].append(str(f["extended_length"]))
        if f["mask"] is not None:
            ours["websocket.masking_key"].append(f["mask"])
        # tshark shows the text of an unfragmented text frame; a fragment's bytes (5.4) as
        # "continue" data, and nothing for the first fragment nor for an empty one
        if h["opcode"] == "TEXT" and h["fin"]:
            ours["websocket.payload.text"].append(payload.decode())
        if h["opcode"] == "CONTINUATION" and payload:
            ours["websocket.payload.continue"].append(payload.hex())
        for kind in ("ping", "pong"):
            if h["opcode"] == kind.upper():
                ours[f"websocket.payload.{kind}"].append(payload.hex())
        if h["opcode"] == "CLOSE":
            code, reason = ws.parse_close(payload)
            ours["websocket.payload.close.status_code"].append(str(code))
            if reason:  # an empty field is no field for tshark
                ours["websocket.payload.close.reason"].append(reason)
    theirs = fields(path, "tcp.port==8080,http", TSHARK_FIELDS)
    theirs["websocket.fin"] = [str(int(v == "True" or v == "1")) for v in theirs["websocket.fin"]]
    theirs["websocket.mask"] = [str(int(v == "True" or v == "1")) for v in theirs["websocket.mask"]]
    theirs["websocket.rsv"] = [str(int(v, 0)) for v in theirs["websocket.rsv"]]
    theirs["websocket.opcode"] = [str(int(v, 0)) for v in theirs["websocket.opcode"]]
    theirs["websocket.payload.ping"] = [
        v.replace(":", "") for v in theirs["websocket.payload.ping"]
    ]
    theirs["websocket.payload.pong"] = [
        v.replace(":", "") for v in theirs["websocket.payload.pong"]
    ]
    theirs["websocket.payload.continue"] = [
        v.replace(":", "") for v in theirs["websocket.payload.continue"]
    ]
    theirs["websocket.masking_key"] = [v.replace(":", "") for v in theirs["websocket.masking_key"]]
    assert theirs == ours
