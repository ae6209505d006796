"""`sbench submit` against a real `ray start --head` started from a shell whose PATH has no virtual
environment (issue 17): the README's commands, run as they are written (the address, the config and the
job id substituted), bring the results directory home with every file, exit with the run's code, and
`ray job stop` gives ABORTED at home. One head for the module; every run lasts seconds.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.cluster.env import forwarded_env
from tests.cluster.conftest import VENV_BIN, HeadNode, ray_head_node, status_of

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
README_ADDRESSES = ("http://127.0.0.1:8265", "http://HEAD:8265")
#: a PATH without the virtual environment (and without pyenv's shims): what a fresh shell has
BARE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SECRET = f"SubmitLeak{uuid.uuid4().hex[:10]}"


def readme_block() -> list[str]:
    """The command lines of the README's `sbench submit` section (comments and continuations removed)."""
    text = (REPO / "README.md").read_text()
    section = text.split("## Submitting a run as a Ray job: `sbench submit`", 1)[1]
    block = section.split("```", 2)[1]
    return [line.split("  #", 1)[0].strip() for line in block.strip().splitlines() if line.strip()]


def readme_command(marker: str, **subs: str) -> list[str]:
    """The README line that contains `marker`, as argv with the README's addresses and `subs` replaced."""
    [line] = [line for line in readme_block() if marker in line]
    address = subs.pop("address")
    for placeholder in README_ADDRESSES:
        line = line.replace(placeholder, address)
    for old, new in subs.items():
        line = line.replace(old, new)
    argv = shlex.split(line)
    if argv[0] == "sbench":
        return [sys.executable, "-m", "sbench", *argv[1:]]
    if argv[0] == "ray":
        return [str(VENV_BIN / "ray"), *argv[1:]]
    raise AssertionError(line)


def bare_env(home: Path) -> dict[str, str]:
    """A fresh shell's environment: no venv on PATH, no storage credential, HOME of the test's own."""
    keep = {k: v for k, v in os.environ.items() if k not in forwarded_env() and not k.startswith("RAY_")}
    keep.pop("VIRTUAL_ENV", None)
    return {
        **keep,
        "PATH": BARE_PATH,
        "HOME": str(home),
        "RAY_AUTH_MODE": "disabled",
        "RAY_USAGE_STATS_ENABLED": "0",
    }


@pytest.fixture(scope="module")
def head(tmp_path_factory) -> Iterator[HeadNode]:
    temp_dir = Path(tempfile.mkdtemp(prefix="sbsub-", dir="/tmp"))  # short: Ray's socket paths
    home = tmp_path_factory.mktemp("head-home")
    try:
        # pip and Ray give up at once where no index answers (their default retries cost a minute)
        env = {**bare_env(home), "PIP_RETRIES": "0", "PIP_TIMEOUT": "2", "RUNTIME_ENV_RETRY_TIMES": "1"}
        with ray_head_node(home, temp_dir=temp_dir, env=env, venv_on_path=False) as node:
            yield node
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)


def two_agents(data: Path, duration: str = "1s", target: str | None = None) -> str:
    return f"""
target: "{target or f"file://{data}/"}"
duration: {duration}
concurrency: 2
prepare:
  ensure_objects:
    - {{count: 40, size_spec: 1KiB, fill: zero}}
  cleanup: true
workload:
  - {{op: get, path: "", weight: 3}}
  - {{op: stat, path: "", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "127.0.0.1:7761", id: left}}
    - {{address: "127.0.0.1:7762", id: right}}
"""


def submitter(
    argv: list[str], cwd: Path, head: HeadNode, timeout: float = 240
) -> subprocess.CompletedProcess:
    """Run `sbench submit` from a bare shell (this tree's sbench on PYTHONPATH, a secret in the
    environment that must go nowhere)."""
    env = {**bare_env(Path(head.env["HOME"])), "PYTHONPATH": str(REPO), "AWS_SECRET_ACCESS_KEY": SECRET}
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def home_dir(done: subprocess.CompletedProcess) -> Path:
    match = re.search(r"^results of job (\S+) \(.*\): (.+)$", done.stdout, re.M)
    assert match, done.stdout[-3000:] + done.stderr[-3000:]
    return Path(match.group(2))


def tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def job_views(head: HeadNode) -> str:
    from ray.job_submission import JobSubmissionClient

    jobs = JobSubmissionClient(head.url).list_jobs()
    return json.dumps([j.model_dump() for j in jobs], default=str)


def files_with(root: Path, needle: str) -> list[str]:
    return [
        str(p)
        for p in root.rglob("*")
        if p.is_file() and not p.is_symlink() and needle.encode() in p.read_bytes()
    ]


def test_a_two_agent_submit_brings_every_file_home(head: HeadNode, tmp_path: Path) -> None:
    """Also: the credentials of the submitting shell go nowhere, and those of `--env-file` (a file on the
    cluster's node) reach the run by name, their values on no disk of the cluster and in no Ray view."""
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "two.yaml"
    config.write_text(two_agents(data))
    on_node = f"NodeLeak{uuid.uuid4().hex[:10]}"
    creds = tmp_path / "creds.env"
    creds.write_text(f"export AWS_SECRET_ACCESS_KEY='{on_node}'\n")
    argv = readme_command(
        "distributed-two-agents", address=head.url, **{"workloads/distributed-two-agents.yaml": str(config)}
    )
    t0 = time.monotonic()
    done = submitter([*argv, "--env-file", str(creds)], tmp_path, head)
    took = time.monotonic() - t0
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    local = home_dir(done)
    assert local.parent == tmp_path  # ./<job id>/ of the submitting shell
    assert status_of(local) == "SUCCESS"
    assert "stage execute" in done.stdout  # the job's log, followed live
    remote = Path(head.env["HOME"]) / "sbench-results" / local.name
    assert tree(local) == tree(remote)  # every file, byte for byte
    assert {"STATUS.txt", "summary.json", "perf_log.tsv", "metadata.json", "report.html"} <= set(tree(local))
    assert {p.name for p in (local / "agents").iterdir()} == {"left", "right"}
    meta = json.loads((local / "metadata.json").read_text())
    assert "AWS_SECRET_ACCESS_KEY" in meta["extra"]["forwarded_env"]  # from --env-file, by name
    assert head.temp_dir is not None
    for secret in (SECRET, on_node):
        assert files_with(head.temp_dir, secret) == [] and files_with(local, secret) == []
        assert secret not in job_views(head) and secret not in done.stdout + done.stderr
    print(f"submit of a 1 s two-agent run, end to end: {took:.1f} s")


def test_a_failing_config_brings_failure_home_with_exit_1(head: HeadNode, tmp_path: Path) -> None:
    config = tmp_path / "failing.yaml"
    config.write_text(two_agents(tmp_path, target=f"file://{tmp_path}/missing-mount/"))
    argv = readme_command(
        "distributed-two-agents", address=head.url, **{"workloads/distributed-two-agents.yaml": str(config)}
    )
    done = submitter(argv, tmp_path, head)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert status_of(home_dir(done)) == "FAILURE"


