"""sai3-compatible results tables (reference §2.1, §2.3): workload/prepare results, stage results with the
per-agent table, and endpoint stats.

Column names, order, number formats and row order are sai3's exactly; sbench only appends a trailing `p999_us`
column (on by default) and fills the per-agent `errors` column with the real counts (seed item 4).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sbench.metrics.buckets import BUCKET_LABELS, OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.snapshot import Snapshot, endpoint_entry
from sbench.results.atomic import write_text_atomic

RESULTS_COLUMNS: tuple[str, ...] = (
    "operation",
    "size_bucket",
    "bucket_idx",
    "mean_us",
    "p50_us",
    "p90_us",
    "p95_us",
    "p99_us",
    "max_us",
    "avg_bytes",
    "ops_per_sec",
    "throughput_mibps",
    "count",
)
P999_COLUMN = "p999_us"
AGENT_COLUMNS: tuple[str, ...] = (
    "agent_id",
    "get_ops",
    "get_bytes",
    "put_ops",
    "put_bytes",
    "meta_ops",
    "duration_s",
    "errors",
)
ENDPOINT_COLUMNS: tuple[str, ...] = (
    "endpoint_idx",
    "endpoint_uri",
    "total_requests",
    "bytes_read",
    "bytes_written",
    "error_count",
    "active_requests",
    "request_pct",
    "read_pct",
    "write_pct",
)
MIB = 1024 * 1024
_OP_ORDER = (OpClass.GET, OpClass.PUT, OpClass.META)

Kind = Literal["workload", "prepare"]


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One line of a results table (also used by the console summary and summary.json)."""

    op: OpClass
    label: str
    bucket_idx: int
    hist: LatencyHistogram
    ops: int
    nbytes: int

    def cells(self, wall_seconds: float, include_p999: bool) -> list[str]:
        h = self.hist
        rate = 1.0 / wall_seconds if wall_seconds > 0 else 0.0
        avg_bytes = self.nbytes / self.ops if self.ops else 0.0
        cells = [
            self.op.label,
            self.label,
            str(self.bucket_idx),
            f"{h.mean:.2f}",
            f"{float(h.percentile(50)):.2f}",
            f"{float(h.percentile(90)):.2f}",
            f"{float(h.percentile(95)):.2f}",
            f"{float(h.percentile(99)):.2f}",
            f"{float(h.max):.2f}",
            f"{avg_bytes:.0f}",
            f"{self.ops * rate:.2f}",
            f"{self.nbytes / MIB * rate:.2f}",
            str(self.ops),
        ]
        if include_p999:
            cells.append(f"{float(h.percentile(99.9)):.2f}")
        return cells


def result_rows(snapshot: Snapshot, ops: Sequence[OpClass] = _OP_ORDER) -> list[ResultRow]:
    """Rows in sai3's order: per-bucket rows grouped by bucket (GET, PUT, META within one), then the ALL rows
    by pseudo index (META 97, GET 98, PUT 99). Buckets without ops have no row."""
    rows: list[ResultRow] = []
    aggregates: list[ResultRow] = []
    for op in ops:
        op_ops = op_bytes = 0
        for bucket, count, nbytes in snapshot.bucket_counts(op):
            rows.append(
                ResultRow(op, BUCKET_LABELS[bucket], bucket, snapshot.histogram(op, bucket), count, nbytes)
            )
            op_ops += count
            op_bytes += nbytes
        if op_ops:
            aggregates.append(
                ResultRow(op, "ALL", op.aggregate_bucket_idx, snapshot.histogram(op), op_ops, op_bytes)
            )
    rows.sort(key=lambda r: r.bucket_idx)  # stable: keeps GET, PUT, META within a bucket
    aggregates.sort(key=lambda r: r.bucket_idx)
    return rows + aggregates


def _header(include_p999: bool) -> str:
    return "\t".join(RESULTS_COLUMNS + ((P999_COLUMN,) if include_p999 else ())) + "\n"


def _table(snapshot: Snapshot, wall_seconds: float, kind: Kind, include_p999: bool) -> str:
    # Prepare tables hold PUT rows; META rows appear only when prepare made directories (seed item 9: mkdir
    # latencies belong in prepare_results.tsv), so a plain object prepare gives sai3's table exactly.
    ops = (OpClass.PUT, OpClass.META) if kind == "prepare" else _OP_ORDER
    lines = [_header(include_p999)]
    for row in result_rows(snapshot, ops):
        lines.append("\t".join(row.cells(wall_seconds, include_p999)) + "\n")
    return "".join(lines)


