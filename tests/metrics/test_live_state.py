"""The live metrics' arithmetic: HDR histograms to Prometheus bucket counts, intervals folded into counters,
and a stage's end raising every counter to the agents' stage totals (never lowering one)."""

from __future__ import annotations

import random

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.live import catalog as c
from sbench.metrics.live.state import HistogramValue, Labels, LiveMetrics
from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import ErrorClass


def test_bucket_counts_are_exact_counts_of_the_recorded_values() -> None:
    rng = random.Random(3)
    values = [rng.randrange(1, 2_048) for _ in range(3_000)]  # single-value HDR slots: exact everywhere
    values += [10, 25, 50, 100, 250, 500, 1_000]  # on the bounds themselves: counted under them
    # above 2 ms, values away from the bounds (a slot straddling a bound counts under the next one)
    above = (3_000, 7_000, 40_000, 700_000, 4_000_000, 20_000_000, 59_000_000)
    values += [rng.choice(above) for _ in range(500)]
    values += [90_000_000]  # beyond 60 s: only in +Inf
    hist = LatencyHistogram()
    for v in values:
        hist.record_us(v)
    got = hist.counts_at_or_below(c.LATENCY_BOUNDS_US)
    assert got == [sum(v <= bound for v in values) for bound in c.LATENCY_BOUNDS_US]
    assert got[-1] == len(values) - 1
    assert LatencyHistogram().counts_at_or_below(c.LATENCY_BOUNDS_US) == [0] * len(c.LATENCY_BOUNDS_US)


def test_a_slot_straddling_a_bound_counts_under_the_next_bound() -> None:
    hist = LatencyHistogram()
    hist.record_us(60_000_001)  # its HDR slot starts below 60 s and ends above it
    assert hist.counts_at_or_below([30_000_000, 60_000_000]) == [0, 0]


def _snap(ops: int, put: int, lag_us: int = 0, start_ms: int = 1_000) -> Snapshot:
    snap = Snapshot(start_ms=start_ms, end_ms=start_ms + 1_000)
    snap.ops = {(OpClass.GET, 1): ops, (OpClass.PUT, 2): put}
    snap.nbytes = {(OpClass.GET, 1): ops * 4096, (OpClass.PUT, 2): put * 10_000}
    hist = LatencyHistogram()
    hist.record_us(150, ops)
    snap.hists = {(OpClass.GET, 1): hist.encode()}
    snap.service = {OpClass.GET: hist.encode()}
    snap.errors = {(OpClass.GET, ErrorClass.NOT_FOUND): 2}
    if lag_us:
        lag = LatencyHistogram()
        lag.record_us(lag_us)
        snap.late_ops, snap.lag_hist = 1, lag.encode()
    return snap


class _Recorder:
    """A sink that keeps what it was told (as Ray's sink would receive it)."""

    def __init__(self) -> None:
        self.counters: dict[tuple[str, Labels], float] = {}
        self.gauges: dict[tuple[str, Labels], float] = {}
        self.hists: dict[Labels, HistogramValue] = {}

    def counter_add(self, metric: c.MetricDef, labels: Labels, delta: float) -> None:
        assert delta > 0
        key = (metric.name, labels)
        self.counters[key] = self.counters.get(key, 0) + delta

    def gauge_set(self, metric: c.MetricDef, labels: Labels, value: float) -> None:
        self.gauges[(metric.name, labels)] = value

    def histogram_set(self, metric: c.MetricDef, labels: Labels, value: HistogramValue) -> None:
        self.hists[labels] = value


