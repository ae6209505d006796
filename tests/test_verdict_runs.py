"""Whole in-process runs that used to end SUCCESS with exit 0 although they measured failures: a workload
throttled to the end under a small error budget, a success ratio far below the threshold, an S3 server
killed as the workload starts. (PUTs into a full file system, no_space: tests/faults/test_disk_faults.py.)
Each asserts the exit code, the
STATUS.txt verdict and reason, and the first message of every error class in STATUS.txt, summary.json and
the console."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import uuid
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.ui.live import LiveProgress
from tests import servers
from tests.preflight import mountns
from tests.storage.fixtures_s3 import hermetic_aws_env, s3_admin_client
from tests.storage.slowdown_proxy import SlowDownProxy

REPO = Path(__file__).resolve().parent.parent
BUCKET = "sbench-verdict"


def _status_lines(out: Path) -> list[str]:
    return (out / "STATUS.txt").read_text().splitlines()


def _reason(out: Path) -> str:
    return next(line for line in _status_lines(out) if line.startswith("Reason: "))


def _first_errors(out: Path) -> list[str]:
    """The `=== First Error of Each Class ===` lines of STATUS.txt."""
    text = (out / "STATUS.txt").read_text()
    if "=== First Error of Each Class ===" not in text:
        return []
    section = text.split("=== First Error of Each Class ===", 1)[1].split("\n===", 1)[0]
    return section.strip().splitlines()


def _summary(out: Path) -> dict:
    return json.loads((out / "summary.json").read_text())


@pytest.fixture
def bucket(seaweedfs: servers.LocalServer) -> str:
    client = s3_admin_client(seaweedfs)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    client.close()
    return BUCKET


def test_throttled_to_the_end_fails_on_the_error_budget(
    seaweedfs: servers.LocalServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """Every workload PUT answered 503 SlowDown, retries exhausted: with max_total_errors 5 the stage fails
    (sbench used to exempt throttling from the budget and reported SUCCESS)."""
    hermetic_aws_env(monkeypatch, tmp_path)
    proxy = SlowDownProxy(seaweedfs.port, lambda method, path: method == "PUT" and "/put_" in path)
    try:
        cfg = tmp_path / "throttled.yaml"
        cfg.write_text(
            f"target: s3://127.0.0.1:{proxy.port}/{bucket}/{uuid.uuid4().hex[:8]}/\nduration: 3s\n"
            "concurrency: 2\nperf_log: {interval: 0.5s}\n"
            "error_handling: {max_total_errors: 5, retry_on_error: true, max_retries: 2,\n"
            "  initial_retry_delay_ms: 1, max_retry_delay_ms: 2, error_rate_threshold: 0}\n"
            "workload:\n  - {op: put, path: 'puts/', object_size: 1024, weight: 1}\n"
        )
        out = tmp_path / "r"
        code = main(["run", str(cfg), "--results-dir", str(out)])
    finally:
        proxy.close()
    assert code == 1
    assert _status_lines(out)[0] == "TEST STATUS: FAILURE"
    reason = _reason(out)
    assert "stage 'execute' failed" in reason and "error_handling.max_total_errors=5" in reason, reason
    assert "throttled=" in reason
    assert proxy.throttled >= 5 * 3  # every failed op made its try and two retries
    [line] = _first_errors(out)
    assert line.startswith("stage execute: throttled (") and "<Code>SlowDown</Code>" in line, line
    execute = next(s for s in _summary(out)["stages"] if s["name"] == "execute")
    first = execute["errors"]["first_by_class"]["throttled"]
    assert first["failed_ops"] >= 5 and "503" in first["message"]  # ops in flight at the abort end too
    assert "first throttled error (" in capsys.readouterr().out


def test_throttled_then_retried_into_success_does_not_count(
    seaweedfs: servers.LocalServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The store throttles the first try of every workload PUT and accepts the retry: no op failed, so
    neither the budget nor the success ratio sees an error; the retries are counted."""
    hermetic_aws_env(monkeypatch, tmp_path)
    seen: set[str] = set()

    def first_try_only(method: str, path: str) -> bool:
        if method != "PUT" or "/put_" not in path or path in seen:
            return False
        seen.add(path)
        return True

    proxy = SlowDownProxy(seaweedfs.port, first_try_only)
    try:
        cfg = tmp_path / "retried.yaml"
        cfg.write_text(
            f"target: s3://127.0.0.1:{proxy.port}/{bucket}/{uuid.uuid4().hex[:8]}/\nduration: 1s\n"
            "concurrency: 2\nerror_handling: {max_total_errors: 1, retry_on_error: true, max_retries: 2,\n"
            "  initial_retry_delay_ms: 1, max_retry_delay_ms: 2, error_rate_threshold: 0}\n"
            "workload:\n  - {op: put, path: 'puts/', object_size: 1024, weight: 1}\n"
        )
        out = tmp_path / "r"
        code = main(["run", str(cfg), "--results-dir", str(out)])
    finally:
        proxy.close()
    assert code == 0, (out / "console_log.txt").read_text()[-2000:]
    workload = _summary(out)["workload"]["totals"]
    assert workload["errors"] == 0 and workload["ops"] > 0
    # every op was throttled once; a retry the stage's end cut off leaves its op unfinished, not failed (its
    # retry counted if the throttle answer came before the end)
    assert workload["ops"] <= workload["retries"] <= workload["ops"] + workload["unfinished_ops"]
    assert proxy.throttled == workload["ops"] + workload["unfinished_ops"]


