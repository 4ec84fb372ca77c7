"""StreamMonitor (every byte, to a sink or a hex dump the capture package reads back) and
PrometheusMonitor (MonitorPlugin's counters, scraped), on every engine."""

from __future__ import annotations

import logging
import urllib.request
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest, start_http_server
from prometheus_client.parser import text_string_to_metric_families

from codec import Codec
from codec.capture import parse_hex_lines
from transport import Server, Session, StateEvent
from transport.plugins import PrometheusMonitor, StreamMonitor, hexdump

from .conftest import Recorder
from .test_seam import frame, read_exactly

pytestmark = pytest.mark.anyio

E = StateEvent
LOCAL = "127.0.0.1"


# -- StreamMonitor -------------------------------------------------------------------------
def test_hexdump_is_hexdump_c_and_reads_back() -> None:
    data = b"\x0csmart-socket\x00\xff"
    assert hexdump(data) == (
        "00000000  0c 73 6d 61 72 74 2d 73  6f 63 6b 65 74 00 ff     |.smart-socket..|"
    )
    assert hexdump(b"") == ""
    for n in (1, 7, 8, 15, 16, 17, 33, 100):
        blob = bytes((i * 37) & 0xFF for i in range(n))
        assert b"".join(parse_hex_lines(hexdump(blob).splitlines())) == blob


