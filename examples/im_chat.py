"""A group chat: the seed's ``IMProcessor`` sketch made real (a runnable demo, loopback only).

Every session is collected on ``NEW_SESSION``; a client's first message is its name, every
later one is broadcast to the other members; ``SESSION_CLOSED`` removes the member and tells
the others who left. Run ``python examples/im_chat.py`` to watch three bots chat.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Client, Processor, Server, Session, StateEvent

#: one chat line: 2-byte big-endian length + UTF-8 text
LINE = cs.PascalString(cs.Int16ub, "utf8")


class IMProcessor(Processor[str]):
    """Group chat over any string protocol."""

    def __init__(self) -> None:
        self.members: set[Session[str]] = set()

    async def broadcast(self, sender: Session[str] | None, text: str) -> None:
        for other in list(self.members):
            if other is sender or "name" not in other.attributes:
                continue
            try:
                await other.send(text)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass  # that member is leaving; SESSION_CLOSED will say so

    async def process(self, session: Session[str], msg: str) -> None:
        name = session.attributes.get("name")
        if name is None:  # the first line is the member's name
            session.attributes["name"] = msg
            online = sum("name" in s.attributes for s in self.members)
            await session.send(f"welcome {msg} ({online} online)")
            await self.broadcast(session, f"{msg} joined")
        else:
            await self.broadcast(session, f"{name}: {msg}")

    async def state_event(
        self, session: Session[str], event: StateEvent, exc: BaseException | None
    ) -> None:
        if event is StateEvent.NEW_SESSION:
            self.members.add(session)
        elif event is StateEvent.SESSION_CLOSED:
            self.members.discard(session)
            if "name" in session.attributes:
                await self.broadcast(None, f"{session.attributes['name']} left")


async def main() -> None:
    codec = Codec(LINE, max_frame_size=4096)
    async with Server(codec, IMProcessor(), host="127.0.0.1", port=0) as server:
        print(f"chat server on 127.0.0.1:{server.port}")
        async with (
            Client(codec, host="127.0.0.1", port=server.port) as alice,
            Client(codec, host="127.0.0.1", port=server.port) as bob,
        ):
            await alice.send("alice")
            print("alice <-", await alice.receive())
            await bob.send("bob")
            print("bob   <-", await bob.receive())
            print("alice <-", await alice.receive())
            async with Client(codec, host="127.0.0.1", port=server.port) as carol:
                await carol.send("carol")
                print("carol <-", await carol.receive())
                print("alice <-", await alice.receive())
                print("bob   <-", await bob.receive())
                await alice.send("hello, group")
                print("bob   <-", await bob.receive())
                print("carol <-", await carol.receive())
            print("alice <-", await alice.receive())
            print("bob   <-", await bob.receive())


if __name__ == "__main__":
    anyio.run(main)
