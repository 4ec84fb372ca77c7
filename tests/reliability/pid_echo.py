"""A ``wirekit serve`` factory for the worker tests: every reply is ``b"<pid>:" + msg``, so a
client sees which worker process served it."""

from __future__ import annotations

import os

import construct as cs

from codec import Codec
from transport import Processor, Server, Session

BYTES32 = cs.Prefixed(cs.Int32ub, cs.GreedyBytes)
PID = str(os.getpid()).encode()


class PidEcho(Processor[bytes]):
    async def process(self, session: Session[bytes], msg: bytes) -> None:
        if msg == b"die":  # a worker that crashes (for the restart tests)
            os._exit(3)
        await session.send(PID + b":" + msg)


def make_server(host: str, port: int) -> Server[bytes]:
    return Server(Codec(BYTES32, max_frame_size=1 << 20), PidEcho(), host=host, port=port)


def broken(host: str, port: int) -> Server[bytes]:
    raise RuntimeError("this factory always fails")
