"""Stages against an S3 endpoint that accepts connections and never answers (tests/stallproxy.py without an
upstream), in process (issue 10 #6): an abort ends every stage within the grace period whatever the storage
does, the calls left in flight are counted, and a stage without progress fails as stalled after
`stall_timeout`. The default request_timeout (2 min) stays in force, so nothing here ends by a timeout."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sbench.config import Completion, StageType
from sbench.control import RunControl
from sbench.engine.prepare import verify_prepared
from sbench.engine.stage import run_stage
from sbench.engine.state import RunState
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.status import StageStatus
from tests.engine.helpers import OneAgent, config_from
from tests.stallproxy import StallProxy
from tests.storage.fixtures_s3 import hermetic_aws_env

ABORT_AT_S = 0.5
#: abort at 0.5 s, 0.9 s of grace, and slack for a loaded 2-core machine
BOUND_S = 2.5


@pytest.fixture
def silent_s3(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[tuple[StallProxy, str]]:
    hermetic_aws_env(monkeypatch, tmp_path)
    with StallProxy() as server:
        yield server, f"s3://127.0.0.1:{server.port}/silent/run"


def _config(root: str, extra: str = "", prepare: str = "", workload: str = "") -> object:
    return config_from(
        f"target: {root}/\nconcurrency: 3\nduration: 30s\n{extra}"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: '{root}/data/', count: 50, size_spec: 1024}}\n{prepare}"
        + (workload or "workload:\n  - {op: get, path: 'data/', weight: 1}\n")
    )


def _plan(stype: StageType, completion: Completion) -> StagePlan:
    return StagePlan(
        name=f"my-{stype.value}", order=1, type=stype, completion=completion, barrier=PhaseBarrier()
    )


def _aborted_run(plan: StagePlan, config: object, agent: OneAgent | None = None) -> tuple[Any, float]:
    """The stage aborted after ABORT_AT_S: prepare and cleanup as the in-process fleet runs them, the other
    stage types by the engine."""
    control = RunControl()
    threading.Timer(ABORT_AT_S, control.abort, args=("test abort",)).start()
    t0 = time.monotonic()
    if plan.type is StageType.PREPARE:
        out: Any = (agent or OneAgent(config)).prepare(control, plan)
    elif plan.type is StageType.CLEANUP:
        out = (agent or OneAgent(config)).cleanup(control, plan)
    else:
        out = run_stage(plan, config, AgentIdentity(), control, lambda s: None, state=RunState())
    return out, time.monotonic() - t0


def test_abort_during_the_gap_fill_list_is_bounded(silent_s3: tuple[StallProxy, str]) -> None:
    server, root = silent_s3
    out, took = _aborted_run(_plan(StageType.PREPARE, Completion.TASKS_DONE), _config(root))
    assert server.counts.stalled >= 1
    assert out.status is StageStatus.ABORTED and out.reason == "test abort"
    assert out.snapshot.unfinished_ops == 1  # the LIST
    assert took < BOUND_S, took


def test_abort_while_prepare_puts_hang_is_bounded(silent_s3: tuple[StallProxy, str]) -> None:
    server, root = silent_s3
    config = _config(root, prepare="  force_overwrite: true\n")  # no LIST: straight to the PUTs
    out, took = _aborted_run(_plan(StageType.PREPARE, Completion.TASKS_DONE), config)
    assert server.counts.stalled >= 3
    assert out.status is StageStatus.ABORTED and out.details["created"] == 0
    assert out.snapshot.unfinished_ops == 3  # one PUT per thread
    assert took < BOUND_S, took


def test_abort_while_cleanup_deletes_and_lists_hang_is_bounded(silent_s3: tuple[StallProxy, str]) -> None:
    _, root = silent_s3
    config = _config(root, workload="workload:\n  - {op: put, path: 'out/', weight: 1, object_size: 100}\n")
    agent = OneAgent(config)
    agent.record_created()
    out, took = _aborted_run(_plan(StageType.CLEANUP, Completion.TASKS_DONE), config, agent)
    assert out.status is StageStatus.ABORTED
    # three deletes of prepared objects, and the LIST of the workload PUT objects (its consumers were idle)
    assert out.snapshot.unfinished_ops == 4, out.snapshot.unfinished_ops
    assert took < BOUND_S, took


def test_abort_of_preflight_is_bounded(silent_s3: tuple[StallProxy, str]) -> None:
    _, root = silent_s3
    out, took = _aborted_run(_plan(StageType.VALIDATION, Completion.VALIDATION_PASSED), _config(root))
    assert out.status is StageStatus.ABORTED and out.snapshot.unfinished_ops == 1
    assert took < BOUND_S, took


def test_abort_of_verify_is_bounded(silent_s3: tuple[StallProxy, str]) -> None:
    _, root = silent_s3
    control = RunControl()
    threading.Timer(ABORT_AT_S, control.abort, args=("test abort",)).start()
    t0 = time.monotonic()
    ok, lines = verify_prepared(_config(root), AgentIdentity(), control)
    took = time.monotonic() - t0
    assert not ok and "not verified: test abort" in lines[0]
    assert took < BOUND_S, took


@pytest.mark.parametrize(
    ("prepare", "where"),
    [("", "the gap-fill LIST of"), ("  force_overwrite: true\n", "prepare of")],
    ids=["list", "puts"],
)
def test_a_prepare_whose_store_stalls_fails_as_stalled(
    silent_s3: tuple[StallProxy, str], prepare: str, where: str
) -> None:
    _, root = silent_s3
    config = _config(root, extra="stall_timeout: 1s\n", prepare=prepare)
    t0 = time.monotonic()
    out = OneAgent(config).prepare(plan=_plan(StageType.PREPARE, Completion.TASKS_DONE))
    took = time.monotonic() - t0
    assert out.status is StageStatus.FAILED
    assert f"{where} {root}/data/ stalled: no progress for" in out.reason, out.reason
    assert out.snapshot.unfinished_ops >= 1
    assert took < 3.5, took  # 1 s without progress, 0.9 s of grace
