"""Heartbeat: a server pings quiet clients and drops those that stop answering.

Run ``python examples/plugins_heartbeat.py``: one client answers every "ping" with "pong"
(its processor does; the server's never sees the pongs), another ignores them and is
closed after two unanswered heartbeats.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Client, Processor, Server, Session, StateEvent
from transport.plugins import Heartbeat

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class App(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        print("server got", msg)  # never "pong": Heartbeat takes the replies out

    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        if event is StateEvent.INPUT_EXCEPTION:
            print(f"server closed a client: {exc}")


class Answering(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        if msg == "ping":
            session.write("pong")


async def main() -> None:
    beat = Heartbeat(0.1, "ping", is_reply=lambda msg: msg == "pong", max_missed=2)
    async with Server(codec, App(), host="127.0.0.1", port=0, plugins=[beat]) as server:
        async with Client(codec, Answering(), host="127.0.0.1", port=server.port) as alive:
            await alive.send("hello")
            await anyio.sleep(0.5)  # five heartbeats, all answered: still open
            print("answering client open:", not alive.closed)
        async with Client(codec, host="127.0.0.1", port=server.port) as deaf:  # pull style
            with anyio.fail_after(5):
                async for msg in deaf:  # reads the pings, answers none
                    print("deaf client got", msg)
            print("deaf client closed by the server")


if __name__ == "__main__":
    anyio.run(main)
