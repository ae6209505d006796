"""Per-stage barrier: which agents must finish a stage for the run to go on (sai3 §1.10 semantics).

Pure logic, no Ray: the coordinator feeds it arrivals, failures and the clock; the driver reads the verdict.
Unlike sai3 (§7.11), each stage is judged by the barrier type configured for *that* stage.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from sbench.config.models import BarrierType
from sbench.plan.stages import PhaseBarrier


class BarrierStatus(StrEnum):
    WAITING = "waiting"
    READY = "ready"  # every participant finished the stage
    DEGRADED = "degraded"  # enough finished for the barrier type; the rest are failed or stragglers
    FAILED = "failed"  # the barrier type cannot be met: the run fails at this stage


class AgentStageState(StrEnum):
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"  # the stage failed on the agent, or it died, or it stopped answering
    STRAGGLER = "straggler"  # still running when the barrier was released without it


def silence_limit_s(spec: PhaseBarrier) -> float:
    """How long an agent may stay silent before the coordinator queries it (missed heartbeats)."""
    return spec.heartbeat_interval * spec.missed_threshold


@dataclass
class StageBarrier:
    """The barrier of one stage over a fixed set of participants."""

    spec: PhaseBarrier
    participants: tuple[str, ...]
    states: dict[str, AgentStageState] = field(default_factory=dict)
    reasons: dict[str, str] = field(default_factory=dict)
    first_arrival: float | None = None
    released: BarrierStatus | None = None

    def __post_init__(self) -> None:
        for agent in self.participants:
            self.states.setdefault(agent, AgentStageState.RUNNING)

    def arrive(self, agent: str, now: float) -> None:
        if self.states.get(agent) is AgentStageState.RUNNING:
            self.states[agent] = AgentStageState.READY
            if self.first_arrival is None:
                self.first_arrival = now

    def fail(self, agent: str, reason: str) -> None:
        """An agent failed the stage (error, death, no answer). A later failure never hides an earlier one."""
        if self.states.get(agent) in (AgentStageState.RUNNING, AgentStageState.READY) and (
            agent not in self.reasons
        ):
            self.states[agent] = AgentStageState.FAILED
            self.reasons[agent] = reason

    def count(self, state: AgentStageState) -> int:
        return sum(1 for s in self.states.values() if s is state)

    def evaluate(self, now: float) -> BarrierStatus:
        """The verdict now; once not WAITING it is final and stragglers are marked."""
        if self.released is not None:
            return self.released
        status = self._verdict(now)
        if status is not BarrierStatus.WAITING:
            failed = sorted(a for a, s in self.states.items() if s is AgentStageState.FAILED)
            if status is BarrierStatus.FAILED:
                why = f"stopped: the {self.spec.type.value} barrier failed ({', '.join(failed) or 'timeout'})"
            else:
                why = (
                    f"still running {self.spec.agent_barrier_timeout:g}s after the first agent reached the "
                    "barrier (agent_barrier_timeout)"
                )
            for agent, state in self.states.items():
                if state is AgentStageState.RUNNING:
                    self.states[agent] = AgentStageState.STRAGGLER
                    self.reasons[agent] = why
            self.released = status
        return status

    def _verdict(self, now: float) -> BarrierStatus:
        total = len(self.participants)
        ready = self.count(AgentStageState.READY)
        failed = self.count(AgentStageState.FAILED)
        running = self.count(AgentStageState.RUNNING)
        timed_out = (
            self.first_arrival is not None and now - self.first_arrival >= self.spec.agent_barrier_timeout
        )
        kind = self.spec.type
        if total == 0:
            return BarrierStatus.FAILED
        if kind is BarrierType.ALL_OR_NOTHING:
            if failed or (timed_out and running):
                return BarrierStatus.FAILED
            return BarrierStatus.READY if ready == total else BarrierStatus.WAITING
        if ready == total:
            return BarrierStatus.READY
        if kind is BarrierType.MAJORITY:
            if total - failed <= total / 2:  # alive (not failed) at most half: majority is impossible
                return BarrierStatus.FAILED
            if running == 0 or timed_out:
                return BarrierStatus.DEGRADED if ready > total / 2 else BarrierStatus.FAILED
            return BarrierStatus.WAITING
        # best_effort: go on with whoever finished; fail only when nobody can.
        if failed == total:
            return BarrierStatus.FAILED
        if running == 0 or timed_out:
            return BarrierStatus.DEGRADED if ready else BarrierStatus.FAILED
        return BarrierStatus.WAITING

    def excluded_after(self) -> set[str]:
        """Agents that sit out later stages: failed or stragglers under majority (sai3 semantics).

        best_effort keeps failed-but-alive agents in later stages; dead agents are dropped by the caller.
        """
        if self.spec.type is BarrierType.MAJORITY:
            return {
                a for a, s in self.states.items() if s in (AgentStageState.FAILED, AgentStageState.STRAGGLER)
            }
        return set()
