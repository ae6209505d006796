"""Pure logic of the cluster layer, no Ray: barrier verdicts (sai3 §1.10), agent ids and per-agent configs,
and the coordinator's stage monitor (aligned aggregation, stuck flags, silence)."""

from __future__ import annotations

import pytest

from sbench.cluster.env import forwarded_env
from sbench.config import load_config_text
from sbench.config.models import BarrierType
from sbench.errors import ConfigError
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.plan.agents import (
    AgentSlot,
    address_host,
    agent_config,
    assign_ids,
    declared_slots,
    local_agents,
    share_io_rate,
)
from sbench.plan.stages import PhaseBarrier
from sbench.run.barrier import AgentStageState, BarrierStatus, StageBarrier
from sbench.run.monitor import AgentReport, StageMonitor


def _barrier(kind: str, n: int = 3, timeout: float = 10.0) -> StageBarrier:
    spec = PhaseBarrier(type=BarrierType(kind), agent_barrier_timeout=timeout)
    return StageBarrier(spec, tuple(f"a{i}" for i in range(1, n + 1)))


def test_all_or_nothing_fails_on_any_failure_and_stops_the_rest() -> None:
    b = _barrier("all_or_nothing")
    b.arrive("a1", 0.0)
    assert b.evaluate(0.1) is BarrierStatus.WAITING
    b.fail("a3", "node gone")
    assert b.evaluate(0.2) is BarrierStatus.FAILED
    assert b.states["a2"] is AgentStageState.STRAGGLER
    assert "barrier failed (a3)" in b.reasons["a2"]
    assert b.excluded_after() == set()


def test_all_or_nothing_ready_when_everyone_arrives_and_times_out_otherwise() -> None:
    b = _barrier("all_or_nothing", n=2)
    b.arrive("a1", 0.0)
    b.arrive("a2", 1.0)
    assert b.evaluate(1.0) is BarrierStatus.READY
    late = _barrier("all_or_nothing", n=2, timeout=5)
    late.arrive("a1", 0.0)
    assert late.evaluate(4.9) is BarrierStatus.WAITING
    assert late.evaluate(5.0) is BarrierStatus.FAILED


def test_majority_degrades_fails_and_excludes_stragglers() -> None:
    b = _barrier("majority")
    b.arrive("a1", 0.0)
    b.arrive("a2", 0.5)
    assert b.evaluate(1.0) is BarrierStatus.WAITING  # a3 still running: wait for it up to the timeout
    assert b.evaluate(10.0) is BarrierStatus.DEGRADED
    assert b.states["a3"] is AgentStageState.STRAGGLER and "agent_barrier_timeout" in b.reasons["a3"]
    assert b.excluded_after() == {"a3"}
    b2 = _barrier("majority")
    b2.fail("a1", "x")
    b2.fail("a2", "y")
    assert b2.evaluate(0.0) is BarrierStatus.FAILED  # alive <= total/2: no majority possible
    b3 = _barrier("majority")
    b3.arrive("a1", 0.0)
    b3.arrive("a2", 0.0)
    b3.fail("a3", "died")
    assert b3.evaluate(0.0) is BarrierStatus.DEGRADED and b3.excluded_after() == {"a3"}


def test_best_effort_goes_on_with_anyone_and_fails_only_when_all_fail() -> None:
    b = _barrier("best_effort")
    b.fail("a1", "x")
    b.fail("a2", "y")
    b.arrive("a3", 0.0)
    assert b.evaluate(0.0) is BarrierStatus.DEGRADED
    assert b.excluded_after() == set()  # failed-but-alive agents take part in later stages
    dead = _barrier("best_effort", n=2)
    dead.fail("a1", "x")
    dead.fail("a2", "y")
    assert dead.evaluate(0.0) is BarrierStatus.FAILED


def test_a_verdict_is_final_and_a_later_failure_does_not_hide_the_first() -> None:
    b = _barrier("best_effort", n=2)
    b.fail("a1", "first")
    b.fail("a1", "second")
    assert b.reasons["a1"] == "first"
    b.arrive("a2", 0.0)
    assert b.evaluate(0.0) is BarrierStatus.DEGRADED
    b.arrive("a1", 1.0)
    assert b.evaluate(1.0) is BarrierStatus.DEGRADED


