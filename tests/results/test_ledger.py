"""populate_ledger.tsv: sai3's columns (plus objects_failed), one row per agent per prepare stage, an
AGGREGATE row for distributed runs, written by real runs."""

from __future__ import annotations

import csv
from pathlib import Path

from sbench.cli import main
from sbench.metrics.snapshot import Snapshot
from sbench.results.ledger import COLUMNS, LedgerEntry, ledger_text

SAI3_COLUMNS = [
    "timestamp", "test_name", "agent_id", "stage", "objects_created", "objects_existed", "total_objects",
    "total_bytes", "avg_bytes", "wall_seconds", "ops_per_sec",
]


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_columns_start_with_sai3s() -> None:
    assert list(COLUMNS[: len(SAI3_COLUMNS)]) == SAI3_COLUMNS
    assert COLUMNS[-1] == "objects_failed"


def test_aggregate_row_sums_agents_and_takes_the_longest_wall() -> None:
    entries = [
        LedgerEntry("a1", "prepare", 30, 10, 0, Snapshot(), 2.0),
        LedgerEntry("a2", "prepare", 20, 0, 5, Snapshot(), 4.0),
    ]
    lines = ledger_text("t", entries, aggregate=True, now=0).splitlines()
    agg = dict(zip(COLUMNS, lines[-1].split("\t"), strict=True))
    assert len(lines) == 4 and agg["agent_id"] == "AGGREGATE"
    assert (agg["objects_created"], agg["objects_existed"], agg["total_objects"]) == ("50", "10", "60")
    assert (agg["objects_failed"], agg["wall_seconds"], agg["ops_per_sec"]) == ("5", "4.000", "12.50")
    assert len(ledger_text("t", entries, aggregate=False).splitlines()) == 3


def test_a_run_writes_created_then_existed(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    cfg = tmp_path / "ledger.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.3s\nconcurrency: 2\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 30, size_spec: 1000}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    )
    for out in ("r1", "r2"):
        flags = ["--prepare-only", "--no-report", "--results-dir", str(tmp_path / out)]
        assert main(["run", str(cfg), *flags]) == 0
    first, second = (_rows(tmp_path / out / "populate_ledger.tsv") for out in ("r1", "r2"))
    assert [r["agent_id"] for r in first] == ["standalone"]  # not distributed: no AGGREGATE row
    row = first[0]
    assert row["test_name"] == "ledger" and row["stage"] == "prepare"
    assert (row["objects_created"], row["objects_existed"], row["total_bytes"]) == ("30", "0", "30000")
    assert row["avg_bytes"] == "1000" and float(row["ops_per_sec"]) > 0
    assert (second[0]["objects_created"], second[0]["objects_existed"]) == ("0", "30")
    assert second[0]["total_objects"] == "30"
