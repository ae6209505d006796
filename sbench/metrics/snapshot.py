"""Snapshot: the plain-data measurement record of one interval (or a whole stage), exact to merge.

Everything in it is ints, strings and encoded-histogram bytes, so it pickles through Ray and `to_dict()` is
JSON-safe. Merging decodes and adds histograms, so percentiles across workers, agents and intervals are exact
(never averaged, unlike sai3's perf-log aggregate §7.10).

Per-source gauges (progress counters, CPU) are keyed by source (agent id): a merge keeps, per source, the
most recent report, and accessors sum or average over sources. The first error message of each error class
is kept with its wall-clock time; a merge keeps the earliest, so a stage's (or a whole run's) merged snapshot
says how every class of failure first showed up, on whichever agent it was.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from hdrh.codec import PayloadHeader

from sbench.metrics.buckets import NUM_BUCKETS, OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.hdrwire import payload
from sbench.metrics.histogram import LatencyHistogram
from sbench.storage.base import ErrorClass

OpBucket = tuple[OpClass, int]
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p50", 50.0),
    ("p90", 90.0),
    ("p95", 95.0),
    ("p99", 99.0),
    ("p999", 99.9),
)
_ENDPOINT_SUMS = ("requests", "bytes_read", "bytes_written", "errors")


@dataclass(frozen=True, slots=True)
class LatencyStats:
    """Latency summary of one histogram, in µs."""

    count: int
    mean: float
    p50: int
    p90: int
    p95: int
    p99: int
    p999: int
    max: int
    min: int

    @classmethod
    def of(cls, hist: LatencyHistogram) -> LatencyStats:
        if not hist.count:
            return cls(0, 0.0, 0, 0, 0, 0, 0, 0, 0)
        return cls(
            hist.count,
            hist.mean,
            *hist.percentiles([p for _, p in PERCENTILES]),
            hist.max,
            hist.min,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean_us": round(self.mean, 2),
            "p50_us": self.p50,
            "p90_us": self.p90,
            "p95_us": self.p95,
            "p99_us": self.p99,
            "p999_us": self.p999,
            "max_us": self.max,
            "min_us": self.min,
        }


def endpoint_entry(stats: Any) -> dict[str, Any]:
    """Normalise one endpoint's stats (an `EndpointStats` dataclass or a dict) into the snapshot's dict form:
    uri, requests, bytes_read, bytes_written, errors, in_flight, latency (encoded histogram bytes)."""

    def get(name: str, default: Any = 0) -> Any:
        if isinstance(stats, dict):
            return stats.get(name, default)
        return getattr(stats, name, default)

    latency = b""
    for name in ("latency", "latency_hist", "latency_histogram", "histogram"):
        value = get(name, None)
        if value:
            latency = value.encode() if isinstance(value, LatencyHistogram) else bytes(value)
            break
    entry = {"uri": str(get("uri", ""))}
    for name in _ENDPOINT_SUMS:
        entry[name] = int(get(name))
    entry["in_flight"] = int(get("in_flight"))
    entry["latency"] = latency
    return entry


@dataclass
class Snapshot:
    """Measurements over [start_ms, end_ms] (wall-clock epoch ms; used only to align and label intervals)."""

    start_ms: int = 0
    end_ms: int = 0
    #: (op, bucket) -> completed ops / bytes moved / encoded response-time histogram
    ops: dict[OpBucket, int] = field(default_factory=dict)
    nbytes: dict[OpBucket, int] = field(default_factory=dict)
    hists: dict[OpBucket, bytes] = field(default_factory=dict)
    #: op -> encoded service-time histogram of every op of that class (equal to response time in closed loop)
    service: dict[OpClass, bytes] = field(default_factory=dict)
    errors: dict[tuple[OpClass, ErrorClass], int] = field(default_factory=dict)
    #: error class -> (epoch ms, message) of its first failed op (messages are scrubbed of credentials)
    first_errors: dict[ErrorClass, tuple[int, str]] = field(default_factory=dict)
    retries: dict[OpClass, int] = field(default_factory=dict)
    #: open loop: ops that started after their intended time, and the histogram of their lag (µs)
    late_ops: int = 0
    lag_hist: bytes = b""
    #: ops still in flight when their stage ended (abandoned after the stop's grace, or cut off while they
    #: waited to retry): neither completed nor failed, so in no count above; set on a stage's last interval
    unfinished_ops: int = 0
    #: per-endpoint counters of this interval (see `endpoint_entry`), merged by uri
    endpoints: list[dict[str, Any]] = field(default_factory=list)
    progress: dict[str, ProgressCounters] = field(default_factory=dict)
    #: source -> (user %, system %, iowait %)
    cpu: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    _cache: dict[Any, LatencyHistogram] = field(default_factory=dict, repr=False, compare=False)

    # ----- pickling: the decoded-histogram cache is process-local -----
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = {}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    # ----- totals -----
    @property
    def duration_s(self) -> float:
        return max(0, self.end_ms - self.start_ms) / 1000.0

    @property
    def is_empty(self) -> bool:
        return not self.ops and not self.errors and not self.late_ops and not self.unfinished_ops

    def total_ops(self, op: OpClass | None = None) -> int:
        return sum(n for (o, _), n in self.ops.items() if op is None or o == op)

    def total_bytes(self, op: OpClass | None = None) -> int:
        return sum(n for (o, _), n in self.nbytes.items() if op is None or o == op)

    def bucket_counts(self, op: OpClass) -> list[tuple[int, int, int]]:
        """(bucket, ops, bytes) for every bucket of `op` with ops, in bucket order."""
        return [
            (b, self.ops[(op, b)], self.nbytes.get((op, b), 0))
            for b in range(NUM_BUCKETS)
            if self.ops.get((op, b), 0) > 0
        ]

    def errors_total(self, op: OpClass | None = None) -> int:
        return sum(n for (o, _), n in self.errors.items() if op is None or o == op)

    def errors_by_class(self) -> dict[ErrorClass, int]:
        out: dict[ErrorClass, int] = {}
        for (_, kind), n in self.errors.items():
            out[kind] = out.get(kind, 0) + n
        return out

    def errors_by_op(self) -> dict[OpClass, int]:
        out: dict[OpClass, int] = {}
        for (op, _), n in self.errors.items():
            out[op] = out.get(op, 0) + n
        return out

    def first_error_list(self) -> list[tuple[ErrorClass, int, str]]:
        """(class, epoch ms, message) of the first failure of every class seen, earliest first."""
        return sorted(((k, at, msg) for k, (at, msg) in self.first_errors.items()), key=lambda e: e[1])

    def retries_total(self) -> int:
        return sum(self.retries.values())

    # ----- histograms and percentiles -----
    def histogram(self, op: OpClass | None = None, bucket: int | None = None) -> LatencyHistogram:
        """Response-time histogram of one (op, bucket), one op over all buckets, or everything (op=None)."""
        key = ("r", op, bucket)
        hist = self._cache.get(key)
        if hist is None:
            hist = LatencyHistogram()
            for (o, b), data in self.hists.items():
                if (op is None or o == op) and (bucket is None or b == bucket):
                    hist.add_encoded(data)
            self._cache[key] = hist
        return hist

    def service_histogram(self, op: OpClass | None = None) -> LatencyHistogram:
        key = ("s", op, None)
        hist = self._cache.get(key)
        if hist is None:
            hist = LatencyHistogram()
            for o, data in self.service.items():
                if op is None or o == op:
                    hist.add_encoded(data)
            self._cache[key] = hist
        return hist

    def lag_histogram(self) -> LatencyHistogram:
        hist = self._cache.get(("lag", None, None))
        if hist is None:
            hist = self._cache[("lag", None, None)] = LatencyHistogram.decode(self.lag_hist)
        return hist

    def latency(self, op: OpClass | None = None, bucket: int | None = None) -> LatencyStats:
        return LatencyStats.of(self.histogram(op, bucket))

    def service_latency(self, op: OpClass | None = None) -> LatencyStats:
        return LatencyStats.of(self.service_histogram(op))

    # ----- per-source gauges -----
    def set_progress(self, source: str, counters: ProgressCounters) -> None:
        self.progress[source] = counters

    def set_cpu(self, source: str, user: float, system: float, iowait: float) -> None:
        self.cpu[source] = (user, system, iowait)

    def progress_for(self, source: str | None = None) -> ProgressCounters:
        """One source's counters, or the sum over all sources (source=None)."""
        if source is not None:
            return self.progress.get(source, ProgressCounters())
        return ProgressCounters.combine(list(self.progress.values()))

    def cpu_pct(self) -> tuple[float, float, float]:
        """Mean over sources (each source is one host's system-wide figures)."""
        if not self.cpu:
            return (0.0, 0.0, 0.0)
        n = len(self.cpu)
        return tuple(sum(v[i] for v in self.cpu.values()) / n for i in range(3))  # type: ignore[return-value]

    def set_endpoints(self, stats: Iterable[Any]) -> None:
        self.endpoints = [endpoint_entry(s) for s in stats]

    def endpoint_latency(self, uri: str) -> LatencyStats:
        for entry in self.endpoints:
            if entry["uri"] == uri:
                return LatencyStats.of(LatencyHistogram.decode(entry["latency"]))
        return LatencyStats.of(LatencyHistogram())

    # ----- merge -----
    @staticmethod
    def merge(a: Snapshot, b: Snapshot) -> Snapshot:
        """Exact sum of two snapshots (`b` is taken as the later one for per-source gauges without time)."""
        return Snapshot.merge_all((a, b))

    @staticmethod
    def merge_all(snapshots: Iterable[Snapshot]) -> Snapshot:
        acc = SnapshotAccumulator()
        for snap in snapshots:
            acc.add(snap)
        return acc.snapshot()

    # ----- JSON -----
    def to_dict(self) -> dict[str, Any]:
        def ob(key: OpBucket) -> str:
            return f"{key[0].name}/{key[1]}"

        return {
            "start_ms": self.start_ms,
            "end_ms": self.end_ms,
            "ops": {ob(k): v for k, v in self.ops.items()},
            "bytes": {ob(k): v for k, v in self.nbytes.items()},
            "hists": {ob(k): v.decode("ascii") for k, v in self.hists.items()},
            "service": {k.name: v.decode("ascii") for k, v in self.service.items()},
            "errors": {f"{op.name}/{kind.value}": n for (op, kind), n in self.errors.items()},
            "first_errors": {kind.value: [at, msg] for kind, (at, msg) in self.first_errors.items()},
            "retries": {k.name: v for k, v in self.retries.items()},
            "late_ops": self.late_ops,
            "lag_hist": self.lag_hist.decode("ascii"),
            "unfinished_ops": self.unfinished_ops,
            "endpoints": [{**e, "latency": e["latency"].decode("ascii")} for e in self.endpoints],
            "progress": {k: v.to_dict() for k, v in self.progress.items()},
            "cpu": {k: list(v) for k, v in self.cpu.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Snapshot:
        def ob(key: str) -> OpBucket:
            op, bucket = key.split("/")
            return OpClass[op], int(bucket)

        def err(key: str) -> tuple[OpClass, ErrorClass]:
            op, kind = key.split("/")
            return OpClass[op], ErrorClass(kind)

        return cls(
            start_ms=int(data.get("start_ms", 0)),
            end_ms=int(data.get("end_ms", 0)),
            ops={ob(k): int(v) for k, v in data.get("ops", {}).items()},
            nbytes={ob(k): int(v) for k, v in data.get("bytes", {}).items()},
            hists={ob(k): v.encode("ascii") for k, v in data.get("hists", {}).items()},
            service={OpClass[k]: v.encode("ascii") for k, v in data.get("service", {}).items()},
            errors={err(k): int(v) for k, v in data.get("errors", {}).items()},
            first_errors={
                ErrorClass(k): (int(v[0]), str(v[1])) for k, v in data.get("first_errors", {}).items()
            },
            retries={OpClass[k]: int(v) for k, v in data.get("retries", {}).items()},
            late_ops=int(data.get("late_ops", 0)),
            lag_hist=data.get("lag_hist", "").encode("ascii"),
            unfinished_ops=int(data.get("unfinished_ops", 0)),
            endpoints=[
                {**e, "latency": e.get("latency", "").encode("ascii")} for e in data.get("endpoints", [])
            ],
            progress={k: ProgressCounters.from_dict(v) for k, v in data.get("progress", {}).items()},
            cpu={k: (float(v[0]), float(v[1]), float(v[2])) for k, v in data.get("cpu", {}).items()},
        )


class SnapshotAccumulator:
    """Mutable running sum of snapshots that keeps histograms decoded, so folding one interval per second
    into a stage total costs one decode-and-add per histogram, and encoding happens only on `snapshot()`."""

    def __init__(self) -> None:
        self.start_ms = 0
        self.end_ms = 0
        self.ops: dict[OpBucket, int] = {}
        self.nbytes: dict[OpBucket, int] = {}
        self.hists: dict[OpBucket, LatencyHistogram] = {}
        self.service: dict[OpClass, LatencyHistogram] = {}
        self.errors: dict[tuple[OpClass, ErrorClass], int] = {}
        self.first_errors: dict[ErrorClass, tuple[int, str]] = {}
        self.retries: dict[OpClass, int] = {}
        self.late_ops = 0
        self.lag = LatencyHistogram()
        self.unfinished_ops = 0
        self.endpoints: dict[str, dict[str, Any]] = {}
        self.endpoint_hists: dict[str, LatencyHistogram] = {}
        self.progress: dict[str, ProgressCounters] = {}
        self.cpu: dict[str, tuple[float, float, float]] = {}

    @staticmethod
    def _add_counts(target: dict, source: dict) -> None:
        for key, n in source.items():
            target[key] = target.get(key, 0) + n

    @staticmethod
    def _add_hists(target: dict, source: dict, unwrapped: dict[bytes, tuple[PayloadHeader, bytes]]) -> None:
        """Add `source`'s encoded histograms; `unwrapped` keeps the snapshot's decompressed payloads, so a
        service histogram equal to a response histogram (closed loop, one size bucket) is unwrapped once."""
        for key, data in source.items():
            if data:
                hist = target.get(key)
                if hist is None:
                    hist = target[key] = LatencyHistogram()
                found = unwrapped.get(data)
                if found is None:
                    found = unwrapped[data] = payload(data)
                hist.add_decompressed(data, *found)

    def add(self, snap: Snapshot) -> None:
        if snap.start_ms and (not self.start_ms or snap.start_ms < self.start_ms):
            self.start_ms = snap.start_ms
        self.end_ms = max(self.end_ms, snap.end_ms)
        self._add_counts(self.ops, snap.ops)
        self._add_counts(self.nbytes, snap.nbytes)
        unwrapped: dict[bytes, tuple[PayloadHeader, bytes]] = {}
        self._add_hists(self.hists, snap.hists, unwrapped)
        self._add_hists(self.service, snap.service, unwrapped)
        self._add_counts(self.errors, snap.errors)
        for kind, first in snap.first_errors.items():
            mine_f = self.first_errors.get(kind)
            if mine_f is None or first[0] < mine_f[0]:
                self.first_errors[kind] = first
        self._add_counts(self.retries, snap.retries)
        self.late_ops += snap.late_ops
        self.lag.add_encoded(snap.lag_hist)
        self.unfinished_ops += snap.unfinished_ops
        for entry in snap.endpoints:
            uri = entry["uri"]
            mine = self.endpoints.get(uri)
            if mine is None:
                mine = self.endpoints[uri] = {"uri": uri, **dict.fromkeys(_ENDPOINT_SUMS, 0), "in_flight": 0}
                self.endpoint_hists[uri] = LatencyHistogram()
            for name in _ENDPOINT_SUMS:
                mine[name] += int(entry.get(name, 0))
            # A gauge: summed over merged parts it would be meaningless, so keep the highest seen.
            mine["in_flight"] = max(mine["in_flight"], int(entry.get("in_flight", 0)))
            self.endpoint_hists[uri].add_encoded(entry.get("latency", b""))
        for source, counters in snap.progress.items():
            mine_p = self.progress.get(source)
            if mine_p is None or counters.at_ms >= mine_p.at_ms:
                self.progress[source] = counters
        self.cpu.update(snap.cpu)

    def snapshot(self) -> Snapshot:
        return Snapshot(
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            ops=dict(self.ops),
            nbytes=dict(self.nbytes),
            hists={k: h.encode() for k, h in self.hists.items() if h.count},
            service={k: h.encode() for k, h in self.service.items() if h.count},
            errors=dict(self.errors),
            first_errors=dict(self.first_errors),
            retries=dict(self.retries),
            late_ops=self.late_ops,
            lag_hist=self.lag.encode(),
            unfinished_ops=self.unfinished_ops,
            endpoints=[
                {**e, "latency": self.endpoint_hists[uri].encode()} for uri, e in self.endpoints.items()
            ],
            progress=dict(self.progress),
            cpu=dict(self.cpu),
        )
