"""ProxyProtocol behind a real haproxy (``send-proxy`` and ``send-proxy-v2`` with CRC32c and
unique-id TLVs): the server's session sees the client's own address, on every engine."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from anyio.abc import SocketAttribute

from codec import Codec
from transport import Plugin, Server, Session
from transport.plugins import ProxyProtocol

from .conftest import Recorder
from .test_seam import frame, read_exactly

HAPROXY = shutil.which("haproxy") or (
    "/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None
)
pytestmark = [
    pytest.mark.anyio,
    pytest.mark.peer,
    pytest.mark.skipif(HAPROXY is None, reason="haproxy not installed (.ci/run installs it)"),
]
LOCAL = "127.0.0.1"

CONFIG = """\
global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
    unique-id-format %ci:%cp
frontend v1
    bind 127.0.0.1:{v1}
    default_backend send_v1
frontend v2
    bind 127.0.0.1:{v2}
    default_backend send_v2
backend send_v1
    server s1 127.0.0.1:{backend} send-proxy
backend send_v2
    server s1 127.0.0.1:{backend} send-proxy-v2 proxy-v2-options crc32c,unique-id
"""


class SeenAt(Plugin[Any]):
    """The remote address each message was processed with, and the session's header."""

    def __init__(self) -> None:
        self.seen: dict[Any, tuple[Any, Any]] = {}
        self.arrived = anyio.Event()

    def before_process(self, session: Session[Any], msg: Any) -> bool:
        self.seen[session.remote_address] = (msg, session.attributes.get("proxy_header"))
        self.arrived.set()
        return True


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind((LOCAL, 0))
        return int(s.getsockname()[1])


@asynccontextmanager
async def haproxy_for(backend: int, tmp: Path) -> AsyncIterator[tuple[int, int]]:
    v1, v2 = free_port(), free_port()
    config = tmp / "haproxy.cfg"
    config.write_text(CONFIG.format(v1=v1, v2=v2, backend=backend))
    assert HAPROXY is not None
    proc = await anyio.open_process([HAPROXY, "-f", str(config), "-db"])
    try:
        for port in (v1, v2):  # until haproxy listens (polled, bounded by the test's limit)
            for _ in range(500):
                try:
                    probe = await anyio.connect_tcp(LOCAL, port)
                except OSError:
                    await anyio.sleep(0.02)
                else:
                    await probe.aclose()
                    break
        yield v1, v2
    finally:
        proc.terminate()
        with anyio.move_on_after(5):
            await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await proc.aclose()


async def test_real_client_address_through_haproxy(
    string_codec: Codec[str], engine: dict[str, Any], tmp_path: Path
) -> None:
    seen = SeenAt()
    recorder = Recorder()
    with anyio.fail_after(30):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[ProxyProtocol(), seen], **engine
        ) as server:
            async with haproxy_for(server.port, tmp_path) as (v1, v2):
                for version, port in ((1, v1), (2, v2)):
                    async with await anyio.connect_tcp(LOCAL, port) as client:
                        me = client.extra(SocketAttribute.local_address)[:2]
                        await client.send(frame(f"hello v{version}"))
                        assert await read_exactly(client, 9) == frame(f"hello v{version}")
                    msg, header = seen.seen[me]  # the session saw the client's own address
                    assert msg == f"hello v{version}"
                    assert header.version == version
                    assert header.source == me
                    assert header.destination == (LOCAL, port)
                    if version == 2:
                        assert header.tlv(0x05) == f"{me[0]}:{me[1]}".encode()  # unique-id
                        assert header.tlv(0x03) is not None  # CRC32c, checked
