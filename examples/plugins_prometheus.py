"""PrometheusMonitor: the server's counters on a /metrics page Prometheus can scrape.

Run ``python examples/plugins_prometheus.py``: it serves /metrics on an ephemeral port with
``prometheus_client.start_http_server`` (needs ``pip install 'wirekit[metrics]'``), makes a
few requests, then scrapes the page the way Prometheus would and prints wirekit's lines.
"""

from __future__ import annotations

import urllib.request

import anyio
import construct as cs
from prometheus_client import CollectorRegistry, start_http_server

from codec import Codec
from transport import Client, Processor, Server, Session
from transport.plugins import PrometheusMonitor

codec: Codec[str] = Codec(cs.PascalString(cs.Int8ub, "utf8"))


class Echo(Processor[str]):
    def process(self, session: Session[str], msg: str) -> None:
        session.write(msg)


def scrape(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def main() -> None:
    registry = CollectorRegistry()  # leave it out to use prometheus_client's global one
    monitor = PrometheusMonitor(registry=registry)
    http, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    url = f"http://127.0.0.1:{http.server_port}/metrics"
    try:
        async with Server(codec, Echo(), host="127.0.0.1", port=0, plugins=[monitor]) as server:
            for word in ("one", "two", "three"):
                async with Client(codec, host="127.0.0.1", port=server.port) as session:
                    await session.send(word)
                    await session.receive()
        page = await anyio.to_thread.run_sync(scrape, url)
    finally:
        http.shutdown()
        http.server_close()
        thread.join()
    print(f"scraped {url}:")
    for line in page.splitlines():
        if line.startswith("wirekit_") and not line.endswith(" 0.0"):
            print(" ", line)


if __name__ == "__main__":
    anyio.run(main)
