"""The real distributed driver on a 3-node `ray.cluster_utils.Cluster` (one per module).

Placement (one agent per node), full 4-stage runs on file:// and SeaweedFS with merged counts equal to the
per-agent sums in every file, a node removed mid-execute under each barrier type, rate-based stuck
detection, and an aborted driver that leaves nothing of its run alive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from sbench.cluster.actors import create_coordinator
from sbench.cluster.actorset import start_fleet
from sbench.config import load_config_text
from tests import servers
from tests.cluster.conftest import (
    agent_lines,
    assert_merged_equals_sum,
    live_actors_of_run,
    live_placement_groups_of_run,
    perf_log_ops,
    run_driver,
    run_id_of,
    stage_tables,
    status_of,
)
from tests.storage.fixtures_s3 import ready_bucket

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
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["name"] == "execute")
    progress = execute["agents_progress"]
    assert set(progress) == {"agent-1", "agent-2", "agent-3"}
    for fields in progress.values():  # the rich progress fields, real numbers (sai3 left them at 0)
        assert fields["objects_done"] > 0 and fields["phase_elapsed_ms"] > 0 and fields["is_stuck"] is False
        expected = {"objects_total", "objects_remaining", "errors_encountered", "current_throughput"}
        assert expected <= set(fields)
    assert execute["start_skew_ms"] is not None and execute["start_skew_ms"] < 200


def test_four_stage_run_on_file(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    code, results = run_driver(_per_node_config(f"file://{data}/"), tmp_path, "file")
    _check_full_run(code, results)
    # cleanup removed exactly what the run created: prepared objects and this run's PUT objects
    assert [p for p in data.rglob("*") if p.is_file()] == []


@pytest.fixture
def s3_bucket(seaweedfs, monkeypatch) -> str:
    bucket = f"cluster-{uuid.uuid4().hex[:8]}"
    ready_bucket(seaweedfs, bucket)
    # Forwarded to every agent and shard task by the driver (in memory), as a user's shell would be.
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


def _removal_config(target: str, barrier: str) -> str:
    stages = f"""
  stages:
    - {{name: preflight, order: 1, type: validation}}
    - name: execute
      order: 2
      type: execute
      duration: 5s
      barrier: {{type: {barrier}, agent_barrier_timeout: 10}}
    - {{name: after, order: 3, type: custom, command: "true"}}
"""
    return f"""
target: "{target}"
duration: 5s
concurrency: 1
perf_log: {{interval: 0.5}}
workload:
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
distributed:
  agents_per_node: 1
  nodes: all
  shared_filesystem: true
{stages}
"""


def _remove_worker_when_execute_runs(ray_cluster, results: Path, delay_s: float = 1.5) -> threading.Thread:
    def watch() -> None:
        log = results / "console_log.txt"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if log.exists() and "stage execute (execute) started" in log.read_text():
                time.sleep(delay_s)
                ray_cluster.remove_worker()
                return
            time.sleep(0.1)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("barrier", ["majority", "all_or_nothing", "best_effort"])
def test_node_removed_during_execute(ray_cluster, tmp_path: Path, barrier: str) -> None:
    data = tmp_path / "data"
    data.mkdir()
    watcher = _remove_worker_when_execute_runs(ray_cluster, tmp_path / f"{barrier}-results")
    try:
        code, results = run_driver(_removal_config(f"file://{data}/", barrier), tmp_path, barrier)
        watcher.join(5)
        lines = agent_lines(results)
        lost = [a for a, line in lines.items() if line.startswith(("Disconnected", "Failed"))]
        assert len(lost) == 1, lines
        lost_line = lines[lost[0]]
        assert lost_line.startswith(("Disconnected", "Failed")) and "execute" in lost_line, lost_line
        status_text = (results / "STATUS.txt").read_text()
        console = (results / "console_log.txt").read_text()
        if barrier == "all_or_nothing":
            assert code == 1 and status_of(results) == "FAILURE"
            analysis = status_text.split("=== Failure Analysis ===", 1)[1]
            assert "stage 'execute'" in analysis and lost[0] in analysis
            assert "== stage after skipped" in console
            assert not (results / "03_after_results.tsv").exists()
            # the two others were stopped at once, not left running to the end of the stage
            others = [line for a, line in lines.items() if a not in lost]
            assert all(line.startswith("Aborted") and "barrier failed" in line for line in others), lines
        else:
            assert code == 0 and status_of(results) == "SUCCESS", status_text
            assert all(lines[a].startswith("Completed") for a in lines if a not in lost), lines
            # the two others finished execute, and the run went on to the next stage without the third
            _, agents = stage_tables(results / "02_execute_results.tsv")
            assert len(agents) == 3
            assert sum(1 for a in agents if int(a["put_ops"]) > 0) >= 2
            _, after = stage_tables(results / "03_after_results.tsv")
            assert sorted(a["agent_id"] for a in after) == sorted(a for a in lines if a not in lost)
        assert_merged_equals_sum(results)
    finally:
        watcher.join(5)
        ray_cluster.restore()


class _BlackHole:
    """A TCP listener that never answers: an S3 endpoint whose every request hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]

    def close(self) -> None:
        self.sock.close()


