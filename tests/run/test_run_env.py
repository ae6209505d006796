"""`distributed_env` on the in-process fleet (issue 14 #2): set in this process for the run, so the storage
clients use it (SeaweedFS accepts the run only with the key pair that is nowhere but in the YAML), put back
afterwards, its names in metadata.json and its values in no file of the results directory."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.run.launch import run
from tests import servers
from tests.storage.fixtures_s3 import TEST_BUCKET, hermetic_aws_env, ready_bucket


def test_distributed_env_carries_the_credentials_of_an_in_process_run_and_is_never_written(
    seaweedfs: servers.LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ready_bucket(seaweedfs, TEST_BUCKET)
    hermetic_aws_env(monkeypatch, tmp_path)
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")  # the YAML is the only place that has the key pair
    target = f"s3://127.0.0.1:{seaweedfs.port}/{TEST_BUCKET}/run-env-{time.monotonic_ns()}/"
    config = tmp_path / "env.yaml"
    config.write_text(
        f"""
target: "{target}"
duration: 1s
concurrency: 2
distributed_env:
  AWS_ACCESS_KEY_ID: {servers.S3_ACCESS_KEY}
  AWS_SECRET_ACCESS_KEY: {servers.S3_SECRET_KEY}
prepare:
  cleanup: true
  ensure_objects: [{{count: 5, size_spec: 1024, fill: zero}}]
workload:
  - {{op: get, path: "*", weight: 1}}
"""
    )
    results = tmp_path / "results"
    code = run(load_config(config), RunOptions(results_dir=results), config, on_ray=False)
    assert code == 0, (results / "STATUS.txt").read_text()
    assert "AWS_SECRET_ACCESS_KEY" not in os.environ and "AWS_ACCESS_KEY_ID" not in os.environ
    meta = json.loads((results / "metadata.json").read_text())
    assert meta["extra"]["distributed_env"] == ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"]
    secret = servers.S3_SECRET_KEY.encode()
    leaks = [p for p in results.rglob("*") if p.is_file() and secret in p.read_bytes()]
    assert leaks == []
