"""Running one agent stage from the driver: hand it to every participant, follow it, decide when it is over.

The driver owns the loop (poll ~5x/s): stage calls come back through `ray.wait` (an `ActorDiedError` means the
agent or its node is gone), the coordinator's poll brings the barrier verdict, new live-stats intervals and
events, and an abort request from a signal handler is broadcast from here. The stage ends when every call
returned, or when the barrier is decided and the agents it released without have been stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, RayActorError

from sbench.cluster.agent import StageRequest
from sbench.config.models import StageType
from sbench.control import RunControl
from sbench.metrics.snapshot import SnapshotAccumulator
from sbench.plan.stages import StagePlan
from sbench.run.barrier import BarrierStatus
from sbench.run.monitor import Drained, StageEvent
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus

POLL_S = 0.2
#: After an abort, how long the driver waits for agents to hand back partial results.
ABORT_WAIT_S = 2.0
#: After the barrier is decided, how long stopped agents get to return before they are left behind.
RELEASE_WAIT_S = 3.0
#: Driver-side backstop over a stage's own time limit: the engine enforces the limit, the agent abandons
#: an engine that does not return (+2 s), and only then does the driver stop waiting.
TIMEOUT_SLACK_S = 6.0


@dataclass(frozen=True, slots=True)
class AgentRef:
    """A live agent as the driver knows it."""

    agent_id: str
    index: int
    actor: Any
    node_id: str
    node_ip: str


def _died_kind(exc: BaseException) -> str:
    text = str(exc).lower()
    return "node_removed" if "node" in text and ("died" in text or "dead" in text) else "died"


def run_agent_stage(
    coordinator: Any,
    agents: list[AgentRef],
    plan: StagePlan,
    *,
    on_poll: Callable[[Drained], None],
    control: RunControl,
    objects_total: dict[str, int] | None = None,
    lead_s: float | None = None,
) -> StageRun:
    """Run `plan` on `agents` and return when the stage is decided (see module docstring)."""
    watch = plan.type in (StageType.EXECUTE, StageType.HYBRID, StageType.PREPARE, StageType.CLEANUP)
    ids = [a.agent_id for a in agents]
    started = time.monotonic()
    start_at = ray.get(
        coordinator.begin_stage.remote(plan.index, plan.name, plan.barrier, ids, watch, lead_s)
    )
    totals = objects_total or {}
    pending = {
        a.actor.run_stage.remote(StageRequest(plan, start_at, plan.timeout_s, totals.get(a.agent_id, 0))): a
        for a in agents
    }
    results: dict[str, AgentStageResult] = {}
    partial = {a.agent_id: SnapshotAccumulator() for a in agents}
    aborted = timed_out = False
    give_up_at: float | None = None
    events: list[StageEvent] = []
    progress: dict[str, dict[str, Any]] = {}
    limit = (plan.timeout_s + TIMEOUT_SLACK_S) if plan.timeout_s else None

    def drain() -> Drained | None:
        drained = ray.get(coordinator.poll.remote(plan.index))
        if drained is not None:
            for agent_id, snaps in drained.per_agent.items():
                for snap in snaps:
                    partial[agent_id].add(snap)
            events.extend(drained.events)
            progress.update(drained.agents)
            on_poll(drained)
        return drained

    while pending:
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S)
        for ref in ready:
            agent = pending.pop(ref)
            try:
                result: AgentStageResult = ray.get(ref)
            except (ActorDiedError, ActorUnavailableError, RayActorError) as exc:
                kind = _died_kind(exc)
                reason = f"agent actor died during stage {plan.name!r}: {str(exc).splitlines()[0]}"
                ray.get(coordinator.agent_failed.remote(agent.agent_id, plan.index, kind, reason))
                result = AgentStageResult(agent.agent_id, plan.index, StageStatus.FAILED, reason)
            results[agent.agent_id] = result
            ray.get(
                coordinator.arrive.remote(agent.agent_id, plan.index, result.ok, result.reason, result.status)
            )
        drained = drain()
        now = time.monotonic()
        if control.aborted and not aborted:
            aborted = True
            ray.get(coordinator.abort.remote(control.reason or "aborted"))
            give_up_at = now + ABORT_WAIT_S
        if limit is not None and now - started > limit and not timed_out:
            timed_out = True
            for agent in pending.values():
                agent.actor.stop.remote(f"stage {plan.name!r} exceeded timeout_secs={plan.timeout_s:g}")
            give_up_at = now + RELEASE_WAIT_S
        if drained is not None and drained.status is not BarrierStatus.WAITING and give_up_at is None:
            give_up_at = now + RELEASE_WAIT_S  # the coordinator already told the released agents to stop
        if give_up_at is not None and now >= give_up_at:
            break

    summary = ray.get(coordinator.end_stage.remote(plan.index))
    drain()
    for agent in agents:
        if agent.agent_id not in results:
            status = (
                StageStatus.ABORTED
                if aborted
                else (StageStatus.TIMEOUT if timed_out else StageStatus.FAILED)
            )
            reason = summary.get("reasons", {}).get(agent.agent_id) or (
                "did not return after the stage was decided"
            )
            results[agent.agent_id] = AgentStageResult(agent.agent_id, plan.index, status, reason)
    for agent_id, result in results.items():
        unconfirmed = result.extra.pop("final_report", "") == "unconfirmed"
        if unconfirmed or (result.snapshot.is_empty and not partial[agent_id].snapshot().is_empty):
            # lost agent, or one whose last report the coordinator may not have: what it reported live,
            # which is exactly what the perf logs hold
            result.snapshot = partial[agent_id].snapshot()
    states = dict(summary.get("states", {}))
    reasons = dict(summary.get("reasons", {}))
    for agent_id, result in results.items():
        if not result.ok and states.get(agent_id) == "ready":
            states[agent_id] = "failed"
        if not result.ok and result.reason:
            reasons.setdefault(agent_id, result.reason)
    status = BarrierStatus(summary.get("status", BarrierStatus.FAILED.value))
    return StageRun(
        plan=plan,
        status=status,
        results=results,
        states=states,
        reasons=reasons,
        stuck=dict(summary.get("stuck", {})),
        stuck_at_end=dict(summary.get("stuck_at_end", {})),
        start_skew_ms=summary.get("start_skew_ms"),
        elapsed_s=time.monotonic() - started,
        aborted=aborted,
        timed_out=timed_out,
        events=events,
        progress=progress,
        lost=dict(summary.get("lost", {})),
    )
