"""Per-node report relays (cluster.relay) on a real local Ray instance.

A batch is taken exactly as the same reports sent one by one; a fleet reporting through relays gets the same
exact live merge; a relay that dies, before or after handing a report over, costs no report and counts none
twice (the agent sends it again directly, the coordinator ignores a sequence number it already took).
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
import uuid

import pytest

from sbench.cluster import relay as relay_module
from sbench.cluster.actors import create_coordinator, create_relay
from sbench.cluster.actorset import start_fleet
from sbench.cluster.agent import FINAL_REPORT_TIMEOUT_S, flush_ticks
from sbench.cluster.relay import ReportLink, wants_relays
from sbench.cluster.stagerun import run_agent_stage
from sbench.control import RunControl
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import PhaseBarrier
from sbench.run.barrier import BarrierStatus
from sbench.run.monitor import AgentReport, SeqWindow, StageMonitor
from tests.cluster.conftest import assert_files_agree, results_tsv_all, run_driver, status_of
from tests.cluster.fakes import fake_stage
from tests.cluster.test_coordinator import INTERVAL, _config, _execute_plan

ray = pytest.importorskip("ray")
pytestmark = [pytest.mark.ray]

AGENTS = ["a1", "a2", "a3"]


def _interval(k: int, ops: int) -> Snapshot:
    rec = Recorder()
    for i in range(ops):
        rec.record(OpClass.GET, 4096, 100 + (i * 53 + k * 7) % 5000)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = 1_000 * k, 1_000 * (k + 1)
    return snap


def _reports() -> list[AgentReport]:
    """Three intervals of three agents (the last one final), distinct latencies per agent and interval."""
    return [
        AgentReport(agent, 1, [_interval(k, 40 + 10 * i + k)], started_ms=1, final=k == 2, seq=k + 1)
        for k in range(3)
        for i, agent in enumerate(AGENTS)
    ]


def _stage_totals(coordinator) -> tuple[Snapshot, dict[str, Snapshot]]:
    ray.get(coordinator.end_stage.remote(1))
    drained = ray.get(coordinator.poll.remote(1))
    per_agent = {a: Snapshot.merge_all(snaps) for a, snaps in drained.per_agent.items()}
    return Snapshot.merge_all(drained.aggregate), per_agent


def _open_stage(participants: list[str]):
    coordinator = create_coordinator(uuid.uuid4().hex[:8], 1.0, 3)
    ray.get(coordinator.begin_stage.remote(1, "execute", PhaseBarrier(), participants, True, 0.0))
    return coordinator


def test_a_relay_batch_is_taken_exactly_as_direct_reports(ray_session) -> None:
    direct = _open_stage(AGENTS)
    assert set(ray.get([direct.report.remote(r) for r in _reports()])) == {"continue"}
    batched = _open_stage(AGENTS)
    relay = create_relay(uuid.uuid4().hex[:8], ray.get_runtime_context().get_node_id(), batched, len(AGENTS))
    assert set(ray.get([relay.report.remote(r) for r in _reports()])) == {"continue"}
    assert ray.get(relay.forwarded.remote())[0] == len(_reports())
    (agg_d, per_d), (agg_b, per_b) = _stage_totals(direct), _stage_totals(batched)
    sent = Snapshot.merge_all(s for r in _reports() for s in r.snapshots)
    for agg in (agg_d, agg_b):
        assert agg.total_ops(OpClass.GET) == sent.total_ops(OpClass.GET)
        assert agg.histogram(OpClass.GET).count == sent.histogram(OpClass.GET).count
        assert agg.latency(OpClass.GET).p99 == sent.latency(OpClass.GET).p99
    assert {a: s.total_ops(OpClass.GET) for a, s in per_d.items()} == {
        a: s.total_ops(OpClass.GET) for a, s in per_b.items()
    }
    for actor in (direct, batched, relay):
        ray.kill(actor)


@ray.remote(num_cpus=0, max_restarts=0)
class _DyingRelay:
    """A relay that dies on its first report, after handing it to the coordinator or before."""

    def __init__(self, coordinator, forward_first: bool) -> None:
        self.coordinator, self.forward_first = coordinator, forward_first

    def report(self, report: AgentReport) -> str:
        if self.forward_first:
            ray.get(self.coordinator.report_batch.remote([report]))
        os._exit(1)


@pytest.mark.parametrize("forward_first", [True, False], ids=["died-after-forwarding", "died-before"])
def test_a_report_owed_by_a_dead_relay_is_sent_again_and_counted_once(ray_session, forward_first) -> None:
    coordinator = _open_stage(["a1"])
    link = ReportLink(coordinator, _DyingRelay.remote(coordinator, forward_first))
    link.begin_stage()
    snap = _interval(0, 25)
    link.send(AgentReport("a1", 1, [snap], started_ms=1, final=True))
    assert link.confirm(60)
    assert link.relay is None  # it reports directly from now on
    aggregate, per_agent = _stage_totals(coordinator)
    assert aggregate.total_ops(OpClass.GET) == per_agent["a1"].total_ops(OpClass.GET) == 25
    ray.kill(coordinator)


@ray.remote(num_cpus=0, max_restarts=0)
class _HungRelay:
    """A relay that takes reports and never answers (its node overloaded, its event loop stuck)."""

    async def report(self, report: AgentReport) -> str:
        await asyncio.sleep(3600)
        return "continue"


def test_a_hung_relay_is_gone_around_and_the_last_report_still_arrives(ray_session, monkeypatch) -> None:
    assert relay_module.RELAY_ANSWER_TIMEOUT_S < FINAL_REPORT_TIMEOUT_S  # a final report is not given up
    monkeypatch.setattr(relay_module, "RELAY_ANSWER_TIMEOUT_S", 1.0)
    coordinator = _open_stage(["a1"])
    link = ReportLink(coordinator, _HungRelay.remote())
    link.begin_stage()
    link.send(AgentReport("a1", 1, [_interval(0, 20)], started_ms=1))
    link.send(AgentReport("a1", 1, [_interval(1, 15)], started_ms=1, final=True))
    assert link.confirm(30)
    assert link.relay is None
    aggregate, per_agent = _stage_totals(coordinator)
    assert aggregate.total_ops(OpClass.GET) == per_agent["a1"].total_ops(OpClass.GET) == 35
    ray.kill(coordinator)


def test_a_repeated_sequence_number_is_taken_once_in_any_order() -> None:
    window = SeqWindow()
    assert [window.take(s) for s in (1, 3, 3, 2, 1, 4, 2)] == [True, True, False, True, False, True, False]
    assert (window.floor, window.above) == (4, set())
    mon = StageMonitor(
        1,
        "execute",
        PhaseBarrier(),
        ["a1"],
        interval_s=1.0,
        stuck_intervals=3,
        watch_progress=True,
        now_s=0.0,
    )
    report = AgentReport("a1", 1, [_interval(0, 30)], started_ms=1, seq=1)
    mon.on_report(report, 0.5, 500)
    mon.on_report(report, 0.6, 600)
    mon.flush(1.0, 1000)
    assert Snapshot.merge_all(mon.drain(1.0).aggregate).total_ops(OpClass.GET) == 30


@pytest.mark.parametrize(
    ("agents", "nodes", "relays"),
    [(1000, 64, True), (1000, 1, True), (300, 20, True), (3, 1, False), (60, 4, False), (1000, 1000, False)],
)
def test_relays_are_used_when_the_direct_calls_would_load_the_coordinator(agents, nodes, relays) -> None:
    tick_s, _ = flush_ticks(1.0, agents)
    assert wants_relays(agents / tick_s, agents, nodes) is relays


def _fleet_stage(kill_relay_after_s: float | None):
    """One execute stage of three agents reporting through their node's relay (optionally killed midway)."""
    config = _config(AGENTS, duration=2.0)
    run_id = uuid.uuid4().hex[:8]
    coordinator = create_coordinator(run_id, INTERVAL, config.distributed.stuck_intervals)
    fleet = start_fleet(config, run_id, coordinator, interval_s=INTERVAL, stage_fn=fake_stage, relays=True)
    [relay] = fleet.relays.values()
    polls: list = []
    forwarded_before_kill = [0]

    def kill() -> None:
        time.sleep(kill_relay_after_s)
        forwarded_before_kill[0] = ray.get(relay.forwarded.remote())[0]
        ray.kill(relay, no_restart=True)

    killer = threading.Thread(target=kill, daemon=True) if kill_relay_after_s is not None else None
    try:
        if killer is not None:
            killer.start()
        run = run_agent_stage(
            coordinator, fleet.agents, _execute_plan(config), on_poll=polls.append, control=RunControl()
        )
        if killer is not None:
            killer.join()
        forwarded = forwarded_before_kill[0] if killer is not None else ray.get(relay.forwarded.remote())[0]
    finally:
        fleet.shutdown()
        ray.kill(coordinator)
    return run, polls, forwarded


