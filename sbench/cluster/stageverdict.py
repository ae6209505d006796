"""The Ray driver's side of results.verdict: judge a finished stage over all its agents, name the agents.

The barrier decides whether enough agents finished a stage; the verdict rules (no op succeeded, success
ratio, an agent still stuck at the end) decide whether what they measured can stand. They are judged on the
stage's merged snapshot, exactly as the in-process runner judges its one agent; when the stage breaks a rule,
each agent whose own share breaks it too is marked failed with its own figures, so STATUS.txt names who.
"""

from __future__ import annotations

from sbench.cluster.barrier import BarrierStatus
from sbench.cluster.stagerun import StageRun
from sbench.metrics.snapshot import Snapshot
from sbench.results.verdict import judge_stage

_FAILED_STATES = ("failed", "straggler")


def apply_verdict(run: StageRun, min_success_ratio: float) -> None:
    """Fail `run` in place (status, `verdict`, the agents behind it) when it breaks a verdict rule; a stage
    that was aborted or already failed its barrier keeps its own reason."""
    if run.aborted or run.status is BarrierStatus.FAILED:
        return
    stage_type = run.plan.type.value
    merged = Snapshot.merge_all(r.snapshot for r in run.results.values())
    broken = judge_stage(stage_type, merged, min_success_ratio=min_success_ratio, stuck=run.stuck_at_end)
    if not broken:
        return
    run.status = BarrierStatus.FAILED
    run.verdict = "; ".join(broken)
    for agent_id, result in run.results.items():
        if run.states.get(agent_id) in _FAILED_STATES:
            continue  # it already failed on its own account
        stuck = {agent_id: run.stuck_at_end[agent_id]} if agent_id in run.stuck_at_end else None
        own = judge_stage(stage_type, result.snapshot, min_success_ratio=min_success_ratio, stuck=stuck)
        if own:
            run.states[agent_id] = "failed"
            run.reasons[agent_id] = "; ".join(own)
