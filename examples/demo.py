"""wirekit demo (runs on loopback only): a length-prefixed string protocol, decoded
incrementally from half and sticky packets, the seed chapter's two examples; then the same
protocol served over a real loopback socket, with the server's state events printed.

Run it with ``python3 dev.py demo``.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Buffer, Codec, DecodeError
from transport import Client, Processor, Server, Session, StateEvent

STRING8 = cs.PascalString(cs.Int8ub, "utf8")  # the seed's StringProtocol wire format


def codec_demo() -> None:
    c = Codec(STRING8, max_frame_size=65536)
    print(f"schema framing: {c.framing}")
    frame = c.encode("smart-socket")
    print(f"encode('smart-socket') -> {frame!r} ({len(frame)} bytes)")

    buf = Buffer(frame[:12])
    print(f"half packet: 12 of {len(frame)} bytes buffered -> decode = {c.decode(buf)!r}")

    buf.extend(frame[12:] + frame)
    print(f"sticky packet: {len(buf)} bytes buffered")
    while (msg := c.decode(buf)) is not None:
        print(f"  decoded {msg!r}, {len(buf)} bytes left")

    try:
        c.decode(Buffer(b"\x02\xff\xfe"))
    except DecodeError as exc:
        print(f"malformed bytes -> DecodeError: {exc}")


class EchoProcessor(Processor[str]):
    """Echoes every message and prints what the server sees."""

    async def process(self, session: Session[str], msg: str) -> None:
        print(f"  server: message {msg!r} from port {session.remote_address[1]}")
        await session.send(msg)

    async def state_event(
        self, session: Session[str], event: StateEvent, exc: BaseException | None
    ) -> None:
        why = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
        print(f"  server: {event.name}{why}")


async def transport_demo() -> None:
    c = Codec(STRING8, max_frame_size=65536)
    async with Server(c, EchoProcessor(), host="127.0.0.1", port=0) as server:
        print(f"server listening on 127.0.0.1:{server.port}")

        print("raw socket: 2 frames written one byte at a time (half packets)")
        async with await anyio.connect_tcp("127.0.0.1", server.port) as stream:
            data = c.encode("smart") + c.encode("socket")
            for i in range(len(data)):
                await stream.send(data[i : i + 1])
            echoed = b""
            while len(echoed) < len(data):
                echoed += await stream.receive()
            print(f"  client: echoed {c.decode_all(echoed)!r}")

            print("raw socket: 3 frames in one write (sticky packets), then bad bytes")
            sticky = b"".join(c.encode(w) for w in ("one", "two", "three"))
            await stream.send(sticky)
            echoed = b""
            while len(echoed) < len(sticky):
                echoed += await stream.receive()
            print(f"  client: echoed {c.decode_all(echoed)!r}")
            await stream.send(b"\x02\xff\xfe")  # not UTF-8: the server closes this session
            try:
                await stream.receive()
            except anyio.EndOfStream:
                print("  client: server closed the connection")

        print("pull-style Client: send, receive, leave the block (graceful close)")
        async with Client(c, host="127.0.0.1", port=server.port) as session:
            await session.send("smart-socket")
            print(f"  client: received {await session.receive()!r}")
            await session.close()
    print("server shut down")


if __name__ == "__main__":
    codec_demo()
    print()
    anyio.run(transport_demo)