@pytest.mark.parametrize("kill_after_s", [None, 1.0], ids=["relay-alive", "relay-killed-mid-stage"])
def test_a_fleet_through_relays_counts_every_op_once(ray_session, kill_after_s) -> None:
    run, polls, forwarded = _fleet_stage(kill_after_s)
    assert run.status is BarrierStatus.READY
    assert all(r.ok for r in run.results.values())
    assert forwarded >= len(AGENTS)  # reports did go through the relay (before it was killed)
    aggregate = Snapshot.merge_all(s for d in polls for s in d.aggregate)
    per_agent = Snapshot.merge_all(s for d in polls for snaps in d.per_agent.values() for s in snaps)
    finals = Snapshot.merge_all(r.snapshot for r in run.results.values())
    assert finals.total_ops(OpClass.GET) > 0
    gets = finals.total_ops(OpClass.GET)
    assert aggregate.total_ops(OpClass.GET) == per_agent.total_ops(OpClass.GET) == gets
    assert aggregate.histogram(OpClass.GET).count == gets
    assert not any(r.extra.get("final_report") for r in run.results.values())


def test_a_whole_run_through_relays_writes_files_that_agree(ray_session, tmp_path, monkeypatch) -> None:
    """The real driver, engine and result writers with relays forced on for a 3-agent fleet (the rule picks
    them only past 250 report calls a second): SUCCESS, the console says so, the metadata counts the relay,
    and the aggregate and per-agent files agree op for op."""
    monkeypatch.setattr(relay_module, "RELAY_ABOVE_CALLS_PER_S", 0)
    data = tmp_path / "data"
    data.mkdir()
    for i in range(50):
        (data / f"f{i:02d}").write_bytes(b"r" * 1024)
    code, results = run_driver(
        f"""
target: "file://{data}/"
duration: 2s
concurrency: 2
workload:
  - {{op: get, path: "f*", weight: 3}}
  - {{op: put, path: "up/", object_size: 1024, weight: 1}}
prepare:
  cleanup: true
distributed:
  shared_filesystem: true
  agents:
    - {{address: "localhost:7761", id: r1}}
    - {{address: "localhost:7762", id: r2}}
    - {{address: "localhost:7763", id: r3}}
""",
        tmp_path,
        "relayed",
    )
    assert code == 0 and status_of(results) == "SUCCESS", (results / "STATUS.txt").read_text()
    assert "they report through 1 per-node relay(s)" in (results / "console_log.txt").read_text()
    assert json.loads((results / "metadata.json").read_text())["extra"]["report_relays"] == 1
    assert_files_agree(results, "Workload", "workload", "workload_results.tsv")
    assert results_tsv_all(results / "workload_results.tsv")["GET"] > 0
