"""What one stage did, as the run driver and the results report see it, whatever fleet ran it.

An agent's share of a stage is an `AgentStageResult` (the in-process fleet's one agent, or each Ray agent
actor's answer); a `StageRun` is the stage over every agent: the barrier's decision, each agent's state and
reason, and the facts the driver carries across stages (the preflight result, the prepared objects, what a
cleanup left behind). No Ray here: the in-process fleet builds the same records without it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sbench.engine.stage import StageOutcome
from sbench.engine.state import PreparedRecord
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import StagePlan
from sbench.preflight.result import PreflightResult
from sbench.run.barrier import BarrierStatus
from sbench.run.monitor import StageEvent
from sbench.status import StageStatus


@dataclass(slots=True)
class AgentStageResult:
    """What an agent returns for one stage (cumulative snapshot, why it ended, how long it took)."""

    agent_id: str
    stage_index: int
    status: StageStatus
    reason: str = ""
    snapshot: Snapshot = field(default_factory=Snapshot)
    elapsed_s: float = 0.0
    started_ms: int = 0
    ended_ms: int = 0
    #: the engine's stage details (custom: exit code and output tail; execute: ended_by; ...)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status is StageStatus.OK

    @classmethod
    def of(cls, agent_id: str, index: int, outcome: StageOutcome) -> AgentStageResult:
        """The engine's outcome on one agent as a stage result (its details travel as `extra`)."""
        extra = dict(outcome.details)
        if outcome.first_error:
            extra["first_error"] = outcome.first_error
        return cls(
            agent_id=agent_id,
            stage_index=index,
            status=outcome.status,
            reason=outcome.reason or "",
            snapshot=outcome.snapshot,
            elapsed_s=outcome.elapsed_s,
            extra=extra,
        )


@dataclass
class StageRun:
    """Everything the driver and the results writers need about one finished stage."""

    plan: StagePlan
    status: BarrierStatus
    results: dict[str, AgentStageResult]
    states: dict[str, str]
    reasons: dict[str, str]
    stuck: dict[str, str] = field(default_factory=dict)
    start_skew_ms: int | None = None
    elapsed_s: float = 0.0
    aborted: bool = False
    timed_out: bool = False
    events: list[StageEvent] = field(default_factory=list)
    #: per agent, the rich progress fields at the end of the stage (objects done/total/deleted/remaining,
    #: errors, throughput, progress rate, elapsed, stuck flag and reason)
    progress: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: per dead agent, the window whose ops died with it: from_ms, to_ms (epoch ms), seconds
    lost: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: the agents still stuck when the stage ended (a subset of `stuck`, which keeps recovered ones too)
    stuck_at_end: dict[str, str] = field(default_factory=dict)
    #: why the stage failed the rules of results.verdict although its barrier passed ("" = it did not)
    verdict: str = ""
    #: the stage's longest outage over its aggregate intervals (results.verdict.Outage.to_dict), if any
    longest_outage: dict[str, Any] | None = None
    #: a validation stage's merged preflight result
    preflight: PreflightResult | None = None
    #: a prepare stage's created objects, per prepare entry, over every agent
    prepared: dict[int, PreparedRecord] = field(default_factory=dict)
    #: a cleanup stage's report of what it left behind (engine.leftovers.report)
    left_behind: dict[str, Any] | None = None
    #: a cleanup stage's workload PUT objects confirmed gone, and its shard jobs that never answered
    put_gone: int = 0
    lost_jobs: int = 0

    @classmethod
    def of_one_agent(cls, plan: StagePlan, result: AgentStageResult, *, aborted: bool) -> StageRun:
        """A stage one agent ran alone (the in-process fleet): the barrier is that agent's own outcome."""
        ok = result.ok
        return cls(
            plan=plan,
            status=BarrierStatus.READY if ok else BarrierStatus.FAILED,
            results={result.agent_id: result},
            states={result.agent_id: "ready" if ok else "failed"},
            reasons={} if ok else {result.agent_id: result.reason},
            elapsed_s=result.elapsed_s,
            aborted=aborted,
            timed_out=result.status is StageStatus.TIMEOUT,
        )

    @property
    def merged(self) -> Snapshot:
        """The stage's snapshot over every agent (exact merge)."""
        return Snapshot.merge_all(r.snapshot for r in self.results.values())

    @property
    def notes(self) -> list[str]:
        """What the agents' stages say once (an op whose key pool ran dry...), each prefixed by its agent
        when there is more than one."""
        many = len(self.results) > 1
        return [
            f"{agent_id}: {note}" if many else note
            for agent_id, result in sorted(self.results.items())
            for note in result.extra.get("notes", [])
        ]

    @property
    def failed_agents(self) -> list[str]:
        return sorted(a for a, s in self.states.items() if s in ("failed", "straggler"))
