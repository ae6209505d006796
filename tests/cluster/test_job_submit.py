"""`ray start --head` in the namespace, then `ray job submit ... -- python -m sbench run X.yaml` runs a 5 s
workload to SUCCESS (the way a user drives a real cluster), and `ray job stop` aborts a running job with
partial results and STATUS ABORTED.

The head is started with `--block` and stopped by signalling that process group, not with `ray stop`:
`ray stop` kills every Ray process of the machine, including other test sessions' instances.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

import pytest

from tests.cluster.conftest import VENV_BIN, agent_lines, ray_head_node, status_of, submit_job

pytestmark = [pytest.mark.ray, pytest.mark.slow]


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("ray-head")
    with ray_head_node(tmp_path) as head:
        yield head.url, head.env, head.gcs


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
    done = submit_job(cmd, env, timeout=180)
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
    assert "Ray: joined the cluster at" in console  # the job's driver joined the running cluster


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
    done = submit_job(submit, env, timeout=120)
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
