"""Results, stage and endpoint TSVs against the exact columns, formats and row order of reference §2."""

from __future__ import annotations

import re
from pathlib import Path

from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.results.tsv import (
    AgentRow,
    StageFigures,
    stage_file_name,
    write_endpoint_stats_tsv,
    write_results_tsv,
    write_stage_tsv,
)
from sbench.storage.base import ErrorClass

SAI3_HEADER = (
    "operation\tsize_bucket\tbucket_idx\tmean_us\tp50_us\tp90_us\tp95_us\tp99_us\tmax_us\tavg_bytes\t"
    "ops_per_sec\tthroughput_mibps\tcount"
)


def _snapshot() -> Snapshot:
    rec = Recorder()
    for i in range(100):
        rec.record(OpClass.GET, 4096, 100 + i)
        rec.record(OpClass.PUT, 4096, 200 + i)
    for i in range(10):
        rec.record(OpClass.GET, 1024 * 1024, 5000 + i)
    for i in range(30):
        rec.record(OpClass.META, 0, 50 + i)
    rec.record(OpClass.PUT, 100 * 1024, 900)
    rec.record_error(OpClass.GET, ErrorClass.NOT_FOUND)
    return rec.take_interval()


def _rows(path: Path) -> list[list[str]]:
    return [line.split("\t") for line in path.read_text().splitlines()]


def test_workload_tsv_columns_rows_and_formats(tmp_path: Path) -> None:
    snap = _snapshot()
    path = write_results_tsv(tmp_path / "workload_results.tsv", snap, 2.0, include_p999=False)
    lines = path.read_text().splitlines()
    assert lines[0] == SAI3_HEADER
    rows = _rows(path)[1:]
    order = [(r[0], r[1], r[2]) for r in rows]
    assert order == [
        ("META", "zero", "0"),
        ("GET", "1B-8KiB", "1"),
        ("PUT", "1B-8KiB", "1"),
        ("PUT", "64KiB-512KiB", "3"),
        ("GET", "512KiB-4MiB", "4"),
        ("META", "ALL", "97"),
        ("GET", "ALL", "98"),
        ("PUT", "ALL", "99"),
    ]
    for r in rows:
        assert len(r) == 13
        for cell in r[3:9] + r[10:12]:
            assert re.fullmatch(r"\d+\.\d\d", cell), cell
        assert re.fullmatch(r"\d+", r[9])
        assert re.fullmatch(r"\d+", r[12])
    get_all = next(r for r in rows if r[0] == "GET" and r[1] == "ALL")
    assert int(get_all[12]) == snap.total_ops(OpClass.GET) == 110
    assert get_all[10] == "55.00"  # 110 ops / 2 s
    assert get_all[9] == f"{(100 * 4096 + 10 * 1024 * 1024) / 110:.0f}"
    assert get_all[11] == f"{(100 * 4096 + 10 * 1024 * 1024) / 1048576 / 2:.2f}"
    get_small = next(r for r in rows if r[0] == "GET" and r[2] == "1")
    assert get_small[8] == "199.00"  # max of 100..199, exact at 3 significant digits
    assert sum(int(r[12]) for r in rows if r[1] != "ALL") == snap.total_ops()


def test_p999_is_a_trailing_column(tmp_path: Path) -> None:
    path = write_results_tsv(tmp_path / "w.tsv", _snapshot(), 1.0)
    header, *rows = _rows(path)
    assert "\t".join(header[:13]) == SAI3_HEADER
    assert header[13] == "p999_us"
    assert all(len(r) == 14 for r in rows)


def test_prepare_tsv_has_put_rows_only(tmp_path: Path) -> None:
    rec = Recorder()
    rec.record(OpClass.PUT, 4096, 10)
    rec.record(OpClass.GET, 4096, 10)
    path = write_results_tsv(tmp_path / "prepare_results.tsv", rec.take_interval(), 1.0, kind="prepare")
    rows = _rows(path)[1:]
    assert [(r[0], r[1], r[2]) for r in rows] == [("PUT", "1B-8KiB", "1"), ("PUT", "ALL", "99")]


def test_prepare_tsv_keeps_mkdir_latencies(tmp_path: Path) -> None:
    rec = Recorder()
    rec.record(OpClass.PUT, 4096, 10)
    rec.record(OpClass.META, 0, 30)  # mkdir during tree prepare (seed item 9)
    rows = _rows(write_results_tsv(tmp_path / "p.tsv", rec.take_interval(), 1.0, kind="prepare"))[1:]
    assert [(r[0], r[2]) for r in rows] == [("META", "0"), ("PUT", "1"), ("META", "97"), ("PUT", "99")]


def test_empty_snapshot_writes_header_only(tmp_path: Path) -> None:
    path = write_results_tsv(tmp_path / "w.tsv", Snapshot(), 0.0, include_p999=False)
    assert path.read_text() == SAI3_HEADER + "\n"


def test_stage_tsv_preamble_and_per_agent_errors(tmp_path: Path) -> None:
    a1, a2 = _snapshot(), _snapshot()
    a2.errors[(OpClass.PUT, ErrorClass.THROTTLED)] = 4
    merged = Snapshot.merge(a1, a2)
    name = stage_file_name(3, "execute")
    assert name == "03_execute_results.tsv"
    agents = [AgentRow("agent-1", a1, 9.5), AgentRow("agent-2", a2, 10.0)]
    figures = StageFigures(3, "execute", "execute", merged, agents)
    path = write_stage_tsv(tmp_path / name, figures, include_p999=False)
    lines = path.read_text().splitlines()
    assert lines[:5] == [
        "# Stage 3 Results: execute (execute)",
        "# Agents: 2",
        "# Duration: 10.00s",
        "",
        SAI3_HEADER,
    ]
    blank = lines.index("", 5)
    assert lines[blank + 1] == "# Per-Agent Details"
    assert (
        lines[blank + 2] == "agent_id\tget_ops\tget_bytes\tput_ops\tput_bytes\tmeta_ops\tduration_s\terrors"
    )
    agent_rows = [line.split("\t") for line in lines[blank + 3 :]]
    assert [r[0] for r in agent_rows] == ["agent-1", "agent-2"]
    assert [r[7] for r in agent_rows] == ["1", "5"]
    assert agent_rows[0][1] == str(a1.total_ops(OpClass.GET))
    assert agent_rows[1][6] == "10.00"
    get_all = next(line.split("\t") for line in lines if line.startswith("GET\tALL"))
    assert get_all[10] == f"{220 / 10.0:.2f}"  # rates use the longest agent duration


def test_endpoint_stats_tsv(tmp_path: Path) -> None:
    stats = [
        {
            "uri": "s3://h1/b",
            "requests": 75,
            "bytes_read": 300,
            "bytes_written": 0,
            "errors": 2,
            "in_flight": 0,
        },
        {
            "uri": "s3://h2/b",
            "requests": 25,
            "bytes_read": 100,
            "bytes_written": 0,
            "errors": 0,
            "in_flight": 1,
        },
    ]
    rows = _rows(write_endpoint_stats_tsv(tmp_path / "workload_endpoint_stats.tsv", stats))
    assert rows[0] == [
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
    ]
    assert rows[1] == ["1", "s3://h1/b", "75", "300", "0", "2", "0", "75.00", "75.00", "0.00"]
    assert rows[2] == ["2", "s3://h2/b", "25", "100", "0", "0", "1", "25.00", "25.00", "0.00"]
