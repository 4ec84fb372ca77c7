"""ProxyProtocol: the real client's address behind a load balancer (HAProxy's PROXY v1/v2).

Run ``python examples/plugins_proxy.py``: a stand-in balancer on 127.0.0.1 (a trusted
address) relays a client, sending a PROXY v1 line first, then one with a version 2 header;
the server's sessions see the client's addresses. A third connection sends garbage where
the header should be and is refused, with the reason.
"""

from __future__ import annotations

import anyio
import construct as cs

from codec import Codec
from transport import Processor, Server, Session, StateEvent
from transport.plugins import ProxyProtocol

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))

V2 = bytes.fromhex(
    "0d0a0d0a000d0a515549540a"  # the version 2 signature
    "2111000c"  # PROXY command, TCP over IPv4, 12 bytes of addresses
    "cb00710a c0000201 d431 01bb"  # 203.0.113.10:54321 -> 192.0.2.1:443
)


class Hello(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        print(f"{msg!r} from {session.remote_address}")  # the client's, not the balancer's
        session.write(f"hello {session.remote_address[0]}")

    def state_event(self, session: Session[str], event: StateEvent, exc: object) -> None:
        if event is StateEvent.INPUT_EXCEPTION:
            print("refused:", exc)


async def relay(port: int, header: bytes) -> None:
    async with await anyio.connect_tcp("127.0.0.1", port) as balancer:
        await balancer.send(header + b"\x02hi")  # the header first, then the client's bytes
        try:
            print("client got", await balancer.receive())
        except (anyio.EndOfStream, anyio.BrokenResourceError):
            print("connection closed")


async def main() -> None:
    proxy = ProxyProtocol(trusted=["127.0.0.1/32", "::1/128", "10.0.0.0/8"])
    async with Server(codec, Hello(), host="127.0.0.1", port=0, plugins=[proxy]) as server:
        await relay(server.port, b"PROXY TCP4 198.51.100.7 192.0.2.1 40000 443\r\n")
        await relay(server.port, V2)
        await relay(server.port, b"GET / HTTP/1.0\r\n\r\n")


if __name__ == "__main__":
    anyio.run(main)
