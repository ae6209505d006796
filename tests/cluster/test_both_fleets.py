"""One driver, two fleets: the same config run in process and on Ray agents writes the same results.

Each config runs twice through `sbench.run.launch.run`, once on the in-process fleet and once on the Ray
fleet (one agent per Ray node, one node here), and both results directories must have the same files
(agents/<id>/ compared by file name), the same TSV headers, and counts that agree inside each directory:
summary.json's phases equal the phase tables' ALL rows, which equal the sum of the phase's stage tables,
which equal the perf-log rows of those stages; every stage table's merged counts equal its agents' rows and
the counts of its HdrHistogram interval log (NN_<stage>.hlog, read with hdrh's own log reader).
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from sbench.run.launch import run
from tests.cluster.conftest import stage_tables
from tests.faults.checks import OP_COLUMNS, all_rows, stage_tables_agree

#: only the Ray fleet has it: the shared metadata cache's database (the in-process agent keeps it in memory)
RAY_ONLY = (".sbench-metadata",)

MIXED = """
target: "file://{root}/"
duration: 1s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{base_uri: "file://{root}/data/", count: 40, size_spec: 2KiB}}
workload:
  - {{op: get, path: "data/", weight: 40}}
  - {{op: put, path: "out/", object_size: 1KiB, weight: 30}}
  - {{op: stat, path: "data/", weight: 20}}
  - {{op: list, path: "data/", weight: 10}}
"""

TWO_EXECUTE_STAGES = """
target: "file://{root}/"
duration: 1s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 30, size_spec: 1KiB}}
workload:
  - {{op: get, path: "*", weight: 3}}
  - {{op: put, path: "out/", object_size: 1KiB, weight: 1}}
distributed:
  shared_filesystem: true
  agents_per_node: 1
  stages:
    - {{name: preflight, order: 1, type: validation}}
    - {{name: prepare, order: 2, type: prepare}}
    - {{name: warmup, order: 3, type: execute, duration: 1s}}
    - {{name: steady, order: 4, type: execute, duration: 1s}}
    - {{name: cleanup, order: 5, type: cleanup}}
"""

#: an execute stage that Ctrl-C interrupts half-way (the cleanup stage still runs)
ABORTED = """
target: "file://{root}/"
duration: 30s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{base_uri: "file://{root}/data/", count: 20, size_spec: 1KiB}}
workload:
  - {{op: get, path: "data/", weight: 1}}
"""

CASES = {"mixed": (MIXED, 0), "two-execute-stages": (TWO_EXECUTE_STAGES, 0), "aborted": (ABORTED, 1)}


def _interrupt_when_executing(results: Path) -> threading.Thread:
    """SIGINT to this process one second into the execute stage (the driver's handler aborts the run)."""

    def watch() -> None:
        log = results / "console_log.txt"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and "== stage execute (execute) started" in log.read_text():
                time.sleep(1.0)
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def _run(case: str, tmp: Path, on_ray: bool) -> tuple[int, Path]:
    text, _ = CASES[case]
    fleet = "ray" if on_ray else "inprocess"
    root = tmp / f"store-{fleet}"
    root.mkdir()
    path = tmp / f"{case}-{fleet}.yaml"
    path.write_text(text.format(root=root))
    results = tmp / f"results-{fleet}"
    watcher = _interrupt_when_executing(results) if case == "aborted" else None
    code = run(load_config(path), RunOptions(results_dir=results), path, on_ray=on_ray)
    if watcher is not None:
        watcher.join(5)
    return code, results


def _files(results: Path) -> set[str]:
    """Every file, relative, with each agents/<id>/ folder written as agents/*/."""
    out = set()
    for path in results.rglob("*"):
        parts = path.relative_to(results).parts
        if path.is_dir() or parts[0] in RAY_ONLY:
            continue
        if parts[0] == "agents":
            parts = ("agents", "*", *parts[2:])
        out.add("/".join(parts))
    return out


def _header(path: Path) -> list[str]:
    """The column names of a TSV: its first row that is not a comment."""
    with path.open(newline="") as handle:
        return next(r for r in csv.reader(handle, delimiter="\t") if r and not r[0].startswith("#"))


def _perf_sums(path: Path, stages: set[str]) -> dict[str, int]:
    sums = dict.fromkeys(OP_COLUMNS, 0)
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row["stage"].lower() in stages:
                for op, column in OP_COLUMNS.items():
                    sums[op] += int(row[column])
    return sums


def _hlog_counts(path: Path) -> dict[str, int]:
    """Op count per tag over every interval of an HdrHistogram interval log."""
    reader = HistogramLogReader(str(path), HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))
    counts: dict[str, int] = {}
    while (hist := reader.get_next_interval_histogram()) is not None:
        counts[hist.get_tag()] = counts.get(hist.get_tag(), 0) + hist.get_total_count()
    return counts


