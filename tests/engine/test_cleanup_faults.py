"""Cleanup under faults (issue 10 #5, #13, and the #3 count of what stays), against real SeaweedFS behind
the loopback fault proxy (tests/faults/proxy.py) throttling the DELETEs, and on file://. (Throttled deletes
retried until nothing is left: tests/faults/test_store_faults.py, S3 and Azure.)

- a retry sleep wakes at once when the run is aborted, and what stays is counted exactly;
- workload PUTs spread over two buckets by a multi-endpoint block are cleaned up in both;
- an abort in the middle of a cleanup reports exactly the objects still on the storage.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from pathlib import Path

import pytest

from sbench.control import RunControl
from sbench.engine.cleanup import CleanupShard, root_label
from sbench.engine.deletes import STORE_DOWN
from sbench.engine.leftovers import NOT_ATTEMPTED
from sbench.engine.workload import run_workload
from sbench.metrics.buckets import OpClass
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import prepare_params
from sbench.storage.file import FileBackend
from sbench.storage.options import BackendOptions
from sbench.storage.uri import parse_uri
from tests import servers
from tests.engine.helpers import OneAgent, config_from
from tests.faults.proxy import Fault, FaultProxy, delete_rules
from tests.storage.fixtures_s3 import hermetic_aws_env, s3_admin_client


@pytest.fixture
def bucket(seaweedfs: servers.LocalServer) -> str:
    name = f"cleanup-{uuid.uuid4().hex[:8]}"
    client = s3_admin_client(seaweedfs)
    client.create_bucket(Bucket=name)
    client.close()
    return name


def _keys(server: servers.LocalServer, bucket: str, prefix: str = "") -> list[str]:
    client = s3_admin_client(server)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))
    finally:
        client.close()


def _s3_config(port: int, bucket: str, count: int, extra: str = "") -> object:
    root = f"s3://127.0.0.1:{port}/{bucket}/run"
    return config_from(
        f"target: {root}/\nconcurrency: 8\nduration: 1s\n{extra}"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: '{root}/data/', count: {count}, size_spec: 1000}}\n"
        "  cleanup: true\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
        "  - {op: put, path: 'puts/', weight: 1, object_size: 500}\n"
    )


def test_a_retry_sleep_wakes_on_abort_and_what_stays_is_counted(
    seaweedfs: servers.LocalServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)
    with FaultProxy(seaweedfs.port) as proxy:
        proxy.set_rules(*delete_rules(Fault.SLOWDOWN))
        slow = "error_handling: {initial_retry_delay_ms: 30000, max_retry_delay_ms: 60000}\n"
        cfg = _s3_config(proxy.port, bucket, 12, slow)
        agent = OneAgent(cfg, run_id="wake")
        assert agent.prepare().created == 12
        control = RunControl()
        box: dict[str, object] = {}
        worker = threading.Thread(target=lambda: box.update(out=agent.cleanup(control)))
        worker.start()
        time.sleep(1.0)  # every delete is now asleep in a 30 s backoff
        aborted_at = time.monotonic()
        control.abort("interrupted by the test")
        worker.join(10)
        took = time.monotonic() - aborted_at
    assert not worker.is_alive() and took < 2.0, took
    out = box["out"]
    data = _keys(seaweedfs, bucket, "run/data/")
    assert len(data) == 12
    assert out.aborted and [(o.left, o.exact) for o in out.leftovers] == [(12, True)]
    where = out.leftovers[0]
    assert where.location == f"s3://127.0.0.1:{proxy.port}/{bucket}/run/data/"
    assert "SlowDown" in where.errors["throttled"]
    assert "interrupted by the test" in where.errors[NOT_ATTEMPTED]


def test_a_store_that_refuses_every_delete_for_a_whole_retry_sequence_is_given_up_on(
    seaweedfs: servers.LocalServer, bucket: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every delete answered 503 (8 threads, 3 retries each, a few ms apart): once one object's whole
    sequence failed with no delete succeeding meanwhile, the store is taken as down and the other objects
    are reported left without a try. Far fewer requests than objects x tries, every object counted."""
    hermetic_aws_env(monkeypatch, tmp_path)
    with FaultProxy(seaweedfs.port) as proxy:
        proxy.set_rules(*delete_rules(Fault.SLOWDOWN))
        quick = "error_handling: {max_retries: 3, initial_retry_delay_ms: 5, max_retry_delay_ms: 10}\n"
        cfg = _s3_config(proxy.port, bucket, 200, quick)
        agent = OneAgent(cfg, run_id="down")
        assert agent.prepare().created == 200
        out = agent.cleanup()
        tries = proxy.counts[Fault.SLOWDOWN.value]
    assert len(_keys(seaweedfs, bucket, "run/data/")) == 200
    assert [(o.left, o.exact) for o in out.leftovers] == [(200, True)]
    where = out.leftovers[0]
    assert "SlowDown" in where.errors["throttled"]
    assert where.errors[STORE_DOWN].startswith("no delete succeeded during a whole retry sequence (3 retries")
    assert tries <= 2 * 8 * 4, tries  # a sequence or two per thread, not 200 x 4 tries


