"""The live metrics on Ray's own export: every node's metrics agent serves them to Prometheus (names get
Ray's `ray_` prefix, e.g. `ray_sbench_ops_total`), next to Ray's own metrics and dashboards.

The driver records them (from the per-agent intervals the coordinator already merges and hands over), so a
dead agent's last counts stay exported and no agent does extra work. Ray's histogram takes single
observations only, so the latency histogram goes out as gauges of its cumulative bucket counts
(`sbench_op_latency_seconds_bucket{le=...}`, `_count`, `_sum`): the same series a Prometheus histogram has,
which `histogram_quantile` reads as it is. Ray exports each process's metrics every
`metrics_report_interval_ms` (10 s by default), so a scrape trails the run by up to that much.
"""

from __future__ import annotations

from typing import Any

from ray.util.metrics import Counter, Gauge

from sbench.metrics.live import catalog as c
from sbench.metrics.live.state import HistogramValue, Labels


class RayMetricsSink:
    """`LiveMetrics` sink: ray.util.metrics objects made on first use, one per exported series name."""

    def __init__(self) -> None:
        self._metrics: dict[str, Any] = {}

    def _get(self, name: str, kind: type, help_text: str, tag_keys: tuple[str, ...]) -> Any:
        metric = self._metrics.get(name)
        if metric is None:
            metric = self._metrics[name] = kind(name, description=help_text, tag_keys=tag_keys)
        return metric

    def counter_add(self, metric: c.MetricDef, labels: Labels, delta: float) -> None:
        counter = self._get(metric.name, Counter, metric.help, metric.labels)
        counter.inc(delta, tags=dict(zip(metric.labels, labels, strict=True)))

    def gauge_set(self, metric: c.MetricDef, labels: Labels, value: float) -> None:
        gauge = self._get(metric.name, Gauge, metric.help, metric.labels)
        gauge.set(value, tags=dict(zip(metric.labels, labels, strict=True)))

    def histogram_set(self, metric: c.MetricDef, labels: Labels, value: HistogramValue) -> None:
        tags = dict(zip(metric.labels, labels, strict=True))
        bucket_name, count_name, sum_name = metric.series_names()
        buckets = self._get(bucket_name, Gauge, metric.help, (*metric.labels, "le"))
        for le, n in zip(c.LE_LABELS, (*value.buckets, value.count), strict=True):
            buckets.set(n, tags={**tags, "le": le})
        self._get(count_name, Gauge, metric.help, metric.labels).set(value.count, tags=tags)
        self._get(sum_name, Gauge, metric.help, metric.labels).set(value.sum_s, tags=tags)
