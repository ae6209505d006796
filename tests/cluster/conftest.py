"""A 3-node `ray.cluster_utils.Cluster` shared by a test module, and helpers to run the real driver on it.

The session's single-node Ray (`ray_session`) and a multi-node cluster cannot both be connected in one
process, so the fixture disconnects the session instance for the module and restores it afterwards.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

NODE_ARGS = {"num_cpus": 1, "object_store_memory": 80 * 1024 * 1024}


class ClusterHandle:
    """The running cluster plus what tests need to disturb it (remove and re-add worker nodes)."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.workers = list(cluster.worker_nodes)

    @property
    def address(self) -> str:
        return self.cluster.address

    def remove_worker(self) -> Any:
        node = self.workers.pop()
        self.cluster.remove_node(node)
        return node

    def restore(self, count: int = 2) -> None:
        """Bring the worker count back (after a removal) so the next test starts with 3 nodes."""
        while len(self.workers) < count:
            self.workers.append(self.cluster.add_node(**NODE_ARGS))
        self.cluster.wait_for_nodes()


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[ClusterHandle]:
    from ray.cluster_utils import Cluster

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    was_connected = ray.is_initialized()
    if was_connected:
        ray.shutdown()
    cluster = Cluster(
        initialize_head=True, head_node_args={**NODE_ARGS, "num_cpus": 2, "include_dashboard": False}
    )
    for _ in range(2):
        cluster.add_node(**NODE_ARGS)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        yield ClusterHandle(cluster)
    finally:
        ray.shutdown()
        cluster.shutdown()
        if was_connected:  # give the rest of the session its single-node instance back
            ray.init(num_cpus=2, include_dashboard=False, ignore_reinit_error=True, log_to_driver=False)


def run_driver(config_text: str, tmp: Path, name: str = "run", **flags: Any) -> tuple[int, Path]:
    """Write the config, run the real distributed driver in this process, return (exit code, results).
    `flags` are RunOptions fields (prepare_only=True, verify=True, ...)."""
    from sbench.cluster.driver import run_distributed
    from sbench.commands.run import RunOptions
    from sbench.config import load_config

    path = tmp / f"{name}.yaml"
    path.write_text(config_text)
    results = tmp / f"{name}-results"
    code = run_distributed(load_config(path), RunOptions(results_dir=results, **flags), path)
    return code, results


def status_of(results: Path) -> str:
    return (results / "STATUS.txt").read_text().splitlines()[0].split(":", 1)[1].strip()


def agent_lines(results: Path) -> dict[str, str]:
    """STATUS.txt `=== Agent Details ===` lines by agent id."""
    text = (results / "STATUS.txt").read_text()
    details = text.split("=== Agent Details ===", 1)[1].split("\n\n", 1)[0]
    out = {}
    for line in details.strip().splitlines():
        agent, rest = line.split(":", 1)
        out[agent.strip()] = rest.strip()
    return out


def stage_tables(path: Path) -> tuple[dict[str, int], list[dict[str, str]]]:
    """(count per `op/bucket` row of the results table, per-agent rows) of an NN_<stage>_results.tsv."""
    text = path.read_text()
    table, agents = text.split("# Per-Agent Details", 1)
    rows = [line.split("\t") for line in table.splitlines() if line and not line.startswith("#")]
    header, body = rows[0], rows[1:]
    counts = {f"{r[0]}/{r[1]}": int(r[header.index("count")]) for r in body}
    agent_rows = [line.split("\t") for line in agents.strip().splitlines()]
    agent_header = agent_rows[0]
    return counts, [dict(zip(agent_header, r, strict=True)) for r in agent_rows[1:]]


def assert_merged_equals_sum(results: Path) -> None:
    """In every stage file the merged GET/PUT/META counts equal the sum of the per-agent rows."""
    files = sorted(results.glob("[0-9][0-9]_*_results.tsv"))
    assert files
    for path in files:
        counts, agents = stage_tables(path)
        for op, column in (("GET", "get_ops"), ("PUT", "put_ops"), ("META", "meta_ops")):
            assert counts.get(f"{op}/ALL", 0) == sum(int(a[column]) for a in agents), (path.name, op)


def perf_log_ops(path: Path) -> dict[str, int]:
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    out = dict.fromkeys(("get_ops", "put_ops", "meta_ops"), 0)
    for line in lines[1:]:
        cells = line.split("\t")
        for col in out:
            out[col] += int(cells[header.index(col)])
    return out


def run_id_of(results: Path) -> str:
    import json

    return json.loads((results / "metadata.json").read_text())["run_id"]


def live_actors_of_run(run_id: str) -> list[str]:
    """Names of the run's actors that are not DEAD (GCS actor table, no dashboard needed)."""
    from ray._private import state

    table = state.actors()
    return [
        info.get("Name", "")
        for info in table.values()
        if run_id in (info.get("Name") or "") and info.get("State") != "DEAD"
    ]


def live_placement_groups_of_run(run_id: str) -> list[str]:
    table = ray.util.placement_group_table()
    return [
        pg.get("name", "")
        for pg in table.values()
        if run_id in (pg.get("name") or "") and pg.get("state") != "REMOVED"
    ]


def rewrite(text: str, mapping: dict[str, str]) -> str:
    for old, new in mapping.items():
        text = re.sub(old, new, text)
    return text
