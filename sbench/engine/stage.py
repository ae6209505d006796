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
from typing import Any

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.bounded import GRACE_S, POLL_S, Abandoned, call_bounded
from sbench.engine.state import RunState
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import StagePlan
from sbench.status import StageStatus
from sbench.storage.scrub import scrub_message

#: how much of a custom command's output is kept for the console and STATUS.txt
OUTPUT_TAIL = 2000


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


@dataclass
class _StageRun:
    """One stage on one agent, as every stage type's runner sees it: the plan, the agent, the run's control
    (`parent`) and the stage's own (`stage`, which the timers stop or abort)."""

    plan: Any
    config: Config
    identity: AgentIdentity
    parent: RunControl
    stage: RunControl
    timers: _StageTimers
    on_interval: Callable[[Snapshot], None]
    state: RunState | None
    backends: Any
    t0: float

    @property
    def soft_stopped(self) -> bool:
        """The duration_or_tasks limit ended the stage (a success) and no run-wide abort came first."""
        return self.timers.soft_stopped and not self.parent.aborted

    def status(self, failed: bool, reason: str, default_reason: str) -> tuple[StageStatus, str]:
        """Status and reason by precedence: a run-wide abort, then the stage timeout, then the stage's own
        failure, else OK."""
        if self.parent.aborted:
            return StageStatus.ABORTED, self.parent.reason
        if self.timers.timed_out:
            return StageStatus.TIMEOUT, self.stage.reason
        if self.stage.aborted or failed:
            return StageStatus.FAILED, reason or self.stage.reason
        return StageStatus.OK, reason or default_reason

    def outcome(
        self,
        status: StageStatus,
        reason: str,
        snapshot: Snapshot | None = None,
        elapsed_s: float | None = None,
        details: dict[str, Any] | None = None,
        first_error: str = "",
    ) -> StageOutcome:
        """The stage's outcome; progress comes from the snapshot (this agent's counters) when it has any.
        The reason and first error may quote a storage client's message: they are scrubbed of credentials
        here, before they reach the console, the result files or Ray."""
        snapshot = snapshot if snapshot is not None else Snapshot()
        name = self.plan.name
        return StageOutcome(
            name,
            _type(self.plan),
            status,
            scrub_message(reason),
            snapshot,
            snapshot.progress.get(self.identity.agent_id) or ProgressCounters(stage=name),
            time.monotonic() - self.t0 if elapsed_s is None else elapsed_s,
            details or {},
            scrub_message(first_error),
        )


def run_stage(
    plan: StagePlan,
    config: Config,
    identity: AgentIdentity,
    control: RunControl,
    on_interval: Callable[[Snapshot], None],
    *,
    state: RunState | None = None,
    backends: Any = None,
) -> StageOutcome:
    """Run one stage on this agent and report what it did; never raises for storage or stage failures."""
    stype = _type(plan)
    stage_control = control.child()
    timers = _StageTimers(stage_control, plan.timeout_s, plan.soft_limit_s)
    t0 = time.monotonic()
    try:
        runner = _RUNNERS.get(stype)
        if runner is None:
            raise ValueError(f"stage {plan.name!r}: unknown stage type {stype!r}")
        return runner(
            _StageRun(
                plan,
                config,
                identity,
                control,
                stage_control,
                timers,
                on_interval,
                state,
                backends,
                t0,
            )
        )
    finally:
        timers.cancel()
        control.release(stage_control)


def _execute(run: _StageRun) -> StageOutcome:
    from sbench.engine.workload import run_workload

    plan, config = run.plan, run.config
    hybrid = _type(plan) == "hybrid"
    duration = plan.run_for_s or config.duration
    max_ops = plan.expected_tasks if hybrid else None
    result = run_workload(
        config,
        run.identity,
        run.stage,
        run.on_interval,
        duration_s=duration,
        max_ops=max_ops,
        stage_name=plan.name,
        state=run.state,
        backends=run.backends,
    )
    status, reason = run.status(result.ended_by in ("aborted", "stalled"), result.reason, result.reason)
    details = {
        "ended_by": result.ended_by,
        "workers": result.workers,
        "open_loop": result.open_loop,
        "deleted": result.deleted,
        "duration_s": duration,
        **result.extra,
    }
    if result.notes:
        details["notes"] = result.notes
    if max_ops:
        details["expected_tasks"] = max_ops
    return run.outcome(status, reason, result.snapshot, result.elapsed_s, details, result.first_error)


def _validation(run: _StageRun) -> StageOutcome:
    from sbench.preflight import run_preflight
    from sbench.preflight.result import CheckList, PreflightResult, unfinished_check

    checks = CheckList(agent_id=run.identity.agent_id)
    try:
        # on its own thread: a check stuck in a call to a store that does not answer never holds up a stop
        result = call_bounded(
            lambda: run_preflight(run.config, run.identity, run.stage, checks),
            run.stage,
            name="sbench-preflight",
        )
    except Abandoned:
        status, reason = run.status(True, run.stage.reason, run.stage.reason)
        stuck = unfinished_check(run.stage.reason, agent_id=run.identity.agent_id, endpoint=checks.endpoint)
        details = {
            "unfinished_ops": 1,
            "notes": ["a preflight check was still waiting for its store"],
            "preflight": PreflightResult(checks=[*checks.checks, stuck]),
        }
        return run.outcome(status, reason, Snapshot(unfinished_ops=1), details=details)
    failed = not result.passed
    reason = result.failure_message() if failed else result.summary_line()
    status, reason = run.status(failed, reason, reason)
    return run.outcome(status, reason, details={"preflight": result})


def _custom(run: _StageRun) -> StageOutcome:
    plan, stage = run.plan, run.stage
    if not plan.command:
        return run.outcome(StageStatus.FAILED, "custom stage without `command`", elapsed_s=0.0)
    argv = [plan.command, *plan.args]
    try:
        proc = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
        )
    except OSError as exc:
        reason = f"could not start {plan.command!r}: {exc.strerror or exc}"
        return run.outcome(StageStatus.FAILED, reason, details={"argv": argv})
    chunks: list[str] = []
    stdout = proc.stdout
    assert stdout is not None
    reader = threading.Thread(target=lambda: chunks.extend(iter(stdout.readline, "")), daemon=True)
    reader.start()
    while proc.poll() is None:
        if stage.wait(POLL_S):
            proc.terminate()
            try:  # SIGTERM first; what is still running when the stop's grace is over gets SIGKILL
                proc.wait(max(0.0, GRACE_S - (time.monotonic_ns() - stage.halted_at_ns) / 1e9))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            break
    reader.join(POLL_S if stage.stopping else 1.0)
    code = proc.returncode
    tail = scrub_message("".join(chunks)[-OUTPUT_TAIL:].strip())
    if run.soft_stopped:
        status, reason = StageStatus.OK, f"{stage.reason}; command stopped"
    else:
        failed = code != 0
        why = f"{plan.command} exited with code {code}" + (
            f": {tail.splitlines()[-1]}" if failed and tail else ""
        )
        status, reason = run.status(failed and not stage.stopping, why, why)
    return run.outcome(status, reason, details={"argv": argv, "exit_code": code, "output_tail": tail})


_RUNNERS = {
    "execute": _execute,
    "hybrid": _execute,
    "validation": _validation,
    "custom": _custom,
}
