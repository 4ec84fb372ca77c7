"""`PrometheusMonitor`: :class:`MonitorPlugin`'s counters, exported to Prometheus.

The hot path stays :class:`MonitorPlugin`'s (nothing per read, write or message); nothing
touches ``prometheus_client`` until a scrape, when a custom collector reads the counters
(:meth:`MonitorPlugin.totals`). (A ``prometheus_client.Counter.inc()`` per message would
take a lock per message.) Needs the ``metrics`` extra: ``pip install 'wirekit[metrics]'``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from .._state import StateEvent
from ._monitor import MonitorPlugin

if TYPE_CHECKING:
    from prometheus_client.registry import CollectorRegistry

__all__ = ["PrometheusMonitor"]


class PrometheusMonitor(MonitorPlugin):
    """A :class:`MonitorPlugin` whose counters are exported through ``prometheus-client``.

    Registered in ``registry`` (default: ``prometheus_client.REGISTRY``, the one
    ``start_http_server`` and ``generate_latest()`` serve) under the prefix ``namespace``:

    * ``<ns>_sessions_accepted_total``, ``<ns>_sessions_rejected_total``: connections that
      passed or failed the plugins' ``accept``;
    * ``<ns>_sessions_active``: a gauge, sessions between ``NEW_SESSION`` and
      ``SESSION_CLOSED``;
    * ``<ns>_bytes_read_total``, ``<ns>_bytes_written_total``,
      ``<ns>_messages_processed_total``;
    * ``<ns>_state_events_total{event="NEW_SESSION"|...}``: every state event by kind.

    Counters only grow: :meth:`MonitorPlugin.snapshot` with ``reset=True`` starts a new
    period for the snapshot without resetting what Prometheus sees. One instance can serve
    several servers and clients (their sum is exported); register a second instance in the
    same registry with another ``namespace`` (Prometheus refuses duplicate names).
    :meth:`unregister` takes it out of the registry.
    """

    def __init__(
        self, registry: CollectorRegistry | None = None, namespace: str = "wirekit"
    ) -> None:
        try:
            import prometheus_client
        except ImportError as exc:  # pragma: no cover - the extra is installed for the tests
            raise ImportError(
                "PrometheusMonitor needs prometheus-client: pip install 'wirekit[metrics]'"
            ) from exc
        super().__init__()
        self.namespace = namespace
        self.registry = registry if registry is not None else prometheus_client.REGISTRY
        self._collector = _Collector(self)
        self.registry.register(self._collector)

    def __repr__(self) -> str:
        return f"PrometheusMonitor(namespace={self.namespace!r})"

    def unregister(self) -> None:
        """Stop exporting (take the collector out of the registry)."""
        self.registry.unregister(self._collector)


class _Collector:
    """Reads a :class:`PrometheusMonitor`'s counters at scrape time."""

    def __init__(self, monitor: PrometheusMonitor) -> None:
        self._monitor = monitor

    def describe(self) -> list[Any]:
        return list(self.collect())

    def collect(self) -> Iterator[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        ns = self._monitor.namespace
        t = self._monitor.totals()
        counters = (
            ("sessions_accepted", "Connections that passed every plugin's accept", t.accepted),
            ("sessions_rejected", "Connections refused by a plugin (REJECT_ACCEPT)", t.rejected),
            ("bytes_read", "Bytes read from peers", t.bytes_read),
            ("bytes_written", "Bytes written to peers", t.bytes_written),
            ("messages_processed", "Messages handed to the processor", t.messages_processed),
        )
        for name, doc, value in counters:
            yield CounterMetricFamily(f"{ns}_{name}", doc, value=value)
        yield GaugeMetricFamily(
            f"{ns}_sessions_active",
            "Sessions open now (NEW_SESSION to SESSION_CLOSED)",
            t.active,
        )
        events = CounterMetricFamily(
            f"{ns}_state_events", "State events delivered, by kind", labels=["event"]
        )
        for event in StateEvent:
            events.add_metric([event.name], t.events.get(event, 0))
        yield events
