"""`--metrics-port`: the live metrics served in this process in OpenMetrics (or Prometheus) text format by
prometheus_client, on 127.0.0.1 unless `--metrics-host` says otherwise.

The server is bound before the run does any I/O, so a port in use or a host that cannot be bound is a usage
error (exit 2) that names the address.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import start_http_server
from prometheus_client.registry import Collector, CollectorRegistry

from sbench.errors import UsageError
from sbench.metrics.live import catalog as c
from sbench.metrics.live.state import LiveMetrics


class LiveCollector(Collector):
    """Renders a `LiveMetrics` at every scrape (a consistent copy, taken under its lock)."""

    def __init__(self, live: LiveMetrics) -> None:
        self.live = live

    def collect(self) -> Iterator[Metric]:
        counters, gauges, hists = self.live.read()
        for metric in c.METRICS:
            if metric.kind is c.Kind.HISTOGRAM:
                family: Any = HistogramMetricFamily(metric.name, metric.help, labels=metric.labels)
                for labels, value in hists.items():
                    counts = (*value.buckets, value.count)
                    family.add_metric(list(labels), list(zip(c.LE_LABELS, counts, strict=True)), value.sum_s)
            else:
                kind = CounterMetricFamily if metric.kind is c.Kind.COUNTER else GaugeMetricFamily
                source = counters if metric.kind is c.Kind.COUNTER else gauges
                family = kind(metric.name, metric.help, labels=metric.labels)
                for (name, labels), number in source.items():
                    if name == metric.name:
                        family.add_metric(list(labels), number)
            yield family


class MetricsServer:
    """The bound HTTP server; `attach` points it at the run's metrics, `close` stops it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.registry = CollectorRegistry(auto_describe=False)
        self._collector: LiveCollector | None = None
        where = f"--metrics-host {host!r} / --metrics-port {port}"
        if not 0 < port < 65536:
            raise UsageError(f"sbench run {where}: the port must be 1-65535")
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise UsageError(f"sbench run {where}: the host does not resolve ({exc.strerror})") from exc
        try:
            self._server, self._thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise UsageError(
                f"sbench run {where}: cannot listen there ({exc.strerror or exc}); pick a free port or "
                "a local address"
            ) from exc

    def attach(self, live: LiveMetrics) -> None:
        if self._collector is not None:
            self.registry.unregister(self._collector)
        self._collector = LiveCollector(live)
        self.registry.register(self._collector)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
