"""StreamMonitor: every byte on the wire, as a hex dump in the log or to your own sink.

Run ``python examples/plugins_stream_monitor.py``: the server logs each read and write as
a ``hexdump -C`` dump at DEBUG (logger ``transport.stream``); a second server hands the
bytes to a sink that keeps a transcript.
"""

from __future__ import annotations

import logging

import anyio
import construct as cs

from codec import Codec
from transport import Client, Processor, Server, Session
from transport.plugins import StreamMonitor

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Echo(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg)


async def main() -> None:
    logging.basicConfig(format="%(name)s: %(message)s")
    logging.getLogger("transport.stream").setLevel(logging.DEBUG)
    async with (
        Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[StreamMonitor()]) as server,
        Client(codec, host="127.0.0.1", port=server.port) as session,
    ):
        await session.send("smart-socket, on the wire")
        await session.receive()

    transcript: list[tuple[str, bytes]] = []
    tap = StreamMonitor(sink=lambda session, direction, data: transcript.append((direction, data)))
    async with (
        Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[tap]) as server,
        Client(codec, host="127.0.0.1", port=server.port) as session,
    ):
        await session.send("hi")
        await session.receive()
    print(transcript)  # [('read', b'\x02hi'), ('write', b'\x02hi')]


if __name__ == "__main__":
    anyio.run(main)
