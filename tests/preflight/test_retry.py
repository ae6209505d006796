"""Preflight retries transient errors (issue 10 #8): one 503 SlowDown no longer fails a run before it starts,
a store that keeps answering 503 still fails it with the number of tries, and an abort ends the retries at
once. SeaweedFS behind tests/stallproxy.py, which answers 503 to the next N requests."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.control import RunControl
from sbench.plan.agents import AgentIdentity
from sbench.preflight import run_preflight
from sbench.preflight.result import ErrorType
from sbench.preflight.retry import ATTEMPTS
from tests import servers
from tests.preflight.conftest import config_of, s3_keys, set_aws_env
from tests.stallproxy import StallProxy

WORKLOAD = 'workload:\n  - {op: put, path: "w/", object_size: 1024, weight: 1}\n'


@pytest.fixture
def proxy(seaweedfs: servers.LocalServer) -> Iterator[StallProxy]:
    with StallProxy(seaweedfs.port) as p:
        yield p


def _config(proxy: StallProxy, bucket: str, prefix: str, driver: str) -> object:
    return config_of(
        f"duration: 1s\nconcurrency: 2\ndriver: {driver}\n"
        f"target: s3://127.0.0.1:{proxy.port}/{bucket}/{prefix}/\n{WORKLOAD}"
    )


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_one_503_is_retried_and_the_check_records_two_attempts(
    proxy: StallProxy,
    seaweedfs: servers.LocalServer,
    s3_preflight_bucket: str,
    monkeypatch,
    tmp_path: Path,
    driver: str,
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    prefix = f"retry-{uuid.uuid4().hex[:8]}"
    proxy.fail_next(1)  # the first API call (the LIST) gets 503 SlowDown
    result = run_preflight(_config(proxy, s3_preflight_bucket, prefix, driver))
    assert result.passed, result.errors
    assert proxy.counts.failed == 1
    assert result.find("s3.list")[0].details["attempts"] == 2
    for name in ("s3.put", "s3.get", "s3.delete"):
        assert result.find(name)[0].details["attempts"] == 1, name
    assert s3_keys(seaweedfs, s3_preflight_bucket, prefix) == []  # the probe object is gone


def test_persistent_503s_fail_with_the_attempt_count_in_bounded_time(
    proxy: StallProxy, s3_preflight_bucket: str, monkeypatch, tmp_path: Path
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    proxy.fail_next(10_000)
    t0 = time.monotonic()
    result = run_preflight(_config(proxy, s3_preflight_bucket, "never", "native"))
    took = time.monotonic() - t0
    assert not result.passed
    (error,) = result.errors
    assert error.name == "s3.list" and error.error_type is ErrorType.RESOURCE
    assert f"failed (throttled) after {ATTEMPTS} attempts" in error.message
    assert error.details["attempts"] == ATTEMPTS == proxy.counts.failed
    assert took < 5.0, took  # waits of about 0.25 + 0.5 + 1 s between the tries


def test_an_abort_ends_the_retries_at_once(
    proxy: StallProxy, s3_preflight_bucket: str, monkeypatch, tmp_path: Path
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    proxy.fail_next(10_000)
    control = RunControl()
    threading.Timer(0.4, control.abort, args=("test abort",)).start()
    t0 = time.monotonic()
    result = run_preflight(_config(proxy, s3_preflight_bucket, "never", "native"), AgentIdentity(), control)
    took = time.monotonic() - t0
    assert not result.passed
    assert result.errors[0].details["attempts"] < ATTEMPTS
    assert took < 1.2, took
