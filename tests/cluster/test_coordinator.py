"""Coordinator + agent actors on a real local Ray instance, driven by fake stage functions.

Barriers per type, exact live merge, start skew, stuck detection, abort broadcast and a control group that
answers while the stage is busy.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from sbench.cluster.actors import create_coordinator
from sbench.cluster.actorset import start_fleet
from sbench.cluster.stagerun import run_agent_stage
from sbench.config import load_config_text
from sbench.control import RunControl
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import PhaseBarrier, stage_plan
from sbench.run.barrier import BarrierStatus
from tests.cluster.fakes import fake_stage

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray]

INTERVAL = 0.25


def _config(agent_ids: list[str], duration: float = 1.5, barrier: str = "all_or_nothing", stuck: int = 3):
    agents = "\n".join(f"    - {{address: '127.0.0.1:{7761 + i}', id: {a}}}" for i, a in enumerate(agent_ids))
    text = f"""
target: "file:///tmp/unused/"
duration: {duration}s
concurrency: 1
perf_log: {{interval: {INTERVAL}}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  stuck_intervals: {stuck}
  barrier_sync:
    enabled: true
    execute: {{type: {barrier}, agent_barrier_timeout: 2}}
  agents:
{agents}
"""
    return load_config_text(text).config


def _execute_plan(config):
    return next(p for p in stage_plan(config) if p.type.value == "execute")


class _Run:
    """A coordinator and a fleet for one test, torn down afterwards."""

    def __init__(self, config) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self.coordinator = create_coordinator(self.run_id, INTERVAL, config.distributed.stuck_intervals)
        self.fleet = start_fleet(
            config, self.run_id, self.coordinator, interval_s=INTERVAL, stage_fn=fake_stage
        )
        self.polls = []
        self.control = RunControl()

    def stage(self, plan, **kw):
        return run_agent_stage(
            self.coordinator,
            self.fleet.agents,
            plan,
            on_poll=self.polls.append,
            control=self.control,
            **kw,
        )

    def close(self) -> None:
        self.fleet.shutdown()
        ray.kill(self.coordinator)


@pytest.fixture
def make_run(ray_session):
    runs = []

    def make(config):
        run = _Run(config)
        runs.append(run)
        return run

    yield make
    for run in runs:
        run.close()


def test_three_agents_ready_with_exact_merge_and_small_skew(make_run) -> None:
    config = _config(["a1", "a2", "a3"])
    run = make_run(config)
    assert [a.agent_id for a in run.fleet.agents] == ["a1", "a2", "a3"]
    assert [a.index for a in run.fleet.agents] == [0, 1, 2]
    result = run.stage(_execute_plan(config))
    assert result.status is BarrierStatus.READY
    assert set(result.results) == {"a1", "a2", "a3"}
    assert all(r.ok for r in result.results.values())
    assert result.start_skew_ms is not None and result.start_skew_ms < 200
    # The live aggregate intervals add up to exactly the per-agent intervals and to the agents' totals.
    aggregate = Snapshot.merge_all(s for d in run.polls for s in d.aggregate)
    per_agent = Snapshot.merge_all(s for d in run.polls for snaps in d.per_agent.values() for s in snaps)
    finals = Snapshot.merge_all(r.snapshot for r in result.results.values())
    gets = finals.total_ops(OpClass.GET)
    assert aggregate.total_ops(OpClass.GET) == per_agent.total_ops(OpClass.GET) == gets
    assert finals.total_ops(OpClass.GET) > 0
    assert aggregate.histogram(OpClass.GET).count == finals.total_ops(OpClass.GET)
    assert aggregate.latency(OpClass.GET).p99 == finals.latency(OpClass.GET).p99


def test_failed_agent_all_or_nothing_fails_majority_degrades(make_run) -> None:
    strict = _config(["ok-1", "ok-2", "fail-3"], duration=1.0)
    run = make_run(strict)
    result = run.stage(_execute_plan(strict))
    assert result.status is BarrierStatus.FAILED
    assert result.states["fail-3"] == "failed"
    assert "cannot reach its storage" in result.reasons["fail-3"]

    majority = _config(["ok-1", "ok-2", "fail-3"], duration=1.0, barrier="majority")
    run2 = make_run(majority)
    result2 = run2.stage(_execute_plan(majority))
    assert result2.status is BarrierStatus.DEGRADED
    assert result2.failed_agents == ["fail-3"]
    excluded = ray.get(run2.coordinator.excluded.remote())
    assert set(excluded) == {"fail-3"}


def test_stuck_agent_is_flagged_within_k_intervals(make_run) -> None:
    config = _config(["ok-1", "stuck-2"], duration=2.5, barrier="best_effort", stuck=3)
    run = make_run(config)
    result = run.stage(_execute_plan(config))
    assert set(result.stuck) == {"stuck-2"}
    assert "no progress for 3 consecutive intervals" in result.stuck["stuck-2"]
    stuck_events = [e for e in result.events if e.kind == "stuck"]
    assert [e.agent_id for e in stuck_events] == ["stuck-2"]
    # Flagged within K intervals of the start (plus one interval of report latency).
    started = min(r.started_ms for r in result.results.values())
    assert stuck_events[0].at_ms - started <= (3 + 2) * INTERVAL * 1000


def test_abort_stops_every_agent_mid_stage(make_run) -> None:
    config = _config(["a1", "a2"], duration=30)
    run = make_run(config)
    timer = threading.Timer(1.0, run.control.abort, args=("test abort",))
    timer.start()
    t0 = time.monotonic()
    result = run.stage(_execute_plan(config))
    took = time.monotonic() - t0
    assert result.aborted
    assert took < 1.0 + 2.5
    assert all(r.status == "aborted" for r in result.results.values())
    assert all(r.snapshot.total_ops() > 0 for r in result.results.values())  # partial results kept


def test_hung_engine_is_abandoned_and_control_group_answers(make_run) -> None:
    config = _config(["hang-1"], duration=20, barrier="best_effort")
    run = make_run(config)
    agent = run.fleet.agents[0].actor
    plan = _execute_plan(config)
    box = {}
    worker = threading.Thread(target=lambda: box.update(result=run.stage(plan)))
    worker.start()
    time.sleep(0.8)
    t0 = time.monotonic()
    assert ray.get(agent.ping.remote(), timeout=2) == "hang-1"
    assert ray.get(agent.status.remote(), timeout=2)["state"] == "running"
    assert time.monotonic() - t0 < 1.0
    run.control.abort("test abort")
    worker.join(timeout=10)
    result = box["result"]
    assert result.results["hang-1"].status == "aborted"
    assert "did not return" in result.results["hang-1"].reason


def test_barrier_plan_uses_the_stage_type(make_run) -> None:
    config = _config(["a1"])
    plan = _execute_plan(config)
    assert isinstance(plan.barrier, PhaseBarrier)
    assert plan.barrier.type.value == "all_or_nothing"
    assert plan.barrier.agent_barrier_timeout == 2


def test_silent_agent_is_queried_then_marked_disconnected(make_run) -> None:
    """An agent that stops answering (its process frozen) misses heartbeats, fails its status queries and
    is marked disconnected; best_effort lets the other agent carry the stage."""
    import os
    import signal

    text = f"""
target: "file:///tmp/unused/"
duration: 6s
concurrency: 1
perf_log: {{interval: {INTERVAL}}}
workload:
  - {{op: get, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  barrier_sync:
    execute:
      type: best_effort
      heartbeat_interval: 0.5
      missed_threshold: 2
      query_timeout: 0.5
      query_retries: 1
  agents:
    - {{address: '127.0.0.1:7761', id: a1}}
    - {{address: '127.0.0.1:7762', id: a2}}
"""
    config = load_config_text(text).config
    run = make_run(config)
    pid = ray.get(run.fleet.agents[1].actor.probe.remote())["pid"]
    timer = threading.Timer(1.5, os.kill, args=(pid, signal.SIGSTOP))
    timer.start()
    try:
        result = run.stage(_execute_plan(config))
    finally:
        timer.join()
        os.kill(pid, signal.SIGCONT)
    assert result.status is BarrierStatus.DEGRADED
    assert result.states == {"a1": "ready", "a2": "failed"}
    assert "no answer to 2 status queries" in result.reasons["a2"]
    kinds = [(e.agent_id, e.kind) for e in result.events]
    assert ("a2", "disconnected") in kinds
