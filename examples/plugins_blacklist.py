"""BlackList: refuse addresses and networks before any work, and change the lists live.

Run ``python examples/plugins_blacklist.py``: 127.0.0.0/8 is denied (the connection is
closed before NEW_SESSION, with REJECT_ACCEPT), then taken off the list and served.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Processor, Server, Session, StateEvent
from transport.plugins import BlackList

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Echo(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg)

    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        if event is StateEvent.REJECT_ACCEPT:
            print("refused:", session.attributes["reject_reason"])


async def try_once(port: int) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as stream:
        await stream.send(b"\x02hi")
        try:
            print("served:", await stream.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            print("connection closed by the server")


async def main() -> None:
    blacklist = BlackList(deny=["127.0.0.0/8", "2001:db8::/32"])
    async with Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[blacklist]) as server:
        await try_once(server.port)
        blacklist.remove("127.0.0.0/8")  # lists change at run time
        await try_once(server.port)


if __name__ == "__main__":
    anyio.run(main)
