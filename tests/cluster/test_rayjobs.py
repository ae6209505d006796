"""The shard executor on Ray (cluster.rayjobs): jobs as tasks report their intervals live through the
coordinator, a stage timeout stops them through it, a crash fails its agent with a one-line reason."""

from __future__ import annotations

import time

import pytest

from sbench.cluster.actors import create_coordinator
from sbench.cluster.env import ForwardedEnv
from sbench.cluster.rayjobs import RayJobRunner
from sbench.control import RunControl
from sbench.metrics.snapshot import Snapshot
from sbench.run.shardjobs import ShardJob, StageLimits, run_jobs
from tests.run.test_shardjobs import crashing_job, waiting_job


@pytest.mark.ray
def test_ray_jobs_report_live_stop_on_the_stage_timeout_and_fail_with_one_line(ray_session) -> None:
    import ray

    coordinator = create_coordinator(f"rayjobs-{time.monotonic_ns()}", 0.2, 10)
    try:
        intervals: list[dict[str, Snapshot]] = []
        runner = RayJobRunner(coordinator, ForwardedEnv({}), 0.2)
        jobs = [
            ShardJob("agent-0", waiting_job, (30.0,), objects=100, num_cpus=0),
            ShardJob("agent-1", crashing_job, (), label="prepare shard [0, 5)", num_cpus=0),
        ]
        t0 = time.monotonic()
        state = run_jobs(
            jobs,
            runner,
            stage_index=3,
            stage_name="prepare",
            max_in_flight=2,
            control=RunControl(),
            limits=StageLimits(t0, timeout_s=2.0),
            interval_s=0.2,
            on_interval=lambda aggregate, per_agent: intervals.append(per_agent),
        )
        runner.end_stage(3)
        took = time.monotonic() - t0
    finally:
        ray.kill(coordinator)
    assert state.timed_out and took < 2.0 + 2.5, took
    live = [per["agent-0"].total_ops() for per in intervals if "agent-0" in per]
    assert sum(1 for n in live if n) >= 3  # reports arrived while the task ran, not only at its end
    done = intervals[-1]["agent-0"].progress["agent-0"]
    ops = state.per_agent["agent-0"].snapshot().total_ops()
    assert done.objects_total == 100 and done.objects_done == ops
    assert state.failures == {"agent-1": "prepare shard [0, 5) failed: RuntimeError: boom in the shard"}
