"""`sbench autotune` against SeaweedFS (through the fault proxy): a 3 x 3 sweep with 2 trials that leaves
nothing behind, and a point whose PUTs are throttled, stopped early by its error budget and reported."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from sbench.cli import main
from tests.faults.conftest import S3Target
from tests.faults.proxy import Fault, FaultProxy, rule


def _config(tmp_path: Path, target: S3Target, body: str) -> Path:
    path = tmp_path / "tune.yaml"
    path.write_text(
        f"""
target: "{target.uri}"
workload:
  - {{op: get, path: "*", weight: 1}}
error_handling: {{max_retries: 1, max_retry_delay_ms: 100}}
autotune:
  uri: "{target.uri}obj*.dat"
{body}
"""
    )
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_a_3x3_put_sweep_with_2_trials_on_seaweedfs(
    s3_target: S3Target, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3_target.env().items():
        monkeypatch.setenv(name, value)
    body = '  sizes: "1KiB,16KiB,256KiB"\n  threads: "1,2,4"\n  trials: 2\n  ops: put\n  duration: 0.2s\n'
    out = tmp_path / "out"
    assert main(["autotune", str(_config(tmp_path, s3_target, body)), "--results-dir", str(out)]) == 0
    trials = _rows(out / "autotune.tsv")
    assert len(trials) == 18 and {r["op"] for r in trials} == {"PUT"}
    assert {r["status"] for r in trials} == {"success"} and all(int(r["ops"]) > 0 for r in trials)
    assert len(_rows(out / "autotune_summary.tsv")) == 9 and len(_rows(out / "autotune_best.tsv")) == 3
    assert (out / "autotune.html").stat().st_size > 0
    assert s3_target.count() == 0  # every run deleted what it wrote


def test_a_throttled_point_stops_early_and_fails_the_sweep(
    s3_target: S3Target,
    proxy: FaultProxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for name, value in s3_target.env().items():
        monkeypatch.setenv(name, value)
    proxy.set_rules(rule(Fault.SLOWDOWN, methods=["PUT"], path="/puts/"))  # the measured PUTs only
    body = "  sizes: 4KiB\n  threads: 2\n  objects: 20\n  max_error_rate: 0.1\n  ops: put\n  duration: 20s\n"
    out = tmp_path / "out"
    assert main(["autotune", str(_config(tmp_path, s3_target, body)), "--results-dir", str(out)]) == 1
    (row,) = _rows(out / "autotune.tsv")
    assert row["status"] == "failure" and "error" in row["reason"].lower(), row
    summary = json.loads((out / row["results_dir"] / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    assert execute["wall_seconds"] < 10  # the 2-error budget ended it long before its 20 s
    assert execute["totals"]["errors"] <= 2 + 2  # the budget, plus what the 2 threads had in flight
    assert "FAILED 4.00 KiB x 2 threads" in capsys.readouterr().out
    assert _rows(out / "autotune_best.tsv") == []
    proxy.set_rules()
    assert s3_target.count() == 0
