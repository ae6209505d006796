"""The in-process fleet: one agent, the engine on this process's threads, no Ray.

A single-agent run needs no coordination, and a local Ray instance would add 3-5 s of start-up and about
0.8 GB of memory, so the default laptop run happens here. Its one agent runs the workload, custom and
preflight stages with the same engine call a Ray agent actor makes (engine.stage.run_stage), and its
barrier is its own outcome; prepare and cleanup are the same shard stages as on Ray (run.shardstages), with
the jobs on threads and an in-memory object book. The config's `distributed_env` is set in this process
from `start` to `stop` (then put back as it was), since the agent is this process; metadata.json records
the names only.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbench.config.models import Config, StageType
from sbench.control import RunControl
from sbench.engine.prepare import verify_prepared
from sbench.engine.stage import run_stage
from sbench.engine.state import RunState
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.agentlog import AgentLog
from sbench.oplog.runlog import OpLogReport, in_process_client_id
from sbench.plan.agents import AgentIdentity
from sbench.run.fleet import AgentInfo, StageCall
from sbench.run.objectbook import MemoryBook
from sbench.run.shardjobs import ThreadJobRunner
from sbench.run.shardstages import ShardStageContext, StageAgent, run_cleanup_stage, run_prepare_stage
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.secretenv import ForwardedEnv
from sbench.status import StageStatus

#: shard size and jobs in flight in process: unbounded (one shard per object space, all at once)
ONE_SHARD_EACH = 2**62


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
        self.book = MemoryBook()
        self.op_log: AgentLog | None = None
        self._env = ForwardedEnv({}).adding(config.distributed_env)
        self._env_applied = contextlib.ExitStack()

    def start(self, control: RunControl, say: Callable[[str], None], results_path: Path) -> list[AgentInfo]:
        self.control = control
        self._env_applied.enter_context(self._env.applied())
        return [AgentInfo(self.identity.agent_id, "127.0.0.1")]

    def run_stage(self, call: StageCall) -> StageRun:
        if call.plan.type in (StageType.PREPARE, StageType.CLEANUP):
            return self._shard_stage(call)
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
        )
        preflight = outcome.details.pop("preflight", None)
        result = AgentStageResult.of(agent_id, call.plan.index, outcome)
        run = StageRun.of_one_agent(call.plan, result, aborted=outcome.status is StageStatus.ABORTED)
        run.preflight = preflight
        return run

    def _shard_stage(self, call: StageCall) -> StageRun:
        """Prepare or cleanup: the shard stages with their jobs on threads of this process. One shard per
        object space, all started at once (prepare_strategy still orders the entries): each runs on the
        agent's `concurrency` threads, so the objects of a space share one pool of threads and nothing waits
        for a shard's last, slowest objects before the next shard starts."""
        interval_s = float(self.config.perf_log.interval)
        agent = StageAgent(self.identity.agent_id)
        ctx = ShardStageContext(
            config=self.config,
            agents=[agent],
            agent_configs={agent.agent_id: self.config},
            runner=ThreadJobRunner(self.control, interval_s),
            book=self.book,
            control=self.control,
            interval_s=interval_s,
            max_in_flight=ONE_SHARD_EACH,
            shard_max=ONE_SHARD_EACH,
            on_interval=lambda aggregate, per_agent: call.on_intervals(
                [aggregate], {a: [s] for a, s in per_agent.items()}
            ),
            say=call.say,
            cleanup_only=self.cleanup_only,
        )
        if call.plan.type is StageType.CLEANUP:
            return run_cleanup_stage(ctx, call.plan, run_id=self.identity.run_id)
        run, records = run_prepare_stage(ctx, call.plan)
        self.state.prepared.update(records.get(agent.agent_id, {}))
        return run

    def describe(self) -> str:
        return ""

    def verify(self) -> tuple[bool, list[str]]:
        return verify_prepared(self.config, self.identity, self.control)

    def dropped(self) -> dict[str, str]:
        return {}

    def metadata(self) -> dict[str, Any]:
        return {"distributed_env": self._env.names} if len(self._env) else {}  # names only, never values

    def open_op_log(self, path: Path, agent_dir: Callable[[str], Path]) -> None:
        self.op_log = AgentLog(path, in_process_client_id(self.identity.agent_id))

    def close_op_log(self) -> OpLogReport:
        assert self.op_log is not None, "open_op_log() first"
        log, self.op_log = self.op_log, None
        return OpLogReport.of_one(log.finish())

    def stop(self) -> None:
        """The environment goes back as it was; nothing else outlives the stages (the engine's threads end
        with them)."""
        self._env_applied.close()

    def kill(self) -> None:
        """Nothing to end: the process exits."""