def test_a_config_that_does_not_hold_on_the_cluster_exits_2(head: HeadNode, tmp_path: Path) -> None:
    """`${VAR}` set where `sbench submit` runs but not on the cluster: the job's own config error (exit 2)
    is the exit code at home, with no results directory to bring."""
    config = tmp_path / "my.yaml"
    config.write_text(two_agents(tmp_path, target="file://${SBENCH_SUBMIT_ONLY_HERE}/"))
    argv = readme_command(
        "distributed-two-agents", address=head.url, **{"workloads/distributed-two-agents.yaml": str(config)}
    )
    env = {
        **bare_env(Path(head.env["HOME"])),
        "PYTHONPATH": str(REPO),
        "SBENCH_SUBMIT_ONLY_HERE": str(tmp_path),
    }
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 2, done.stdout[-3000:] + done.stderr[-3000:]
    assert "SBENCH_SUBMIT_ONLY_HERE is not set" in done.stdout  # the job's log, followed
    assert "before sbench wrote any results" in done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def test_ray_job_stop_brings_aborted_home(head: HeadNode, tmp_path: Path) -> None:
    from ray.job_submission import JobSubmissionClient

    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "my.yaml"
    config.write_text(two_agents(data, duration="120s"))
    done = submitter(readme_command("--detach", address=head.url, **{"my.yaml": str(config)}), tmp_path, head)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    job_id = re.search(r"submitted job (\S+)", done.stdout).group(1)
    client = JobSubmissionClient(head.url)
    deadline = time.monotonic() + 120
    while "stage execute (execute) started" not in client.get_job_logs(job_id):
        assert time.monotonic() < deadline, client.get_job_logs(job_id)[-3000:]
        time.sleep(0.3)
    time.sleep(1.0)
    stop = subprocess.run(
        readme_command("ray job stop", address=head.url, JOB_ID=job_id),
        env=head.env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert stop.returncode == 0, stop.stdout[-2000:] + stop.stderr[-2000:]
    fetched = submitter(readme_command("--fetch", address=head.url, JOB_ID=job_id), tmp_path, head)
    assert fetched.returncode == 1, fetched.stdout[-3000:] + fetched.stderr[-3000:]
    local = home_dir(fetched)
    assert local == tmp_path / job_id
    assert status_of(local) == "ABORTED"
    assert "META\tALL" in (local / "03_execute_results.tsv").read_text()  # what ran until the stop


def test_the_clusters_own_python_fails_here_clearly(head: HeadNode, tmp_path: Path) -> None:
    """What a bare `ray job submit -- python -m sbench run` meets on this head (the issue's failure), seen
    through `--runtime-env installed`: exit 1 and one sentence; the default (`local`) above does not rely
    on it."""
    config = tmp_path / "w.yaml"
    config.write_text(two_agents(tmp_path))
    argv = [
        sys.executable,
        "-m",
        "sbench",
        "submit",
        str(config),
        "--address",
        head.url,
        "--runtime-env",
        "installed",
    ]
    done = submitter(argv, tmp_path, head)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "python: not found" in done.stdout  # the job's log
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "needs a `python` with sbench" in errors[0], done.stderr[-2000:]


def test_an_environment_that_cannot_be_built_is_one_message_and_exit_1(
    head: HeadNode, tmp_path: Path
) -> None:
    """`--runtime-env uv` where no package index is reachable (this namespace has none, and Ray must
    install uv first). (`pip` builds here: the cluster's Python already has every pinned version.)"""
    config = tmp_path / "my.yaml"
    config.write_text(two_agents(tmp_path))
    t0 = time.monotonic()
    done = submitter(
        readme_command("--runtime-env uv", address=head.url, **{"my.yaml": str(config)}), tmp_path, head
    )
    took = time.monotonic() - t0
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "environment could not be built" in errors[0], done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    print(errors[0])
    print(f"uv environment failure reported after {took:.1f} s")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_ctrl_c_in_sbench_submit_stops_the_job_and_brings_aborted_home(
    head: HeadNode, tmp_path: Path, sig: signal.Signals
) -> None:
    """Ctrl-C, or SIGTERM (a CI job's timeout), stops the job and the partial results still come home,
    whatever the inherited disposition of SIGINT (ignored in a non-interactive shell's background job)."""
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "two.yaml"
    config.write_text(two_agents(data, duration="120s"))
    argv = readme_command(
        "distributed-two-agents", address=head.url, **{"workloads/distributed-two-agents.yaml": str(config)}
    )
    env = {**bare_env(Path(head.env["HOME"])), "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    seen = []
    assert proc.stdout is not None
    for line in proc.stdout:  # the job's log, live
        seen.append(line)
        if "stage execute (execute) started" in line:
            break
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    done = subprocess.CompletedProcess(argv, proc.returncode, "".join(seen) + out, err)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert "stopping job" in done.stderr
    local = home_dir(done)
    assert status_of(local) == "ABORTED"
    assert "SIGTERM" in (local / "STATUS.txt").read_text()  # what `ray job stop` sends the job
