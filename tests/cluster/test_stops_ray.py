"""A stall with 2 Ray agents (issue 10 #6): a prepare whose store stalls fails as stalled after
`stall_timeout`, naming the stage. The driver subprocess joins the session's Ray instance (RAY_ADDRESS), so
its times are the run's own. (Ctrl-C in every stage with a stalled store, on Ray too, is in
tests/faults/test_stops.py.)"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import servers
from tests.stallproxy import StallProxy, wait_for
from tests.storage.fixtures_s3 import s3_bucket as s3_bucket
from tests.test_stops import Run, sbench_env, stop_config

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray, pytest.mark.slow]

AGENTS = (
    "distributed:\n  shared_filesystem: true\n  agents:\n"
    "    - {address: '127.0.0.1:1', id: a1}\n    - {address: '127.0.0.1:2', id: a2}\n"
)


@pytest.fixture
def proxy(seaweedfs: servers.LocalServer) -> Iterator[StallProxy]:
    with StallProxy(seaweedfs.port) as p:
        yield p


def ray_env(tmp: Path) -> dict[str, str]:
    return sbench_env(tmp) | {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}


def test_a_prepare_whose_store_stalls_fails_as_stalled_on_ray(
    ray_session: None, proxy: StallProxy, s3_bucket: str, tmp_path: Path
) -> None:
    config = stop_config(
        proxy.port, s3_bucket, duration="1s", count=4000, extra="stall_timeout: 2s\n" + AGENTS
    )
    run = Run(config, tmp_path, ray_env(tmp_path))
    try:
        run.wait_for_stage("prepare")
        time.sleep(0.5)
        proxy.set_mode("stall")
        t0 = time.monotonic()
        assert wait_for(lambda: run.proc.poll() is not None, 60), "the stalled prepare never ended"
        took = time.monotonic() - t0
        print(f"\nprepare stalled on Ray: run ended {took:.2f} s after the store stalled")
    finally:
        run.kill()
    assert run.proc.returncode == 1, run.output()
    status = (run.out / "STATUS.txt").read_text()
    assert status.splitlines()[0] == "TEST STATUS: FAILURE"
    summary = json.loads((run.out / "summary.json").read_text())
    assert "stage 'prepare' failed" in summary["reason"] and "stalled: no progress for" in summary["reason"]
    assert "stall_timeout is 2 s" in summary["reason"]
    assert [s["name"] for s in summary["stages"]][-2:] == ["prepare", "cleanup"]  # cleanup still ran
    # the stage ran 0.5 s, then 2 s without progress, a poll of the shard and the grace (slack: 2.5 s)
    ended = re.search(r"== stage prepare failed after ([\d.]+)s", run.log())
    assert ended and float(ended.group(1)) < 0.5 + 2.0 + 1.0 + 2.5, ended
    assert took < 30, took  # cleanup against the stalled store fails as stalled too, then the run ends
