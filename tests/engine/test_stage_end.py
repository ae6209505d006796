"""The end of a workload stage, with file:// probes that fail, hang or slow every op (issue 10 #6, #7): error
backoffs and retry waits end at the deadline, ops left in flight are counted as unfinished, rates use the
measured window, and a stage without progress fails as stalled, naming the stage."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from sbench.config import Completion, StageType
from sbench.control import RunControl
from sbench.engine import workload
from sbench.engine.stage import run_stage
from sbench.engine.workload import run_workload
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.status import StageStatus
from sbench.storage.base import ErrorClass, StorageError
from tests.engine.helpers import ProbeBackend, backends_with, config_from, make_files

NAMES = [f"f{i:03d}" for i in range(20)]


class _TimedFailingGets(ProbeBackend):
    """Every GET fails with a network error; the start time of every call is kept."""

    def __init__(self, root_uri: str) -> None:
        super().__init__(root_uri)
        self.starts: list[float] = []

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self.starts.append(time.monotonic())
        raise StorageError(ErrorClass.NETWORK, "injected failure", uri=self.uri_of(key))


def _cfg(root: Path, extra: str, concurrency: int = 2) -> object:
    return config_from(
        f"duration: 5s\nconcurrency: {concurrency}\ntarget: file://{root}/\n{extra}"
        'workload:\n  - {op: get, path: "d/*", weight: 1}\n'
    )


def _run(cfg: object, root: Path, probe: ProbeBackend, duration_s: float, **kw: object):  # type: ignore[no-untyped-def]
    backends = backends_with(cfg, f"file://{root}/", probe)
    return run_workload(
        cfg, AgentIdentity(run_id="end"), RunControl(), duration_s=duration_s, backends=backends, **kw
    )


def test_error_backoff_ends_at_the_deadline_and_no_op_follows(tmp_path: Path) -> None:
    """sai3's backoff (error_rate_threshold -> backoff_duration) slept past the deadline and then ran one more
    op: a 15 s stage took 19.8 s. Now the sleep ends with the stage and nothing starts after it."""
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        "error_handling: {error_rate_threshold: 1, error_rate_window: 1s, backoff_duration: 30s,\n"
        "  max_total_errors: 0}\n",
    )
    probe = _TimedFailingGets(f"file://{tmp_path}/")
    t0 = time.monotonic()
    res = _run(cfg, tmp_path, probe, duration_s=1.5)
    took = time.monotonic() - t0
    assert res.extra["backoffs"] >= 1  # the workers really were in a 30 s backoff when the stage ended
    assert took < 2.5, took
    assert abs(res.elapsed_s - 1.5) < 0.3, res.elapsed_s
    assert not [s for s in probe.starts if s > t0 + 1.6]  # no op started after the deadline


def test_retry_wait_cut_by_the_deadline_is_unfinished_not_failed(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        "error_handling: {retry_on_error: true, max_retries: 3, initial_retry_delay_ms: 5000,\n"
        "  retry_jitter_factor: 0, error_rate_threshold: 0, max_total_errors: 0}\n",
        concurrency=3,
    )
    probe = _TimedFailingGets(f"file://{tmp_path}/")
    t0 = time.monotonic()
    res = _run(cfg, tmp_path, probe, duration_s=1.0)
    took = time.monotonic() - t0
    assert took < 2.0, took
    # each worker's first try failed at once; its retry (5 s later) would have started after the stage
    assert len(probe.starts) == 3 and res.snapshot.errors_total() == 0
    assert res.snapshot.unfinished_ops == res.extra["unfinished_ops"] == 3
    assert abs(res.elapsed_s - 1.0) < 0.3, res.elapsed_s


def test_ops_outliving_the_drain_are_counted_as_unfinished(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every op takes 3 s; at the 0.5 s deadline three are in flight, and the drain (shortened to 0.5 s here)
    ends before they do: they are counted, in the result and in the stage's last interval, and the rates'
    window is the stage's 0.5 s, not the time spent waiting for them."""
    monkeypatch.setattr(workload, "DRAIN_S", 0.5)
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, "", concurrency=3)
    probe = ProbeBackend(f"file://{tmp_path}/", op_sleep_s=3.0)
    seen: list[Snapshot] = []
    res = _run(cfg, tmp_path, probe, duration_s=0.5, on_interval=seen.append)
    assert res.snapshot.total_ops() == 0
    assert res.snapshot.unfinished_ops == 3 == res.extra["unfinished_ops"]
    assert seen and seen[-1].unfinished_ops == 3 and sum(s.unfinished_ops for s in seen) == 3
    assert abs(res.elapsed_s - 0.5) < 0.2, res.elapsed_s


def test_ops_finishing_in_the_drain_count_and_extend_the_window(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, "", concurrency=2)
    probe = ProbeBackend(f"file://{tmp_path}/", op_sleep_s=0.8)
    res = _run(cfg, tmp_path, probe, duration_s=0.5)
    assert res.snapshot.unfinished_ops == 0
    assert res.snapshot.total_ops() == 2  # the two ops in flight at the deadline finished and were measured
    assert 0.75 < res.elapsed_s < 1.1, res.elapsed_s  # window: first op start -> last op end (~0.8 s)


def _execute_plan(name: str = "steady") -> StagePlan:
    return StagePlan(
        name=name,
        order=1,
        type=StageType.EXECUTE,
        completion=Completion.DURATION,
        barrier=PhaseBarrier(),
        duration=30.0,
    )


def test_a_workload_without_progress_fails_as_stalled_naming_the_stage(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, "stall_timeout: 1s\nperf_log: {interval: 0.25s}\n")
    probe = ProbeBackend(f"file://{tmp_path}/")
    probe.stall(0.4, 60.0)  # every op from 0.4 s on hangs
    backends = backends_with(cfg, f"file://{tmp_path}/", probe)
    t0 = time.monotonic()
    out = run_stage(_execute_plan(), cfg, AgentIdentity(), RunControl(), lambda s: None, backends=backends)
    took = time.monotonic() - t0
    assert out.status is StageStatus.FAILED
    assert "stage 'steady' stalled: no progress for" in out.reason and "stall_timeout is 1 s" in out.reason
    assert out.details["ended_by"] == "stalled"
    assert out.snapshot.total_ops() > 0 and out.snapshot.unfinished_ops == 2
    assert took < 3.5, took  # 0.4 s of work, 1 s without progress (checked every interval), 0.9 s grace


def test_an_abort_while_every_op_hangs_returns_within_the_grace(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, "perf_log: {interval: 10s}\n")  # the stop must not wait for the next interval
    probe = ProbeBackend(f"file://{tmp_path}/")
    probe.stall(0.3, 60.0)
    control = RunControl()
    threading.Timer(1.0, control.abort, args=("test abort",)).start()
    backends = backends_with(cfg, f"file://{tmp_path}/", probe)
    t0 = time.monotonic()
    out = run_stage(_execute_plan(), cfg, AgentIdentity(), control, lambda s: None, backends=backends)
    took = time.monotonic() - t0
    assert out.status is StageStatus.ABORTED and out.snapshot.unfinished_ops == 2
    assert took < 2.4, took  # abort at 1.0 s + 0.9 s grace
    assert 0.9 < out.elapsed_s < 1.2, out.elapsed_s  # the window ends at the abort, not after the grace
