"""Which Ray a `sbench run` uses and what is left of it afterwards (issue 10 #2 and #11), with the real CLI in
a subprocess:

- a cluster that `/tmp/ray/ray_current_cluster` points to is not joined without RAY_ADDRESS or
  --ray-address (a private local instance is started and said so), and --ray-address beats RAY_ADDRESS;
- the private local instance is gone within 5 s of sbench's exit on every path: normal end, second Ctrl-C
  and SIGKILL of the driver (an abort by one Ctrl-C in every stage, with the files of the aborted 2-agent run
  agreeing, is tests/faults/test_stops.py's `test_ctrl_c_on_ray_with_a_stalled_store`).

Each driver gets RAY_TMPDIR set to a directory of its own, so "the instance's processes" are exactly the
processes that reference that directory (command line or open files; every Ray process keeps its logs
there), whatever sbench does to find them itself.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.cluster.conftest import HeadNode, ray_head_node

pytestmark = [pytest.mark.ray, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 5.0


def _config(data: Path, duration: str) -> str:
    return f"""
target: "file://{data}/"
duration: {duration}
concurrency: 1
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: l1}}
    - {{address: "localhost:7762", id: l2}}
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("lifecycle-data")
    for i in range(100):
        (path / f"f{i:03d}").write_bytes(b"l" * 1024)
    return path


@pytest.fixture
def ray_tmp() -> Iterator[Path]:
    """RAY_TMPDIR of one driver: short (Ray's socket paths must stay under 108 bytes) and its own."""
    path = Path(tempfile.mkdtemp(prefix="sbl-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def instance_processes(ray_tmp: Path) -> list[str]:
    """Live processes (not this one) whose command line or open files are under `ray_tmp`."""
    marker = str(ray_tmp)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "name", "status"]):
        if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
            continue
        try:
            hit = marker in " ".join(proc.info["cmdline"] or []) or any(
                f.path.startswith(marker) for f in proc.open_files()
            )
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if hit:
            found.append(f"{proc.pid} {proc.info['name']}")
    return found


def assert_gone_soon(ray_tmp: Path, exited_at: float) -> None:
    """Every process of the instance ends within GONE_WITHIN_S of the driver's exit."""
    while True:
        left = instance_processes(ray_tmp)
        if not left:
            return
        assert time.monotonic() - exited_at < GONE_WITHIN_S, f"still running after {GONE_WITHIN_S}s: {left}"
        time.sleep(0.2)


def start_driver(
    config: Path, results: Path, ray_tmp: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.Popen:
    base = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    return subprocess.Popen(
        [sys.executable, "-m", "sbench", "run", str(config), "--results-dir", str(results), *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**base, "RAY_TMPDIR": str(ray_tmp), "PYTHONUNBUFFERED": "1", **(env or {})},
        cwd=REPO,
    )


def wait_for_execute(proc: subprocess.Popen, results: Path, settle_s: float) -> None:
    log = results / "console_log.txt"
    deadline = time.monotonic() + 90
    while not (log.exists() and "stage execute (execute) started" in log.read_text()):
        assert proc.poll() is None, "the driver exited before execute"
        assert time.monotonic() < deadline, "the driver never reached execute"
        time.sleep(0.1)
    time.sleep(settle_s)


def _finish(proc: subprocess.Popen, timeout: float = 30) -> tuple[int, float]:
    try:
        code = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
    return code, time.monotonic()


@pytest.fixture(scope="module")
def head_in_default_tmp(tmp_path_factory) -> Iterator[HeadNode]:
    """A running cluster that /tmp/ray/ray_current_cluster points to, as `ray start --head` leaves it."""
    with ray_head_node(tmp_path_factory.mktemp("head")) as head:
        cluster_file = Path("/tmp/ray/ray_current_cluster")
        deadline = time.monotonic() + 15  # `ray start` writes it after the dashboard answers
        while not (cluster_file.exists() and cluster_file.read_text().strip() == head.gcs):
            assert time.monotonic() < deadline, "ray start did not write /tmp/ray/ray_current_cluster"
            time.sleep(0.2)
        yield head


def _sbench_actors_on(head: HeadNode) -> list[str]:
    from ray.util.state import list_actors

    actors = list_actors(address=head.url, limit=10000)
    return [a.name for a in actors if (a.name or "").startswith("sbench-")]


def test_a_cluster_in_ray_current_cluster_is_not_joined(
    head_in_default_tmp: HeadNode, data: Path, tmp_path: Path, ray_tmp: Path
) -> None:
    config = tmp_path / "plain.yaml"
    config.write_text(_config(data, "1s"))
    results = tmp_path / "plain"
    code, exited_at = _finish(start_driver(config, results, ray_tmp), timeout=120)
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    assert_gone_soon(ray_tmp, exited_at)  # normal end
    console = (results / "console_log.txt").read_text()
    assert "Ray: private local instance at 127.0.0.1:" in console
    assert head_in_default_tmp.gcs not in console
    ray_info = json.loads((results / "metadata.json").read_text())["extra"]["ray"]
    assert ray_info["mode"] == "local" and ray_info["nodes"] == 1
    assert ray_info["temp_dir"].startswith(str(ray_tmp))
    assert _sbench_actors_on(head_in_default_tmp) == []  # nothing of the run ever reached that cluster


def test_ray_address_flag_joins_and_beats_the_environment(
    head_in_default_tmp: HeadNode, data: Path, tmp_path: Path, ray_tmp: Path
) -> None:
    config = tmp_path / "flag.yaml"
    config.write_text(_config(data, "1s"))
    results = tmp_path / "flag"
    proc = start_driver(
        config,
        results,
        ray_tmp,
        "--ray-address",
        head_in_default_tmp.gcs,
        env={"RAY_ADDRESS": "127.0.0.1:9"},  # nothing listens there: the flag must win
    )
    code, _ = _finish(proc, timeout=120)
    assert code == 0, (results / "console_log.txt").read_text()[-2000:]
    console = (results / "console_log.txt").read_text()
    assert f"Ray: joined the cluster at {head_in_default_tmp.gcs} (--ray-address), 1 node" in console
    ray_info = json.loads((results / "metadata.json").read_text())["extra"]["ray"]
    assert ray_info == {
        "mode": "joined",
        "address": head_in_default_tmp.gcs,
        "nodes": 1,
        "source": "--ray-address",
        "temp_dir": None,
    }
    assert _sbench_actors_on(head_in_default_tmp)  # the run's (now dead) actors are in that cluster's table


@pytest.mark.parametrize("how", ["second-sigint", "sigkill"])
def test_the_instance_is_gone_after_a_hard_exit(how: str, data: Path, tmp_path: Path, ray_tmp: Path) -> None:
    config = tmp_path / "hard.yaml"
    config.write_text(_config(data, "60s"))
    results = tmp_path / "hard"
    proc = start_driver(config, results, ray_tmp)
    wait_for_execute(proc, results, settle_s=1.0)
    assert instance_processes(ray_tmp), "the check must see the running instance"
    if how == "sigkill":
        proc.kill()
    else:
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)
        proc.send_signal(signal.SIGINT)
    code, exited_at = _finish(proc)
    assert code == (-signal.SIGKILL if how == "sigkill" else 130)
    assert_gone_soon(ray_tmp, exited_at)
