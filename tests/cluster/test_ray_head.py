"""Runs on a Ray cluster the way users drive one (`ray start --head`, then a driver that joins it through
RAY_ADDRESS, `ray job submit`, `ray job stop`), and no storage credential reaches a disk or any of Ray's
views, yet every agent and shard task gets it (issue 10 #2).

The head is started with `--block` and stopped by signalling that process group, not with `ray stop`:
`ray stop` kills every Ray process of the machine, including other test sessions' instances.

A head node started for this module with a Ray temp dir of its own (so the grep covers exactly its sessions)
and with no credential in its environment runs two things against SeaweedFS: a 2-agent `sbench -vv run`
whose driver joins it through RAY_ADDRESS with distinctive values in AWS_SECRET_ACCESS_KEY,
AZURE_STORAGE_CONNECTION_STRING and GOOGLE_OAUTH_ACCESS_TOKEN, and a `ray job submit` run whose entrypoint
sources the same values from a file outside the session dir (and must reach SUCCESS with the declared agent
ids and every stage's results file, as any job). After each, none of the values (nor their
distinctive core) may be found in any file under the head's temp dir (logs, runtime resources, everything,
read as bytes), in the results directory, in the driver's output or the job's logs, or in the state API's
actors, tasks and jobs. `ray job stop` on a long job aborts it with partial results and STATUS ABORTED. That
the values still arrived is proven by the run itself: prepare shard tasks and
agents read and write SeaweedFS with the AWS secret (nothing else on the head has it), and a custom stage on
every agent writes the SHA-256 of each of the three values (never a value) to a file the test checks.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.cluster.env import forwarded_env
from tests import servers
from tests.cluster.conftest import (
    VENV_BIN,
    HeadNode,
    agent_lines,
    ray_head_node,
    stage_tables,
    status_of,
    submit_job,
)
from tests.storage.fixtures_s3 import ready_bucket

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
TOKEN = uuid.uuid4().hex[:12]
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET_KEY,  # the SeaweedFS identity: the run must really use it
    "AZURE_STORAGE_CONNECTION_STRING": (
        f"DefaultEndpointsProtocol=http;AccountName=leakcheck;AccountKey=AzLeak{TOKEN}Key==;"
        "BlobEndpoint=http://127.0.0.1:9/leakcheck;"
    ),
    "GOOGLE_OAUTH_ACCESS_TOKEN": f"ya29.GcsLeak{TOKEN}",
}
#: what must never appear: each whole value and its distinctive core (in case a value is cut or escaped)
NEEDLES = {
    "AWS_SECRET_ACCESS_KEY": [servers.S3_SECRET_KEY],
    "AZURE_STORAGE_CONNECTION_STRING": [SECRETS["AZURE_STORAGE_CONNECTION_STRING"], f"AzLeak{TOKEN}"],
    "GOOGLE_OAUTH_ACCESS_TOKEN": [SECRETS["GOOGLE_OAUTH_ACCESS_TOKEN"], f"GcsLeak{TOKEN}"],
}
HASH_COMMAND = (
    "for v in AWS_SECRET_ACCESS_KEY AZURE_STORAGE_CONNECTION_STRING GOOGLE_OAUTH_ACCESS_TOKEN; "
    "do printenv $v | sha256sum | cut -c1-64; done > {dir}/$SBENCH_AGENT_ID"
)


def _clean_environ() -> dict[str, str]:
    """This process's environment without any variable sbench would forward (no credential on the head)."""
    return {k: v for k, v in os.environ.items() if k not in forwarded_env() and k != "RAY_ADDRESS"}


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Iterator[HeadNode]:
    temp_dir = Path(tempfile.mkdtemp(prefix="sbs-", dir="/tmp"))  # short: Ray's socket paths
    try:
        log_dir = tmp_path_factory.mktemp("secrets-head")
        with ray_head_node(log_dir, temp_dir=temp_dir, env=_clean_environ()) as node:
            yield node
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture
def bucket(seaweedfs) -> str:
    name = f"secrets-{uuid.uuid4().hex[:8]}"
    ready_bucket(seaweedfs, name)
    return name


def _config(target: str, hashes: Path) -> str:
    return f"""
target: "{target}"
duration: 2s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 20, size_spec: 1024, fill: zero}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: s1}}
    - {{address: "localhost:7762", id: s2}}
  stages:
    - {{name: preflight, order: 1, type: validation}}
    - {{name: prepare, order: 2, type: prepare}}
    - name: hashes
      order: 3
      type: custom
      command: sh
      args: ["-c", "{HASH_COMMAND.format(dir=hashes)}"]
    - {{name: execute, order: 4, type: execute, duration: 2s}}
    - {{name: cleanup, order: 5, type: cleanup}}
"""


