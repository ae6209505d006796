"""summary.json: every figure of the run in machine-readable form.

Counts and bytes come from the same cumulative snapshots as the TSVs, so `summary.json` and
`*_results.tsv` agree exactly. Latencies are given as response time (from the intended start in open loop)
and service time (from the actual start); in closed loop the two are equal.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, is_dataclass
from pathlib import Path
from typing import Any

from sbench.metrics.buckets import BUCKET_LABELS, OpClass
from sbench.metrics.snapshot import LatencyStats, Snapshot
from sbench.results.atomic import write_text_atomic
from sbench.results.status import AgentStatus, FirstError, first_errors_of
from sbench.results.tsv import MIB, StageFigures, endpoint_rows
from sbench.status import RunStatus, StageStatus

SCHEMA_VERSION = 1


def _rates(ops: int, nbytes: int, wall: float) -> dict[str, float]:
    return {
        "ops_per_sec": round(ops / wall, 3) if wall > 0 else 0.0,
        "mib_per_sec": round(nbytes / MIB / wall, 3) if wall > 0 else 0.0,
    }


def _lat(stats: LatencyStats) -> dict[str, Any]:
    return stats.to_dict()


def summary_section(snapshot: Snapshot, wall_seconds: float) -> dict[str, Any]:
    """One phase (prepare, workload, cleanup) or stage: totals, per-class figures, errors, open-loop data."""
    per_class: dict[str, Any] = {}
    for op in OpClass:
        ops, nbytes = snapshot.total_ops(op), snapshot.total_bytes(op)
        op_errors = {kind.value: n for (o, kind), n in snapshot.errors.items() if o == op}
        if not ops and not op_errors:
            continue
        per_class[op.label] = {
            "ops": ops,
            "bytes": nbytes,
            "avg_bytes": round(nbytes / ops, 1) if ops else 0.0,
            **_rates(ops, nbytes, wall_seconds),
            "latency_us": _lat(snapshot.latency(op)),
            "service_time_us": _lat(snapshot.service_latency(op)),
            "errors": sum(op_errors.values()),
            "errors_by_class": op_errors,
            "retries": snapshot.retries.get(op, 0),
            "buckets": [
                {
                    "bucket_idx": b,
                    "size_bucket": BUCKET_LABELS[b],
                    "ops": n,
                    "bytes": nb,
                    **_rates(n, nb, wall_seconds),
                    "latency_us": _lat(snapshot.latency(op, b)),
                }
                for b, n, nb in snapshot.bucket_counts(op)
            ],
        }
    total_ops, total_bytes = snapshot.total_ops(), snapshot.total_bytes()
    errors = snapshot.errors_total()
    attempts = total_ops + errors
    endpoints = []
    for entry, row in zip(snapshot.endpoints, endpoint_rows(snapshot.endpoints), strict=True):
        endpoints.append(
            {
                "endpoint_idx": int(row[0]),
                "uri": entry["uri"],
                "requests": entry["requests"],
                "bytes_read": entry["bytes_read"],
                "bytes_written": entry["bytes_written"],
                "errors": entry["errors"],
                "active_requests": entry["in_flight"],
                "request_pct": float(row[7]),
                "read_pct": float(row[8]),
                "write_pct": float(row[9]),
                "latency_us": _lat(snapshot.endpoint_latency(entry["uri"])),
            }
        )
    progress = snapshot.progress_for()
    return {
        "wall_seconds": round(wall_seconds, 3),
        "start_ms": snapshot.start_ms,
        "end_ms": snapshot.end_ms,
        "totals": {
            "ops": total_ops,
            "bytes": total_bytes,
            **_rates(total_ops, total_bytes, wall_seconds),
            "errors": errors,
            "error_rate": round(errors / attempts, 6) if attempts else 0.0,
            "retries": snapshot.retries_total(),
            "unfinished_ops": snapshot.unfinished_ops,
            "latency_us": _lat(snapshot.latency()),
            "service_time_us": _lat(snapshot.service_latency()),
        },
        "operations": per_class,
        "errors": {
            "total": errors,
            "by_class": {k.value: n for k, n in snapshot.errors_by_class().items()},
            "by_op": {k.label: n for k, n in snapshot.errors_by_op().items()},
            # the first failed op of every class, earliest first: what the store answered
            "first_by_class": {
                e.kind: {"at": e.at, "at_ms": e.at_ms, "failed_ops": e.count, "message": e.message}
                for e in first_errors_of("", snapshot)
            },
        },
        "open_loop": {
            "late_ops": snapshot.late_ops,
            "schedule_lag_us": _lat(LatencyStats.of(snapshot.lag_histogram())),
        },
        "endpoints": endpoints,
        "progress": progress.to_dict() if snapshot.progress else None,
    }


def stage_entry(stage: StageFigures, status: StageStatus, reason: str = "") -> dict[str, Any]:
    return {
        "number": stage.number,
        "name": stage.name,
        "type": stage.type,
        "status": status,
        "reason": reason,
        **summary_section(stage.snapshot, stage.wall_seconds),
        "agents": [
            {
                "agent_id": a.agent_id,
                "duration_s": round(a.duration_s, 3),
                "ops": a.snapshot.total_ops(),
                "bytes": a.snapshot.total_bytes(),
                "errors": a.snapshot.errors_total(),
                "ops_by_class": {op.label: a.snapshot.total_ops(op) for op in OpClass},
            }
            for a in stage.agents
        ],
    }


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) and not isinstance(value, type) else value


def build_summary(
    status: RunStatus | str,
    *,
    reason: str = "",
    metadata: Any = None,
    load_model: dict[str, Any] | None = None,
    sections: dict[str, dict[str, Any] | None] | None = None,
    stages: Sequence[dict[str, Any]] = (),
    agents: Sequence[AgentStatus] = (),
    preflight: Any = None,
    warnings: Sequence[str] = (),
    first_errors: Sequence[FirstError] = (),
    left_behind: dict[str, Any] | None = None,
    op_log: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The whole document. `sections` maps phase names (prepare, workload, cleanup) to `summary_section`
    results, or None for phases that did not run. `preflight` is the preflight result's JSON form, filled in
    by the preflight layer; None when no preflight ran. `first_errors` (per stage, the first failed op of each
    error class) is the list STATUS.txt shows. `left_behind`: what cleanup left (how many objects, where,
    why), None when no cleanup ran. `op_log`: the run's op-log (path, rows, per-agent capture figures, clock
    offsets; oplog.runlog.OpLogReport), None without one."""
    meta = _plain(metadata) or {}
    return {
        "schema_version": SCHEMA_VERSION,
        "status": RunStatus(status).value,
        "reason": reason,
        "run": {
            k: meta.get(k)
            for k in (
                "version",
                "test_name",
                "run_id",
                "config_path",
                "start_time",
                "end_time",
                "duration_secs",
                "hostname",
                "distributed",
                "agents",
                "results_dir",
            )
        },
        "load_model": load_model or meta.get("load_model") or {},
        **{name: section for name, section in (sections or {}).items()},
        "stages": list(stages),
        "agents": [asdict(a) for a in agents],
        "preflight": preflight,
        "warnings": list(warnings),
        "first_errors": [asdict(e) | {"at": e.at} for e in first_errors],
        "left_behind": left_behind,
        "op_log": op_log,
    }


def write_summary(path: Path, summary: dict[str, Any]) -> Path:
    """Atomic write, so a run killed mid-write never leaves a truncated summary.json."""
    return write_text_atomic(path, json.dumps(summary, indent=2, default=str) + "\n")
