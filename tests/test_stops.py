"""A second Ctrl-C of `python -m sbench run` while the S3 store stalls (issue 10 #6) exits at once with 130
and still leaves STATUS.txt ABORTED. (The first Ctrl-C in every stage, in process and on Ray, is in
tests/faults/test_stops.py.) `Run`, `stop_config` and `sbench_env` serve the Ray stall test too."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers
from tests.stallproxy import StallProxy, wait_for
from tests.storage.fixtures_s3 import s3_bucket as s3_bucket

REPO = Path(__file__).resolve().parent.parent


def sbench_env(tmp: Path) -> dict[str, str]:
    """The test key pair only: no profile files, no metadata service."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    return env | {
        "AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET_KEY,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(tmp / "no-aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(tmp / "no-aws-credentials"),
        "PYTHONUNBUFFERED": "1",
    }


def stop_config(port: int, bucket: str, *, duration: str, count: int, extra: str = "") -> str:
    root = f"s3://127.0.0.1:{port}/{bucket}/{uuid.uuid4().hex[:10]}"
    return (
        f"target: {root}/\nduration: {duration}\nconcurrency: 8\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: '{root}/data/', count: {count}, size_spec: 512}}\n"
        "  cleanup: true\n"
        "workload:\n  - {op: get, path: 'data/', weight: 4}\n"
        "  - {op: put, path: 'out/', weight: 1, object_size: 512}\n"
        f"perf_log: {{interval: 0.5s}}\n{extra}"
    )


class Run:
    """A `python -m sbench run` subprocess and its results directory."""

    def __init__(self, config: str, tmp: Path, env: dict[str, str]) -> None:
        path = tmp / "run.yaml"
        path.write_text(config)
        self.out = tmp / "results"
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "sbench", "run", str(path), "--results-dir", str(self.out)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def log(self) -> str:
        path = self.out / "console_log.txt"
        return path.read_text() if path.is_file() else ""

    def wait_for_stage(self, stage: str, timeout: float = 120.0) -> None:
        marker = f"== stage {stage} ({stage}) started"
        if not wait_for(lambda: marker in self.log() or self.proc.poll() is not None, timeout):
            pytest.fail(f"stage {stage} never started:\n{self.log()[-2000:]}")
        assert self.proc.poll() is None, self.output()

    def interrupt(self, times: int = 1) -> tuple[int, float, float | None]:
        """SIGINT (twice with times=2); (exit code, seconds to exit, seconds until STATUS.txt appeared)."""
        status = self.out / "STATUS.txt"
        t0 = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        if times == 2:
            time.sleep(0.2)
            self.proc.send_signal(signal.SIGINT)
        status_at = None
        while self.proc.poll() is None and time.monotonic() - t0 < 30:
            if status_at is None and status.is_file():
                status_at = time.monotonic() - t0
            time.sleep(0.01)
        took = time.monotonic() - t0
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
            pytest.fail(f"still running 30 s after SIGINT:\n{self.log()[-2000:]}")
        return self.proc.returncode, took, status_at

    def output(self) -> str:
        return self.proc.stdout.read() if self.proc.stdout else ""

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def proxy(seaweedfs: servers.LocalServer) -> Iterator[StallProxy]:
    with StallProxy(seaweedfs.port) as p:
        yield p


@pytest.mark.slow
def test_second_ctrl_c_exits_at_once_and_leaves_status_aborted(
    proxy: StallProxy, s3_bucket: str, tmp_path: Path
) -> None:
    run = Run(stop_config(proxy.port, s3_bucket, duration="60s", count=200), tmp_path, sbench_env(tmp_path))
    try:
        run.wait_for_stage("execute")
        proxy.set_mode("stall")
        time.sleep(1.0)
        code, took, _ = run.interrupt(times=2)
    finally:
        run.kill()
    assert code == 130, run.output()
    assert took < 1.5, took
    status = (run.out / "STATUS.txt").read_text()
    assert status.splitlines()[0] == "TEST STATUS: ABORTED"
    assert "interrupted again, exited at once" in status, status
