"""examples/dns_server.py against dnspython's resolver-side queries (an implementation no one
here wrote), over UDP and TCP on the one port the server prints; and against wirekit's own
``UdpClient``/``Client`` with ``schemas.dns``.

The server runs as a subprocess, as a user starts it: ``--port 0``, and the first line of
its output says where it listens. Every wait is bounded.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import dns.flags
import dns.message
import dns.opcode
import dns.query
import dns.rcode
import dns.rdatatype
import pytest

from schemas.dns import MESSAGE_CODEC, TCP_MESSAGE_CODEC
from transport import Client, UdpClient

from .servers import TIMEOUT, start, stop

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "dns_server.py"
RECORDS = {
    "www.example.test": ["192.0.2.1", "192.0.2.2"],
    "db.internal.test": ["10.1.2.3"],
    # 20 records of 36 octets (names written in full): more than a UDP answer may carry
    "many.addresses.example.test": [f"198.51.100.{i}" for i in range(1, 21)],
}


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[str, int]]:
    args = [f"--record={name}={a}" for name, addrs in RECORDS.items() for a in addrs]
    proc, host, port = start(EXAMPLE, *args, "--ttl", "30")
    try:
        yield host, port
    finally:
        assert stop(proc) == 0, "the server did not shut down cleanly on SIGTERM"


@pytest.mark.parametrize("transport", ["udp", "tcp"])
@pytest.mark.parametrize("qname", ["www.example.test", "DB.Internal.TEST."])
def test_dnspython_gets_the_a_records(server: tuple[str, int], transport: str, qname: str) -> None:
    host, port = server
    query = dns.message.make_query(qname, "A")
    send = dns.query.udp if transport == "udp" else dns.query.tcp
    response = send(query, host, port=port, timeout=TIMEOUT)
    assert response.id == query.id
    assert response.rcode() == dns.rcode.NOERROR
    assert response.flags & dns.flags.QR
    assert response.flags & dns.flags.AA
    assert response.flags & dns.flags.RD  # copied from the query
    assert response.question == query.question
    [rrset] = response.answer
    assert rrset.name == query.question[0].name  # the question's spelling, case included
    assert rrset.rdtype == dns.rdatatype.A
    assert rrset.ttl == 30
    expected = RECORDS[qname.lower().rstrip(".")]
    assert sorted(rd.address for rd in rrset) == sorted(expected)


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dnspython_gets_nxdomain_for_unknown_names(server: tuple[str, int], transport: str) -> None:
    host, port = server
    query = dns.message.make_query("nobody.example.test", "A")
    send = dns.query.udp if transport == "udp" else dns.query.tcp
    response = send(query, host, port=port, timeout=TIMEOUT)
    assert response.rcode() == dns.rcode.NXDOMAIN
    assert response.answer == []
    assert response.question == query.question


def test_other_types_of_a_known_name_have_no_data(server: tuple[str, int]) -> None:
    host, port = server
    query = dns.message.make_query("www.example.test", "AAAA")
    response = dns.query.udp(query, host, port=port, timeout=TIMEOUT)
    assert response.rcode() == dns.rcode.NOERROR
    assert response.answer == []


def test_several_queries_on_one_tcp_connection(server: tuple[str, int]) -> None:
    """RFC 7766 6.2.1: a client may send several queries on one connection (pipelined)."""
    host, port = server
    queries = [dns.message.make_query(name, "A") for name in (*RECORDS, "none.test")]
    with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
        for q in queries:  # all of them first, then read the answers
            dns.query.send_tcp(sock, q)
        answers = [dns.query.receive_tcp(sock)[0] for _ in queries]
    assert [a.id for a in answers] == [q.id for q in queries]
    rcodes = [a.rcode() for a in answers]
    assert rcodes == [dns.rcode.NOERROR] * len(RECORDS) + [dns.rcode.NXDOMAIN]


def test_not_a_query_is_notimp(server: tuple[str, int]) -> None:
    host, port = server
    query = dns.message.make_query("www.example.test", "A")
    query.set_opcode(dns.opcode.STATUS)
    response = dns.query.udp(query, host, port=port, timeout=TIMEOUT)
    assert response.rcode() == dns.rcode.NOTIMP


def query(qid: int, name: str, qtype: str = "A") -> dict[str, Any]:
    return {
        "id": qid,
        "flags": {
            "qr": False, "opcode": "QUERY", "aa": False, "tc": False, "rd": True,
            "ra": False, "z": 0, "ad": False, "cd": False, "rcode": "NOERROR",
        },
        "questions": [{"qname": name, "qtype": qtype, "qclass": "IN"}],
        "answers": [], "authorities": [], "additionals": [],
    }  # fmt: skip


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio", "trio"])
async def test_wirekit_clients_over_udp_and_tcp(server: tuple[str, int]) -> None:
    host, port = server
    with anyio.fail_after(TIMEOUT):
        async with UdpClient(MESSAGE_CODEC, host=host, port=port) as udp:
            await udp.send(query(1, "www.example.test"))
            answer = await udp.receive()
        async with Client(TCP_MESSAGE_CODEC, host=host, port=port) as tcp:
            await tcp.send(query(2, "nothing.test"))
            nx = await tcp.receive()
    assert answer.id == 1
    assert answer.flags.rcode == "NOERROR"
    assert sorted(rr.rdata for rr in answer.answers) == RECORDS["www.example.test"]
    assert [rr.rtype for rr in answer.answers] == ["A", "A"]
    assert nx.id == 2
    assert nx.flags.rcode == "NXDOMAIN"
    assert nx.ancount == 0


def test_garbage_is_ignored_and_the_server_goes_on(server: tuple[str, int]) -> None:
    """A datagram that is not a DNS message (a pointer loop in its question) gets no
    answer; the next query from the same address does."""
    host, port = server
    bad = bytes.fromhex("abcd 0100 0001 0000 0000 0000 c00c 0001 0001".replace(" ", ""))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect((host, port))
        sock.send(bad)
        query = dns.message.make_query("www.example.test", "A")
        sock.send(query.to_wire())
        answer = dns.message.from_wire(sock.recv(65535))
    assert answer.id == query.id
    assert answer.rcode() == dns.rcode.NOERROR


def test_an_answer_too_long_for_udp_is_truncated_and_complete_over_tcp(
    server: tuple[str, int],
) -> None:
    """RFC 1035 4.2.1: over 512 octets, a UDP answer is truncated and says so (TC); the
    client asks again over TCP (RFC 7766 5)."""
    host, port = server
    name = "many.addresses.example.test"
    query = dns.message.make_query(name, "A")
    short = dns.query.udp(query, host, port=port, timeout=TIMEOUT)
    assert short.flags & dns.flags.TC
    assert short.answer == []
    full = dns.query.tcp(query, host, port=port, timeout=TIMEOUT)
    assert not full.flags & dns.flags.TC
    [rrset] = full.answer
    assert sorted(rd.address for rd in rrset) == sorted(RECORDS[name])


def test_responses_get_no_answer_and_two_questions_formerr(server: tuple[str, int]) -> None:
    host, port = server
    reply = dns.message.make_response(dns.message.make_query("www.example.test", "A"))
    two = dns.message.make_query("www.example.test", "A")
    two.question.append(dns.message.make_query("db.internal.test", "A").question[0])
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(TIMEOUT)
        sock.connect((host, port))
        sock.send(reply.to_wire())  # ignored: the next datagram back answers ``two``
        sock.send(two.to_wire())
        answer = dns.message.from_wire(sock.recv(65535))
    assert answer.id == two.id
    assert answer.rcode() == dns.rcode.FORMERR


def test_a_bad_record_is_a_usage_error() -> None:
    for bad in ("no-equals-sign", "name=300.1.2.3", f"{'x' * 64}.test=192.0.2.1"):
        proc = subprocess.run(
            [sys.executable, str(EXAMPLE), "--port", "0", "--record", bad],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
        )
        assert proc.returncode == 2, bad
        assert "--record" in proc.stderr
        assert proc.stdout == ""