async def test_sink_sees_every_byte_per_session_and_direction(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    seen: dict[tuple[Session[Any], str], bytearray] = {}

    def sink(session: Session[Any], direction: str, data: bytes) -> None:
        assert type(data) is bytes
        seen.setdefault((session, direction), bytearray()).extend(data)

    data = b"".join(frame(f"m{i}" * (i % 5)) for i in range(120))
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[StreamMonitor(sink)], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                for i in range(0, len(data), 61):
                    await stream.send(data[i : i + 61])
                assert await read_exactly(stream, len(data)) == data
            s = await recorder.next_closed()
    assert bytes(seen[(s, "read")]) == data
    assert bytes(seen[(s, "write")]) == data
    assert len(seen) == 2


async def test_default_sink_logs_a_hex_dump_at_debug(
    string_codec: Codec[str], engine: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    data = frame("smart-socket") + frame("x" * 40)
    caplog.set_level(logging.DEBUG, logger="transport.stream")
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[StreamMonitor()], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(data)
                assert await read_exactly(stream, len(data)) == data
            await recorder.next_closed()
    records = [r for r in caplog.records if r.name == "transport.stream"]
    assert all(r.levelno == logging.DEBUG for r in records)
    read = b""
    written = b""
    for r in records:
        head, _, dump = r.getMessage().partition("\n")
        chunk = b"".join(parse_hex_lines(dump.splitlines()))
        assert head.endswith(f"{len(chunk)} bytes")
        if " <- " in head:
            read += chunk
        else:
            assert " -> " in head
            written += chunk
    assert read == data
    assert written == data


async def test_nothing_is_formatted_without_debug(
    string_codec: Codec[str], engine: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    recorder = Recorder()
    caplog.set_level(logging.INFO, logger="transport.stream")
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[StreamMonitor()], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hi"))
                assert await read_exactly(stream, 3) == frame("hi")
            await recorder.next_closed()
    assert not [r for r in caplog.records if r.name == "transport.stream"]


@pytest.mark.parametrize("direction", ["read", "write"])
async def test_a_raising_sink_aborts_only_its_session(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any], direction: str
) -> None:
    def sink(session: Session[Any], d: str, data: bytes) -> None:
        if d == direction and b"bad" in data:
            raise OSError("disk full")

    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[StreamMonitor(sink)], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as victim:
                await victim.send(frame("bad"))
                v = await recorder.next_closed()
            async with await anyio.connect_tcp(LOCAL, server.port) as good:
                await good.send(frame("good"))
                assert await read_exactly(good, 5) == frame("good")
            await recorder.next_closed()
    events = recorder.events[v]
    assert events[0] is E.NEW_SESSION
    assert events[-1] is E.SESSION_CLOSED
    assert E.INTERNAL_EXCEPTION in events
    assert isinstance(recorder.errors[v][events.index(E.INTERNAL_EXCEPTION)], OSError)


# -- PrometheusMonitor ---------------------------------------------------------------------
def scrape(text: str, namespace: str = "wirekit") -> dict[str, float]:
    """Sample name (with its event label) -> value."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith(namespace):
                continue
            key = sample.name
            if "event" in sample.labels:
                key += "{" + sample.labels["event"] + "}"
            out[key] = sample.value
    return out


async def test_prometheus_exports_the_monitor_counters(
    string_codec: Codec[str], recorder: Recorder, engine: dict[str, Any]
) -> None:
    registry = CollectorRegistry()
    monitor = PrometheusMonitor(registry=registry)
    with anyio.fail_after(10):
        async with Server(
            string_codec, recorder, host=LOCAL, port=0, plugins=[monitor], **engine
        ) as server:
            async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                await stream.send(frame("hello") + frame("world"))
                assert await read_exactly(stream, 12) == frame("hello") + frame("world")
                live = scrape(generate_latest(registry).decode())
                assert live["wirekit_sessions_active"] == 1
                assert monitor.snapshot(reset=True).messages_processed == 2
            await recorder.next_closed()
    got = scrape(generate_latest(registry).decode())
    # a snapshot reset starts a period for snapshot(), not for Prometheus: counters only grow
    assert got["wirekit_sessions_accepted_total"] == 1
    assert got["wirekit_sessions_rejected_total"] == 0
    assert got["wirekit_sessions_active"] == 0
    assert got["wirekit_bytes_read_total"] == 12
    assert got["wirekit_bytes_written_total"] == 12
    assert got["wirekit_messages_processed_total"] == 2
    assert got["wirekit_state_events_total{NEW_SESSION}"] == 1
    assert got["wirekit_state_events_total{INPUT_SHUTDOWN}"] == 1
    assert got["wirekit_state_events_total{SESSION_CLOSED}"] == 1
    assert got["wirekit_state_events_total{DECODE_EXCEPTION}"] == 0


async def test_prometheus_http_scrape(string_codec: Codec[str], engine: dict[str, Any]) -> None:
    registry = CollectorRegistry()
    monitor = PrometheusMonitor(registry=registry, namespace="echo")
    recorder = Recorder()
    http, thread = start_http_server(0, addr="127.0.0.1", registry=registry)
    try:
        url = f"http://127.0.0.1:{http.server_port}/metrics"
        with anyio.fail_after(10):
            async with Server(
                string_codec, recorder, host=LOCAL, port=0, plugins=[monitor], **engine
            ) as server:
                for _ in range(3):
                    async with await anyio.connect_tcp(LOCAL, server.port) as stream:
                        await stream.send(frame("hi"))
                        assert await read_exactly(stream, 3) == frame("hi")
                    await recorder.next_closed()

            def get() -> str:
                with urllib.request.urlopen(url, timeout=5) as response:
                    return response.read().decode()  # type: ignore[no-any-return]

            got = scrape(await anyio.to_thread.run_sync(get), "echo")
    finally:
        http.shutdown()
        http.server_close()
        thread.join(5)
    assert got["echo_sessions_accepted_total"] == 3
    assert got["echo_messages_processed_total"] == 3
    assert got["echo_state_events_total{SESSION_CLOSED}"] == 3


def test_prometheus_registration() -> None:
    registry = CollectorRegistry()
    first = PrometheusMonitor(registry=registry)
    with pytest.raises(ValueError, match="Duplicated"):
        PrometheusMonitor(registry=registry)
    PrometheusMonitor(registry=registry, namespace="other")
    first.unregister()
    PrometheusMonitor(registry=registry)  # the name is free again
