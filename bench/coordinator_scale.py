"""The coordinator under 1,000 simulated agents: its CPU, the live-stat merge delay, the barrier release.

Run:  scripts/netns-run env RAY_AUTH_MODE=disabled .venv/bin/python bench/coordinator_scale.py \
          [--agents 1000] [--baseline-agents 10] [--seconds 20] [--nodes 64]

Goals (issue 16 §4): with 1,000 agents sending an interval report every second, the coordinator uses
< 1 core, an interval's aggregate reaches the driver < 1 s after its last report was sent, and the barrier
releases < 2 s after the last agent arrives.

The real `CoordinatorActor` runs on a local Ray instance; a few sender actors stand in for the agents (a
2-core machine cannot host 1,000 agent processes), each sending, every second, one `AgentReport` per
simulated agent with a realistic snapshot (GET and PUT histograms of a few thousand ops, progress counters,
CPU gauges); the driver polls like the real one (5 times a second). The coordinator's CPU is read from its
process. The same measurement with --baseline-agents in the same invocation gives the per-agent ratio.

The --agents fleet is measured twice: reporting directly (one `report` call per agent per interval), and
through per-node relays (cluster.relay: the agents spread over --nodes nodes, each node's reports of a round
reaching the coordinator as one `report_batch` call). For that row the senders stand in for the relays: the
agent -> relay hop happens on the agents' nodes, not the coordinator's, and a relay sends a node's batch as
soon as every agent of the node has reported (at most `relay.RELAY_FLUSH_S` later), which this does not add.
A last row puts the real `ReportRelay` actors in the path, one per sender (4 "nodes" of 250 agents): it
includes the hop and the relay's batching, but the relays' own CPU (1,000 calls a second, on the agents'
nodes in a real fleet) here shares this machine with the coordinator, so it is a pessimistic bound.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from dataclasses import replace
from typing import Any

import psutil
import ray

from sbench.cluster.actors import create_coordinator, create_relay
from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import PhaseBarrier
from sbench.run.monitor import AgentReport

SENDERS = 4
POLL_S = 0.2
GOAL_CPU = 1.0
GOAL_MERGE_S = 1.0
GOAL_RELEASE_S = 2.0


def sample_snapshots(n: int = 16) -> list[Snapshot]:
    """Interval snapshots as an agent takes them: thousands of GETs and PUTs with spread latencies."""
    rng = random.Random(1)
    out = []
    for _ in range(n):
        rec = Recorder()
        for _ in range(3000):
            rec.record(OpClass.GET, 4096, int(rng.lognormvariate(6, 0.8)))
        for _ in range(800):
            rec.record(OpClass.PUT, 65536, int(rng.lognormvariate(7, 0.9)))
        out.append(rec.take_interval())
    return out


@ray.remote(num_cpus=0)
class Sender:
    """Sends the reports of many simulated agents, one round per interval."""

    def __init__(
        self, coordinator: Any, agent_ids: list[str], snapshots: list[Snapshot], relay: Any = None
    ) -> None:
        self.coordinator = coordinator
        #: a real ReportRelay the reports go through, or None
        self.relay = relay
        self.agent_ids = agent_ids
        self.snapshots = snapshots

    def rounds(self, index: int, start_ms: int, count: int, nodes: int) -> list[float]:
        """`count` rounds at 1 s; returns, per round, the wall time its last report was handed to Ray
        (`nodes` > 0: its agents spread over that many relays, one batch call per relay and round).

        A round's reports are built before it is due, so at the tick the senders only hand them to Ray: on
        this 2-core machine the senders share the CPU with the coordinator, and building 1,000 snapshots
        during the burst would slow the coordinator by work that real agents do on their own machines."""
        last_sent = []
        for k in range(count):
            reports = [self._report(index, start_ms, k, i, a) for i, a in enumerate(self.agent_ids)]
            due = start_ms / 1000 + k + 1
            time.sleep(max(0.0, due - time.time()))
            refs = []
            for report in reports:
                report.sent_ms = int(time.time() * 1000)
                if not nodes:
                    refs.append((self.relay or self.coordinator).report.remote(report))
            for node in range(nodes):
                refs.append(self.coordinator.report_batch.remote(reports[node::nodes]))
            last_sent.append(time.time())
            ray.get(refs)
        return last_sent

    def _report(self, index: int, start_ms: int, k: int, i: int, agent_id: str) -> AgentReport:
        snap = replace(
            self.snapshots[(i + k) % len(self.snapshots)],
            start_ms=start_ms + k * 1000,
            end_ms=start_ms + (k + 1) * 1000,
            progress={agent_id: ProgressCounters(objects_done=k, stage="execute")},
            cpu={agent_id: (40.0, 10.0, 0.0)},
            _cache={},
        )
        return AgentReport(agent_id, index, [snap], started_ms=start_ms)

    def arrive(self, index: int) -> float:
        ray.get([self.coordinator.arrive.remote(a, index, True) for a in self.agent_ids])
        return time.time()


def _all_ready(refs: list[Any]) -> bool:
    return not ray.wait(refs, num_returns=len(refs), timeout=0)[1]


def _getpid(_actor: Any) -> int:
    return os.getpid()


def measure(
    agents: int,
    seconds: int,
    snapshots: list[Snapshot],
    index: int,
    nodes: int = 0,
    real_relays: bool = False,
) -> dict[str, float]:
    """One stage of `agents` reporting for `seconds`: directly, through `nodes` simulated relays (the senders
    send one batch per node and round), or through one real relay per sender."""
    coordinator = create_coordinator(f"bench{index}", 1.0, 3)
    ray.get(coordinator.register.remote({}, {}))
    ids = [f"agent-{i:04d}" for i in range(agents)]
    groups = [ids[i::SENDERS] for i in range(SENDERS)]
    node_id = ray.get_runtime_context().get_node_id()
    relays = [
        create_relay(f"bench{index}-{k}", node_id, coordinator, len(g)) if real_relays else None
        for k, g in enumerate(groups)
    ]
    senders = [Sender.remote(coordinator, g, snapshots, r) for g, r in zip(groups, relays, strict=True) if g]
    ray.get([s.__ray_ready__.remote() for s in senders])
    proc = psutil.Process(ray.get(coordinator.__ray_call__.remote(_getpid)))
    relay_procs = [psutil.Process(ray.get(r.__ray_call__.remote(_getpid))) for r in relays if r is not None]
    start_ms = ray.get(coordinator.begin_stage.remote(index, "execute", PhaseBarrier(), ids, True, 1.0))
    cpu0 = proc.cpu_times()
    relay0 = sum(sum(p.cpu_times()[:2]) for p in relay_procs)
    t0 = time.monotonic()
    shares = [len(range(k, nodes, len(senders))) for k in range(len(senders))]  # each sender's share of nodes
    sent = [s.rounds.remote(index, start_ms, seconds, n) for s, n in zip(senders, shares, strict=True)]
    seen: list[tuple[float, int]] = []  # per aggregate interval: when it reached the driver, agents in it
    # the driver polls all along, as the real one does (a pause would pile up a backlog for the next poll)
    while len(seen) < seconds - 1 or not _all_ready(sent):
        drained = ray.get(coordinator.poll.remote(index))
        if drained is not None:
            seen += [(time.time(), len(snap.progress)) for snap in drained.aggregate]
        time.sleep(POLL_S)
    last_sent = [max(round_times) for round_times in zip(*ray.get(sent), strict=True)]
    cpu1 = proc.cpu_times()
    wall = time.monotonic() - t0
    cpu = (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / wall
    relay_cpu = (sum(sum(p.cpu_times()[:2]) for p in relay_procs) - relay0) / wall
    # an interval merged before every agent's report arrived (the senders fell behind) has no merge delay
    delays = [got - at for (got, n), at in zip(seen, last_sent, strict=False) if n == agents]
    delays = delays or [float("nan")]
    behind = last_sent[-1] - (start_ms / 1000 + len(last_sent))
    arrivals = [s.arrive.remote(index) for s in senders]
    while True:  # polling at the real driver's pace until the barrier's verdict is out
        drained = ray.get(coordinator.poll.remote(index))
        if drained is not None and drained.status.value != "waiting":
            released_at = time.time()
            break
        time.sleep(POLL_S)
    released = released_at - max(ray.get(arrivals))
    ray.get(coordinator.end_stage.remote(index))
    for actor in [*senders, *(r for r in relays if r is not None), coordinator]:
        ray.kill(actor)
    return {
        "cpu": cpu,
        "merge_median_s": statistics.median(delays),
        "merge_max_s": max(delays),
        "release_s": released,
        "complete": sum(1 for _, n in seen if n == agents) / len(seen),
        "senders_behind_s": behind,
        "relay_cpu": relay_cpu,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--baseline-agents", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--nodes", type=int, default=64, help="nodes the --agents fleet's relays stand for")
    args = parser.parse_args()
    ray.init(address="local", num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
    try:
        snapshots = sample_snapshots()
        base = measure(args.baseline_agents, args.seconds, snapshots, 1)
        big = measure(args.agents, args.seconds, snapshots, 2)
        relayed = measure(args.agents, args.seconds, snapshots, 3, nodes=args.nodes)
        real = measure(args.agents, args.seconds, snapshots, 4, real_relays=True)
    finally:
        ray.shutdown()
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    rows = (
        ("baseline", base, args.baseline_agents),
        ("direct", big, args.agents),
        (f"{args.nodes} relays", relayed, args.agents),
        (f"{SENDERS} real relays", real, args.agents),
    )
    for label, res, n in rows:
        relay_cpu = f" (the relays: {res['relay_cpu']:.2f} cores)" if res["relay_cpu"] else ""
        print(
            f"{label:14s} {n:5,} agents: coordinator CPU {res['cpu']:.2f} cores{relay_cpu}, merge delay "
            f"median {res['merge_median_s']:.2f} s (max {res['merge_max_s']:.2f} s), barrier release "
            f"{res['release_s']:.2f} s after the last arrival; {res['complete']:.0%} of the intervals had "
            f"every agent (the senders ended {res['senders_behind_s']:.1f} s behind schedule)"
        )
    for label, res in (("direct", big), ("relays", relayed), ("real relays", real)):
        per_agent = (res["cpu"] - base["cpu"]) / max(1, args.agents - args.baseline_agents)
        print(
            f"{label}: CPU per agent {per_agent * 1000:.2f} millicores; ratio to goals: CPU "
            f"{res['cpu'] / GOAL_CPU:.2f}x, merge {res['merge_max_s'] / GOAL_MERGE_S:.2f}x, release "
            f"{res['release_s'] / GOAL_RELEASE_S:.2f}x (below 1 meets the goal)"
        )


if __name__ == "__main__":
    main()
