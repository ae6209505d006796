"""`perf_log.path` (sai3's key, which sai3-bench ignored): the finished perf_log.tsv is also put there, and a
place that cannot take it makes the results incomplete like any other results file (exit 1, STATUS says
which file)."""

from __future__ import annotations

from pathlib import Path

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.run.launch import run


def _run(tmp_path: Path, perf_path: Path) -> tuple[int, Path]:
    (tmp_path / "data").mkdir(exist_ok=True)
    config = tmp_path / "perf.yaml"
    config.write_text(
        f"""
target: "file://{tmp_path / "data"}/"
duration: 1s
concurrency: 1
perf_log: {{interval: 200ms, path: "{perf_path}"}}
workload:
  - {{op: put, path: "w/", size_spec: 1024, weight: 1}}
"""
    )
    results = tmp_path / "results"
    return run(load_config(config), RunOptions(results_dir=results), config, on_ray=False), results


def test_the_finished_perf_log_is_also_put_at_perf_log_path(tmp_path: Path) -> None:
    copy = tmp_path / "elsewhere" / "deeper" / "perf.tsv"
    code, results = _run(tmp_path, copy)
    assert code == 0, (results / "STATUS.txt").read_text()
    assert copy.read_bytes() == (results / "perf_log.tsv").read_bytes()
    assert len(copy.read_text().splitlines()) > 2  # the header and the run's intervals


def test_an_unwritable_perf_log_path_makes_the_results_incomplete(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")
    code, results = _run(tmp_path, tmp_path / "a-file" / "perf.tsv")
    assert code == 1
    status = (results / "STATUS.txt").read_text()
    assert str(tmp_path / "a-file" / "perf.tsv") in status, status
