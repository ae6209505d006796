"""run_stage: one stage of the plan on one agent, with its completion criterion and time limit enforced.

Stage types (reference §1.10): execute (workload for `duration`), prepare, cleanup, validation (preflight),
custom (`command` + `args`; the exit code decides), hybrid (the workload until `max_duration` or
`expected_tasks` ops, whichever comes first). sai3 only logged `completion` and `timeout_secs`; here:
- `timeout_s` aborts the stage when it runs longer (status `timeout`, a failure);
- `duration_or_tasks` on prepare, cleanup and custom stages ends them cleanly after `duration`
  (or `max_duration`) even if the work is not done (status `ok`, reason says so);
- a run-wide abort (Ctrl-C) reaches the stage through RunControl and returns partial results within ~1 s.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from sbench.engine.context import AgentIdentity, RunControl
from sbench.engine.state import RunState
from sbench.metrics.progress import ProgressCounters
from sbench.metrics.snapshot import Snapshot

#: how much of a custom command's output is kept for the console and STATUS.txt
OUTPUT_TAIL = 2000


class StageStatus(StrEnum):
    OK = "ok"
    FAILED = "failed"
    TIMEOUT = "timeout"
    ABORTED = "aborted"


@dataclass
class StageOutcome:
    """What one stage did on one agent."""

    name: str
    type: str
    status: StageStatus
    reason: str
    snapshot: Snapshot
    progress: ProgressCounters
    elapsed_s: float
    #: stage-specific figures (created/existed/deleted, exit code, preflight checks, load model...)
    details: dict[str, Any] = field(default_factory=dict)
    first_error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is StageStatus.OK


def _type(plan: Any) -> str:
    return str(getattr(plan.type, "value", plan.type))


def _completion(plan: Any) -> str:
    return str(getattr(plan.completion, "value", plan.completion) or "")


class _StageTimers:
    """The stage's timeout (abort, a failure) and its duration_or_tasks limit (stop, a success)."""

    def __init__(self, control: RunControl, timeout_s: float | None, soft_limit_s: float | None) -> None:
        self.timed_out = False
        self.soft_stopped = False
        self._timers: list[threading.Timer] = []
        if timeout_s:
            self._start(timeout_s, self._timeout, control, timeout_s)
        if soft_limit_s:
            self._start(soft_limit_s, self._soft, control, soft_limit_s)

    def _start(
        self, after: float, fn: Callable[[RunControl, float], None], control: RunControl, value: float
    ) -> None:
        timer = threading.Timer(after, fn, args=(control, value))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def _timeout(self, control: RunControl, value: float) -> None:
        self.timed_out = True
        control.abort(f"stage time limit of {value:g} s (timeout_secs) exceeded")

    def _soft(self, control: RunControl, value: float) -> None:
        self.soft_stopped = True
        control.stop(f"duration {value:g} s reached (completion: duration_or_tasks)")

    def cancel(self) -> None:
        for timer in self._timers:
            timer.cancel()


def _status(
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    failed: bool,
    reason: str,
    default_reason: str,
) -> tuple[StageStatus, str]:
    if parent.aborted:
        return StageStatus.ABORTED, parent.reason
    if timers.timed_out:
        return StageStatus.TIMEOUT, stage.reason
    if stage.aborted or failed:
        return StageStatus.FAILED, reason or stage.reason
    return StageStatus.OK, reason or default_reason


def run_stage(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    control: RunControl,
    on_interval: Callable[[Snapshot], None],
    *,
    state: RunState | None = None,
    cleanup_only: bool = False,
    backends: Any = None,
) -> StageOutcome:
    """Run one stage on this agent and report what it did; never raises for storage or stage failures."""
    stype = _type(plan)
    completion = _completion(plan)
    soft = None
    if completion == "duration_or_tasks" and stype in ("prepare", "cleanup", "custom"):
        soft = plan.duration or plan.max_duration
    stage_control = control.child()
    timers = _StageTimers(stage_control, plan.timeout_s, soft)
    t0 = time.monotonic()
    try:
        runner = _RUNNERS.get(stype)
        if runner is None:
            raise ValueError(f"stage {plan.name!r}: unknown stage type {stype!r}")
        return runner(
            plan,
            config,
            identity,
            control,
            stage_control,
            timers,
            on_interval,
            state,
            cleanup_only,
            backends,
            t0,
        )
    finally:
        timers.cancel()
        control.release(stage_control)


def _progress(snapshot: Snapshot, identity: AgentIdentity, name: str) -> ProgressCounters:
    return snapshot.progress.get(identity.agent_id) or ProgressCounters(stage=name)


def _execute(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    on_interval: Callable[[Snapshot], None],
    state: RunState | None,
    cleanup_only: bool,
    backends: Any,
    t0: float,
) -> StageOutcome:
    from sbench.engine.workload import run_workload

    hybrid = _type(plan) == "hybrid"
    duration = (plan.max_duration if hybrid else plan.duration) or config.duration
    max_ops = plan.expected_tasks if hybrid else None
    result = run_workload(
        config,
        identity,
        stage,
        on_interval,
        duration_s=duration,
        max_ops=max_ops,
        stage_name=plan.name,
        state=state,
        backends=backends,
    )
    status, reason = _status(
        parent, stage, timers, result.ended_by == "aborted", result.reason, result.reason
    )
    details = {
        "ended_by": result.ended_by,
        "workers": result.workers,
        "open_loop": result.open_loop,
        "deleted": result.deleted,
        "duration_s": duration,
        **result.extra,
    }
    if max_ops:
        details["expected_tasks"] = max_ops
    return StageOutcome(
        plan.name,
        _type(plan),
        status,
        reason,
        result.snapshot,
        _progress(result.snapshot, identity, plan.name),
        result.elapsed_s,
        details,
        result.first_error,
    )


