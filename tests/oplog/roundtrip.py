"""What a run's op-log must hold, from the run's own result files.

Every storage call is a row, so per class (GET, PUT, META) the log has the ops the results count, plus the
failed calls (counted as errors, not ops), plus the retries, plus the listings that set a stage up without
being measured ops: prepare's gap-fill LIST of each object space and the PUT cleanup's LIST of each PUT
directory (`setup_lists`). Its error rows are the results' errors.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from sbench.oplog.reader import read_rows


def all_counts(path: Path) -> dict[str, int]:
    """op -> `count` of the ALL rows of a results TSV (a stage TSV's first table)."""
    out: dict[str, int] = {}
    if not path.exists():  # no prepare block: no prepare_results.tsv
        return out
    column = None
    for line in path.read_text().split("# Per-Agent Details")[0].splitlines():
        cells = line.split("\t")
        if cells[0] == "operation":
            column = cells.index("count")
        elif column is not None and len(cells) > column and cells[1] == "ALL":
            out[cells[0]] = int(cells[column])
    return out


def expected(results: Path, setup_lists: int) -> tuple[dict[str, int], int]:
    """(rows per class, error rows) the log must have, from workload_results.tsv, prepare_results.tsv, the
    cleanup stage's table and summary.json's errors and retries."""
    summary = json.loads((results / "summary.json").read_text())
    ops: Counter[str] = Counter()
    ops.update(all_counts(results / "workload_results.tsv"))
    ops.update(all_counts(results / "prepare_results.tsv"))
    for stage in summary["stages"]:
        if stage["type"] == "cleanup":
            ops.update(all_counts(results / f"{stage['number']:02d}_{stage['name']}_results.tsv"))
    errors = 0
    for stage in summary["stages"]:
        for cls, figures in stage["operations"].items():
            ops[cls] += figures["errors"] + figures["retries"]
            errors += figures["errors"]
    ops["META"] += setup_lists
    return {cls: n for cls, n in ops.items() if n}, errors


def logged(log: Path) -> tuple[dict[str, int], int, list[Any]]:
    """(rows per class, error rows, the rows) of an op-log."""
    rows = list(read_rows(log))
    per_class = Counter(r.op_class.label for r in rows)
    return dict(per_class), sum(bool(r.error) for r in rows), rows


def check(results: Path, log: Path, setup_lists: int) -> list[Any]:
    """Assert the round trip; the rows, sorted by start and numbered in order."""
    want, want_errors = expected(results, setup_lists)
    got, errors, rows = logged(log)
    assert got == want, f"log rows per class {got} != results {want}"
    assert errors == want_errors
    assert [r.start_ns for r in rows] == sorted(r.start_ns for r in rows)
    assert [r.idx for r in rows] == list(range(len(rows)))
    summary = json.loads((results / "summary.json").read_text())
    assert summary["op_log"]["rows"] == len(rows) and summary["op_log"]["problems"] == []
    return rows


def mixed_config(target: str, extra: str = "") -> str:
    """GET/PUT/STAT/LIST/DELETE over a prepared pool, with cleanup: strict, so the prepared objects the
    workload's DELETEs removed are counted as not_found errors by cleanup (real errors in the results)."""
    return f"""
target: "{target}"
duration: 1s
concurrency: 2
prepare:
  cleanup: true
  cleanup_mode: strict
  ensure_objects:
    - {{base_uri: "{target}data/", count: 30, size_spec: 2KiB}}
workload:
  - {{op: get, path: "data/", weight: 40}}
  - {{op: put, path: "out/", object_size: 1KiB, weight: 30}}
  - {{op: stat, path: "data/", weight: 20}}
  - {{op: list, path: "data/", weight: 5}}
  - {{op: delete, path: "data/", weight: 5}}
{extra}"""
