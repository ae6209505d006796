"""The Ray driver's side of results.verdict: judge a finished stage over all its agents, name the agents.

The barrier decides whether enough agents finished a stage; the verdict rules (no op succeeded, success
ratio, a storage outage, an agent still stuck at the end) decide whether what they measured can stand. They
are judged on the stage's merged snapshot and its aggregate intervals, exactly as the in-process runner
judges its one agent; when the stage breaks a rule, each agent whose own share (own snapshot, own
intervals) breaks it too is marked failed with its own figures, so STATUS.txt names who.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sbench.metrics.snapshot import Snapshot
from sbench.results.verdict import OutageWatch, judge_stage
from sbench.run.barrier import BarrierStatus
from sbench.run.stagerecord import StageRun

_FAILED_STATES = ("failed", "straggler")


class StageOutages:
    """The outage watches of one stage: over the aggregate intervals (the stage's verdict) and over each
    agent's own intervals (which agents to name). Fed with what the driver drains for the perf logs."""

    def __init__(self) -> None:
        self.aggregate = OutageWatch()
        self.agents: dict[str, OutageWatch] = {}

    def add(self, aggregate: Iterable[Snapshot], per_agent: Mapping[str, Iterable[Snapshot]]) -> None:
        self.aggregate.add_all(aggregate)
        for agent_id, snaps in per_agent.items():
            self.agents.setdefault(agent_id, OutageWatch()).add_all(snaps)


def apply_verdict(run: StageRun, rules: Any, outages: StageOutages | None = None) -> None:
    """Fail `run` in place (status, `verdict`, the agents behind it) when it breaks a verdict rule; a stage
    that was aborted or already failed its barrier keeps its own reason. `rules` is the config's
    `error_handling` (min_success_ratio, max_outage)."""
    outages = outages or StageOutages()
    outage = outages.aggregate.result()
    run.longest_outage = outage.to_dict() if outage is not None else None
    if run.aborted or run.status is BarrierStatus.FAILED:
        return
    stage_type = run.plan.type.value
    merged = Snapshot.merge_all(r.snapshot for r in run.results.values())
    ratio, max_outage = rules.min_success_ratio, rules.max_outage
    broken = judge_stage(
        stage_type,
        merged,
        min_success_ratio=ratio,
        stuck=run.stuck_at_end,
        outage=outage,
        max_outage=max_outage,
    )
    if not broken:
        return
    run.status = BarrierStatus.FAILED
    run.verdict = "; ".join(broken)
    for agent_id, result in run.results.items():
        if run.states.get(agent_id) in _FAILED_STATES:
            continue  # it already failed on its own account
        stuck = {agent_id: run.stuck_at_end[agent_id]} if agent_id in run.stuck_at_end else None
        watch = outages.agents.get(agent_id)
        own = judge_stage(
            stage_type,
            result.snapshot,
            min_success_ratio=ratio,
            stuck=stuck,
            outage=watch.result() if watch is not None else None,
            max_outage=max_outage,
        )
        if own:
            run.states[agent_id] = "failed"
            run.reasons[agent_id] = "; ".join(own)
