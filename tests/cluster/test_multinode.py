"""The real distributed driver on a 3-node `ray.cluster_utils.Cluster` (one per module).

Placement (one agent per node), full 4-stage runs on file:// and SeaweedFS with merged counts equal to the
per-agent sums in every file, a node removed mid-execute under each barrier type, rate-based stuck
detection, and an aborted driver that leaves nothing of its run alive.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sbench.cluster.actors import create_coordinator
from sbench.cluster.fleet import start_fleet
from sbench.config import load_config_text
from tests import servers
from tests.cluster.conftest import (
    agent_lines,
    assert_merged_equals_sum,
    live_placement_groups_of_run,
    perf_log_ops,
    run_driver,
    stage_tables,
    status_of,
)

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]


def _per_node_config(target: str, *, duration: str = "2s", extra: str = "", stages: str = "") -> str:
    return f"""
target: "{target}"
duration: {duration}
concurrency: 2
perf_log: {{interval: 0.5}}
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 60, size_spec: 4096, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 60}}
  - {{op: stat, path: "*", weight: 20}}
  - {{op: put, path: "puts/", object_size: 2048, weight: 20}}
distributed:
  agents_per_node: 1
  nodes: all
  shared_filesystem: true
  agent_ready_timeout: 60
{extra}
{stages}
"""


def test_agents_per_node_places_exactly_one_agent_per_node(ray_cluster) -> None:
    config = load_config_text(_per_node_config("file:///tmp/unused/")).config
    run_id = uuid.uuid4().hex[:8]
    coordinator = create_coordinator(run_id, 1.0, 10)
    fleet = start_fleet(config, run_id, coordinator, interval_s=1.0)
    try:
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 3
        assert len(fleet.agents) == 3
        assert {a.node_id for a in fleet.agents} == nodes  # one agent on every node
        assert [a.agent_id for a in fleet.agents] == ["agent-1", "agent-2", "agent-3"]
        assert [a.index for a in fleet.agents] == [0, 1, 2]
        assert live_placement_groups_of_run(run_id)
    finally:
        fleet.shutdown()
        ray.kill(coordinator)
    assert live_placement_groups_of_run(run_id) == []


def _check_full_run(code: int, results: Path) -> None:
    assert code == 0, (results / "console_log.txt").read_text()[-3000:]
    assert status_of(results) == "SUCCESS"
    names = sorted(p.name for p in results.glob("[0-9][0-9]_*_results.tsv"))
    assert names == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_execute_results.tsv",
        "04_cleanup_results.tsv",
    ]
    assert_merged_equals_sum(results)
    counts, agents = stage_tables(results / "02_prepare_results.tsv")
    assert counts["PUT/ALL"] == 60 and len(agents) == 3
    assert all(int(a["put_ops"]) > 0 for a in agents)  # the prepare shards were spread over the agents
    counts, agents = stage_tables(results / "03_execute_results.tsv")
    assert all(int(a["get_ops"]) > 0 for a in agents)
    # perf logs: the merged rows add up to the per-agent rows, and the execute rows to the stage totals
    merged = perf_log_ops(results / "perf_log.tsv")
    per_agent = [
        perf_log_ops(results / "agents" / a / "perf_log.tsv") for a in ("agent-1", "agent-2", "agent-3")
    ]
    for col in merged:
        assert merged[col] == sum(p[col] for p in per_agent), col
    workload, _ = stage_tables(results / "03_execute_results.tsv")
    legacy = (results / "workload_results.tsv").read_text().splitlines()
    get_all = next(line for line in legacy if line.startswith("GET\tALL"))
    assert int(get_all.split("\t")[12]) == workload["GET/ALL"]
    lines = agent_lines(results)
    assert set(lines) == {"agent-1", "agent-2", "agent-3"}
    assert all(v.startswith("Completed") for v in lines.values())


def test_four_stage_run_on_file(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    code, results = run_driver(_per_node_config(f"file://{data}/"), tmp_path, "file")
    _check_full_run(code, results)
    # cleanup removed exactly what the run created: prepared objects and this run's PUT objects
    assert [p for p in data.rglob("*") if p.is_file()] == []


@pytest.fixture
def s3_bucket(seaweedfs, monkeypatch) -> str:
    import boto3

    bucket = f"cluster-{uuid.uuid4().hex[:8]}"
    boto3.client(
        "s3",
        endpoint_url=seaweedfs.endpoint,
        region_name="us-east-1",
        aws_access_key_id=servers.S3_ACCESS_KEY,
        aws_secret_access_key=servers.S3_SECRET_KEY,
    ).create_bucket(Bucket=bucket)
    # Forwarded to every agent and shard task by the driver (runtime_env), as a user's shell would be.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", servers.S3_SECRET_KEY)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    return bucket


def test_four_stage_run_on_seaweedfs(ray_cluster, seaweedfs, s3_bucket, tmp_path: Path) -> None:
    target = f"s3://127.0.0.1:{seaweedfs.port}/{s3_bucket}/run/"
    code, results = run_driver(_per_node_config(target), tmp_path, "s3")
    _check_full_run(code, results)
    metadata = (results / "metadata.json").read_text()
    assert "AWS_SECRET_ACCESS_KEY" in metadata  # the name is recorded...
    assert servers.S3_SECRET_KEY not in metadata  # ...never the value
    assert servers.S3_SECRET_KEY not in (results / "console_log.txt").read_text()
