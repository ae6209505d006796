"""null:// with `processes: 2`: two Ray agent processes, each with its own null index, prepare and cleanup in
Ray tasks (other processes again). The prepared pools work anyway, because every null backend of the run
knows what prepare declares (sbench.storage.null); the run must succeed, count consistently, and leave
nothing behind."""

from __future__ import annotations

import json
from pathlib import Path

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.run.launch import run
from tests.cluster.conftest import assert_merged_equals_sum, stage_tables
from tests.faults.checks import counts_agree, read_status

CONFIG = """
target: "null:///ray-null/"
duration: 1s
concurrency: 4
processes: 2
prepare:
  cleanup: true
  ensure_objects:
    - {base_uri: "null:///ray-null/data/", count: 50, size_spec: 4KiB}
workload:
  - {op: get, path: "data/", weight: 40}
  - {op: put, path: "out/", object_size: 1KiB, weight: 20}
  - {op: stat, path: "data/", weight: 20}
  - {op: list, path: "data/", weight: 10}
  - {op: delete, path: "data/", weight: 5}
"""


def test_null_with_two_agent_processes(ray_session: None, tmp_path: Path) -> None:
    path = tmp_path / "null-ray.yaml"
    path.write_text(CONFIG)
    results = tmp_path / "results"
    code = run(load_config(path), RunOptions(results_dir=results), path)  # processes: 2 -> the Ray fleet
    status, text = read_status(results)
    assert (code, status) == (0, "SUCCESS"), text
    assert counts_agree(results, distributed=True) == []
    assert_merged_equals_sum(results)
    checks = json.loads((results / "preflight.json").read_text())["checks"]
    assert any(c["name"] == "config.storage_mode" and "null target" in c["message"] for c in checks)
    assert sum(c["name"] == "null.target" and c["level"] == "success" for c in checks) == 2  # per agent
    summary = json.loads((results / "summary.json").read_text())
    assert summary["left_behind"]["total"] == 0
    (execute,) = [s for s in summary["stages"] if s["type"] == "execute"]
    _, agents = stage_tables(results / f"{execute['number']:02d}_execute_results.tsv")
    assert len(agents) == 2
    for agent in agents:  # each process read, wrote and did META ops of prepared objects it never wrote
        assert min(int(agent[c]) for c in ("get_ops", "put_ops", "meta_ops")) > 0, agent
        assert int(agent["errors"]) == 0, agent
    assert execute["details"]["deleted"] > 0
    assert summary["prepare"]["operations"]["PUT"]["ops"] == 100  # prepared + deletable pools
    # cleanup deleted every prepared object, each in a process that may not be the one that made it
    (cleanup,) = [s for s in summary["stages"] if s["type"] == "cleanup"]
    assert cleanup["operations"]["META"]["ops"] >= 100 and cleanup["errors"]["total"] == 0