def write_results_tsv(
    path: Path,
    snapshot: Snapshot,
    wall_seconds: float,
    kind: Kind = "workload",
    include_p999: bool = True,
) -> Path:
    """`workload_results.tsv` / `prepare_results.tsv` (and an agent's `results.tsv`) from a cumulative
    snapshot. An empty snapshot gives the header alone, so failed runs still produce a well-formed file."""
    if kind not in ("workload", "prepare"):
        raise ValueError(f"kind must be 'workload' or 'prepare', not {kind!r}")
    write_text_atomic(path, _table(snapshot, wall_seconds, kind, include_p999))
    return path


@dataclass(frozen=True, slots=True)
class AgentRow:
    """One agent's share of a stage, for the `# Per-Agent Details` table."""

    agent_id: str
    snapshot: Snapshot
    duration_s: float

    def cells(self) -> list[str]:
        s = self.snapshot
        return [
            self.agent_id,
            str(s.total_ops(OpClass.GET)),
            str(s.total_bytes(OpClass.GET)),
            str(s.total_ops(OpClass.PUT)),
            str(s.total_bytes(OpClass.PUT)),
            str(s.total_ops(OpClass.META)),
            f"{self.duration_s:.2f}",
            str(s.errors_total()),
        ]


@dataclass(frozen=True, slots=True)
class StageFigures:
    """One finished stage as the result files show it: its NN_<stage>_results.tsv and summary.json entry."""

    number: int
    name: str
    type: str
    #: merged over the agents
    snapshot: Snapshot
    agents: Sequence[AgentRow]

    @property
    def wall_seconds(self) -> float:
        """The stage's duration, which drives its rates: the longest agent's (sai3's rule)."""
        return max((a.duration_s for a in self.agents), default=self.snapshot.duration_s)


def write_stage_tsv(path: Path, stage: StageFigures, *, include_p999: bool = True) -> Path:
    """`NN_<stage>_results.tsv`: sai3's stage preamble, the results table, then the per-agent table."""
    wall_seconds = stage.wall_seconds
    agents = stage.agents
    parts = [
        f"# Stage {stage.number} Results: {stage.name} ({stage.type})\n",
        f"# Agents: {len(agents)}\n",
        f"# Duration: {wall_seconds:.2f}s\n",
        "\n",
        _table(stage.snapshot, wall_seconds, "workload", include_p999),
        "\n",
        "# Per-Agent Details\n",
        "\t".join(AGENT_COLUMNS) + "\n",
    ]
    parts.extend("\t".join(a.cells()) + "\n" for a in agents)
    write_text_atomic(path, "".join(parts))
    return path


def stage_file_name(stage_number: int, stage_name: str, suffix: str = "_results.tsv") -> str:
    """`NN_<name><suffix>` (`NN_<name>_results.tsv` by default) with NN 1-based and zero-padded, the name
    made safe for a file name."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stage_name) or "stage"
    return f"{stage_number:02d}_{safe}{suffix}"


def endpoint_rows(endpoint_stats: Iterable[Any]) -> list[list[str]]:
    entries = [endpoint_entry(e) for e in endpoint_stats]
    total_req = sum(e["requests"] for e in entries)
    total_read = sum(e["bytes_read"] for e in entries)
    total_written = sum(e["bytes_written"] for e in entries)

    def pct(part: int, whole: int) -> str:
        return f"{100.0 * part / whole:.2f}" if whole else "0.00"

    return [
        [
            str(idx),
            e["uri"],
            str(e["requests"]),
            str(e["bytes_read"]),
            str(e["bytes_written"]),
            str(e["errors"]),
            str(e["in_flight"]),
            pct(e["requests"], total_req),
            pct(e["bytes_read"], total_read),
            pct(e["bytes_written"], total_written),
        ]
        for idx, e in enumerate(entries, start=1)
    ]


def write_endpoint_stats_tsv(path: Path, endpoint_stats: Iterable[Any]) -> Path:
    """`workload_endpoint_stats.tsv` / `prepare_endpoint_stats.tsv` (§2.3): one row per endpoint, 1-based,
    shares of the totals as percentages. Accepts EndpointStats objects or snapshot endpoint dicts."""
    lines = ["\t".join(ENDPOINT_COLUMNS) + "\n"]
    lines.extend("\t".join(row) + "\n" for row in endpoint_rows(endpoint_stats))
    write_text_atomic(path, "".join(lines))
    return path
