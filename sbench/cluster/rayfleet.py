"""The Ray fleet: agent actors, the coordinator and the metadata cache, behind the driver's fleet interface.

Execute, hybrid and custom stages run in the agent actors (cluster.stagerun follows them through the
coordinator's barrier); preflight, prepare and cleanup are the shard stages (run.shardstages) with their
jobs as Ray tasks (cluster.rayjobs) and the metadata cache as their object book, and cleanup is handed only
to agents that still answer, so a dead agent's objects are removed by the others. Everything goes back to
the driver as `StageRun` records and interval snapshots, exactly as from the in-process fleet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ray
from ray.exceptions import ActorUnavailableError, RayActorError

from sbench.cluster.actors import create_coordinator, create_metadata_cache
from sbench.cluster.actorset import AgentActors, start_fleet
from sbench.cluster.agent import StageFn
from sbench.cluster.connect import RayConnection
from sbench.cluster.env import capture as env_capture
from sbench.cluster.listing import listing_scope
from sbench.cluster.metadata_cache import default_db_path
from sbench.cluster.oplogs import RayOpLogs
from sbench.cluster.rayjobs import ActorBook, RayJobRunner
from sbench.cluster.stagerun import AgentRef, run_agent_stage
from sbench.config.models import Config, StageType
from sbench.control import RunControl
from sbench.oplog.runlog import OpLogReport
from sbench.plan.stages import StagePlan
from sbench.run.fleet import AgentInfo, StageCall
from sbench.run.monitor import Drained
from sbench.run.objectbook import MemoryBook, ObjectBook
from sbench.run.shardstages import (
    ShardStageContext,
    StageAgent,
    run_cleanup_stage,
    run_prepare_stage,
    run_validation_stage,
    run_verify,
)
from sbench.run.stagerecord import StageRun

#: how long a live agent has to answer the ping before cleanup (a control-group call, normally ~1 ms)
PING_TIMEOUT_S = 5.0


class RayFleet:
    """The run's Ray agents (see the module docstring); the Ray connection is opened by the caller."""

    distributed = True

    def __init__(
        self,
        config: Config,
        run_id: str,
        connection: RayConnection,
        *,
        cleanup_only: bool = False,
        stage_fn: StageFn | None = None,
    ) -> None:
        self.config = config
        self.run_id = run_id
        self.connection = connection
        self.cleanup_only = cleanup_only
        self.stage_fn = stage_fn
        dist = config.distributed
        self.interval_s = float(config.perf_log.interval)
        self.stuck_intervals = dist.stuck_intervals if dist is not None else 10
        #: the driver's storage variables, handed to every agent and task in memory (names only on disk)
        self.env = env_capture().adding(config.distributed_env)
        self.control = RunControl()
        self.say: Callable[[str], None] = print
        self.actors: AgentActors | None = None
        self.coordinator: Any = None
        self.cache: Any = None
        #: what prepare created, for cleanup: the cache actor, or this driver's memory when it is off
        self.book: ObjectBook = MemoryBook()
        self.extra: dict[str, Any] = {"ray": connection.as_dict(), "events": []}
        #: the run's op-log, once the driver opens it
        self.oplogs: RayOpLogs | None = None

    def describe(self) -> str:
        return f"Ray: {self.connection.describe()}"

    def start(self, control: RunControl, say: Callable[[str], None], results_path: Path) -> list[AgentInfo]:
        self.control, self.say = control, say
        dist = self.config.distributed
        self.coordinator = create_coordinator(self.run_id, self.interval_s, self.stuck_intervals)
        if self.config.enable_metadata_cache:
            db = default_db_path(results_path, dist.kv_cache_dir if dist is not None else None)
            self.cache = create_metadata_cache(db, self.run_id)
            self.book = ActorBook(self.cache)
        else:
            self.extra["metadata_cache"] = "off (enable_metadata_cache: false)"
        self.actors = start_fleet(
            self.config,
            self.run_id,
            self.coordinator,
            interval_s=self.interval_s,
            stage_fn=self.stage_fn,
            cache=self.cache,
            env=self.env,
        )
        agents = self.actors.agents
        self.extra["forwarded_env"] = self.env.names  # names only, never values
        self.extra["agent_env"] = {agent_id: env.names for agent_id, env in self.actors.envs.items()}
        self.extra["clock_offsets_ms"] = dict(self.actors.clock_offsets_ms)
        nodes = sorted({a.node_id for a in agents})
        relays = len(self.actors.relays)
        self.extra["report_relays"] = relays
        say(
            f"agents: {len(agents)} on {len(nodes)} Ray nodes "
            f"({', '.join(f'{a.agent_id}@{a.node_ip}' for a in agents)})"
            + (f"; they report through {relays} per-node relay(s)" if relays else "")
        )
        return [AgentInfo(a.agent_id, a.node_ip) for a in agents]

    # -- stages --

    def _refs(self, agent_ids: list[str]) -> list[AgentRef]:
        assert self.actors is not None
        wanted = set(agent_ids)
        return [a for a in self.actors.agents if a.agent_id in wanted]

    def _shard_context(
        self, participants: list[AgentRef], on_interval: Callable[..., None] | None = None
    ) -> ShardStageContext:
        assert self.actors is not None
        cpus = int(ray.cluster_resources().get("CPU", 2))
        return ShardStageContext(
            config=self.config,
            agents=[_stage_agent(a) for a in participants],
            agent_configs=self.actors.configs,
            runner=RayJobRunner(self.coordinator, self.env, self.interval_s, self.oplogs, self.actors.envs),
            book=self.book,
            control=self.control,
            interval_s=self.interval_s,
            max_in_flight=max(2, min(64, 2 * cpus)),
            on_interval=on_interval or (lambda aggregate, per_agent: None),
            say=self.say,
            cleanup_only=self.cleanup_only,
        )

    def run_stage(self, call: StageCall) -> StageRun:
        plan, participants = call.plan, self._refs(call.agents)
        if self.oplogs is not None:
            self.oplogs.stage_started(plan.name, participants)

        def on_task_interval(aggregate: Any, per_agent: dict[str, Any]) -> None:
            call.on_intervals([aggregate], {a: [s] for a, s in per_agent.items()})

        if plan.type is StageType.VALIDATION:
            return run_validation_stage(self._shard_context(participants, on_task_interval), plan)
        if plan.type is StageType.PREPARE:
            run, records = run_prepare_stage(self._shard_context(participants, on_task_interval), plan)
            ray.get([a.actor.set_prepared.remote(records.get(a.agent_id, {})) for a in participants])
            return run
        if plan.type is StageType.CLEANUP:
            return self._cleanup(plan, participants, on_task_interval)
        return self._agent_stage(plan, participants, call)

    def _agent_stage(self, plan: StagePlan, participants: list[AgentRef], call: StageCall) -> StageRun:
        totals = {a.agent_id: plan.expected_tasks for a in participants} if plan.expected_tasks else None

        def on_poll(drained: Drained) -> None:
            for event in drained.events:
                call.say(f"[{plan.name}] {event.agent_id}: {event.kind}: {event.message}")
            call.on_intervals(drained.aggregate, drained.per_agent)

        run = run_agent_stage(
            self.coordinator,
            participants,
            plan,
            on_poll=on_poll,
            control=self.control,
            objects_total=totals,
        )
        shared = [r.extra["shared_listings"] for r in run.results.values() if "shared_listings" in r.extra]
        if any(s["produced"] or s["fetched"] for s in shared):
            produced = sum(s["produced"] for s in shared)
            fetched = sum(s["fetched"] for s in shared)
            call.say(f"shared listings: {produced} LIST(s) done once, read back by {fetched} agent(s)")
        if self.cache is not None:
            ray.get(self.cache.drop_listings.remote(listing_scope(self.run_id, plan.index)))
        return run

    def _cleanup(
        self, plan: StagePlan, participants: list[AgentRef], on_interval: Callable[..., None]
    ) -> StageRun:
        """Every agent's prepared objects (exact created sets) and workload PUT objects, by shard tasks that
        only live agents answer for: a dead agent's objects are cleaned up by the survivors."""
        assert self.actors is not None
        live = _alive(participants) or participants
        answered = {a.agent_id for a in live}
        for agent in self.actors.agents:
            if agent.agent_id not in answered:
                who = agent.agent_id
                self.say(f"cleanup: {who} is out (dead or excluded); the live agents clean up its objects")
        owners = [_stage_agent(a) for a in self.actors.agents]
        return run_cleanup_stage(
            self._shard_context(live, on_interval), plan, owners=owners, run_id=self.run_id
        )

    def verify(self) -> tuple[bool, list[str]]:
        assert self.actors is not None
        return run_verify(self._shard_context(self.actors.agents))

    def open_op_log(self, path: Path, agent_dir: Callable[[str], Path]) -> None:
        assert self.actors is not None
        self.oplogs = RayOpLogs(self.actors.agents, path, agent_dir)
        self.oplogs.open()

    def close_op_log(self) -> OpLogReport:
        assert self.oplogs is not None, "open_op_log() first"
        oplogs, self.oplogs = self.oplogs, None
        return oplogs.close()

    def dropped(self) -> dict[str, str]:
        return dict(ray.get(self.coordinator.excluded.remote()))

    def metadata(self) -> dict[str, Any]:
        return self.extra

    # -- teardown --

    def _collect_events(self) -> None:
        if self.coordinator is None:
            return
        try:
            events = ray.get(self.coordinator.events.remote(), timeout=5)
        except Exception as exc:  # the coordinator died with its node: the events stay in console_log.txt
            self.say(f"could not fetch the coordinator's events: {exc}")
            return
        self.extra["events"] = [
            {"at_ms": e.at_ms, "agent_id": e.agent_id, "kind": e.kind, "message": e.message} for e in events
        ]

    def stop(self) -> None:
        """Collect the coordinator's events, then kill every actor of the run and free its placement group
        (also after a failure)."""
        self._collect_events()
        if self.cache is not None:
            with contextlib.suppress(Exception):
                self.extra["metadata_cache"] = ray.get(self.cache.stats.remote(), timeout=30)
                ray.get(self.cache.close.remote(), timeout=10)
        if self.actors is not None:
            self.actors.shutdown()
        for actor in (self.coordinator, self.cache):
            if actor is not None:
                with contextlib.suppress(Exception):
                    ray.kill(actor, no_restart=True)
        self.coordinator = self.cache = None

    def kill(self) -> None:
        """Best-effort, non-blocking kill of every actor (a second Ctrl-C exits right after)."""
        with contextlib.suppress(Exception):
            if self.actors is not None:
                for actor in self.actors.actors:
                    ray.kill(actor, no_restart=True)
                self.actors.placement.release()
            for actor in (self.coordinator, self.cache):
                if actor is not None:
                    ray.kill(actor, no_restart=True)


def _stage_agent(agent: AgentRef) -> StageAgent:
    return StageAgent(agent.agent_id, agent.index, agent.node_id)


def _alive(agents: list[AgentRef]) -> list[AgentRef]:
    """The agents whose actor answers a ping within PING_TIMEOUT_S (cleanup is never handed to a dead one)."""
    refs = {a.actor.ping.remote(): a for a in agents}
    ready, _ = ray.wait(list(refs), num_returns=len(refs), timeout=PING_TIMEOUT_S)
    answered: set[str] = set()
    for ref in ready:
        try:
            ray.get(ref)
        except (RayActorError, ActorUnavailableError):
            continue
        answered.add(refs[ref].agent_id)
    return [a for a in agents if a.agent_id in answered]