def _leaks_in_files(root: Path) -> list[str]:
    """`NAME in PATH` for every file under `root` (read as bytes, whatever it holds) that has a needle."""
    found = []
    for path in sorted(root.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except OSError:
            continue
        found += [f"{name} in {path}" for name, ns in NEEDLES.items() if any(n.encode() in data for n in ns)]
    return found


def _leaks_in_text(where: str, text: str) -> list[str]:
    return [f"{name} in {where}" for name, needles in NEEDLES.items() if any(n in text for n in needles)]


def _state_views(head: HeadNode) -> str:
    """What Ray's state API and job API show about actors, tasks and jobs, as text."""
    from ray.job_submission import JobSubmissionClient
    from ray.util.state import list_actors, list_jobs, list_tasks

    views = [
        list_actors(address=head.url, detail=True, limit=10000),
        list_tasks(address=head.url, detail=True, limit=10000),
        list_jobs(address=head.url, detail=True),
    ]
    jobs = JobSubmissionClient(head.url).list_jobs()
    return repr(views) + json.dumps([j.model_dump() for j in jobs], default=str)


def _expected_hashes() -> list[str]:
    return [hashlib.sha256((value + "\n").encode()).hexdigest() for value in SECRETS.values()]


def _check_the_run(results: Path, hashes: Path) -> None:
    """The values arrived: SeaweedFS answered the shard tasks and the agents, and every agent saw them."""
    assert status_of(results) == "SUCCESS", (results / "STATUS.txt").read_text()
    counts, _ = stage_tables(next(results.glob("[0-9][0-9]_prepare_results.tsv")))
    assert counts["PUT/ALL"] == 20  # prepare shard tasks wrote with the forwarded AWS secret
    counts, _ = stage_tables(next(results.glob("[0-9][0-9]_execute_results.tsv")))
    assert counts["GET/ALL"] > 0  # the agents read with it
    assert sorted(p.name for p in hashes.iterdir()) == ["s1", "s2"]
    for agent_file in hashes.iterdir():
        assert agent_file.read_text().split() == _expected_hashes(), agent_file.name
    meta = json.loads((results / "metadata.json").read_text())
    assert set(SECRETS) <= set(meta["extra"]["forwarded_env"])  # names are recorded, values never


def test_a_two_agent_run_leaves_no_secret_on_disk_or_in_rays_views(
    head: HeadNode, seaweedfs, bucket: str, tmp_path: Path
) -> None:
    hashes = tmp_path / "hashes"
    hashes.mkdir()
    config = tmp_path / "secrets.yaml"
    config.write_text(_config(f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/run/", hashes))
    results = tmp_path / "results"
    env = {
        **_clean_environ(),
        **SECRETS,
        "AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY,
        "AWS_REGION": "us-east-1",
        "RAY_ADDRESS": head.gcs,
        "RAY_AUTH_MODE": "disabled",
    }
    done = subprocess.run(
        [sys.executable, "-m", "sbench", "-vv", "run", str(config), "--results-dir", str(results)],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Ray: joined the cluster at" in done.stdout
    _check_the_run(results, hashes)
    assert head.temp_dir is not None
    leaks = _leaks_in_files(head.temp_dir) + _leaks_in_files(results)
    leaks += _leaks_in_text("the driver's output", done.stdout + done.stderr)
    leaks += _leaks_in_text("the state API", _state_views(head))
    assert leaks == []


def test_a_ray_job_submit_run_leaves_no_secret_on_disk_or_in_rays_views(
    head: HeadNode, seaweedfs, bucket: str, tmp_path: Path
) -> None:
    from ray.job_submission import JobSubmissionClient

    hashes = tmp_path / "hashes"
    hashes.mkdir()
    job_dir = tmp_path / "job"
    job_dir.mkdir()
    (job_dir / "job.yaml").write_text(_config(f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/job/", hashes))
    # The credentials live on the head's disk, outside Ray's temp dir (as ~/.aws would): the job's shell
    # sources them, so they are in the driver's environment and nowhere in what Ray is given.
    creds = tmp_path / "creds.sh"
    exports = {**SECRETS, "AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY, "AWS_REGION": "us-east-1"}
    creds.write_text("".join(f"export {k}='{v}'\n" for k, v in exports.items()))
    results = tmp_path / "results"
    job_id = f"sbench-secrets-{uuid.uuid4().hex[:8]}"
    entrypoint = f". {creds} && exec python -m sbench run job.yaml --results-dir {results}"
    cmd = [str(VENV_BIN / "ray"), "job", "submit", "--address", head.url, "--submission-id", job_id]
    cmd += ["--working-dir", str(job_dir), "--", "sh", "-c", entrypoint]  # the CLI shell-quotes each word
    done = submit_job(cmd, head.env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in (done.stdout + done.stderr).lower()
    _check_the_run(results, hashes)
    assert set(agent_lines(results)) == {"s1", "s2"}
    assert sorted(p.name for p in results.glob("[0-9][0-9]_*_results.tsv")) == [
        "01_preflight_results.tsv",
        "02_prepare_results.tsv",
        "03_hashes_results.tsv",
        "04_execute_results.tsv",
        "05_cleanup_results.tsv",
    ]
    assert "Ray: joined the cluster at" in (results / "console_log.txt").read_text()
    assert head.temp_dir is not None
    job_logs = JobSubmissionClient(head.url).get_job_logs(job_id)
    leaks = _leaks_in_files(head.temp_dir) + _leaks_in_files(results)
    leaks += _leaks_in_text("`ray job submit` output", done.stdout + done.stderr)
    leaks += _leaks_in_text("the job's logs", job_logs)
    leaks += _leaks_in_text("the state API", _state_views(head))
    assert leaks == []


def test_ray_job_stop_aborts_the_run_with_partial_results(head: HeadNode, tmp_path: Path) -> None:
    url, env = head.url, head.env
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
