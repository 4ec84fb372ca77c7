"""A WebSocket echo server (RFC 6455): a runnable example, and the peer of its tests.

    python examples/websocket_echo.py --host 127.0.0.1 --port 0

prints ``listening on HOST:PORT`` first, then serves until interrupted. Every text or binary
message (of any size up to ``--max-size``, fragmented or not) comes back as one frame; pings
are answered with pongs; a close frame is answered with a close frame and the connection
ends (section 5.5.1).

How the pieces fit: the transport serves one protocol object for every connection, and a
WebSocket connection starts with an HTTP/1.1 request, not a frame. ``schemas.websocket.
UpgradeStream`` decodes both: the stream's first message is the HTTP head, every later one a
frame through the frame codec. The processor parses the head with ``h11`` (an HTTP library,
so the upgrade's rules are checked by code that is not ours), answers ``101 Switching
Protocols`` with ``Sec-WebSocket-Accept`` (section 4.2.2), and from then on handles frames:
it reassembles fragments (section 5.4), checks what the frame schema leaves to the endpoint
(masking, reserved bits and opcodes, UTF-8 text: sections 5.1, 5.2, 8.1) and fails the
connection with the status code section 7.4.1 gives when a rule is broken.

No extension (such as permessage-deflate) and no subprotocol is negotiated: the answer
names none, so a client sends plain frames.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import sys
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeAlias

import anyio
import construct as cs
import h11

from codec import DecodeError, FrameTooLarge
from schemas import websocket as ws
from transport import Processor, Server, Session, StateEvent

#: what the stream decodes to: the HTTP head first, then frames (construct Containers)
Message: TypeAlias = "ws.HttpHead | cs.Container"

#: the opcodes that start a data message (5.6); CONTINUATION carries its later fragments
DATA = {"TEXT", "BINARY"}


@dataclass
class _Connection:
    """One WebSocket connection's state (kept in ``session.attributes``)."""

    open: bool = False  # the 101 answer was sent and no close frame yet
    opcode: str | None = None  # the opcode of the message being reassembled
    fragments: list[bytes] = field(default_factory=list)
    size: int = 0


