"""An authoritative-only DNS server for a few A records, over UDP and TCP (an example).

    python examples/dns_server.py --host 127.0.0.1 --port 0 --record www.example.test=192.0.2.1

prints ``listening on HOST:PORT`` first (TCP and UDP share the port), then serves until
SIGINT or SIGTERM. ``--record NAME=IPV4`` may be repeated, several addresses for one name
included. Answers follow RFC 1035 4.1.1: the question is echoed, AA is set, RD is copied;
a known name gets its A records (and no answer for another type, "NODATA"), an unknown
name NXDOMAIN (rcode 3), a query that is not a standard query NOTIMP (4), a message with
other than one question FORMERR (1); a message that is itself a response gets no answer.
Names compare case-insensitively (RFC 4343). Over UDP, an answer longer than 512 octets is
sent without its records and with TC set, so that the client retries over TCP (RFC 1035
4.2.1). No recursion, no EDNS, no zone files.

The wire format is :mod:`schemas.dns`: ``MESSAGE_CODEC`` for UDP datagrams,
``TCP_MESSAGE_CODEC`` for the length-prefixed TCP stream (RFC 1035 4.2.2, RFC 7766).
"""

from __future__ import annotations

import argparse
import ipaddress
import signal
import sys
from typing import Any

import anyio

from schemas.dns import MESSAGE_CODEC, TCP_MESSAGE_CODEC, TYPES, name_from_text
from transport import Processor, Server, Session, UdpServer

#: the most octets of a UDP answer without EDNS (RFC 1035 2.3.4)
UDP_LIMIT = 512
NOERROR, FORMERR, NXDOMAIN, NOTIMP = 0, 1, 3, 4


class Zone:
    """Names (lower case, no final dot) and their IPv4 addresses."""

    def __init__(self, records: list[tuple[str, str]], ttl: int) -> None:
        self.ttl = ttl
        self.addresses: dict[str, list[str]] = {}
        for name, address in records:
            self.addresses.setdefault(_key(name), []).append(address)

    def answer(self, query: Any, *, udp: bool) -> dict[str, Any] | None:
        """The response message to ``query`` (a decoded ``schemas.dns`` message), or
        ``None`` for a message that is itself a response: answering those would let two
        servers bounce errors at each other forever."""
        flags = query.flags
        if flags.qr:
            return None
        response: dict[str, Any] = {
            "id": query.id,
            "flags": {
                "qr": True,
                "opcode": flags.opcode,
                "aa": True,
                "tc": False,
                "rd": flags.rd,
                "ra": False,
                "z": 0,
                "ad": False,
                "cd": False,
                "rcode": NOERROR,
            },
            "questions": list(query.questions),
            "answers": [],
            "authorities": [],
            "additionals": [],
        }
        if flags.opcode != "QUERY":
            response["flags"]["rcode"] = NOTIMP
        elif len(query.questions) != 1:
            response["flags"]["rcode"] = FORMERR
        else:
            question = query.questions[0]
            addresses = self.addresses.get(_key(question.qname))
            if addresses is None:
                response["flags"]["rcode"] = NXDOMAIN
            elif question.qtype in ("A", "ANY") and question.qclass in ("IN", "ANY"):
                response["answers"] = [
                    {
                        "name": question.qname,
                        "rtype": TYPES["A"],
                        "rclass": "IN",
                        "ttl": self.ttl,
                        "rdata": address,
                    }
                    for address in addresses
                ]
        if udp and len(MESSAGE_CODEC.encode(response)) > UDP_LIMIT:
            response["flags"]["tc"] = True
            response["answers"] = []
        return response


def _key(name: str) -> str:
    """A name as the zone looks it up: ASCII case folded (RFC 4343), no final dot."""
    return name.rstrip(".").translate(_LOWER)


_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


class DnsProcessor(Processor[Any]):
    """Answers every query with one response, over UDP or TCP."""

    def __init__(self, zone: Zone, *, udp: bool) -> None:
        self.zone = zone
        self.udp = udp

    async def process(self, session: Session[Any], msg: Any) -> None:
        response = self.zone.answer(msg, udp=self.udp)
        if response is not None:
            await session.send(response)


async def serve(host: str, port: int, zone: Zone) -> None:
    """Serve TCP and UDP on one port until SIGINT or SIGTERM.

    With ``--port 0`` the TCP listener picks the port; should that port be taken for UDP
    by another program, both are tried again on a new one.
    """
    tcp = DnsProcessor(zone, udp=False)
    udp = DnsProcessor(zone, udp=True)
    for attempt in range(10):
        listening = False
        try:
            async with (
                Server(TCP_MESSAGE_CODEC, tcp, host=host, port=port) as server,
                UdpServer(MESSAGE_CODEC, udp, host=host, port=server.port),
            ):
                listening = True
                print(f"listening on {host}:{server.port}", flush=True)
                with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                    async for _ in signals:
                        return  # leaving the blocks shuts down gracefully
        except OSError:
            if listening or port != 0 or attempt == 9:
                raise


def parse_record(text: str) -> tuple[str, str]:
    name, sep, address = text.partition("=")
    if not sep or not name.strip("."):
        raise argparse.ArgumentTypeError(f"want NAME=IPV4, got {text!r}")
    try:
        name_from_text(name)  # a name that fits on the wire (RFC 1035 3.1)
        ipaddress.IPv4Address(address)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc
    return name, address


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=53)
    p.add_argument(
        "--record",
        type=parse_record,
        action="append",
        default=[],
        metavar="NAME=IPV4",
        help="an A record (repeatable)",
    )
    p.add_argument("--ttl", type=int, default=60, help="TTL of the answers, seconds")
    args = p.parse_args(argv)
    anyio.run(serve, args.host, args.port, Zone(args.record, args.ttl))
    return 0


if __name__ == "__main__":
    sys.exit(main())
