"""perf_log.tsv: one row per interval per agent (reference §2.2), written and flushed as the run goes, so an
interrupted run keeps every interval it measured.

The first 30 columns are sai3's, in order and format. Unlike sai3 (§7.10) the latency columns describe the
interval itself, not everything since the stage started, and `errors` counts real errors (seed item 4).
sbench's own columns follow the 30: p99.9, service-time percentiles, open-loop late ops and schedule lag,
retries, errors by class, and the ops still in flight when the stage ended (in its last interval).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.results.growingfile import GrowingFile
from sbench.storage.base import ErrorClass

PERF_LOG_COLUMNS: tuple[str, ...] = (
    "agent_id",
    "timestamp_epoch_ms",
    "elapsed_s",
    "stage",
    "get_ops",
    "get_bytes",
    "get_iops",
    "get_mbps",
    "get_mean_us",
    "get_p50_us",
    "get_p90_us",
    "get_p99_us",
    "put_ops",
    "put_bytes",
    "put_iops",
    "put_mbps",
    "put_mean_us",
    "put_p50_us",
    "put_p90_us",
    "put_p99_us",
    "meta_ops",
    "meta_iops",
    "meta_mean_us",
    "meta_p50_us",
    "meta_p90_us",
    "meta_p99_us",
    "cpu_user_pct",
    "cpu_system_pct",
    "cpu_iowait_pct",
    "errors",
)
EXTRA_COLUMNS: tuple[str, ...] = (
    "get_p999_us",
    "put_p999_us",
    "meta_p999_us",
    "get_svc_p50_us",
    "get_svc_p99_us",
    "put_svc_p50_us",
    "put_svc_p99_us",
    "meta_svc_p50_us",
    "meta_svc_p99_us",
    "late_ops",
    "sched_lag_p99_us",
    "retries",
    *(f"err_{kind.value}" for kind in ErrorClass),
    # ops in flight when the stage ended (non-zero only in a stage's last interval)
    "unfinished_ops",
)
MIB = 1024 * 1024

#: sai3's stage labels for stages without a custom name, by stage type.
_STAGE_LABELS = {
    "prepare": "Prepare",
    "execute": "Workload",
    "workload": "Workload",
    "cleanup": "Cleanup",
    "listing": "Listing",
    "custom": "Custom",
}


def stage_label(stage_type: str | None, name: str | None = None) -> str:
    """The `stage` column: the custom stage name, else Prepare/Workload/Cleanup/Listing/Custom/Unknown."""
    if name:
        return name
    return _STAGE_LABELS.get((stage_type or "").lower(), "Unknown")


def perf_log_row(
    snapshot: Snapshot,
    *,
    agent_id: str,
    stage: str,
    elapsed_s: float,
    cpu: tuple[float, float, float] | None = None,
    timestamp_ms: int | None = None,
) -> list[str]:
    """All cells (30 sai3 columns, then EXTRA_COLUMNS) for one interval snapshot."""
    seconds = snapshot.duration_s
    rate = 1.0 / seconds if seconds > 0 else 0.0
    user, system, iowait = cpu if cpu is not None else snapshot.cpu_pct()
    cells = [
        agent_id,
        str(timestamp_ms if timestamp_ms is not None else (snapshot.end_ms or int(time.time() * 1000))),
        f"{elapsed_s:.3f}",
        stage,
    ]
    for op in (OpClass.GET, OpClass.PUT, OpClass.META):
        ops = snapshot.total_ops(op)
        lat = snapshot.latency(op)
        cells.append(str(ops))
        if op is not OpClass.META:
            nbytes = snapshot.total_bytes(op)
            cells += [str(nbytes), f"{ops * rate:.1f}", f"{nbytes / MIB * rate:.2f}"]
        else:
            cells.append(f"{ops * rate:.1f}")
        cells += [str(round(lat.mean)), str(lat.p50), str(lat.p90), str(lat.p99)]
    cells += [f"{user:.1f}", f"{system:.1f}", f"{iowait:.1f}", str(snapshot.errors_total())]
    cells += [str(snapshot.latency(op).p999) for op in (OpClass.GET, OpClass.PUT, OpClass.META)]
    for op in (OpClass.GET, OpClass.PUT, OpClass.META):
        svc = snapshot.service_latency(op)
        cells += [str(svc.p50), str(svc.p99)]
    lag = snapshot.lag_histogram()
    cells += [str(snapshot.late_ops), str(lag.percentile(99)), str(snapshot.retries_total())]
    by_class = snapshot.errors_by_class()
    cells += [str(by_class.get(kind, 0)) for kind in ErrorClass]
    cells.append(str(snapshot.unfinished_ops))
    return cells


class PerfLogWriter:
    """Appends interval rows to one perf_log.tsv (one writer per file; thread-safe; a failed write is
    handled as results.growingfile says)."""

    def __init__(
        self,
        path: Path,
        agent_id: str = "standalone",
        on_error: Callable[[Path, OSError], None] | None = None,
    ) -> None:
        self.path = path
        self.agent_id = agent_id
        self.rows = 0
        header = ["\t".join(PERF_LOG_COLUMNS + EXTRA_COLUMNS)]
        self._file = GrowingFile(path, header, on_error, make_parent=True)

    def write(
        self,
        snapshot: Snapshot,
        *,
        stage: str,
        elapsed_s: float,
        cpu: tuple[float, float, float] | None = None,
        timestamp_ms: int | None = None,
        agent_id: str | None = None,
    ) -> None:
        """One interval. `cpu` defaults to the CPU figures carried by the snapshot (mean over sources)."""
        row = perf_log_row(
            snapshot,
            agent_id=agent_id or self.agent_id,
            stage=stage,
            elapsed_s=elapsed_s,
            cpu=cpu,
            timestamp_ms=timestamp_ms,
        )
        if self._file.append(["\t".join(row)]):
            self.rows += 1

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PerfLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