class WebSocketEcho(Processor[Message]):
    """Echoes every message back to its sender."""

    def __init__(self, max_size: int) -> None:
        self.max_size = max_size

    async def process(self, session: Session[Message], msg: Message) -> None:
        if isinstance(msg, ws.HttpHead):
            await self.handshake(session, msg)
            return
        conn: _Connection | None = session.attributes.get("websocket")
        if conn is None or not conn.open:
            return  # after our close frame (or a refused upgrade) nothing more is read
        await self.frame(session, conn, msg)

    # -- section 4.2: the opening handshake -----------------------------------------------
    async def handshake(self, session: Session[Message], head: ws.HttpHead) -> None:
        http = h11.Connection(h11.SERVER)
        http.receive_data(head.raw)
        try:
            request = http.next_event()
        except h11.RemoteProtocolError as exc:
            await self.refuse(session, http, 400, f"bad request: {exc}")
            return
        if not isinstance(request, h11.Request):
            await self.refuse(session, http, 400, "bad request")
            return
        headers = {name.lower(): value for name, value in request.headers}
        problem = _handshake_problem(request.method, headers)
        if problem is not None:
            status, reason = problem
            await self.refuse(session, http, status, reason)
            return
        accept = ws.accept_key(headers[b"sec-websocket-key"])
        answer = h11.InformationalResponse(
            status_code=101,
            headers=[
                (b"Upgrade", b"websocket"),
                (b"Connection", b"Upgrade"),
                (b"Sec-WebSocket-Accept", accept.encode("ascii")),
            ],
            reason=b"Switching Protocols",
        )
        data = http.send(answer)
        assert data is not None
        session.attributes["websocket"] = _Connection(open=True)
        await session.send(ws.HttpHead(data))

    async def refuse(
        self, session: Session[Message], http: h11.Connection, status: int, reason: str
    ) -> None:
        """Answer an HTTP error (section 4.2.2: e.g. 400, or 426 with the version we speak)
        and close."""
        body = (reason + "\n").encode()
        headers = [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        if status == 426:
            headers.append(("Sec-WebSocket-Version", "13"))
        data = b""
        with contextlib.suppress(h11.LocalProtocolError):  # a request h11 could not parse
            data = http.send(h11.Response(status_code=status, headers=headers)) or b""
            data += http.send(h11.Data(data=body)) or b""
            data += http.send(h11.EndOfMessage()) or b""
        if not data:  # h11 refuses to answer a request it could not parse: by hand
            phrase = HTTPStatus(status).phrase
            data = f"HTTP/1.1 {status} {phrase}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            data += body
        await session.send(ws.HttpHead(data))
        await session.close()

    # -- section 5: frames ----------------------------------------------------------------
    async def frame(self, session: Session[Message], conn: _Connection, f: cs.Container) -> None:
        h = f.header
        opcode = h.opcode
        if h.rsv1 or h.rsv2 or h.rsv3:  # 5.2: no extension was negotiated
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, "reserved bit set")
        elif not h.masked:  # 5.1: "a server MUST close the connection" on an unmasked frame
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, "unmasked frame")
        elif not isinstance(opcode, str):  # 5.2: reserved opcodes fail the connection
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, f"opcode {opcode}")
        elif opcode == "PING":  # 5.5.2: a pong with the same payload
            await session.send(ws.frame("PONG", f.payload))
        elif opcode == "PONG":  # 5.5.3: unsolicited pongs need no answer
            pass
        elif opcode == "CLOSE":
            await self.closing(session, conn, f.payload)
        else:
            await self.data(session, conn, opcode, h.fin, f.payload)

    async def data(
        self, session: Session[Message], conn: _Connection, opcode: str, fin: bool, payload: bytes
    ) -> None:
        """Section 5.4: a message is a first frame (TEXT or BINARY) and continuation frames
        up to one with FIN set; control frames may come in between (handled elsewhere)."""
        if opcode in DATA:
            if conn.opcode is not None:
                await self.fail(
                    session, conn, ws.CloseCode.PROTOCOL_ERROR, "new message inside a message"
                )
                return
            conn.opcode = opcode
        elif conn.opcode is None:  # CONTINUATION with nothing to continue
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, "stray continuation")
            return
        conn.size += len(payload)
        if conn.size > self.max_size:
            await self.fail(session, conn, ws.CloseCode.MESSAGE_TOO_BIG, "message too big")
            return
        conn.fragments.append(payload)
        if not fin:
            return
        kind, message = conn.opcode, b"".join(conn.fragments)
        conn.opcode, conn.fragments, conn.size = None, [], 0
        if kind == "TEXT":
            try:
                message.decode("utf-8")
            except UnicodeDecodeError:  # 8.1: fail the connection with 1007
                await self.fail(session, conn, ws.CloseCode.INVALID_DATA, "text is not UTF-8")
                return
        await session.send(ws.frame(kind, message))

    async def closing(self, session: Session[Message], conn: _Connection, payload: bytes) -> None:
        """Section 5.5.1: answer a close frame with a close frame (echoing its status code),
        then close the TCP connection (7.1.1: the server closes it first)."""
        try:
            code, _reason = ws.parse_close(payload)
        except DecodeError:
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, "bad close payload")
            return
        if code is not None and not _sendable_code(code):
            await self.fail(session, conn, ws.CloseCode.PROTOCOL_ERROR, f"close code {code}")
            return
        conn.open = False
        await session.send(ws.frame("CLOSE", ws.close_payload(code)))
        await session.close()

    async def fail(
        self, session: Session[Message], conn: _Connection, code: int, reason: str
    ) -> None:
        """Section 7.1.7, *Fail the WebSocket Connection*: a close frame with ``code``, then
        close; nothing read afterwards is processed."""
        conn.open = False
        await session.send(ws.frame("CLOSE", ws.close_payload(code, reason)))
        await session.close()

    async def state_event(
        self, session: Session[Message], event: StateEvent, exc: BaseException | None
    ) -> None:
        """A frame the schema refuses (a bad length, a long control frame, too big): tell the
        client why with a close frame before the transport closes the connection."""
        conn: _Connection | None = session.attributes.get("websocket")
        if event is StateEvent.DECODE_EXCEPTION and conn is not None and conn.open:
            conn.open = False
            code = (
                ws.CloseCode.MESSAGE_TOO_BIG
                if isinstance(exc, FrameTooLarge)
                else ws.CloseCode.PROTOCOL_ERROR
            )
            with contextlib.suppress(anyio.ClosedResourceError, anyio.BrokenResourceError):
                await session.send(ws.frame("CLOSE", ws.close_payload(code)))


def _handshake_problem(method: bytes, headers: dict[bytes, bytes]) -> tuple[int, str] | None:
    """Section 4.2.1's requirements on the client's request, or ``None`` when it meets them."""

    def tokens(name: bytes) -> set[bytes]:
        return {t.strip().lower() for t in headers.get(name, b"").split(b",")}

    if method != b"GET":
        return 400, "the opening handshake is a GET"
    if b"websocket" not in tokens(b"upgrade"):
        return 400, "Upgrade: websocket is missing"
    if b"upgrade" not in tokens(b"connection"):
        return 400, "Connection: Upgrade is missing"
    if headers.get(b"sec-websocket-version") != b"13":
        return 426, "only version 13 is spoken"
    key = headers.get(b"sec-websocket-key", b"")
    try:
        if len(base64.b64decode(key, validate=True)) != 16:
            raise ValueError
    except ValueError:
        return 400, "Sec-WebSocket-Key must be 16 bytes in base64"
    return None


def _sendable_code(code: int) -> bool:
    """Section 7.4: the status codes a close frame may carry (1005, 1006 and 1015 are never
    sent; 1016-2999 are unassigned; 3000-4999 belong to libraries and applications)."""
    return code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011) or (3000 <= code <= 4999)


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0: an ephemeral port")
    parser.add_argument(
        "--max-size", type=int, default=16 << 20, help="largest message in bytes (16 MiB)"
    )
    args = parser.parse_args(argv)
    protocol = ws.UpgradeStream(ws.codec(max_payload=args.max_size))
    processor = WebSocketEcho(args.max_size)
    async with Server(protocol, processor, host=args.host, port=args.port) as server:
        print(f"listening on {args.host}:{server.port}", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        anyio.run(main, sys.argv[1:])