def _prepare(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    on_interval: Callable[[Snapshot], None],
    state: RunState | None,
    cleanup_only: bool,
    backends: Any,
    t0: float,
) -> StageOutcome:
    from sbench.engine.prepare import run_prepare

    out = run_prepare(config, identity, stage, on_interval, state=state, stage_name=plan.name)
    reason = out.reason or (f"created {out.created:,} objects, {out.existed:,} existed")
    if timers.soft_stopped and not parent.aborted:
        reason = f"{stage.reason}; created {out.created:,} objects, {out.existed:,} existed"
        status = StageStatus.OK
    else:
        status, reason = _status(parent, stage, timers, out.aborted or out.failed > 0, out.reason, reason)
    return StageOutcome(
        plan.name,
        "prepare",
        status,
        reason,
        out.snapshot,
        _progress(out.snapshot, identity, plan.name),
        out.elapsed_s,
        {
            "created": out.created,
            "existed": out.existed,
            "failed": out.failed,
            "bytes": out.nbytes,
            "expected_objects": plan.expected_objects,
        },
        out.first_error,
    )


def _cleanup(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    on_interval: Callable[[Snapshot], None],
    state: RunState | None,
    cleanup_only: bool,
    backends: Any,
    t0: float,
) -> StageOutcome:
    from sbench.engine.cleanup import run_cleanup

    if getattr(config, "prepare", None) is None:
        return StageOutcome(
            plan.name,
            "cleanup",
            StageStatus.OK,
            "no prepare block: nothing to clean up",
            Snapshot(),
            ProgressCounters(stage=plan.name),
            0.0,
        )
    out = run_cleanup(
        config, identity, stage, on_interval, state=state, cleanup_only=cleanup_only, stage_name=plan.name
    )
    default = f"deleted {out.deleted:,} prepared and {out.put_deleted:,} workload objects"
    if timers.soft_stopped and not parent.aborted:
        status, reason = StageStatus.OK, f"{stage.reason}; {default}"
    else:
        status, reason = _status(parent, stage, timers, out.aborted or bool(out.reason), out.reason, default)
    return StageOutcome(
        plan.name,
        "cleanup",
        status,
        reason,
        out.snapshot,
        _progress(out.snapshot, identity, plan.name),
        out.elapsed_s,
        {"deleted": out.deleted, "put_deleted": out.put_deleted, "failed": out.failed, "notes": out.notes},
        out.first_error,
    )


def _validation(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    on_interval: Callable[[Snapshot], None],
    state: RunState | None,
    cleanup_only: bool,
    backends: Any,
    t0: float,
) -> StageOutcome:
    from sbench.preflight import run_preflight

    result = run_preflight(config, identity)
    failed = not result.passed
    reason = result.failure_message() if failed else result.summary_line()
    status, reason = _status(parent, stage, timers, failed, reason, reason)
    return StageOutcome(
        plan.name,
        "validation",
        status,
        reason,
        Snapshot(),
        ProgressCounters(stage=plan.name),
        time.monotonic() - t0,
        {"preflight": result},
    )


def _custom(
    plan: Any,
    config: Any,
    identity: AgentIdentity,
    parent: RunControl,
    stage: RunControl,
    timers: _StageTimers,
    on_interval: Callable[[Snapshot], None],
    state: RunState | None,
    cleanup_only: bool,
    backends: Any,
    t0: float,
) -> StageOutcome:
    if not plan.command:
        return StageOutcome(
            plan.name,
            "custom",
            StageStatus.FAILED,
            "custom stage without `command`",
            Snapshot(),
            ProgressCounters(stage=plan.name),
            0.0,
        )
    argv = [plan.command, *plan.args]
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        return StageOutcome(
            plan.name,
            "custom",
            StageStatus.FAILED,
            f"could not start {plan.command!r}: {exc.strerror or exc}",
            Snapshot(),
            ProgressCounters(stage=plan.name),
            time.monotonic() - t0,
            {"argv": argv},
        )
    chunks: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: chunks.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    while proc.poll() is None:
        if stage.wait(0.1):
            proc.terminate()
            try:
                proc.wait(2.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            break
    reader.join(1.0)
    code = proc.returncode
    tail = "".join(chunks)[-OUTPUT_TAIL:].strip()
    if timers.soft_stopped and not parent.aborted:
        status, reason = StageStatus.OK, f"{stage.reason}; command stopped"
    else:
        failed = code != 0
        why = f"{plan.command} exited with code {code}" + (
            f": {tail.splitlines()[-1]}" if failed and tail else ""
        )
        status, reason = _status(parent, stage, timers, failed and not stage.stopping, why, why)
    return StageOutcome(
        plan.name,
        "custom",
        status,
        reason,
        Snapshot(),
        ProgressCounters(stage=plan.name),
        time.monotonic() - t0,
        {"argv": argv, "exit_code": code, "output_tail": tail},
    )


_RUNNERS = {
    "execute": _execute,
    "hybrid": _execute,
    "prepare": _prepare,
    "cleanup": _cleanup,
    "validation": _validation,
    "custom": _custom,
}