def test_multi_endpoint_puts_are_cleaned_up_in_both_buckets(
    seaweedfs: servers.LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)
    first, second = f"ep-a-{uuid.uuid4().hex[:6]}", f"ep-b-{uuid.uuid4().hex[:6]}"
    client = s3_admin_client(seaweedfs)
    for name in (first, second):
        client.create_bucket(Bucket=name)
    client.put_object(Bucket=second, Key="w/out/foreign.dat", Body=b"not ours")
    client.close()
    base = f"s3://127.0.0.1:{seaweedfs.port}"
    cfg = config_from(
        f"concurrency: 4\nduration: 1s\n"
        f"multi_endpoint:\n  endpoints: ['{base}/{first}/w/', '{base}/{second}/w/']\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: '{base}/{first}/w/', use_multi_endpoint: true, "
        "count: 10, size_spec: 100}\n  cleanup: true\n"
        "workload:\n  - {op: put, path: 'out/', weight: 1, object_size: 100}\n"
    )
    agent = OneAgent(cfg, run_id="twobuckets")
    assert agent.prepare().created == 10
    work = run_workload(cfg, agent.identity, RunControl(), duration_s=0.5, state=agent.state)
    puts = work.snapshot.total_ops(OpClass.PUT)
    assert _keys(seaweedfs, first, "w/out/") and len(_keys(seaweedfs, second, "w/out/")) > 1
    out = agent.cleanup()
    assert _keys(seaweedfs, first) == []
    assert _keys(seaweedfs, second) == ["w/out/foreign.dat"]
    assert (out.deleted, out.put_deleted, out.leftovers) == (10, puts, [])


class _AbortAfterDeletes(FileBackend):
    """The real file backend; the run is aborted (as by Ctrl-C) once `after` objects were deleted."""

    def __init__(self, root: str, control: RunControl, after: int) -> None:
        super().__init__(parse_uri(root), BackendOptions())
        self.control, self.after, self.count = control, after, 0
        self.lock = threading.Lock()

    def delete(self, key: str) -> None:
        super().delete(key)
        with self.lock:
            self.count += 1
            if self.count == self.after:
                self.control.abort("interrupted by the test")


def test_an_aborted_cleanup_reports_exactly_the_objects_that_stay(tmp_path: Path) -> None:
    root = tmp_path / "store"
    cfg = config_from(
        f"target: file://{root}/\nconcurrency: 4\nduration: 1s\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{root}/data/', count: 300, size_spec: 64}}\n"
        "  cleanup: true\nworkload:\n  - {op: get, path: 'data/', weight: 1}\n"
    )
    agent = OneAgent(cfg)
    assert agent.prepare().created == 300
    state = agent.state
    params = prepare_params(cfg, AgentIdentity())[0]
    control = RunControl()
    created = state.prepared[0].created.slice(0, params.total)
    shard = CleanupShard(params, 0, params.total, control, created=created, concurrency=4)
    shard.storage.close()
    shard.storage.backends = [_AbortAfterDeletes(params.base_uri, control, 100)]
    result = shard.begin().finish()
    on_disk = len(list((root / "data").iterdir()))
    assert result.aborted and 0 < on_disk <= 200
    assert [(o.location, o.left, o.exact) for o in result.leftovers] == [
        (root_label(params.base_uri), on_disk, True)
    ]
    assert NOT_ATTEMPTED in result.leftovers[0].errors
    assert len(result.failed) == on_disk and result.deleted == 300 - on_disk
    with contextlib.suppress(FileNotFoundError):
        remaining = {p.name for p in (root / "data").iterdir()}
        assert remaining == {f"prepared-{i:08d}.dat" for i in result.failed}
