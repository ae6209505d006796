"""run_stage: every stage type, completion criteria and the stage time limit."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sbench.config import Completion, StageType
from sbench.control import RunControl
from sbench.engine.stage import StageOutcome, run_stage
from sbench.engine.state import RunState
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.status import StageStatus
from tests.engine.helpers import OneAgent, config_from, make_files


def _plan(stype: StageType, completion: Completion, **kw: object) -> StagePlan:
    return StagePlan(
        name=f"s-{stype.value}", order=1, type=stype, completion=completion, barrier=PhaseBarrier(), **kw
    )  # type: ignore[arg-type]


def _cfg(root: Path, count: int = 20) -> object:
    return config_from(
        f"target: file://{root}/\nconcurrency: 2\nduration: 30s\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: {count}, size_spec: 64}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    )


def _run(
    plan: StagePlan,
    config: object,
    *,
    control: RunControl | None = None,
    on_interval: Callable[[Snapshot], None] = lambda s: None,
    state: RunState | None = None,
) -> StageOutcome:
    """run_stage as agent 0 of 1, with a fresh RunControl unless the test drives its own."""
    return run_stage(plan, config, AgentIdentity(), control or RunControl(), on_interval, state=state)


def test_hybrid_ends_at_expected_tasks(tmp_path: Path) -> None:
    make_files(tmp_path / "data", [f"prepared-{i:08d}.dat" for i in range(20)])
    seen = []
    out = _run(
        _plan(StageType.HYBRID, Completion.DURATION_OR_TASKS, max_duration=30.0, expected_tasks=500),
        _cfg(tmp_path),
        on_interval=seen.append,
    )
    assert out.status is StageStatus.OK and out.details["ended_by"] == "tasks"
    assert 500 <= out.snapshot.total_ops() < 500 + 10
    assert out.elapsed_s < 10
    assert sum(s.total_ops() for s in seen) == out.snapshot.total_ops()


def test_hybrid_ends_at_max_duration(tmp_path: Path) -> None:
    make_files(tmp_path / "data", [f"prepared-{i:08d}.dat" for i in range(20)])
    out = _run(
        _plan(StageType.HYBRID, Completion.DURATION_OR_TASKS, max_duration=0.5, expected_tasks=10**9),
        _cfg(tmp_path),
    )
    assert out.status is StageStatus.OK and out.details["ended_by"] == "duration"
    assert 0.4 < out.elapsed_s < 2


def test_execute_timeout_fails_the_stage_but_not_the_run(tmp_path: Path) -> None:
    make_files(tmp_path / "data", [f"prepared-{i:08d}.dat" for i in range(20)])
    control = RunControl()
    t0 = time.monotonic()
    out = _run(
        _plan(StageType.EXECUTE, Completion.DURATION, duration=30.0, timeout_s=0.5),
        _cfg(tmp_path),
        control=control,
    )
    assert out.status is StageStatus.TIMEOUT and "timeout_secs" in out.reason
    assert time.monotonic() - t0 < 3
    assert not control.stopping and out.snapshot.total_ops() > 0


def test_custom_stage_exit_code_decides(tmp_path: Path) -> None:
    ok = _run(
        _plan(
            StageType.CUSTOM,
            Completion.SCRIPT_EXIT,
            command=sys.executable,
            args=("-c", "print('hello from custom')"),
        ),
        _cfg(tmp_path),
    )
    assert ok.status is StageStatus.OK and ok.details["exit_code"] == 0
    assert "hello from custom" in ok.details["output_tail"]
    bad = _run(
        _plan(
            StageType.CUSTOM,
            Completion.SCRIPT_EXIT,
            command=sys.executable,
            args=("-c", "import sys; print('boom'); sys.exit(3)"),
        ),
        _cfg(tmp_path),
    )
    assert bad.status is StageStatus.FAILED and "code 3" in bad.reason and "boom" in bad.reason
    missing = _run(
        _plan(StageType.CUSTOM, Completion.SCRIPT_EXIT, command="/nonexistent/tool"), _cfg(tmp_path)
    )
    assert missing.status is StageStatus.FAILED and "could not start" in missing.reason


def test_a_stage_reason_quoting_a_credential_is_scrubbed(tmp_path: Path) -> None:
    """A failing command that prints a signed URL: the reason and output tail (console, STATUS.txt,
    summary.json) keep the URL's path, never its signature."""
    script = "print('GET https://acct.blob.example/c/k?sv=1&sig=S3cr3tS1gnature failed'); raise SystemExit(1)"
    bad = _run(
        _plan(StageType.CUSTOM, Completion.SCRIPT_EXIT, command=sys.executable, args=("-c", script)),
        _cfg(tmp_path),
    )
    assert bad.status is StageStatus.FAILED
    assert "https://acct.blob.example/c/k?REDACTED failed" in bad.reason
    assert "S3cr3tS1gnature" not in bad.reason + bad.details["output_tail"]


def test_custom_stage_timeout_and_duration_or_tasks(tmp_path: Path) -> None:
    sleeper = ("-c", "import time; time.sleep(30)")
    t0 = time.monotonic()
    slow = _run(
        _plan(StageType.CUSTOM, Completion.SCRIPT_EXIT, command=sys.executable, args=sleeper, timeout_s=0.5),
        _cfg(tmp_path),
    )
    assert slow.status is StageStatus.TIMEOUT and time.monotonic() - t0 < 5
    soft = _run(
        _plan(
            StageType.CUSTOM, Completion.DURATION_OR_TASKS, command=sys.executable, args=sleeper, duration=0.5
        ),
        _cfg(tmp_path),
    )
    assert soft.status is StageStatus.OK and "duration_or_tasks" in soft.reason


def test_prepare_and_cleanup_stages_share_state(tmp_path: Path) -> None:
    agent = OneAgent(_cfg(tmp_path, count=30))
    prep = agent.prepare(plan=_plan(StageType.PREPARE, Completion.TASKS_DONE))
    assert prep.status is StageStatus.OK and prep.details["created"] == 30
    clean = agent.cleanup(plan=_plan(StageType.CLEANUP, Completion.TASKS_DONE))
    assert clean.status is StageStatus.OK and clean.details["deleted"] == 30
    assert not list((tmp_path / "data").iterdir())


def test_validation_stage_runs_preflight(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    out = _run(_plan(StageType.VALIDATION, Completion.VALIDATION_PASSED), _cfg(tmp_path))
    assert out.status is StageStatus.OK and out.details["preflight"].passed


def test_abort_reaches_a_running_stage(tmp_path: Path) -> None:
    make_files(tmp_path / "data", [f"prepared-{i:08d}.dat" for i in range(20)])
    control = RunControl()
    threading.Timer(0.3, control.abort, args=("Ctrl-C",)).start()
    out = _run(_plan(StageType.EXECUTE, Completion.DURATION, duration=30.0), _cfg(tmp_path), control=control)
    assert out.status is StageStatus.ABORTED and out.reason == "Ctrl-C" and out.elapsed_s < 2