def test_address_host() -> None:
    assert address_host("10.0.0.5:7761") == "10.0.0.5"
    assert address_host("[::1]:7761") == "::1"
    assert address_host("node-a") == "node-a"
    assert address_host("localhost:1") == "localhost"


def test_assign_ids_yaml_then_env_then_generated() -> None:
    assert assign_ids(["x", None, None], [None, "edge", None]) == ["x", "edge", "agent-3"]
    assert assign_ids([None, None], ["n1", "n1"]) == ["n1-1", "n1-2"]  # two agents on one node
    assert assign_ids(["agent-2", None], [None, None]) == ["agent-2", "agent-2-2"]
    with pytest.raises(ConfigError, match="used by more than one agent"):
        assign_ids(["a", "a"], [None, None])


def _dist(extra: str, shared: str = "false") -> str:
    return f"""
target: "file:///data/"
concurrency: 8
prepare:
  ensure_objects:
    - {{base_uri: "file:///data/pool/", count: 10}}
    - {{count: 10}}
workload:
  - {{op: get, path: "pool/*", weight: 1}}
distributed:
  shared_filesystem: {shared}
  agents:
{extra}
"""


def test_agent_config_isolated_prefix_and_overrides() -> None:
    config = load_config_text(
        _dist(
            "    - {address: 'localhost:1', id: one, concurrency_override: 2}\n"
            "    - {address: 'localhost:2', path_template: 'node-{agent_id}/'}\n"
            "    - {address: 'localhost:3', target_override: 'file:///own/'}\n"
        )
    ).config
    slots = declared_slots(config)
    first = agent_config(config, slots[0], "one", 0)
    assert first.target == "file:///data/agent-1/" and first.concurrency == 8 // 4
    # (a base_uri outside the target is a config error now, so every pool follows the agent's prefix or,
    # without a base_uri, defaults to the agent's own target)
    assert [p.base_uri for p in first.prepare.ensure_objects] == ["file:///data/agent-1/pool/", None]
    second = agent_config(config, slots[1], "agent-2", 1)
    assert second.target == "file:///data/node-agent-2/"
    third = agent_config(config, slots[2], "agent-3", 2)
    assert third.target == "file:///own/"  # its own target: no extra prefix
    assert third.prepare.ensure_objects[0].base_uri == "file:///own/pool/"


def test_agent_config_shared_mode_keeps_the_target() -> None:
    config = load_config_text(_dist("    - {address: 'localhost:1'}\n", shared="true")).config
    slot = declared_slots(config)[0]
    assert agent_config(config, slot, "agent-1", 0).target == "file:///data/"
    per_node = AgentSlot(declared_id=None, host="", entry=None, position=3)
    assert agent_config(config, per_node, "agent-4", 3).target == "file:///data/"


_STANDALONE = """\
target: "file:///tmp/sbench-topology-test/"
concurrency: 5
workload: [{op: put, path: "p/", weight: 1}]
"""


def test_processes_becomes_local_agents_with_concurrency_split_as_sai3() -> None:
    run = local_agents(load_config_text(_STANDALONE + "processes: 2\n").config)
    assert run.distributed is not None and run.distributed.shared_filesystem
    assert [a.id for a in run.distributed.agents] == ["agent-1", "agent-2"]
    assert {a.address for a in run.distributed.agents} == {"localhost"}
    assert run.concurrency == 3 and run.processes is None
    # RAY_ADDRESS without a distributed block: the same, with one agent
    single = local_agents(load_config_text(_STANDALONE).config)
    assert single.distributed is not None and len(single.distributed.agents) == 1
    assert single.concurrency == 5