def test_agent_with_hanging_backend_is_flagged_stuck(ray_cluster, tmp_path: Path, monkeypatch) -> None:
    hole = _BlackHole()
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "blackhole")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "blackhole-secret")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    data = tmp_path / "data"
    data.mkdir()
    config = f"""
target: "file://{data}/"
duration: 3s
concurrency: 2
perf_log: {{interval: 0.5}}
workload:
  - {{op: put, path: "w/", object_size: 1024, weight: 1}}
distributed:
  shared_filesystem: false
  stuck_intervals: 3
  agents:
    - {{address: "127.0.0.1:7761", id: healthy}}
    - {{address: "127.0.0.1:7762", id: hanging, target_override: "s3://127.0.0.1:{hole.port}/bucket/x/"}}
  stages:
    - {{name: preflight, order: 1, type: validation, optional: true, timeout_secs: 2}}
    - name: execute
      order: 2
      type: execute
      duration: 3s
      timeout_secs: 6
      barrier: {{type: best_effort}}
"""
    try:
        code, results = run_driver(config, tmp_path, "stuck")
    finally:
        hole.close()
    lines = agent_lines(results)
    assert "[STUCK:" in lines["hanging"], lines
    assert "no progress for 3 consecutive intervals" in lines["hanging"]
    assert "[STUCK:" not in lines["healthy"]
    assert "Stuck: 1" in (results / "STATUS.txt").read_text()
    console = (results / "console_log.txt").read_text()
    assert "hanging: stuck: no progress" in console  # shown live, when it was detected
    # best_effort lets the healthy agent carry the stage past its barrier, but a stage that ends with an agent
    # stuck is not a success: the run fails and names the agent
    assert code == 1 and status_of(results) == "FAILURE"
    assert "hanging ended the stage STUCK" in (results / "STATUS.txt").read_text()


def test_sigint_aborts_driver_subprocess_and_leaves_nothing_running(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "abort.yaml"
    cfg.write_text(
        _per_node_config(f"file://{data}/", duration="60s").replace("  cleanup: true\n", "  cleanup: false\n")
    )
    results = tmp_path / "abort-results"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbench", "run", str(cfg), "--results-dir", str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        log = results / "console_log.txt"
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not (
            log.exists() and "stage execute (execute) started" in log.read_text()
        ):
            assert proc.poll() is None, "the driver exited before execute"
            time.sleep(0.1)
        time.sleep(2.0)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=15)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert took < 3.0, f"the driver took {took:.1f}s to end after SIGINT"
    assert code == 1
    assert status_of(results) == "ABORTED"
    counts, agents = stage_tables(results / "03_execute_results.tsv")
    assert counts.get("GET/ALL", 0) > 0 and len(agents) == 3  # partial results of the aborted stage
    assert all(line.startswith("Aborted") for line in agent_lines(results).values())
    run_id = run_id_of(results)
    time.sleep(1.0)  # the GCS records actor deaths asynchronously
    assert live_actors_of_run(run_id) == []
    assert live_placement_groups_of_run(run_id) == []


def test_sbench_agent_id_in_a_nodes_environment_names_its_agent(ray_cluster) -> None:
    extra = ray_cluster.cluster.add_node(num_cpus=1, env_vars={"SBENCH_AGENT_ID": "edge-7"})
    ray_cluster.cluster.wait_for_nodes()
    config = load_config_text(_per_node_config("file:///tmp/unused/")).config
    run_id = uuid.uuid4().hex[:8]
    coordinator = create_coordinator(run_id, 1.0, 10)
    fleet = None
    try:
        fleet = start_fleet(config, run_id, coordinator, interval_s=1.0)
        by_node = {a.node_id: a.agent_id for a in fleet.agents}
        assert len(fleet.agents) == 4
        assert by_node[extra.node_id] == "edge-7"
        others = [a for n, a in by_node.items() if n != extra.node_id]
        assert len(set(others)) == 3 and all(a.startswith("agent-") for a in others)
    finally:
        if fleet is not None:
            fleet.shutdown()
        ray.kill(coordinator)
        ray_cluster.cluster.remove_node(extra)


