"""summary.json content and the consistency of every results file written from the same snapshots."""

from __future__ import annotations

import io
import json
from pathlib import Path
from types import SimpleNamespace

from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.runplan import load_model_of
from sbench.results.resultsdir import ResultsDir
from sbench.results.status import AgentStatus, write_status
from sbench.results.summary import build_summary, stage_entry, summary_section, write_summary
from sbench.results.tsv import AgentRow, StageFigures, write_endpoint_stats_tsv, write_results_tsv
from sbench.status import AgentState
from sbench.storage.base import ErrorClass


def _intervals(n: int) -> list[Snapshot]:
    out = []
    for i in range(n):
        rec = Recorder()
        for k in range(100 + i):
            rec.record(OpClass.GET, 4096, 100 + k, 90 + k)
            rec.record(OpClass.PUT, 65536, 300 + k, 250)
        rec.record(OpClass.META, 0, 40)
        rec.record_error(OpClass.GET, ErrorClass.TIMEOUT, f"GET k{i}: timed out")
        rec.record_retry(OpClass.GET)
        rec.record_late(1500)
        snap = rec.take_interval()
        snap.start_ms, snap.end_ms = 1000 * i, 1000 * (i + 1)
        snap.set_endpoints([{"uri": "s3://e1/b", "requests": 10, "bytes_read": 40960, "bytes_written": 0}])
        snap.set_progress(
            "standalone", ProgressCounters(objects_done=i + 1, objects_total=3, at_ms=1000 * (i + 1))
        )
        out.append(snap)
    return out


def test_load_model_labels() -> None:
    closed = load_model_of(SimpleNamespace(concurrency=8, io_rate=None, distributed=None))
    assert closed == {"kind": "closed", "concurrency": 8}
    rate = SimpleNamespace(iops=500.0, distribution="uniform")
    opened = load_model_of(SimpleNamespace(concurrency=4, io_rate=rate, distributed=None))
    assert (opened["kind"], opened["iops"], opened["distribution"]) == ("open", 500.0, "uniform")


def test_section_figures() -> None:
    total = Snapshot.merge_all(_intervals(3))
    section = summary_section(total, 3.0)
    json.dumps(section)
    get = section["operations"]["GET"]
    assert get["ops"] == 303
    assert get["ops_per_sec"] == 101.0
    assert get["errors_by_class"] == {"timeout": 3}
    assert get["retries"] == 3
    assert get["latency_us"]["p50_us"] > get["service_time_us"]["p50_us"]
    assert get["buckets"][0]["size_bucket"] == "1B-8KiB"
    assert section["totals"]["ops"] == 303 * 2 + 3
    first = section["errors"].pop("first_by_class")
    assert section["errors"] == {"total": 3, "by_class": {"timeout": 3}, "by_op": {"GET": 3}}
    assert list(first) == ["timeout"]
    assert first["timeout"]["message"] == "GET k0: timed out" and first["timeout"]["failed_ops"] == 3
    assert section["open_loop"]["late_ops"] == 3
    assert section["open_loop"]["schedule_lag_us"]["max_us"] >= 1499
    assert section["endpoints"][0]["requests"] == 30
    assert section["endpoints"][0]["request_pct"] == 100.0
    assert section["progress"]["objects_done"] == 3


def test_all_files_agree(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("duration: 3s\n")
    rd = ResultsDir.create(tmp_path / "r", cfg, stream=io.StringIO(), load_model={"kind": "closed"})
    intervals = _intervals(3)
    with rd.perf_log() as perf:
        for n, snap in enumerate(intervals, 1):
            perf.write(snap, stage="Workload", elapsed_s=float(n))
    total = Snapshot.merge_all(intervals)
    write_results_tsv(rd.results_tsv("workload"), total, 3.0)
    write_endpoint_stats_tsv(rd.endpoint_stats_tsv("workload"), total.endpoints)
    figures = StageFigures(1, "execute", "execute", total, [AgentRow("standalone", total, 3.0)])
    stage = stage_entry(figures, "completed")
    summary = build_summary(
        "SUCCESS",
        metadata=rd.metadata,
        sections={"workload": summary_section(total, 3.0), "prepare": None},
        stages=[stage],
        agents=[AgentStatus("standalone", AgentState.COMPLETED, operations=total.total_ops())],
    )
    write_summary(rd.summary_path, summary)
    write_status(rd.status_path, "SUCCESS", [], total_operations=total.total_ops(), total_errors=3)
    rd.finalize("SUCCESS")

    doc = json.loads(rd.summary_path.read_text())
    tsv = [line.split("\t") for line in rd.results_tsv("workload").read_text().splitlines()[1:]]
    perf_header, *perf_rows = [
        line.split("\t") for line in (rd.path / "perf_log.tsv").read_text().splitlines()
    ]
    col = perf_header.index
    for op, name in ((OpClass.GET, "get"), (OpClass.PUT, "put"), (OpClass.META, "meta")):
        tsv_count = int(next(r[12] for r in tsv if r[0] == op.label and r[1] == "ALL"))
        assert tsv_count == doc["workload"]["operations"][op.label]["ops"]
        assert tsv_count == sum(int(r[col(f"{name}_ops")]) for r in perf_rows)
    assert doc["workload"]["errors"]["total"] == sum(int(r[col("errors")]) for r in perf_rows) == 3
    assert doc["prepare"] is None
    assert doc["preflight"] is None
    assert doc["stages"][0]["agents"][0]["errors"] == 3
    assert doc["run"]["test_name"] == "c"
    assert doc["load_model"] == {"kind": "closed"}
    assert doc["agents"][0]["state"] == "Completed"
    for name in (
        "config.yaml",
        "console_log.txt",
        "metadata.json",
        "summary.json",
        "STATUS.txt",
        "perf_log.tsv",
        "workload_results.tsv",
        "workload_endpoint_stats.tsv",
    ):
        assert (rd.path / name).is_file(), name


def test_partial_run_still_writes_everything(tmp_path: Path) -> None:
    """An aborted run before any op completed: every writer copes with empty data."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("x: 1\n")
    rd = ResultsDir.create(tmp_path / "r", cfg, stream=io.StringIO())
    empty = Snapshot()
    rd.perf_log().close()
    write_results_tsv(rd.results_tsv("workload"), empty, 0.0)
    write_results_tsv(rd.results_tsv("prepare"), empty, 0.0, kind="prepare")
    write_endpoint_stats_tsv(rd.endpoint_stats_tsv("workload"), [])
    summary = build_summary(
        "ABORTED",
        reason="interrupted",
        metadata=rd.metadata,
        sections={"workload": summary_section(empty, 0.0)},
    )
    write_summary(rd.summary_path, summary)
    write_status(rd.status_path, "ABORTED", [], total_operations=0, total_errors=0, reason="interrupted")
    rd.finalize("ABORTED", reason="interrupted")
    doc = json.loads(rd.summary_path.read_text())
    assert doc["status"] == "ABORTED"
    assert doc["workload"]["totals"]["ops"] == 0
    assert json.loads((rd.path / "metadata.json").read_text())["extra"] == {"reason": "interrupted"}