def test_open_loop_rate_is_shared_by_worker_count() -> None:
    config = load_config_text(_STANDALONE + "io_rate: {iops: 900}\n").config
    configs = [config, config.model_copy(update={"concurrency": 10})]
    shared = share_io_rate(configs)
    assert [c.io_rate.iops for c in shared if c.io_rate] == pytest.approx([300.0, 600.0])
    closed = load_config_text(_STANDALONE).config
    assert share_io_rate([closed, closed]) == [closed, closed]


def test_forwarded_env_is_an_allow_list() -> None:
    env = {
        "AWS_SECRET_ACCESS_KEY": "s",
        "HOME": "/root",
        "SBENCH_AGENT_ID": "n1",
        "STORAGE_EMULATOR_HOST": "h",
    }
    assert forwarded_env(env) == {"AWS_SECRET_ACCESS_KEY": "s", "STORAGE_EMULATOR_HOST": "h"}


def _interval(start_ms: int, ops: int) -> object:
    rec = Recorder()
    for i in range(ops):
        rec.record(OpClass.GET, 100, 50 + i)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = start_ms, start_ms + 1000
    return snap


def test_monitor_aligns_intervals_by_sequence_and_flags_stuck() -> None:
    mon = StageMonitor(
        1,
        "execute",
        PhaseBarrier(type=BarrierType.BEST_EFFORT),
        ["a1", "a2"],
        interval_s=1.0,
        stuck_intervals=2,
        watch_progress=True,
        now_s=0.0,
    )
    # a1 reports interval 0 and 1 before a2 reports interval 0: the aggregate waits for a2's interval 0.
    mon.on_report(AgentReport("a1", 1, [_interval(0, 5)], started_ms=1), 1.0, 1000)
    mon.on_report(AgentReport("a1", 1, [_interval(1000, 7)], started_ms=1), 2.0, 2000)
    mon.tick(2.1, 2100)
    early = mon.drain(2.1)
    assert early.aggregate == [] and len(early.per_agent["a1"]) == 2
    mon.on_report(AgentReport("a2", 1, [_interval(0, 0)], started_ms=2), 2.2, 2200)
    mon.on_report(AgentReport("a2", 1, [_interval(1000, 0)], started_ms=2), 2.3, 2300)
    mon.tick(2.4, 2400)
    drained = mon.drain(2.4)
    assert [s.total_ops() for s in drained.aggregate] == [5, 7]  # interval k = k-th interval of each agent
    assert {a: len(v) for a, v in drained.per_agent.items()} == {"a2": 2}
    assert list(mon.stuck_flags()) == ["a2"]
    assert mon.stuck_flags()["a2"].startswith("no progress for 2 consecutive intervals")
    assert [e.kind for e in drained.events] == ["stuck"]
    assert drained.start_skew_ms == 1


def test_monitor_counts_silent_intervals_and_asks_for_liveness_queries() -> None:
    spec = PhaseBarrier(type=BarrierType.MAJORITY, heartbeat_interval=1.0, missed_threshold=2)
    mon = StageMonitor(
        1, "execute", spec, ["a1"], interval_s=1.0, stuck_intervals=3, watch_progress=True, now_s=0.0
    )
    mon.on_report(AgentReport("a1", 1, [_interval(0, 3)], started_ms=5), 1.0, 1000)
    assert mon.tick(2.0, 2000) == []
    assert mon.tick(3.1, 3100) == ["a1"]  # silent for more than 1 s x 2 missed heartbeats
    mon.tick(4.6, 4600)
    mon.tick(6.1, 6100)
    assert "a1" in mon.stuck_flags()  # silent intervals count as intervals without progress


def test_unreachable_ray_address_is_reported_at_once() -> None:
    import socket

    from sbench.cluster.connect import _unreachable

    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    assert "refused" in _unreachable(f"127.0.0.1:{port}").lower()
    assert _unreachable("127.0.0.1:notaport") == "'notaport' is not a port number"
    assert _unreachable("auto") == "" and _unreachable("ray://head:10001") == ""
    with socket.socket() as listening:
        listening.bind(("127.0.0.1", 0))
        listening.listen(1)
        assert _unreachable(f"127.0.0.1:{listening.getsockname()[1]}") == ""