def _blocked_put_config(tmp_path: Path, extra: str = "") -> Path:
    """GETs of prepared objects succeed; PUTs go under `blocked/`, a regular file, so each fails (ENOTDIR)."""
    root = tmp_path / "store"
    root.mkdir()
    (root / "blocked").write_text("a file where the PUT directory should be")
    cfg = tmp_path / "ratio.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 1s\nconcurrency: 2\n"
        "error_handling: {max_total_errors: 0, error_rate_threshold: 0" + extra + "}\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{root}/data/', count: 20, size_spec: 512}}\n"
        "  cleanup: true\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
        "  - {op: put, path: 'blocked/', object_size: 512, weight: 1}\n"
    )
    return cfg


def test_success_ratio_below_the_threshold_fails(tmp_path: Path) -> None:
    cfg = _blocked_put_config(tmp_path)
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--results-dir", str(out)]) == 1
    assert _status_lines(out)[0] == "TEST STATUS: FAILURE"
    reason = _reason(out)
    assert "stage 'execute' failed" in reason, reason
    assert "is below error_handling.min_success_ratio 0.95" in reason
    totals = _summary(out)["workload"]["totals"]
    ratio = totals["ops"] / (totals["ops"] + totals["errors"])
    assert 0.3 < ratio < 0.7
    assert f"{totals['ops']:,} of {totals['ops'] + totals['errors']:,} ops succeeded" in reason
    [line] = _first_errors(out)
    assert line.startswith("stage execute: not_found") and "blocked/put_" in line, line


def test_success_ratio_zero_disables_the_rule_and_a_passing_run_still_shows_first_errors(
    tmp_path: Path, capsys
) -> None:
    cfg = _blocked_put_config(tmp_path, ", min_success_ratio: 0")
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--results-dir", str(out)]) == 0
    assert _status_lines(out)[0] == "TEST STATUS: SUCCESS"
    [line] = _first_errors(out)  # shown although the run passed
    assert line.startswith("stage execute: not_found") and "Not a directory" in line, line
    summary = _summary(out)
    assert [e["kind"] for e in summary["first_errors"]] == ["not_found"]
    assert "first not_found error" in capsys.readouterr().out


def test_s3_server_killed_as_the_workload_starts_fails_no_op_succeeded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SeaweedFS dies (SIGKILL) right when the execute stage starts: every GET fails, but the error backoff
    keeps the count under the default budget; the stage must fail because no op succeeded."""
    server = servers.start_seaweedfs(tmp_path / "weed")
    try:
        hermetic_aws_env(monkeypatch, tmp_path)
        client = s3_admin_client(server)
        client.create_bucket(Bucket=BUCKET)
        client.close()
        started = LiveProgress.stage_started

        def kill_at_execute(
            self: LiveProgress, name: str, stage_type: str, expected: float | None, where: str = ""
        ) -> None:
            if name == "execute":
                os.killpg(server.proc.pid, signal.SIGKILL)
                server.proc.wait(10)
            started(self, name, stage_type, expected, where)

        monkeypatch.setattr(LiveProgress, "stage_started", kill_at_execute)
        root = f"s3://127.0.0.1:{server.port}/{BUCKET}/killed/"
        cfg = tmp_path / "killed.yaml"
        cfg.write_text(
            f"target: {root}\nduration: 2s\nconcurrency: 2\nerror_handling: {{backoff_duration: 0.5s}}\n"
            f"prepare:\n  ensure_objects:\n    - {{base_uri: '{root}data/', count: 20, size_spec: 1024}}\n"
            "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
        )
        out = tmp_path / "r"
        code = main(["run", str(cfg), "--results-dir", str(out)])
    finally:
        server.stop()
    assert code == 1
    reason = _reason(out)
    assert "stage 'execute' failed: no operation succeeded:" in reason, reason
    assert "all failed (network=" in reason and "first error (network)" in reason
    assert any(line.startswith("stage execute: network") for line in _first_errors(out))


def _needs_mounts() -> None:
    why = mountns.unavailable_reason()
    if why:
        pytest.skip(why)
