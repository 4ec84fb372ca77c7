"""RateLimit: a greedy client is slowed down, not cut: nothing is dropped.

Run ``python examples/plugins_ratelimit.py``: a client sends 50 requests in one write to a
server limited to 100 messages a second with a burst of 10; every reply comes back, in
order, after about (50 - 10) / 100 = 0.4 s.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Client, Processor, Server, Session
from transport.plugins import RateLimit

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Echo(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg)


async def main() -> None:
    limit = RateLimit(messages_per_second=100, burst=10, per="address")
    async with (
        Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[limit]) as server,
        Client(codec, host="127.0.0.1", port=server.port) as session,
    ):
        start = anyio.current_time()
        for i in range(50):
            session.write(f"request {i}")  # queued: they leave in one write
        replies = [await session.receive() for _ in range(50)]
        elapsed = anyio.current_time() - start
    assert replies == [f"request {i}" for i in range(50)]
    print(f"50 replies, none dropped, in {elapsed:.2f} s ({limit.holds} hold-ups)")


if __name__ == "__main__":
    anyio.run(main)
