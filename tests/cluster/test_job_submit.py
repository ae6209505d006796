"""`ray start --head` in the namespace, then `ray job submit ... -- python -m sbench run X.yaml` runs a 5 s
workload to SUCCESS (the way a user drives a real cluster), and `ray job stop` aborts a running job with
partial results and STATUS ABORTED.

The head is started with `--block` and stopped by signalling that process group, not with `ray stop`:
`ray stop` kills every Ray process of the machine, including other test sessions' instances.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest

from tests import servers
from tests.cluster.conftest import agent_lines, status_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
RAY_CLUSTER_FILE = Path("/tmp/ray/ray_current_cluster")


def _submit(cmd: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    """`ray job submit`, retried while the head's job agent is still starting (it answers 500 until then)."""
    deadline = time.monotonic() + 60
    while True:
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
        if "No available agent to submit job" not in done.stdout + done.stderr or time.monotonic() > deadline:
            return done
        time.sleep(1.0)


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ray-head")
    ray_bin = VENV_BIN / "ray"
    if not ray_bin.exists():
        pytest.skip("the `ray` CLI is not installed next to this Python")
    # Every port explicit: the session's own Ray instance in this namespace already holds the defaults
    # (the dashboard agent's 52365 in particular, without which no job can be submitted).
    port, dashboard, client, agent_http, agent_grpc, runtime_env, metrics = (
        servers.free_port() for _ in range(7)
    )
    env = {
        **os.environ,
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
        "PATH": f"{VENV_BIN}:{os.environ.get('PATH', '')}",
    }
    log = (tmp_path / "ray-head.log").open("wb")
    proc = subprocess.Popen(
        [
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
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{dashboard}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (tmp_path / "ray-head.log").read_text()[-3000:]
            try:
                urllib.request.urlopen(f"{url}/api/version", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        yield url, env, f"127.0.0.1:{port}"
    finally:
        os.killpg(proc.pid, signal.SIGINT)  # `ray start --block` stops its processes on Ctrl-C
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        log.close()
        if RAY_CLUSTER_FILE.exists() and RAY_CLUSTER_FILE.read_text().strip() == f"127.0.0.1:{port}":
            RAY_CLUSTER_FILE.unlink()  # ours, and now stale: later drivers must not try to join it


def test_ray_job_submit_runs_a_workload_to_success(ray_head, tmp_path: Path) -> None:
    url, env, _gcs = ray_head
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    results = tmp_path / "results"
    (job_dir / "job.yaml").write_text(
        f"""
target: "file://{data}/"
duration: 5s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 50, size_spec: 4096, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 80}}
  - {{op: stat, path: "*", weight: 20}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: job-agent-1}}
    - {{address: "localhost:7762", id: job-agent-2}}
"""
    )
    cmd = [
        str(VENV_BIN / "ray"),
        "job",
        "submit",
        "--address",
        url,
        "--working-dir",
        str(job_dir),
        "--",
        "python",
        "-m",
        "sbench",
        "run",
        "job.yaml",
        "--results-dir",
        str(results),
    ]
    done = _submit(cmd, env, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    assert status_of(results) == "SUCCESS"
    assert set(agent_lines(results)) == {"job-agent-1", "job-agent-2"}
    assert sorted(p.name for p in results.glob("[0-9][0-9]_*_results.tsv")) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_execute_results.tsv",
        "04_cleanup_results.tsv",
    ]
    console = (results / "console_log.txt").read_text()
    assert "Ray: cluster at" in console  # the job's driver joined the running cluster


def test_ray_job_stop_aborts_the_run_with_partial_results(ray_head, tmp_path: Path) -> None:
    url, env, _gcs = ray_head
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    data = tmp_path / "data"
    data.mkdir()
    for i in range(100):
        (data / f"f{i:03d}").write_bytes(b"z" * 1024)
    results = tmp_path / "results"
    (job_dir / "long.yaml").write_text(
        f"""
target: "file://{data}/"
duration: 120s
concurrency: 2
workload:
  - {{op: stat, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: long-1}}
"""
    )
    job_id = f"sbench-stop-{uuid.uuid4().hex[:8]}"
    ray_cli = str(VENV_BIN / "ray")
    submit = [ray_cli, "job", "submit", "--address", url, "--submission-id", job_id, "--no-wait"]
    submit += ["--working-dir", str(job_dir), "--", "python", "-m", "sbench", "run", "long.yaml"]
    submit += ["--results-dir", str(results)]
    done = _submit(submit, env, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    log = results / "console_log.txt"
    deadline = time.monotonic() + 90
    while not (log.exists() and "stage execute (execute) started" in log.read_text()):
        assert time.monotonic() < deadline, "the job never reached its execute stage"
        time.sleep(0.2)
    time.sleep(2.0)
    t0 = time.monotonic()
    stop = subprocess.run(
        [ray_cli, "job", "stop", "--address", url, job_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - t0
    assert stop.returncode == 0, stop.stdout[-2000:] + stop.stderr[-2000:]
    assert status_of(results) == "ABORTED"
    assert "SIGTERM" in (results / "STATUS.txt").read_text()
    text = (results / "02_execute_results.tsv").read_text()
    assert "META\tALL" in text  # partial results of the aborted stage
    assert took < 15, f"`ray job stop` took {took:.1f}s"
