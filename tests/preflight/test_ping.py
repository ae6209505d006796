"""`sbench ping CONFIG --no-ray`: every storage root answers with round trips, or the command exits 1 naming
the one that did not (SeaweedFS for S3, a closed port for a dead endpoint, file:// paths)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from sbench.cli import main
from tests.preflight.conftest import s3_keys, set_aws_env


def _config(tmp_path: Path, target: str, extra: str = "") -> Path:
    cfg = tmp_path / "ping.yaml"
    cfg.write_text(
        f"target: {target}\nduration: 1s\n{extra}"
        "workload:\n  - {op: put, path: 'w/', weight: 1, object_size: 8}\n"
    )
    return cfg


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_s3_root_answers_and_nothing_is_written(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    uri = f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/ping-probe/"
    assert main(["ping", str(_config(tmp_path, uri)), "--no-ray", "--probes", "3"]) == 0
    out = capsys.readouterr().out
    assert f"{uri} (target): connect " in out and "list round trip min" in out and "(3 probes)" in out
    assert s3_keys(seaweedfs, s3_preflight_bucket, "ping-probe") == []  # read-only: no write probe


def test_dead_endpoint_exits_1_naming_it(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    good = f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/"
    dead = f"s3://127.0.0.1:{_closed_port()}/nobucket/"
    extra = f"multi_endpoint:\n  endpoints: ['{good}', '{dead}']\n"
    assert main(["ping", str(_config(tmp_path, good, extra)), "--no-ray", "--probes", "1"]) == 1
    captured = capsys.readouterr()
    assert f"{good} (multi_endpoint.endpoints[0]): connect" in captured.out
    assert f"{dead} (multi_endpoint.endpoints[1]): FAILED" in captured.out
    assert "1 target(s) did not answer" in captured.err and dead in captured.err


def test_local_roots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ping", str(_config(tmp_path, f"file://{tmp_path}/")), "--no-ray"]) == 0
    assert "stat round trip" in capsys.readouterr().out
    missing = tmp_path / "gone" / "deeper"
    assert main(["ping", str(_config(tmp_path, f"file://{missing}/")), "--no-ray"]) == 1
    assert f"directory {missing} does not exist" in capsys.readouterr().err


def test_bad_config_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("workload: 3\n")
    assert main(["ping", str(bad), "--no-ray"]) == 2


def test_no_cluster_named_is_not_an_error(tmp_path: Path) -> None:
    """In a fresh process: the session's own Ray connection (an in-process test would see it) is not there."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])
    done = subprocess.run(
        [sys.executable, "-m", "sbench", "ping"], env=env, cwd=tmp_path, capture_output=True, text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "no cluster named" in done.stdout
