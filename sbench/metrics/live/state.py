"""Cumulative live metrics folded from interval snapshots; what `--metrics-port` serves and Ray receives.

The driver hands over every interval it already receives (per agent) and, when a stage ends, each agent's
stage total. Every series carries its stage in its labels, so at the end of a stage its counters are raised
to the agent's stage total (an interval lost on the way, e.g. the last one of a dead agent's shard, still
ends up counted) and the exported counters equal summary.json. Counters never go down.

Nothing here runs per op: one update per agent per interval (about once a second).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.live import catalog as c
from sbench.metrics.snapshot import Snapshot

Labels = tuple[str, ...]
SeriesKey = tuple[str, Labels]


@dataclass(frozen=True, slots=True)
class HistogramValue:
    """One latency series: cumulative counts at `catalog.LATENCY_BOUNDS_US`, total count, sum in seconds."""

    buckets: tuple[int, ...]
    count: int
    sum_s: float

    @classmethod
    def of(cls, hist: LatencyHistogram) -> HistogramValue:
        """The Prometheus view of an HDR histogram (its sum: each slot at hdrh's median value, as `mean`)."""
        return cls(
            tuple(hist.counts_at_or_below(c.LATENCY_BOUNDS_US)), hist.count, hist.mean * hist.count / 1e6
        )

    def __add__(self, other: HistogramValue) -> HistogramValue:
        """Prometheus bucket counts, counts and sums are all additive: two intervals' values add up to the
        value of their merged histogram, so nothing cumulative has to be kept as an HDR histogram."""
        buckets = tuple(a + b for a, b in zip(self.buckets, other.buckets, strict=True))
        return HistogramValue(buckets, self.count + other.count, self.sum_s + other.sum_s)


class Sink(Protocol):
    """Where changes go besides this state (Ray's metrics): counter deltas, gauge and histogram values."""

    def counter_add(self, metric: c.MetricDef, labels: Labels, delta: float) -> None: ...

    def gauge_set(self, metric: c.MetricDef, labels: Labels, value: float) -> None: ...

    def histogram_set(self, metric: c.MetricDef, labels: Labels, value: HistogramValue) -> None: ...


class LiveMetrics:
    """The run's metrics, cumulative since the run started; thread-safe (a scrape reads while the driver
    writes)."""

    def __init__(self, run_id: str, sinks: Sequence[Sink] = ()) -> None:
        self.run_id = run_id
        self.sinks = list(sinks)
        self._lock = threading.Lock()
        self.counters: dict[SeriesKey, float] = {}
        self.gauges: dict[SeriesKey, float] = {}
        self.histograms: dict[Labels, HistogramValue] = {}

    # -- what the driver calls --

    def stage_started(self, stage: str, stage_type: str) -> None:
        with self._lock:
            self._gauge(c.STAGE_RUNNING, (self.run_id, stage, stage_type), 1)

    def intervals(self, stage: str, per_agent: Mapping[str, Sequence[Snapshot]]) -> None:
        """New intervals of the running stage, per agent."""
        with self._lock:
            for agent, snaps in per_agent.items():
                for snap in snaps:
                    self._add_interval((self.run_id, stage, agent), snap)

    def stage_ended(
        self,
        stage: str,
        stage_type: str,
        totals: Mapping[str, Snapshot],
        status: str,
        stuck: Sequence[str] = (),
    ) -> None:
        """The stage is over: counters raised to each agent's stage total, how it ended, stuck agents."""
        with self._lock:
            for agent, total in totals.items():
                self._settle((self.run_id, stage, agent), total)
                self._gauge(c.AGENT_STUCK, (self.run_id, stage, agent), 1 if agent in stuck else 0)
            self._gauge(c.STAGE_RUNNING, (self.run_id, stage, stage_type), 0)
            self._gauge(c.STAGE_BARRIER, (self.run_id, stage, status), 1)

    # -- folding --

    def _add_interval(self, base: Labels, snap: Snapshot) -> None:
        for op in OpClass:
            labels = (*base, op.name)
            self._count(c.OPS, labels, snap.total_ops(op))
            self._count(c.BYTES, labels, snap.total_bytes(op))
            self._count(c.RETRIES, labels, snap.retries.get(op, 0))
            hist = snap.histogram(op)
            if hist.count:
                self._add_hist(labels, hist)
        for (op, kind), n in snap.errors.items():
            self._count(c.ERRORS, (*base, op.name, kind.value), n)
        self._count(c.LATE_OPS, base, snap.late_ops)
        lag = snap.lag_histogram()
        self._gauge(c.SCHEDULE_LAG, base, lag.percentile(99) / 1e6 if lag.count else 0.0)
        # Little's law over the interval: the time-averaged number of calls in flight is their summed
        # service time over its length (no per-op counter needed; ops straddling the edges shift it a little)
        service = snap.service_histogram()
        busy_s = service.mean * service.count / 1e6
        self._gauge(c.IN_FLIGHT, base, busy_s / snap.duration_s if snap.duration_s > 0 else 0.0)
        for entry in snap.endpoints:
            labels = (*base, entry["uri"])
            self._count(c.ENDPOINT_REQUESTS, labels, entry["requests"])
            self._count(c.ENDPOINT_ERRORS, labels, entry["errors"])
            self._gauge(c.ENDPOINT_IN_FLIGHT, labels, entry["in_flight"])

    def _settle(self, base: Labels, total: Snapshot) -> None:
        for op in OpClass:
            labels = (*base, op.name)
            for metric, value in (
                (c.OPS, total.total_ops(op)),
                (c.BYTES, total.total_bytes(op)),
                (c.RETRIES, total.retries.get(op, 0)),
            ):
                self._raise_to(metric, labels, value)
            hist = total.histogram(op)
            known = self.histograms.get(labels)
            if hist.count > (known.count if known is not None else 0):
                self._set_hist(labels, HistogramValue.of(hist))
        for (op, kind), n in total.errors.items():
            self._raise_to(c.ERRORS, (*base, op.name, kind.value), n)
        self._raise_to(c.LATE_OPS, base, total.late_ops)
        self._gauge(c.IN_FLIGHT, base, 0)
        self._gauge(c.SCHEDULE_LAG, base, 0)
        for entry in total.endpoints:
            labels = (*base, entry["uri"])
            self._raise_to(c.ENDPOINT_REQUESTS, labels, entry["requests"])
            self._raise_to(c.ENDPOINT_ERRORS, labels, entry["errors"])
            self._gauge(c.ENDPOINT_IN_FLIGHT, labels, 0)

    def _count(self, metric: c.MetricDef, labels: Labels, delta: float) -> None:
        """Add to a counter; a zero delta still creates the series (so a scrape shows 0, not nothing)."""
        key = (metric.name, labels)
        self.counters[key] = self.counters.get(key, 0) + delta
        if delta > 0:
            for sink in self.sinks:
                sink.counter_add(metric, labels, delta)

    def _raise_to(self, metric: c.MetricDef, labels: Labels, value: float) -> None:
        self._count(metric, labels, max(0, value - self.counters.get((metric.name, labels), 0)))

    def _gauge(self, metric: c.MetricDef, labels: Labels, value: float) -> None:
        self.gauges[(metric.name, labels)] = value
        for sink in self.sinks:
            sink.gauge_set(metric, labels, value)

    def _add_hist(self, labels: Labels, hist: LatencyHistogram) -> None:
        """Add one interval's histogram. Only the interval's own slots are read: a cumulative HDR histogram
        would make every update walk the stage's whole latency range (all slots from its fastest to its
        slowest op, thousands for a PUT stage with one slow op) in C calls that hold the GIL throughout."""
        value = HistogramValue.of(hist)
        known = self.histograms.get(labels)
        self._set_hist(labels, value if known is None else known + value)

    def _set_hist(self, labels: Labels, value: HistogramValue) -> None:
        self.histograms[labels] = value
        for sink in self.sinks:
            sink.histogram_set(c.LATENCY, labels, value)

    # -- reading (the OpenMetrics collector) --

    def read(self) -> tuple[dict[SeriesKey, float], dict[SeriesKey, float], dict[Labels, HistogramValue]]:
        """A consistent copy of (counters, gauges, histograms)."""
        with self._lock:
            return dict(self.counters), dict(self.gauges), dict(self.histograms)