def _consistency_problems(results: Path) -> list[str]:
    """The counts of one results directory that should be the same number and are not."""
    summary: dict[str, Any] = json.loads((results / "summary.json").read_text())
    problems = stage_tables_agree(results)
    for table in sorted(results.glob("[0-9][0-9]_*_results.tsv")):
        counts, _ = stage_tables(table)
        in_table = {op: counts[f"{op}/ALL"] for op in OP_COLUMNS if counts.get(f"{op}/ALL")}
        hlog = table.with_name(table.name.replace("_results.tsv", ".hlog"))
        in_hlog = _hlog_counts(hlog) if hlog.exists() else {}
        if in_table != in_hlog:
            problems.append(f"{table.name}: table {in_table} != interval log {in_hlog}")
    stage_files = {int(p.name[:2]): p for p in results.glob("[0-9][0-9]_*_results.tsv")}
    for phase, table, types in (
        ("workload", "workload_results.tsv", {"execute", "hybrid"}),
        ("prepare", "prepare_results.tsv", {"prepare"}),
    ):
        stages = [s for s in summary["stages"] if s["type"] in types]
        section = summary.get(phase) or {}
        ops = {op: int(v["ops"]) for op, v in (section.get("operations") or {}).items()}
        rows = all_rows(results / table)
        labels = {s["name"] for s in stages} | {"workload" if phase == "workload" else phase}
        perf = _perf_sums(results / "perf_log.tsv", labels)
        for op in OP_COLUMNS:
            in_stages = sum(stage_tables(stage_files[s["number"]])[0].get(f"{op}/ALL", 0) for s in stages)
            figures = {
                "summary.json": ops.get(op, 0),
                table: rows.get(op, 0),
                "stage tables": in_stages,
                "stage entries": sum(int(s["operations"].get(op, {}).get("ops", 0)) for s in stages),
                "perf_log.tsv": perf[op],
            }
            if len(set(figures.values())) > 1:
                problems.append(f"{results.name} {phase} {op}: {figures}")
    return problems


@pytest.mark.parametrize("case", list(CASES))
def test_both_fleets_write_the_same_results(ray_session: None, tmp_path: Path, case: str) -> None:
    expected_code = CASES[case][1]
    outcomes = {on_ray: _run(case, tmp_path, on_ray) for on_ray in (False, True)}
    for on_ray, (code, results) in outcomes.items():
        console = (results / "console_log.txt").read_text()
        assert code == expected_code, (on_ray, console[-3000:])
        assert _consistency_problems(results) == [], console[-2000:]
    (_, local), (_, ray) = outcomes[False], outcomes[True]
    assert _files(local) == _files(ray)
    for name in sorted(_files(local)):
        if name.endswith(".tsv"):
            agent_name = name.replace("agents/*/", "")
            path_local = next(local.glob(name)) if "*" in name else local / name
            path_ray = next(ray.glob(name)) if "*" in name else ray / name
            assert _header(path_local) == _header(path_ray), agent_name
    statuses = {json.loads((r / "summary.json").read_text())["status"] for _, r in outcomes.values()}
    assert statuses == {"SUCCESS" if expected_code == 0 else "ABORTED"}
    if case == "two-execute-stages":
        for _, results in outcomes.values():
            summary = json.loads((results / "summary.json").read_text())
            executes = [s for s in summary["stages"] if s["type"] == "execute"]
            assert [s["name"] for s in executes] == ["warmup", "steady"]
            both = sum(s["totals"]["ops"] for s in executes)
            assert both > 0 and summary["workload"]["totals"]["ops"] == both  # the phase merges both
