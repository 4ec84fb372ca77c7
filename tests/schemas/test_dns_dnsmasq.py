"""wirekit's ``UdpClient`` and ``Client`` with ``schemas.dns`` against Debian's dnsmasq on
loopback: real answers, with the compressed names dnsmasq writes (pointers into the
question and into an earlier record's RDATA), a CNAME chain, AAAA, MX, TXT and NXDOMAIN.

dnsmasq runs in the foreground from a fixture, with no configuration file, no upstream
servers and no hosts file, on a free port of 127.0.0.1. Every wait is bounded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

from codec import Buffer
from schemas.dns import MESSAGE, MESSAGE_CODEC, TCP_MESSAGE_CODEC
from transport import Client, UdpClient

DNSMASQ = shutil.which("dnsmasq") or next(
    (p for p in ("/usr/sbin/dnsmasq", "/sbin/dnsmasq") if os.access(p, os.X_OK)), None
)
pytestmark = [
    pytest.mark.peer,
    pytest.mark.anyio,
    pytest.mark.skipif(
        DNSMASQ is None,
        reason="dnsmasq not installed (apt-get install dnsmasq-base; .ci/run installs it)",
    ),
]

TIMEOUT = 20.0
ZONE = [
    "--address=/example.test/192.0.2.1",  # example.test and every name under it
    "--host-record=www.example.test,192.0.2.10,2001:db8::10",
    "--cname=alias.example.test,www.example.test",
    "--mx-host=example.test,mail.example.test,10",
    "--txt-record=example.test,hello world,x",
    "--address=/nx.test/",  # NXDOMAIN for nx.test and below
]


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _free_port() -> int:
    """A port free for both TCP and UDP on 127.0.0.1 a moment ago (dnsmasq binds both)."""
    while True:
        with socket.socket() as tcp, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            tcp.bind(("127.0.0.1", 0))
            port = int(tcp.getsockname()[1])
            try:
                udp.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port


def _answers_tcp(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def dnsmasq(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """dnsmasq in the foreground; its port once it accepts connections."""
    assert DNSMASQ is not None
    log = tmp_path_factory.mktemp("dnsmasq") / "stderr"
    for _attempt in range(5):
        port = _free_port()
        cmd = [
            DNSMASQ,
            "--keep-in-foreground",
            "--conf-file=/dev/null",  # nothing from /etc/dnsmasq.conf
            "--pid-file=",  # no pid file
            f"--port={port}",
            "--listen-address=127.0.0.1",
            "--bind-interfaces",
            "--no-resolv",
            "--no-hosts",
            "--no-poll",
            "--log-facility=-",  # log to stderr
            *ZONE,
        ]
        if os.geteuid() == 0:
            cmd.append("--user=root")  # stay root rather than switch to an absent 'dnsmasq'
        with open(log, "wb") as err:
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        deadline = time.monotonic() + TIMEOUT
        while proc.poll() is None and not _answers_tcp(port):
            if time.monotonic() > deadline:
                proc.kill()
                proc.wait(TIMEOUT)
                pytest.fail(f"dnsmasq did not start listening: {log.read_text()}")
            time.sleep(0.05)  # polling a condition, with a deadline
        if proc.poll() is None:
            break
        if "Address already in use" not in log.read_text():
            pytest.fail(f"dnsmasq exited with {proc.returncode}: {log.read_text()}")
    else:
        pytest.fail(f"dnsmasq found no free port: {log.read_text()}")
    try:
        yield port
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(TIMEOUT)


def query(qid: int, name: str, qtype: str) -> dict[str, Any]:
    return {
        "id": qid,
        "flags": {
            "qr": False,
            "opcode": "QUERY",
            "aa": False,
            "tc": False,
            "rd": True,
            "ra": False,
            "z": 0,
            "ad": False,
            "cd": False,
            "rcode": "NOERROR",
        },
        "questions": [{"qname": name, "qtype": qtype, "qclass": "IN"}],
        "answers": [],
        "authorities": [],
        "additionals": [],
    }


QUERIES = [
    ("alias.example.test", "A"),
    ("www.example.test", "AAAA"),
    ("example.test", "MX"),
    ("example.test", "TXT"),
    ("anything.example.test", "A"),
    ("deep.nx.test", "A"),
]


async def ask_all(port: int, transport: str) -> list[Any]:
    answers = []
    with anyio.fail_after(TIMEOUT):
        if transport == "udp":
            async with UdpClient(MESSAGE_CODEC, host="127.0.0.1", port=port) as session:
                for i, (name, qtype) in enumerate(QUERIES):
                    await session.send(query(0x100 + i, name, qtype))
                    answers.append(await session.receive())
        else:
            async with Client(TCP_MESSAGE_CODEC, host="127.0.0.1", port=port) as session:
                for i, (name, qtype) in enumerate(QUERIES):
                    await session.send(query(0x100 + i, name, qtype))
                    answers.append(await session.receive())
    return answers


def records(msg: Any) -> list[tuple[str, str, Any]]:
    return [(rr.name, str(rr.rtype), rr.rdata) for rr in msg.answers]


@pytest.mark.parametrize("transport", ["udp", "tcp"])
async def test_dnsmasq_answers_decode(dnsmasq: int, transport: str) -> None:
    cname, aaaa, mx, txt, wildcard, nx = await ask_all(dnsmasq, transport)
    for i, msg in enumerate((cname, aaaa, mx, txt, wildcard, nx)):
        assert msg.id == 0x100 + i
        assert msg.flags.qr
        assert msg.flags.rd
        name, qtype = QUERIES[i]
        assert [(q.qname, q.qtype, q.qclass) for q in msg.questions] == [(name, qtype, "IN")]

    # the CNAME's target is a pointer into the question; the A record's owner a pointer
    # into the CNAME's RDATA
    assert cname.flags.rcode == "NOERROR"
    assert records(cname) == [
        ("alias.example.test", "CNAME", "www.example.test"),
        ("www.example.test", "A", "192.0.2.10"),
    ]
    assert records(aaaa) == [("www.example.test", "AAAA", "2001:db8::10")]
    assert records(mx) == [
        ("example.test", "MX", {"preference": 10, "exchange": "mail.example.test"})
    ]
    assert records(txt) == [("example.test", "TXT", [b"hello world", b"x"])]
    assert records(wildcard) == [("anything.example.test", "A", "192.0.2.1")]
    assert nx.flags.rcode == "NXDOMAIN"
    assert (nx.ancount, nx.answers) == (0, [])


async def test_dnsmasq_compresses_and_we_follow(dnsmasq: int) -> None:
    """The answer's bytes really hold pointers (encoding back without them is longer),
    and the codec reads them exactly as construct does."""
    with anyio.fail_after(TIMEOUT):
        async with await anyio.create_connected_udp_socket("127.0.0.1", dnsmasq) as sock:
            await sock.send(MESSAGE_CODEC.encode(query(7, "alias.example.test", "A")))
            wire = await sock.receive()
    msg = MESSAGE.parse(wire)
    assert len(MESSAGE_CODEC.encode(msg)) > len(wire)  # we write every name in full
    cname, a = msg.answers
    assert (cname.name, cname.rdata, a.name) == (
        "alias.example.test",
        "www.example.test",
        "www.example.test",
    )
    # the last record (16 octets: a 2-octet name, 10 of fields, 4 of address) is named by a
    # pointer, which dnsmasq aims at the CNAME's RDATA (the first answer's last octets)
    assert wire[-16] & 0xC0 == 0xC0
    target = (wire[-16] & 0x3F) << 8 | wire[-15]
    assert len(wire) - 16 - cname.rdlength == target
    assert MESSAGE_CODEC.decode(Buffer(wire)) == msg
