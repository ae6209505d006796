"""The real workloads/quickstart.yaml end to end (duration shortened to 2 s), and the consistency of every
figure across the results directory: TSV counts = summary.json counts = perf_log sums."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sbench.cli import main

QUICKSTART = Path(__file__).resolve().parent.parent / "workloads" / "quickstart.yaml"
FILES = (
    "config.yaml",
    "console_log.txt",
    "metadata.json",
    "summary.json",
    "prepare_results.tsv",
    "workload_results.tsv",
    "perf_log.tsv",
    "STATUS.txt",
)


def _tsv(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(
            csv.DictReader((line for line in fh if line.strip() and not line.startswith("#")), delimiter="\t")
        )


def test_quickstart_runs_and_results_agree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = QUICKSTART.read_text().replace("duration: 10s", "duration: 2s")
    assert "duration: 2s" in text
    config = tmp_path / "quickstart.yaml"
    config.write_text(text)
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    out = tmp_path / "results"
    assert main(["run", str(config), "--results-dir", str(out)]) == 0
    for name in FILES:
        assert (out / name).is_file(), name
    assert (out / "STATUS.txt").read_text().startswith("TEST STATUS: SUCCESS")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "SUCCESS"
    assert summary["load_model"]["kind"] == "closed"

    workload_rows = {
        r["operation"]: r for r in _tsv(out / "workload_results.tsv") if r["size_bucket"] == "ALL"
    }
    prepare_rows = {r["operation"]: r for r in _tsv(out / "prepare_results.tsv") if r["size_bucket"] == "ALL"}
    perf = _tsv(out / "perf_log.tsv")
    assert len(perf[0]) >= 30 and list(perf[0])[:4] == [
        "agent_id",
        "timestamp_epoch_ms",
        "elapsed_s",
        "stage",
    ]

    def perf_sum(stage: str, column: str) -> int:
        return sum(int(r[column]) for r in perf if r["stage"] == stage)

    ops = summary["workload"]["operations"]
    for op, col in (("GET", "get_ops"), ("PUT", "put_ops"), ("META", "meta_ops")):
        count = int(workload_rows[op]["count"])
        assert count > 0
        assert count == ops[op]["ops"] == perf_sum("Workload", col), op
    assert int(workload_rows["GET"]["count"]) > int(workload_rows["META"]["count"])  # 70/20/5/5 mix
    assert summary["workload"]["totals"]["bytes"] == perf_sum("Workload", "get_bytes") + perf_sum(
        "Workload", "put_bytes"
    )
    assert int(prepare_rows["PUT"]["count"]) == 1000 == summary["prepare"]["operations"]["PUT"]["ops"]
    assert perf_sum("Prepare", "put_ops") == 1000
    cleanup = summary["cleanup"]["operations"]["META"]["ops"]
    assert cleanup == 1000 + int(workload_rows["PUT"]["count"]) == perf_sum("Cleanup", "meta_ops")
    assert summary["workload"]["totals"]["errors"] == 0
    data = tmp_path / "sbench-quickstart"
    assert not [p for p in data.rglob("*") if p.is_file()]  # cleanup removed everything the run wrote
    metadata = json.loads((out / "metadata.json").read_text())
    assert metadata["status"] == "SUCCESS" and metadata["run_id"]
