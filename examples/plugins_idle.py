"""IdleTimeout: a peer that goes quiet, or trickles a frame it never finishes, is closed.

Run ``python examples/plugins_idle.py``: a client says hello then falls silent; another
sends a byte every 50 ms of a frame it never finishes (slowloris). Both are closed, and
the state event says which timeout fired.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Processor, Server, Session, StateEvent
from transport.plugins import IdleTimeout

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Echo(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg)

    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        if event is StateEvent.INPUT_EXCEPTION:
            print(f"closed: {exc}")  # an IdleTimeoutError: .kind says which limit


async def main() -> None:
    idle = IdleTimeout(read=0.3, message=0.5)
    async with Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[idle]) as server:
        async with await anyio.connect_tcp("127.0.0.1", server.port) as quiet:
            await quiet.send(b"\x05hello")
            print("echo:", await quiet.receive())
            with anyio.fail_after(5):
                try:
                    await quiet.receive()  # ... silence: the server closes
                except anyio.EndOfStream:
                    pass
        async with await anyio.connect_tcp("127.0.0.1", server.port) as slowloris:
            await slowloris.send(b"\xc8")  # a 200-byte string, one byte at a time

            async def trickle() -> None:
                while True:  # bytes keep coming: never read-idle
                    await anyio.sleep(0.05)
                    await slowloris.send(b"x")

            async with anyio.create_task_group() as tg:
                tg.start_soon(trickle)
                with anyio.fail_after(5):
                    try:
                        await slowloris.receive()  # no complete message for 0.5 s: closed
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
                tg.cancel_scope.cancel()


if __name__ == "__main__":
    anyio.run(main)
