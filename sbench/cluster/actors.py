"""Creating the run's named actors: where each one lives and what it is called.

Every actor of a run carries the run id in its name (namespace `sbench`), so two runs on one cluster never
meet, and a test can prove that nothing of a finished run is still alive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sbench.cluster.agent import CONTROL_GROUP, AgentActor, StageFn
from sbench.cluster.coordinator import CoordinatorActor
from sbench.cluster.metadata_cache import MetadataCacheActor
from sbench.cluster.oplogs import OPLOG_GROUP
from sbench.cluster.relay import ReportRelay

NAMESPACE = "sbench"


def actor_name(kind: str, run_id: str, suffix: str = "") -> str:
    return f"sbench-{kind}-{run_id}" + (f"-{suffix}" if suffix else "")


def driver_node_affinity() -> NodeAffinitySchedulingStrategy:
    """Pin to the driver's node: the actor writes files the driver reads (no shared file system assumed)."""
    return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)


def _driver_side(cls: type, kind: str, run_id: str, max_concurrency: int) -> Any:
    """A named actor class of the run, pinned to the driver's node, taking no CPU."""
    return ray.remote(cls).options(
        name=actor_name(kind, run_id),
        namespace=NAMESPACE,
        num_cpus=0,
        max_concurrency=max_concurrency,
        scheduling_strategy=driver_node_affinity(),
    )


def create_metadata_cache(path: Path, run_id: str) -> Any:
    """The metadata-cache actor; threaded so a long count never blocks a listing page or a state batch."""
    return _driver_side(MetadataCacheActor, "metadata", run_id, 4).remote(str(path))


def create_coordinator(run_id: str, interval_s: float, stuck_intervals: int) -> Any:
    """The coordinator: async (one event loop for every report and poll), on the driver's node."""
    coordinator = _driver_side(CoordinatorActor, "coordinator", run_id, 1000)
    return coordinator.remote(run_id, interval_s, stuck_intervals)


def create_relay(run_id: str, node_id: str, coordinator: Any, agents: int) -> Any:
    """The report relay of one node (cluster.relay): on that node, next to its `agents` agents, taking no
    CPU; not restarted (its agents then report directly)."""
    cls = ray.remote(ReportRelay).options(
        name=actor_name("relay", run_id, node_id[:12]),
        namespace=NAMESPACE,
        num_cpus=0,
        max_restarts=0,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
    )
    return cls.remote(coordinator, agents)


def create_agent(run_id: str, position: int, strategy: Any, num_cpus: float, stage_fn: StageFn | None) -> Any:
    """One agent actor: stage calls in the default group, ping/status/stop/abort in the control group, op-log
    batches and reads in their own.

    No runtime_env: Ray logs it in full; the forwarded credentials reach the agent in `configure`."""
    cls = ray.remote(concurrency_groups={CONTROL_GROUP: 2, OPLOG_GROUP: 1})(AgentActor)
    return cls.options(
        name=actor_name("agent", run_id, str(position)),
        namespace=NAMESPACE,
        num_cpus=num_cpus,
        scheduling_strategy=strategy,
        max_restarts=0,
    ).remote(stage_fn)