def test_intervals_then_stage_end_give_the_stage_totals_to_state_and_sinks() -> None:
    sink = _Recorder()
    live = LiveMetrics("r1", [sink])
    live.stage_started("execute", "execute")
    live.intervals("execute", {"a1": [_snap(10, 3, lag_us=5_000)], "a2": [_snap(7, 1)]})
    assert live.counters[("sbench_ops_total", ("r1", "execute", "a1", "GET"))] == 10
    assert abs(live.gauges[("sbench_schedule_lag_seconds", ("r1", "execute", "a1"))] - 0.005) < 1e-5
    # 10 GETs of 150 µs in a 1 s interval: 0.0015 ops in flight on average
    assert abs(live.gauges[("sbench_in_flight_ops", ("r1", "execute", "a1"))] - 0.0015) < 1e-4
    # a1's last interval never arrived; the stage total has it
    live.stage_ended(
        "execute", "execute", {"a1": Snapshot.merge(_snap(10, 3), _snap(5, 0)), "a2": _snap(7, 1)}, "ok"
    )
    a1 = ("r1", "execute", "a1")
    assert live.counters[("sbench_ops_total", (*a1, "GET"))] == 15
    assert live.counters[("sbench_bytes_total", (*a1, "PUT"))] == 30_000
    assert live.counters[("sbench_errors_total", (*a1, "GET", "not_found"))] == 4
    assert live.histograms[(*a1, "GET")].count == 15
    assert live.histograms[(*a1, "GET")].buckets[:4] == (0, 0, 0, 0)  # 150 µs: above 100 µs
    assert live.histograms[(*a1, "GET")].buckets[4] == 15
    assert live.gauges[("sbench_stage_running", ("r1", "execute", "execute"))] == 0
    assert live.gauges[("sbench_stage_barrier", ("r1", "execute", "ok"))] == 1
    assert live.gauges[("sbench_in_flight_ops", a1)] == 0
    # the sink saw the same values (as deltas), so Ray's export ends equal too
    assert {k: v for k, v in live.counters.items() if v} == sink.counters
    assert sink.hists == live.histograms


def test_a_stage_total_below_what_was_counted_never_lowers_a_counter() -> None:
    live = LiveMetrics("r1")
    live.intervals("s", {"a": [_snap(10, 0)]})
    live.stage_ended("s", "execute", {"a": _snap(4, 0)}, "failed", stuck=["a"])
    assert live.counters[("sbench_ops_total", ("r1", "s", "a", "GET"))] == 10
    assert live.histograms[("r1", "s", "a", "GET")].count == 10
    assert live.gauges[("sbench_agent_stuck", ("r1", "s", "a"))] == 1


def _latency_snap(*values_us: int) -> Snapshot:
    hist = LatencyHistogram()
    for v in values_us:
        hist.record_us(v)
    snap = Snapshot(start_ms=0, end_ms=1_000)
    snap.ops = {(OpClass.PUT, 2): len(values_us)}
    snap.hists = {(OpClass.PUT, 2): hist.encode()}
    snap.service = {OpClass.PUT: hist.encode()}
    return snap


def test_an_update_reads_only_its_own_intervals_slots_and_adds_up_exactly(monkeypatch) -> None:
    """One slow op early in a stage must not make every later update walk the stage's whole latency range
    (C loops over thousands of HDR slots, holding the GIL the workers need): the Prometheus values of the
    intervals are added, and they equal those of the merged histogram."""
    live = LiveMetrics("r")
    first = _latency_snap(5, 7, 9_000_000)  # a 9 s op: the stage's range reaches far
    second = _latency_snap(6, 8, 11)
    live.intervals("s", {"a": [first]})
    read: list[int] = []
    used_counts = LatencyHistogram._used_counts

    def counting(self: LatencyHistogram) -> tuple[int, list[int]]:
        first_slot, counts = used_counts(self)
        read.append(len(counts))
        return first_slot, counts

    monkeypatch.setattr(LatencyHistogram, "_used_counts", counting)
    live.intervals("s", {"a": [second]})
    assert read and max(read) <= 11  # the second interval's slots (6..11 µs), not the 9 s op's thousands
    merged = Snapshot.merge(first, second).histogram(OpClass.PUT)
    got = live.histograms[("r", "s", "a", "PUT")]
    expected = HistogramValue.of(merged)
    assert got.count == expected.count == 6
    assert got.buckets == expected.buckets
    assert abs(got.sum_s - expected.sum_s) < 1e-9
