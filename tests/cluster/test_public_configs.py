"""The public sai3-bench distributed configs run on the Ray driver and produce the stage files.

Paths under /tmp/sai3-* and /mnt/scratch are rewritten to a temp dir and durations shortened to 3 s.
`local_test_2agents.yaml` prepares 320 lognormal files of 1-4 MiB (about 1 GB); its sizes are scaled down
64x so the suite stays fast on two shared cores — the tree, counts and distribution shape are unchanged.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cluster.conftest import (
    agent_lines,
    assert_merged_equals_sum,
    rewrite,
    run_driver,
    stage_tables,
    status_of,
)

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _run(shared_configs: Path, name: str, tmp: Path, mapping: dict[str, str]) -> Path:
    text = rewrite((shared_configs / name).read_text(), mapping)
    code, results = run_driver(text, tmp, Path(name).stem)
    assert code == 0, (results / "console_log.txt").read_text()[-3000:]
    assert status_of(results) == "SUCCESS"
    assert_merged_equals_sum(results)
    return results


def _stage_files(results: Path) -> list[str]:
    return sorted(p.name for p in results.glob("[0-9][0-9]_*_results.tsv"))


def test_distributed_full_lifecycle(ray_session, shared_configs: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    results = _run(
        shared_configs,
        "test_distributed_full_lifecycle.yaml",
        tmp_path,
        {"/tmp/sai3-test-full-lifecycle/": f"{data}/"},
    )
    assert _stage_files(results) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_execute_results.tsv",
        "04_cleanup_results.tsv",
    ]
    counts, agents = stage_tables(results / "02_prepare_results.tsv")
    assert counts["PUT/ALL"] == 30 and [a["agent_id"] for a in agents] == ["agent-1", "agent-2"]
    counts, _ = stage_tables(results / "04_cleanup_results.tsv")
    assert counts["META/ALL"] == 30  # exactly what prepare created
    assert list(data.iterdir()) == []
    for agent in ("agent-1", "agent-2"):
        assert (results / "agents" / agent / "perf_log.tsv").is_file()
        assert (results / "agents" / agent / "results.tsv").is_file()
    assert (results / "workload_results.tsv").is_file() and (results / "prepare_results.tsv").is_file()


def test_local_test_2agents_tree(ray_session, shared_configs: Path, tmp_path: Path) -> None:
    data = tmp_path / "tree"
    data.mkdir()
    results = _run(
        shared_configs,
        "local_test_2agents.yaml",
        tmp_path,
        {
            "/tmp/sai3-test/": f"{data}/",
            r'duration: "30s"': 'duration: "3s"',
            r"mean: 3145728": "mean: 49152",
            r"std_dev: 1048576": "std_dev: 16384",
            r"min: 1048576": "min: 16384",
            r"max: 4194304": "max: 65536",
        },
    )
    assert _stage_files(results) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_execute_results.tsv",
    ]
    counts, _ = stage_tables(results / "02_prepare_results.tsv")
    assert counts["PUT/ALL"] == 320  # 16 leaf directories x 20 files
    assert set(agent_lines(results)) == {"test-agent-1", "test-agent-2"}  # ids honoured (sai3 ignored them)
    counts, agents = stage_tables(results / "03_execute_results.tsv")
    assert counts["GET/ALL"] > 0 and all(int(a["get_ops"]) > 0 for a in agents)
    assert len(list(data.rglob("file_*.dat"))) == 320  # cleanup: false keeps them


def test_barriers_local_isolated(ray_session, shared_configs: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    for agent in ("agent1-test", "agent2-test"):
        (scratch / agent).mkdir(parents=True)
    results = _run(
        shared_configs,
        "test_barriers_local.yaml",
        tmp_path,
        {"/mnt/scratch/": f"{scratch}/", r"duration: 10s": "duration: 3s"},
    )
    assert _stage_files(results) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_execute_results.tsv",
        "04_cleanup_results.tsv",
    ]
    counts, agents = stage_tables(results / "02_prepare_results.tsv")
    assert counts["PUT/ALL"] == 200  # 100 objects in each agent's own target (isolated)
    assert {a["agent_id"]: int(a["put_ops"]) for a in agents} == {"agent-1": 100, "agent-2": 100}
    text = (results / "03_execute_results.tsv").read_text()
    assert "majority" in (results / "summary.json").read_text()  # the execute stage used its own barrier
    assert text.startswith("# Stage 3 Results: execute (execute)")
    endpoints = (results / "03_execute_endpoint_stats.tsv").read_text().splitlines()
    assert len(endpoints) == 3 and "agent1-test" in endpoints[1] and "agent2-test" in endpoints[2]
    for agent in ("agent1-test", "agent2-test"):
        assert list((scratch / agent).iterdir()) == []  # cleanup deleted each agent's own objects
