"""Past one machine: a real load balancer (Debian's ``haproxy``) in front of two servers.

HAProxy listens on a loopback port in TCP mode and spreads connections round-robin over two
wirekit servers, opening each backend connection with a PROXY protocol v2 header
(``send-proxy-v2``) that carries the real client's address. Every connection through it
must be served, by both servers, and each session must learn its real client's address.

The servers read the header with :class:`transport.plugins.ProxyProtocol` (haproxy on
loopback is its default trusted balancer). The configuration is the one ``docs/deploy.md``
shows (``haproxy_config`` writes it).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from pathlib import Path
from typing import Any

import anyio
import pytest

from codec import Codec
from transport import Processor, Server, Session
from transport.plugins import ProxyProtocol

from .conftest import BYTES32, LOCAL, frame, report

pytestmark = [pytest.mark.anyio, pytest.mark.peer]

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
CONNECTIONS = 200
AT_ONCE = 20


class Tagged(Processor[bytes]):
    """Replies ``b"<name> <ip> <port> <msg>"``: the client the session sees, which
    :class:`~transport.plugins.ProxyProtocol` took from haproxy's PROXY v2 header."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.served = 0
        self.unproxied = 0

    def process(self, session: Session[bytes], msg: bytes) -> None:
        header = session.attributes.get("proxy_header")
        if header is None:
            self.unproxied += 1
            session.close_nowait()
            return
        self.served += 1
        host, port = session.remote_address[:2]
        session.write(f"{self.name} {host} {port} ".encode() + msg)


def haproxy_config(port: int, backends: list[int]) -> str:
    """The tested configuration (``docs/deploy.md`` shows it)."""
    servers = "\n".join(
        f"    server wirekit{i} 127.0.0.1:{p} send-proxy-v2" for i, p in enumerate(backends, 1)
    )
    return f"""\
global
    maxconn 4096

defaults
    mode tcp
    timeout connect 5s
    timeout client 60s
    timeout server 60s

frontend wirekit_in
    bind 127.0.0.1:{port}
    default_backend wirekit_servers

backend wirekit_servers
    balance roundrobin
{servers}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOCAL, 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def haproxy_bin() -> str:
    if not Path(HAPROXY).exists():
        pytest.skip("haproxy is not installed (.ci/run installs Debian's haproxy)")
    return HAPROXY


async def wait_listening(port: int, proc: anyio.abc.Process) -> None:
    while True:
        assert proc.returncode is None, f"haproxy exited with {proc.returncode}"
        try:
            stream = await anyio.connect_tcp(LOCAL, port)
        except OSError:
            await anyio.sleep(0.02)  # (haproxy says nothing when it is ready)
            continue
        await stream.aclose()
        return


async def test_haproxy_send_proxy_v2_round_robin(
    haproxy_bin: str, tmp_path: Path, anyio_backend: tuple[str, dict[str, Any]]
) -> None:
    one, two = Tagged("one"), Tagged("two")
    frames = Codec(BYTES32, max_frame_size=64 * 1024)
    front = free_port()
    with anyio.fail_after(60):
        async with (
            Server(frames, one, host=LOCAL, port=0, plugins=[ProxyProtocol()]) as s1,
            Server(frames, two, host=LOCAL, port=0, plugins=[ProxyProtocol()]) as s2,
        ):
            config = tmp_path / "haproxy.cfg"
            config.write_text(haproxy_config(front, [s1.port, s2.port]))
            check = await anyio.run_process([haproxy_bin, "-c", "-f", str(config)], check=False)
            assert check.returncode == 0, check.stderr.decode()
            with (tmp_path / "haproxy.log").open("wb") as log:
                proc = await anyio.open_process(
                    [haproxy_bin, "-f", str(config), "-db"], stdout=subprocess.DEVNULL, stderr=log
                )
            try:
                await wait_listening(front, proc)
                # (the readiness probe's connection reached a server with a header and no
                # frame: it is not counted as served)
                replies: list[tuple[str, str, int, tuple[str, int]]] = []
                limiter = anyio.CapacityLimiter(AT_ONCE)

                async def exchange(i: int) -> None:
                    async with limiter, await anyio.connect_tcp(LOCAL, front) as stream:
                        me = stream.extra(anyio.abc.SocketAttribute.local_address)
                        assert isinstance(me, tuple)  # (host, port): TCP
                        body = b"%d" % i
                        await stream.send(frame(body))
                        got = b""
                        while len(got) < 4 or len(got) < 4 + int.from_bytes(got[:4], "big"):
                            got += await stream.receive()
                        name, ip, port, echoed = got[4:].split(b" ", 3)
                        assert echoed == body
                        replies.append((name.decode(), ip.decode(), int(port), me))

                async with anyio.create_task_group() as tg:
                    for i in range(CONNECTIONS):
                        tg.start_soon(exchange, i)
            finally:
                proc.terminate()
                with anyio.fail_after(10):
                    await proc.wait()
                await proc.aclose()
    assert len(replies) == CONNECTIONS  # every connection served
    for _, ip, port, me in replies:  # each session knew its real client
        assert (ip, port) == (me[0], me[1])
    counts = {name: sum(r[0] == name for r in replies) for name in ("one", "two")}
    report("haproxy send-proxy-v2, 2 servers", connections=CONNECTIONS, **counts)
    assert abs(counts["one"] - counts["two"]) <= 2, counts  # round robin
    assert one.unproxied == two.unproxied == 0
