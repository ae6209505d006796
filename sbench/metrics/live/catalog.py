"""Every metric sbench exports, with its type, help text and labels (bounded: op class, error class,
endpoint, stage, agent, run_id; never object keys).

Ray prefixes application metrics with `ray_` on its export; the names here are the in-process ones, and the
Grafana dashboard (deploy/grafana/sbench-dashboard.json) selects `{__name__=~"(ray_)?NAME"}`, so one
dashboard serves both.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exported metric. Counters' names end in `_total`; a histogram's name is its base name."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]

    def series_names(self) -> tuple[str, ...]:
        """The sample names a scrape shows for it (a histogram has three)."""
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_count", f"{self.name}_sum")
        return (self.name,)


_STAGE = ("run_id", "stage", "agent")
_OP = (*_STAGE, "op")

OPS = MetricDef("sbench_ops_total", Kind.COUNTER, "Completed storage operations", _OP)
BYTES = MetricDef("sbench_bytes_total", Kind.COUNTER, "Bytes moved by completed operations", _OP)
ERRORS = MetricDef("sbench_errors_total", Kind.COUNTER, "Failed operations", (*_OP, "error"))
RETRIES = MetricDef("sbench_retries_total", Kind.COUNTER, "Retried storage calls", _OP)
LATE_OPS = MetricDef(
    "sbench_late_ops_total",
    Kind.COUNTER,
    "Open loop: ops started over 1 ms after their intended time",
    _STAGE,
)
SCHEDULE_LAG = MetricDef(
    "sbench_schedule_lag_seconds", Kind.GAUGE, "Open loop: p99 schedule lag of the last interval", _STAGE
)
IN_FLIGHT = MetricDef(
    "sbench_in_flight_ops",
    Kind.GAUGE,
    "Ops in flight, averaged over the last interval (its summed service time / its length)",
    _STAGE,
)
ENDPOINT_IN_FLIGHT = MetricDef(
    "sbench_endpoint_in_flight_ops",
    Kind.GAUGE,
    "Multi-endpoint targets: storage calls in flight at the end of the last interval",
    (*_STAGE, "endpoint"),
)
ENDPOINT_REQUESTS = MetricDef(
    "sbench_endpoint_requests_total", Kind.COUNTER, "Storage calls per endpoint", (*_STAGE, "endpoint")
)
ENDPOINT_ERRORS = MetricDef(
    "sbench_endpoint_errors_total", Kind.COUNTER, "Failed storage calls per endpoint", (*_STAGE, "endpoint")
)
LATENCY = MetricDef("sbench_op_latency_seconds", Kind.HISTOGRAM, "Response time of completed operations", _OP)
STAGE_RUNNING = MetricDef(
    "sbench_stage_running", Kind.GAUGE, "1 while the stage runs, 0 after", ("run_id", "stage", "stage_type")
)
STAGE_BARRIER = MetricDef(
    "sbench_stage_barrier",
    Kind.GAUGE,
    "1 for how an ended stage ended (ok/degraded/failed/timeout/aborted)",
    ("run_id", "stage", "status"),
)
AGENT_STUCK = MetricDef(
    "sbench_agent_stuck", Kind.GAUGE, "1 when the agent was stuck at the end of the stage", _STAGE
)

METRICS: tuple[MetricDef, ...] = (
    OPS,
    BYTES,
    ERRORS,
    RETRIES,
    LATE_OPS,
    SCHEDULE_LAG,
    IN_FLIGHT,
    ENDPOINT_IN_FLIGHT,
    ENDPOINT_REQUESTS,
    ENDPOINT_ERRORS,
    LATENCY,
    STAGE_RUNNING,
    STAGE_BARRIER,
    AGENT_STUCK,
)

#: latency histogram upper bounds in µs, 10 µs .. 60 s (Prometheus `le` in seconds, plus +Inf)
LATENCY_BOUNDS_US: tuple[int, ...] = (
    10,
    25,
    50,
    100,
    250,
    500,
    1_000,
    2_500,
    5_000,
    10_000,
    25_000,
    50_000,
    100_000,
    250_000,
    500_000,
    1_000_000,
    2_500_000,
    5_000_000,
    10_000_000,
    30_000_000,
    60_000_000,
)


def le_label(bound_us: int) -> str:
    """The `le` label of a bound: seconds, as Prometheus clients print them (`1e-05`, `0.25`, `60.0`)."""
    return repr(bound_us / 1_000_000)


#: the `le` labels of the latency buckets, in order, the last one +Inf
LE_LABELS: tuple[str, ...] = (*(le_label(b) for b in LATENCY_BOUNDS_US), "+Inf")


def exported_series() -> frozenset[str]:
    """Every sample name a scrape of sbench can show (without Ray's `ray_` prefix)."""
    return frozenset(s for m in METRICS for s in m.series_names())