def test_second_sigint_exits_at_once(ray_cluster, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    cfg = tmp_path / "twice.yaml"
    cfg.write_text(_per_node_config(f"file://{data}/", duration="60s"))
    results = tmp_path / "twice-results"
    env = {**os.environ, "RAY_ADDRESS": ray_cluster.address}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbench", "run", str(cfg), "--results-dir", str(results)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        cwd=Path(__file__).resolve().parents[2],
    )
    try:
        log = results / "console_log.txt"
        deadline = time.monotonic() + 90
        while not (log.exists() and "stage execute (execute) started" in log.read_text()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=10)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 130 and took < 1.5, (code, took)
    run_id = run_id_of(results)
    deadline = time.monotonic() + 10  # killed actors and a dead owner: the GCS catches up within seconds
    while live_actors_of_run(run_id) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert live_actors_of_run(run_id) == []
    assert live_placement_groups_of_run(run_id) == []


def test_placement_that_the_cluster_cannot_hold_fails_clearly(ray_cluster) -> None:
    from sbench.cluster.placement import plan_placement
    from sbench.errors import RunFailed

    unknown = load_config_text(
        _per_node_config("file:///tmp/unused/").replace("nodes: all", "nodes: ['10.9.9.9']")
    ).config
    with pytest.raises(RunFailed, match="no alive Ray node has that address"):
        plan_placement(unknown, 5.0)
    # A node without any CPU cannot take a bundle: STRICT_SPREAD over every node cannot be placed.
    cpuless = ray_cluster.cluster.add_node(num_cpus=0)
    ray_cluster.cluster.wait_for_nodes()
    try:
        config = load_config_text(
            _per_node_config("file:///tmp/unused/").replace(
                "agent_ready_timeout: 60", "agent_ready_timeout: 2"
            )
        ).config
        t0 = time.monotonic()
        with pytest.raises(RunFailed, match=r"could not place one bundle on each of the 4 alive Ray nodes"):
            plan_placement(config, config.distributed.agent_ready_timeout, "toosmall")
        assert time.monotonic() - t0 < 10
        assert live_placement_groups_of_run("toosmall") == []  # the pending group was removed
    finally:
        ray_cluster.cluster.remove_node(cpuless)


def test_distributed_replay_splits_by_key_and_keeps_each_keys_order(ray_cluster, tmp_path: Path) -> None:
    """`sbench replay` on the 3-node cluster with its fleet from a run's `distributed` block (one agent per
    node, one with its own id and max_concurrent): every op replayed once, each key's PUT, HEAD, GET,
    DELETE in their logged order (a reordered key would fail its GET or DELETE), one merged op-log of the
    replay's own calls, the start skew reported."""
    from sbench.cli import main
    from sbench.oplog.reader import read_rows as rows_of
    from tests.replay.logs import write_log

    keys = 40
    rows = [(k * 0.02 + step * 0.3, op, f"bench/k{k}", 512 if op in ("PUT", "GET") else 0)
            for k in range(keys) for step, op in enumerate(("PUT", "HEAD", "GET", "DELETE"))]
    log = write_log(tmp_path / "log.tsv.zst", sorted(rows))
    results = tmp_path / "replayed"
    config = tmp_path / "replay.yaml"
    config.write_text("max_concurrent: 4\ndistributed:\n  agents_per_node: 1\n  nodes: all\n"
                      "  agent_ready_timeout: 60\n  agents:\n    - {address: localhost, id: edge, "
                      "concurrency_override: 2}\n")
    code = main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/", "--config", str(config),
                 "--results-dir", str(results), "--capture", "own.tsv.zst"])
    summary = json.loads((results / "summary.json").read_text())
    assert code == 0, summary["reason"]
    figures = summary["load_model"]
    assert figures["ops_succeeded"] == len(rows) == summary["workload"]["operations"]["PUT"]["ops"] * 4
    own = list(rows_of(results / "own.tsv.zst"))
    assert len(own) == len(rows) and not any(r.error for r in own)
    assert {r.client_id for r in own} == {"edge", "agent-2", "agent-3", "agent-4"}
    workers = {a: p["workers"] for a, p in figures["agents"].items()}
    assert workers == {"edge": 2, "agent-2": 4, "agent-3": 4, "agent-4": 4}
    for k in range(keys):
        mine = [r.op for r in own if r.file.endswith(f"/k{k}")]
        assert mine == ["PUT", "HEAD", "GET", "DELETE"], (k, mine)
        assert len({r.client_id for r in own if r.file.endswith(f"/k{k}")}) == 1
    assert figures["start_skew_ms"] is not None and summary["stages"][0]["start_skew_ms"] is not None
    nodes = figures["nodes"]
    assert len({nodes[a] for a in ("agent-2", "agent-3", "agent-4")}) == 3  # one agent per node
