"""Starting the agents of a run and tearing them down: placement, ids, per-agent config, clock offsets.

The order matters: actors are placed first, then each reports its node's SBENCH_AGENT_ID and clock, and only
then are ids, indices and per-agent configs fixed and sent (so an id from the node's environment is the one
the engine, the result folders and STATUS.txt all use).
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.exceptions import GetTimeoutError

from sbench.cluster.actors import create_agent, create_relay
from sbench.cluster.agent import StageFn, flush_ticks
from sbench.cluster.env import ForwardedEnv, agent_env
from sbench.cluster.placement import Placement, plan_placement
from sbench.cluster.relay import wants_relays
from sbench.cluster.stagerun import AgentRef
from sbench.config.models import Config
from sbench.errors import RunFailed
from sbench.plan.agents import AgentIdentity, agent_config, assign_ids, share_io_rate


@dataclass
class AgentActors:
    """The run's agents; `shutdown()` is safe to call more than once and on every exit path."""

    agents: list[AgentRef]
    placement: Placement
    configs: dict[str, Config] = field(default_factory=dict)
    clock_offsets_ms: dict[str, int] = field(default_factory=dict)
    #: every actor of the fleet (agents and relays), for teardown
    actors: list[Any] = field(default_factory=list)
    #: node id -> the report relay of that node (cluster.relay), empty when agents report directly
    relays: dict[str, Any] = field(default_factory=dict)
    #: each agent's environment (cluster.env.agent_env), for the shard tasks that work for it
    envs: dict[str, ForwardedEnv] = field(default_factory=dict)

    def shutdown(self) -> None:
        for actor in self.actors:
            try:
                ray.kill(actor, no_restart=True)
            except Exception:  # already dead (node removed, crashed): nothing left to kill
                continue
        self.actors = []
        self.placement.release()


def _clock_offsets(actors: list[Any], node_ids: list[str], driver_node: str) -> list[int]:
    """Per-agent clock offset (agent - driver, ms) for agents on other nodes, when larger than the probe's
    own uncertainty; 0 on the driver's node, which shares its clock."""
    offsets = [0] * len(actors)
    probed: dict[str, int] = {}
    for i, (actor, node_id) in enumerate(zip(actors, node_ids, strict=True)):
        if node_id == driver_node:
            continue
        if node_id not in probed:
            t0 = time.time_ns() // 1_000_000
            agent_ms = ray.get(actor.probe.remote())["time_ms"]
            t1 = time.time_ns() // 1_000_000
            offset = agent_ms - (t0 + t1) // 2
            probed[node_id] = offset if abs(offset) > (t1 - t0) else 0
        offsets[i] = probed[node_id]
    return offsets


def start_fleet(
    config: Config,
    run_id: str,
    coordinator: Any,
    *,
    interval_s: float,
    stage_fn: StageFn | None = None,
    cache: Any = None,
    env: ForwardedEnv | None = None,
    relays: bool | None = None,
) -> AgentActors:
    """Place, create, identify and configure every agent (`env`: the driver's storage variables, set in
    each agent's process by `configure` with the config's own for that agent over them, see
    cluster.env.agent_env); register them with the coordinator. `relays`: whether agents report through a
    relay per node (None: as `relay.wants_relays` decides for this fleet)."""
    env = env if env is not None else ForwardedEnv({})
    dist = config.distributed
    ready_timeout = dist.agent_ready_timeout if dist is not None else 120.0
    placement = plan_placement(config, ready_timeout, run_id)
    fleet = AgentActors(agents=[], placement=placement)
    try:
        actors = [
            create_agent(run_id, i, p.strategy, p.num_cpus, stage_fn) for i, p in enumerate(placement.slots)
        ]
        fleet.actors = actors
        try:
            probes = ray.get([a.probe.remote() for a in actors], timeout=ready_timeout)
        except GetTimeoutError as exc:
            raise RunFailed(
                f"{len(actors)} agent actors did not start within distributed.agent_ready_timeout="
                f"{ready_timeout:g}s",
                hint="check `ray status` for pending actors (a node may be full or gone)",
            ) from exc
        ids = assign_ids(
            [p.slot.declared_id for p in placement.slots], [probe["env_agent_id"] for probe in probes]
        )
        driver_node = ray.get_runtime_context().get_node_id()
        offsets = _clock_offsets(actors, [p["node_id"] for p in probes], driver_node)
        count = len(actors)
        per_node = Counter(p["node_id"] for p in probes)
        if relays is None:
            tick_s, _ = flush_ticks(interval_s, count)
            relays = wants_relays(count / tick_s, count, len(per_node))
        if relays:
            fleet.relays = {n: create_relay(run_id, n, coordinator, k) for n, k in per_node.items()}
            fleet.actors = [*actors, *fleet.relays.values()]
        owns = share_io_rate(
            [
                agent_config(config, placed.slot, agent_id, index)
                for index, (placed, agent_id) in enumerate(zip(placement.slots, ids, strict=True))
            ]
        )
        refs = []
        for index, (actor, placed, probe, agent_id, own) in enumerate(
            zip(actors, placement.slots, probes, ids, owns, strict=True)
        ):
            fleet.configs[agent_id] = own
            fleet.clock_offsets_ms[agent_id] = offsets[index]
            identity = AgentIdentity(agent_id=agent_id, index=index, count=count, run_id=run_id)
            own_env = fleet.envs[agent_id] = agent_env(env, config, placed.slot.entry)
            refs.append(
                actor.configure.remote(
                    identity,
                    own,
                    coordinator,
                    interval_s,
                    offsets[index],
                    cache,
                    own_env,
                    fleet.relays.get(probe["node_id"]),
                )
            )
            fleet.agents.append(AgentRef(agent_id, index, actor, probe["node_id"], placed.node_ip))
        ray.get(refs)
        ray.get(
            coordinator.register.remote(
                {a.agent_id: a.actor for a in fleet.agents}, {a.agent_id: a.node_id for a in fleet.agents}
            )
        )
    except BaseException:
        fleet.shutdown()
        raise
    return fleet
