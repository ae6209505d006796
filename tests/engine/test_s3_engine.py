"""Prepare, workload and cleanup against SeaweedFS through both S3 drivers: native (obstore, asyncio tasks
pinned with `workers.mode: asyncio`, since `auto` picks threads for these small objects) and sdk (boto3,
threads); then which path each `workers` setting takes on the native driver."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import pytest

from sbench.control import RunControl
from sbench.engine.workload import run_workload
from sbench.metrics.buckets import OpClass
from tests import servers
from tests.engine.helpers import OneAgent, config_from
from tests.storage.fixtures_s3 import hermetic_aws_env, s3_admin_client

BUCKET = "sbench-engine"


@pytest.fixture(scope="module")
def bucket(seaweedfs: servers.LocalServer) -> str:
    client = s3_admin_client(seaweedfs)
    with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
        client.create_bucket(Bucket=BUCKET)
    client.close()
    return BUCKET


@pytest.mark.parametrize("driver", ["native", "sdk"])
def test_s3_round_trip(seaweedfs: servers.LocalServer, bucket: str, driver: str, tmp_path: Path,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)
    root = f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/{driver}"
    client = s3_admin_client(seaweedfs)
    client.put_object(Bucket=bucket, Key=f"{driver}/data/foreign.txt", Body=b"not ours")
    workers = "workers: {mode: asyncio}\n" if driver == "native" else ""
    cfg = config_from(
        f"target: {root}/\nconcurrency: 4\nduration: 1s\ndriver: {driver}\n{workers}"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: '{root}/data/', count: 40, size_spec: 3000}}\n"
        "  cleanup: true\n"
        "workload:\n  - {op: get, path: 'data/prepared-*.dat', weight: 6}\n"
        "  - {op: put, path: 'puts/', weight: 2, object_size: 2000}\n"
        "  - {op: stat, path: 'data/prepared-*.dat', weight: 1}\n  - {op: list, path: 'data/', weight: 1}\n")
    agent = OneAgent(cfg, run_id=f"s3{driver}")
    prep = agent.prepare()
    assert (prep.created, prep.failed) == (40, 0)
    again = OneAgent(cfg).prepare()
    assert (again.created, again.existed) == (0, 40)  # gap fill by LIST on S3 too
    res = run_workload(cfg, agent.identity, RunControl(), duration_s=1.0, state=agent.state)
    snap = res.snapshot
    assert res.extra["async"] is (driver == "native")
    assert snap.errors_total() == 0, res.first_error
    assert snap.total_ops(OpClass.GET) > 0 and snap.total_ops(OpClass.PUT) > 0
    assert snap.total_bytes(OpClass.GET) == 3000 * snap.total_ops(OpClass.GET)
    out = agent.cleanup()
    assert out.deleted == 40 and out.put_deleted == snap.total_ops(OpClass.PUT) and out.failed == 0
    left = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix=f"{driver}/").get("Contents", [])]
    client.close()
    assert left == [f"{driver}/data/foreign.txt"]


@pytest.mark.parametrize(("workers", "path"), [
    ("{mode: threads}", "sync"), ("{event_loop: uvloop}", "uvloop"), ("{mode: asyncio}", "asyncio"),
    ("{mode: auto}", "sync"),
])
def test_s3_native_workers_setting(seaweedfs: servers.LocalServer, bucket: str, workers: str, path: str,
                                   tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`workers: {mode: threads}` runs the native driver's sync calls on threads; `{event_loop: uvloop}`
    runs its async calls on uvloop's event loop, `{mode: asyncio}` on asyncio's; `auto` picks threads for
    4 workers and objects of 3000 B (engine.workermode). Every call still reaches SeaweedFS; the probe only
    notes which path (and, for async calls, which event loop) served it."""
    from sbench.storage.s3_native import S3NativeBackend

    hermetic_aws_env(monkeypatch, tmp_path)
    seen: list[str] = []
    sync_get, async_get = S3NativeBackend.get, S3NativeBackend.get_async

    def probe_get(self: S3NativeBackend, key: str) -> object:
        seen.append("sync")
        return sync_get(self, key)

    async def probe_get_async(self: S3NativeBackend, key: str) -> object:
        seen.append(type(asyncio.get_running_loop()).__module__.split(".")[0])
        return await async_get(self, key)

    monkeypatch.setattr(S3NativeBackend, "get", probe_get)
    monkeypatch.setattr(S3NativeBackend, "get_async", probe_get_async)
    root = f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/workers-{uuid.uuid4().hex[:6]}"
    cfg = config_from(
        f"target: {root}/\nconcurrency: 4\nduration: 1s\ndriver: native\nworkers: {workers}\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: '{root}/data/', count: 8, size_spec: 3000}}\n"
        "workload:\n  - {op: get, path: 'data/prepared-*.dat', weight: 3}\n"
        "  - {op: put, path: 'puts/', weight: 1, object_size: 2000}\n")
    agent = OneAgent(cfg)
    assert agent.prepare().created == 8
    res = run_workload(cfg, agent.identity, RunControl(), duration_s=0.5, state=agent.state)
    snap = res.snapshot
    assert snap.errors_total() == 0, res.first_error
    gets = snap.total_ops(OpClass.GET)
    assert snap.total_ops(OpClass.PUT) > 0 and snap.total_bytes(OpClass.GET) == 3000 * gets
    threads = path == "sync"
    assert res.extra["async"] is not threads
    assert res.extra["worker_mode"] == ("threads" if threads else "asyncio")
    assert len(seen) >= gets > 0  # an op cut off at the end is called but not counted
    assert set(seen) == {path}
