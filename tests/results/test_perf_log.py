"""perf_log.tsv: sai3's 30 columns first, per-interval latencies, sums equal to the cumulative totals."""

from __future__ import annotations

import re
from pathlib import Path

from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.results.perf_log import EXTRA_COLUMNS, PERF_LOG_COLUMNS, PerfLogWriter, stage_label
from sbench.storage.base import ErrorClass

SAI3_PERF_HEADER = [
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
]


def _interval(start: int, latency: int, gets: int, puts: int, errors: int) -> Snapshot:
    rec = Recorder()
    for _ in range(gets):
        rec.record(OpClass.GET, 4096, latency)
    for _ in range(puts):
        rec.record(OpClass.PUT, 1 << 20, latency * 2)
    for _ in range(errors):
        rec.record_error(OpClass.PUT, ErrorClass.THROTTLED)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = start, start + 1000
    return snap


def test_header_is_sai3s_30_columns_then_extras(tmp_path: Path) -> None:
    assert list(PERF_LOG_COLUMNS) == SAI3_PERF_HEADER
    assert len(PERF_LOG_COLUMNS) == 30
    with PerfLogWriter(tmp_path / "perf_log.tsv") as writer:
        writer.write(_interval(1000, 100, 1, 1, 0), stage="Workload", elapsed_s=1.0)
    header = (tmp_path / "perf_log.tsv").read_text().splitlines()[0].split("\t")
    assert header[:30] == SAI3_PERF_HEADER
    assert header[30:] == list(EXTRA_COLUMNS)


def test_rows_are_per_interval_and_sum_to_totals(tmp_path: Path) -> None:
    intervals = [
        _interval(1_000, 100, 50, 10, 0),
        _interval(2_000, 10_000, 20, 5, 3),  # a slow interval must show its own latency
        _interval(3_000, 100, 40, 0, 1),
    ]
    path = tmp_path / "perf_log.tsv"
    with PerfLogWriter(path, "agent-7") as writer:
        for n, snap in enumerate(intervals, start=1):
            writer.write(snap, stage=stage_label("execute"), elapsed_s=n * 1.0, cpu=(12.34, 5.0, 0.06))
        assert writer.rows == 3
    header, *rows = [line.split("\t") for line in path.read_text().splitlines()]
    col = {name: i for i, name in enumerate(header)}
    assert [r[col["agent_id"]] for r in rows] == ["agent-7"] * 3
    assert [r[col["stage"]] for r in rows] == ["Workload"] * 3
    assert rows[0][col["elapsed_s"]] == "1.000"
    assert rows[0][col["timestamp_epoch_ms"]] == "2000"
    assert [r[col["get_p50_us"]] for r in rows] == ["100", "10007", "100"]  # not cumulative (§7.10)
    assert rows[0][col["get_iops"]] == "50.0"
    assert rows[0][col["put_mbps"]] == "10.00"
    assert rows[0][col["cpu_user_pct"]] == "12.3"
    assert rows[0][col["cpu_iowait_pct"]] == "0.1"
    for r in rows:
        assert re.fullmatch(r"\d+\.\d", r[col["meta_iops"]])
        assert re.fullmatch(r"\d+", r[col["get_mean_us"]])
    total = Snapshot.merge_all(intervals)
    assert sum(int(r[col["get_ops"]]) for r in rows) == total.total_ops(OpClass.GET)
    assert sum(int(r[col["put_bytes"]]) for r in rows) == total.total_bytes(OpClass.PUT)
    assert sum(int(r[col["errors"]]) for r in rows) == total.errors_total() == 4
    assert sum(int(r[col["err_throttled"]]) for r in rows) == 4


def test_cpu_defaults_to_the_snapshot_figures(tmp_path: Path) -> None:
    snap = _interval(0, 10, 1, 0, 0)
    snap.set_cpu("a1", 10.0, 20.0, 0.0)
    snap.set_cpu("a2", 30.0, 40.0, 2.0)
    path = tmp_path / "p.tsv"
    with PerfLogWriter(path, "controller") as writer:
        writer.write(snap, stage="prepare", elapsed_s=0.5)
    row = path.read_text().splitlines()[1].split("\t")
    assert row[26:29] == ["20.0", "30.0", "1.0"]


def test_rows_are_flushed_as_written(tmp_path: Path) -> None:
    path = tmp_path / "p.tsv"
    writer = PerfLogWriter(path)
    writer.write(Snapshot(start_ms=0, end_ms=1000), stage="Workload", elapsed_s=1.0)
    assert len(path.read_text().splitlines()) == 2  # readable before close: a killed run keeps its rows
    writer.close()


def test_stage_labels() -> None:
    assert stage_label("prepare") == "Prepare"
    assert stage_label("execute") == "Workload"
    assert stage_label("cleanup") == "Cleanup"
    assert stage_label("custom") == "Custom"
    assert stage_label("hybrid") == "Unknown"
    assert stage_label("execute", "warm-reads") == "warm-reads"
