"""A 3-node `ray.cluster_utils.Cluster` shared by a test module, and helpers to run the real driver on it.

The session's single-node Ray (`ray_session`) and a multi-node cluster cannot both be connected in one
process, so the fixture disconnects the session instance for the module and restores it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests import servers

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
            ray.init(
                address="local",
                num_cpus=2,
                include_dashboard=False,
                ignore_reinit_error=True,
                log_to_driver=False,
            )


def run_driver(config_text: str, tmp: Path, name: str = "run", **flags: Any) -> tuple[int, Path]:
    """Write the config, run the real distributed driver in this process, return (exit code, results).
    `flags` are RunOptions fields (prepare_only=True, verify=True, ...)."""
    from sbench.config import load_config
    from sbench.config.runoptions import RunOptions
    from sbench.run.launch import run

    path = tmp / f"{name}.yaml"
    path.write_text(config_text)
    results = tmp / f"{name}-results"
    code = run(load_config(path), RunOptions(results_dir=results, **flags), path, on_ray=True)
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


def perf_log_ops(path: Path, stage: str | None = None) -> dict[str, int]:
    """GET/PUT/META op sums over the rows of a perf_log.tsv (only those of `stage` when given)."""
    lines = path.read_text().splitlines()
    header = lines[0].split("\t")
    out = dict.fromkeys(("get_ops", "put_ops", "meta_ops"), 0)
    for line in lines[1:]:
        cells = line.split("\t")
        if stage is not None and cells[header.index("stage")] != stage:
            continue
        for col in out:
            out[col] += int(cells[header.index(col)])
    return out


def results_tsv_all(path: Path) -> dict[str, int]:
    """`count` of the GET/PUT/META `ALL` rows of a workload_results.tsv-style table (absent: 0)."""
    lines = [line.split("\t") for line in path.read_text().splitlines() if line and not line.startswith("#")]
    header, rows = lines[0], lines[1:]
    out = {"GET": 0, "PUT": 0, "META": 0}
    for row in rows:
        if row[1] == "ALL" and row[0] in out:
            out[row[0]] = int(row[header.index("count")])
    return out


COLUMNS = {"GET": "get_ops", "PUT": "put_ops", "META": "meta_ops"}


def assert_files_agree(results: Path, stage: str, section: str, table: str) -> None:
    """perf_log.tsv rows of `stage` == summary.json `section` == `table` ALL rows, per op class; and the same
    per agent (agents/<id>/perf_log.tsv against agents/<id>/<results table>)."""
    summary = json.loads((results / "summary.json").read_text())
    ops = (summary.get(section) or {}).get("operations", {})
    perf = perf_log_ops(results / "perf_log.tsv", stage)
    rows = results_tsv_all(results / table)
    for op, column in COLUMNS.items():
        in_summary = ops.get(op, {}).get("ops", 0)
        assert perf[column] == in_summary == rows[op], (op, perf[column], in_summary, rows[op])
    agent_table = "results.tsv" if section == "workload" else "prepare_results.tsv"
    for agent_dir in sorted((results / "agents").iterdir()):
        perf = perf_log_ops(agent_dir / "perf_log.tsv", stage)
        rows = results_tsv_all(agent_dir / agent_table)
        assert all(perf[c] == rows[op] for op, c in COLUMNS.items()), (agent_dir.name, perf, rows)


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


VENV_BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class HeadNode:
    """A `ray start --head --block` node: its dashboard URL (jobs API), GCS address and CLI environment."""

    url: str
    gcs: str
    env: dict[str, str]
    temp_dir: Path | None


@contextlib.contextmanager
def ray_head_node(
    log_dir: Path,
    *,
    temp_dir: Path | None = None,
    env: dict[str, str] | None = None,
    venv_on_path: bool = True,
) -> Iterator[HeadNode]:
    """`ray start --head` in the namespace, every port explicit (the session's own Ray instance already
    holds the defaults, the dashboard agent's 52365 in particular, without which no job can be submitted).
    With `temp_dir` its sessions and its `ray_current_cluster` file go there, not to the shared /tmp/ray.

    Stopped by signalling its process group, not with `ray stop`, which kills every Ray process of the
    machine, other test sessions' instances included. `venv_on_path=False` keeps `env`'s PATH as it is (a
    head started from a shell without the virtual environment, as a user's would be)."""
    ray_bin = VENV_BIN / "ray"
    if not ray_bin.exists():
        pytest.skip("the `ray` CLI is not installed next to this Python")
    env = {
        **(os.environ if env is None else env),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }
    if venv_on_path:
        env["PATH"] = f"{VENV_BIN}:{os.environ.get('PATH', '')}"
    log_path = log_dir / "ray-head.log"
    log = log_path.open("wb")
    for attempt in range(1, HEAD_START_ATTEMPTS + 1):
        port, dashboard = servers.free_port(), servers.free_port()
        log_start = log_path.stat().st_size
        proc = subprocess.Popen(
            _head_command(ray_bin, port, dashboard, temp_dir),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{dashboard}"
        try:
            if _wait_for_dashboard(proc, url):
                break
        except BaseException:
            _stop_head(proc)
            raise
        said = log_path.read_bytes()[log_start:].decode(errors="replace")
        assert PORT_CLASH in said and attempt < HEAD_START_ATTEMPTS, said[-3000:]
    try:
        yield HeadNode(url, f"127.0.0.1:{port}", env, temp_dir)
    finally:
        _stop_head(proc)
        log.close()
        default_file = Path("/tmp/ray/ray_current_cluster")
        if default_file.exists() and default_file.read_text().strip() == f"127.0.0.1:{port}":
            default_file.unlink()  # ours, and now stale: later drivers must not try to join it


HEAD_START_ATTEMPTS = 3
PORT_CLASH = "that is used by other components"
"""Ray picks some of its own ports at random after we chose ours, so one of its components can take a port we
reserved before it is bound; `ray start` then refuses at once, and a fresh set of ports works."""


def _head_command(ray_bin: Path, port: int, dashboard: int, temp_dir: Path | None) -> list[str]:
    client, agent_http, agent_grpc, runtime_env, metrics = (servers.free_port() for _ in range(5))
    cmd = [
        str(ray_bin),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        f"--ray-client-server-port={client}",
        f"--dashboard-agent-listen-port={agent_http}",
        f"--dashboard-agent-grpc-port={agent_grpc}",
        f"--runtime-env-agent-port={runtime_env}",
        f"--metrics-export-port={metrics}",
        "--num-cpus=2",
        "--disable-usage-stats",
    ]
    if temp_dir is not None:
        cmd.append(f"--temp-dir={temp_dir}")
    return cmd


def _stop_head(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGINT)  # `ray start --block` stops its processes on Ctrl-C
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def _wait_for_dashboard(proc: subprocess.Popen, url: str) -> bool:
    """True once the head's dashboard answers; False if `ray start` exited first (the caller reads why)."""
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            return False
        try:
            urllib.request.urlopen(f"{url}/api/version", timeout=1).close()
            return True
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def submit_job(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`ray job submit`, retried while the head's job agent is still starting (it answers 500 until then)."""
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if "No available agent to submit job" not in done.stdout + done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(1.0)
