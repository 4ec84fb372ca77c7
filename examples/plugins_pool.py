"""ClientPool: many requests over few connections (the seed's multiplexing client).

Run ``python examples/plugins_pool.py``: 100 concurrent requests share at most 4
connections; each borrows one exclusively for its request and reply.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import ClientPool, Processor, Server, Session, StateEvent

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Upper(Processor[str]):
    def __init__(self) -> None:
        self.connections = 0

    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg.upper())

    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        if event is StateEvent.NEW_SESSION:
            self.connections += 1


async def main() -> None:
    upper = Upper()
    async with (
        Server(codec, upper, host="127.0.0.1", port=0) as server,
        ClientPool(codec, host="127.0.0.1", port=server.port, max_size=4) as pool,
    ):

        async def request(i: int) -> None:
            async with pool.acquire(timeout=10) as session:
                await session.send(f"request {i}")
                assert await session.receive() == f"REQUEST {i}"

        async with anyio.create_task_group() as tg:
            for i in range(100):
                tg.start_soon(request, i)
        print(pool.statistics())
    print(f"100 requests over {upper.connections} connection(s)")


if __name__ == "__main__":
    anyio.run(main)
