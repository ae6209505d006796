"""Creating the run's named actors: where each one lives and what it is called.

Every actor of a run carries the run id in its name (namespace `sbench`), so two runs on one cluster never
meet, and a test can prove that nothing of a finished run is still alive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sbench.cluster.metadata_cache import MetadataCacheActor

NAMESPACE = "sbench"


def actor_name(kind: str, run_id: str, suffix: str = "") -> str:
    return f"sbench-{kind}-{run_id}" + (f"-{suffix}" if suffix else "")


def driver_node_affinity() -> NodeAffinitySchedulingStrategy:
    """Pin to the driver's node: the actor writes files the driver reads (no shared file system assumed)."""
    return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)


def create_metadata_cache(path: Path, run_id: str) -> Any:
    """The metadata-cache actor; threaded so a long count never blocks a listing page or a state batch."""
    cls = ray.remote(MetadataCacheActor)
    return cls.options(
        name=actor_name("metadata", run_id),
        namespace=NAMESPACE,
        num_cpus=0,
        max_concurrency=4,
        scheduling_strategy=driver_node_affinity(),
    ).remote(str(path))
