"""Reconnect: a push-style client that survives its server's restart and resubscribes.

Run ``python examples/plugins_reconnect.py``: a client subscribes; the server restarts on
the same port; the client backs off (each attempt is reported), reconnects as a new
session and subscribes again from ``on_reconnect``.
"""

from __future__ import annotations

import anyio
import construct as cs
from anyio.abc import TaskStatus

from codec import Codec
from transport import Client, Processor, Reconnect, ReconnectAttempt, Server, Session, StateEvent

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Broker(Processor[str]):
    def __init__(self) -> None:
        self.subscribed = anyio.Event()

    def process(self, session: Session[str], msg: str) -> None:
        print("server got", msg)
        self.subscribed.set()


class Subscriber(Processor[str]):
    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        print("client", event.name)


def attempt(a: ReconnectAttempt) -> None:
    why = "first connect" if a.error is None else f"after {type(a.error).__name__}"
    print(f"attempt {a.attempt} in {a.delay:.3f} s ({why})")


async def subscribe(session: Session[str]) -> None:
    await session.send("SUBSCRIBE news")  # every new session: the server forgot us


async def serve(
    broker: Broker, port: int, stop: anyio.Event, *, task_status: TaskStatus[int]
) -> None:
    async with Server(codec, broker, host="127.0.0.1", port=port) as server:
        task_status.started(server.port)
        await stop.wait()


async def main() -> None:
    policy = Reconnect(
        initial_delay=0.05, max_delay=0.5, on_attempt=attempt, on_reconnect=subscribe
    )
    first, second = Broker(), Broker()
    async with anyio.create_task_group() as tg:
        stop = anyio.Event()
        port = await tg.start(serve, first, 0, stop)
        async with Client(codec, Subscriber(), host="127.0.0.1", port=port, reconnect=policy):
            await first.subscribed.wait()
            stop.set()  # the server goes down...
            await anyio.sleep(0.2)  # (the client backs off and tries again meanwhile)
            stop = anyio.Event()
            await tg.start(serve, second, port, stop)  # ...and comes back on the same port
            with anyio.fail_after(10):
                await second.subscribed.wait()
        stop.set()


if __name__ == "__main__":
    anyio.run(main)
