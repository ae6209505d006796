"""The in-process fleet: one agent, the engine on this process's threads, no Ray.

A single-agent run needs no coordination, and a local Ray instance would add 3-5 s of start-up and about
0.8 GB of memory, so the default laptop run happens here. Its one agent runs each stage with the same
engine call a Ray agent actor makes (engine.stage.run_stage), and its barrier is its own outcome.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbench.config.models import Config, StageType
from sbench.control import RunControl
from sbench.engine.prepare import verify_prepared
from sbench.engine.stage import run_stage
from sbench.engine.state import RunState
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.run.fleet import AgentInfo, StageCall
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus


class InProcessFleet:
    """One agent in this process (see the module docstring)."""

    distributed = False

    def __init__(self, config: Config, run_id: str, *, cleanup_only: bool = False) -> None:
        self.config = config
        self.identity = AgentIdentity(run_id=run_id)
        self.cleanup_only = cleanup_only
        #: what one stage hands the next on this agent (the prepared objects, for the workload and cleanup)
        self.state = RunState()
        self.control = RunControl()

    def start(self, control: RunControl, say: Callable[[str], None], results_path: Path) -> list[AgentInfo]:
        self.control = control
        return [AgentInfo(self.identity.agent_id, "127.0.0.1")]

    def run_stage(self, call: StageCall) -> StageRun:
        agent_id = self.identity.agent_id

        def on_interval(snap: Snapshot) -> None:
            call.on_intervals([snap], {agent_id: [snap]})

        outcome = run_stage(
            call.plan,
            self.config,
            self.identity,
            self.control,
            on_interval,
            state=self.state,
            cleanup_only=self.cleanup_only,
        )
        preflight = outcome.details.pop("preflight", None)
        result = AgentStageResult.of(agent_id, call.plan.index, outcome)
        run = StageRun.of_one_agent(call.plan, result, aborted=outcome.status is StageStatus.ABORTED)
        run.preflight = preflight
        run.left_behind = outcome.details.get("left_behind")
        run.put_gone = int(outcome.details.get("put_gone", 0))
        if call.plan.type is StageType.PREPARE:
            run.prepared = dict(self.state.prepared)
        return run

    def describe(self) -> str:
        return ""

    def verify(self) -> tuple[bool, list[str]]:
        return verify_prepared(self.config, self.identity, self.control)

    def dropped(self) -> dict[str, str]:
        return {}

    def metadata(self) -> dict[str, Any]:
        return {}

    def stop(self) -> None:
        """Nothing outlives the stages: the engine's threads end with them."""

    def kill(self) -> None:
        """Nothing to end: the process exits."""
