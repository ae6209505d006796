"""`sbench oplog stats LOG`: what a log holds, in one streaming pass and constant memory.

Per op: rows, errors, bytes, n_objects and the latency (duration_ns) percentiles from an HDR histogram;
per class (GET, PUT, META) the same counts; the time span and the op rate over time (buckets whose width
doubles whenever there would be more than `MAX_BUCKETS`, so their number stays bounded); distinct object
URIs (exact up to `EXACT_KEYS`, then a HyperLogLog estimate, marked as such); the size histogram of GET and
PUT bytes in sai3's nine buckets; the read/write ratio by ops and by bytes; rows per client.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdrh.histogram import HdrHistogram

from sbench.metrics.buckets import BUCKET_LABELS, OpClass, bucket_index
from sbench.oplog.format import NS, OpRow, TimeFormat
from sbench.oplog.reader import read_rows

MAX_BUCKETS = 60
EXACT_KEYS = 100_000
#: HyperLogLog registers (2**14: about 0.8 % standard error)
HLL_BITS = 14
MAX_CLIENTS = 1_000


class DistinctCounter:
    """Exact distinct count while small, a HyperLogLog estimate once past EXACT_KEYS."""

    def __init__(self) -> None:
        self.exact: set[int] | None = set()
        self.registers = bytearray(1 << HLL_BITS)

    def add(self, value: str) -> None:
        h = hash(value) & 0xFFFF_FFFF_FFFF_FFFF
        index = h >> (64 - HLL_BITS)
        rest = (h << HLL_BITS) & 0xFFFF_FFFF_FFFF_FFFF
        rank = 65 - rest.bit_length() if rest else 65 - HLL_BITS
        if rank > self.registers[index]:
            self.registers[index] = rank
        if self.exact is not None:
            self.exact.add(h)
            if len(self.exact) > EXACT_KEYS:
                self.exact = None

    @property
    def estimated(self) -> bool:
        return self.exact is None

    def count(self) -> int:
        if self.exact is not None:
            return len(self.exact)
        m = len(self.registers)
        estimate = (0.7213 / (1 + 1.079 / m)) * m * m / sum(2.0**-r for r in self.registers)
        zeros = self.registers.count(0)
        if estimate <= 2.5 * m and zeros:
            estimate = m * math.log(m / zeros)
        return round(estimate)


@dataclass
class OpFigures:
    rows: int = 0
    errors: int = 0
    bytes: int = 0
    objects: int = 0
    latency: HdrHistogram = field(default_factory=lambda: HdrHistogram(1, 3_600_000_000, 3))

    def add(self, row: OpRow) -> None:
        self.rows += 1
        self.bytes += row.bytes
        self.objects += row.n_objects
        if row.error:
            self.errors += 1
        self.latency.record_value(min(max(1, row.duration_ns // 1000), 3_600_000_000))

    def to_dict(self) -> dict[str, Any]:
        lat = self.latency
        return {
            "rows": self.rows,
            "errors": self.errors,
            "bytes": self.bytes,
            "n_objects": self.objects,
            "latency_us": {
                "mean": round(lat.get_mean_value(), 1) if self.rows else 0,
                "p50": lat.get_value_at_percentile(50) if self.rows else 0,
                "p99": lat.get_value_at_percentile(99) if self.rows else 0,
                "max": lat.get_max_value() if self.rows else 0,
            },
        }


class LogStats:
    """Figures of a log, fed one row at a time."""

    def __init__(self) -> None:
        self.rows = 0
        self.ops: dict[str, OpFigures] = {}
        self.classes = {c.label: [0, 0, 0] for c in OpClass}  # rows, errors, bytes
        self.first_start: int | None = None
        self.last_end: int | None = None
        self.sorted = True
        self._last_start = -1
        self.width_s = 1
        self.rate: dict[int, int] = {}
        self.keys = DistinctCounter()
        self.sizes = {"GET": [0] * len(BUCKET_LABELS), "PUT": [0] * len(BUCKET_LABELS)}
        self.clients: Counter[str] = Counter()

    def add(self, row: OpRow) -> None:
        self.rows += 1
        figures = self.ops.get(row.op)
        if figures is None:
            figures = self.ops[row.op] = OpFigures()
        figures.add(row)
        cls = self.classes[row.op_class.label]
        cls[0] += 1
        cls[1] += bool(row.error)
        cls[2] += row.bytes
        if self.first_start is None or row.start_ns < self.first_start:
            self.first_start = row.start_ns
        if self.last_end is None or row.end_ns > self.last_end:
            self.last_end = row.end_ns
        if row.start_ns < self._last_start:
            self.sorted = False
        self._last_start = row.start_ns
        self._count_rate(row.start_ns // NS)
        self.keys.add(f"{row.endpoint}\t{row.file}")
        if row.op_class is not OpClass.META and not row.error:
            self.sizes[row.op_class.label][bucket_index(row.bytes)] += 1
        if row.client_id in self.clients or len(self.clients) < MAX_CLIENTS:
            self.clients[row.client_id] += 1
        else:
            self.clients["(other clients)"] += 1

    def _count_rate(self, second: int) -> None:
        slot = second // self.width_s
        self.rate[slot] = self.rate.get(slot, 0) + 1
        if len(self.rate) > MAX_BUCKETS:
            lo, hi = min(self.rate), max(self.rate)
            if hi - lo >= MAX_BUCKETS:  # a wider bucket halves their number
                self.width_s *= 2
                merged: dict[int, int] = {}
                for s, n in self.rate.items():
                    merged[s // 2] = merged.get(s // 2, 0) + n
                self.rate = merged

    def to_dict(self) -> dict[str, Any]:
        times = TimeFormat()
        span_s = (self.last_end - self.first_start) / NS if self.rows else 0.0  # type: ignore[operator]
        get, put = self.classes["GET"], self.classes["PUT"]
        return {
            "rows": self.rows,
            "sorted_by_start": self.sorted,
            "first_start": times.text(self.first_start) if self.first_start is not None else None,
            "last_end": times.text(self.last_end) if self.last_end is not None else None,
            "span_s": round(span_s, 6),
            "ops_per_s": round(self.rows / span_s, 1) if span_s > 0 else 0.0,
            "by_op": {op: f.to_dict() for op, f in sorted(self.ops.items())},
            "by_class": {c: {"rows": v[0], "errors": v[1], "bytes": v[2]} for c, v in self.classes.items()},
            "errors": sum(f.errors for f in self.ops.values()),
            "distinct_objects": self.keys.count(),
            "distinct_objects_estimated": self.keys.estimated,
            "rate": {
                "bucket_s": self.width_s,
                "buckets": [
                    {"start": times.text(slot * self.width_s * NS), "ops": n, "ops_per_s": n / self.width_s}
                    for slot, n in sorted(self.rate.items())
                ],
            },
            "size_histogram": {
                op: {BUCKET_LABELS[i]: n for i, n in enumerate(counts) if n}
                for op, counts in self.sizes.items()
            },
            "read_write": {
                "get_ops": get[0],
                "put_ops": put[0],
                "ops_ratio": round(get[0] / put[0], 4) if put[0] else None,
                "get_bytes": get[2],
                "put_bytes": put[2],
                "bytes_ratio": round(get[2] / put[2], 4) if put[2] else None,
            },
            "clients": dict(self.clients.most_common()),
        }


def log_stats(path: Path) -> dict[str, Any]:
    stats = LogStats()
    for row in read_rows(path):
        stats.add(row)
    return stats.to_dict()


def render(stats: dict[str, Any], path: Path) -> str:
    """The figures as text for the terminal."""
    out = [f"{path}: {stats['rows']:,} rows, {stats['errors']:,} errors, "
           f"{'sorted' if stats['sorted_by_start'] else 'NOT sorted'} by start"]
    if stats["rows"]:
        out.append(f"time: {stats['first_start']} .. {stats['last_end']} ({stats['span_s']:.3f} s, "
                   f"{stats['ops_per_s']:,.1f} ops/s)")
    out.append("")
    out.append(f"{'op':<16}{'rows':>12}{'errors':>10}{'bytes':>16}{'p50 µs':>10}{'p99 µs':>10}{'max µs':>12}")
    for op, f in stats["by_op"].items():
        lat = f["latency_us"]
        out.append(f"{op:<16}{f['rows']:>12,}{f['errors']:>10,}{f['bytes']:>16,}{lat['p50']:>10,}"
                   f"{lat['p99']:>10,}{lat['max']:>12,}")
    out.append("")
    out.append("by class: " + ", ".join(f"{c} {v['rows']:,} ({v['errors']:,} errors, {v['bytes']:,} B)"
                                        for c, v in stats["by_class"].items()))
    rw = stats["read_write"]
    out.append(f"read/write: {rw['get_ops']:,} GET / {rw['put_ops']:,} PUT ops (ratio {rw['ops_ratio']}), "
               f"{rw['get_bytes']:,} / {rw['put_bytes']:,} bytes (ratio {rw['bytes_ratio']})")
    approx = "≈ " if stats["distinct_objects_estimated"] else ""
    out.append(f"distinct objects: {approx}{stats['distinct_objects']:,}")
    for op, hist in stats["size_histogram"].items():
        if hist:
            out.append(f"{op} sizes: " + ", ".join(f"{b} {n:,}" for b, n in hist.items()))
    out.append("clients: " + ", ".join(f"{c or '(none)'} {n:,}" for c, n in stats["clients"].items()))
    rate = stats["rate"]
    out.append("")
    out.append(f"rate over time ({rate['bucket_s']} s buckets):")
    for b in rate["buckets"]:
        out.append(f"  {b['start']}  {b['ops_per_s']:>12,.1f} ops/s")
    return "\n".join(out)
