"""Start skew of a synchronized stage start across 8 agents on one node, and the coordinator's CPU.

Run:  scripts/netns-run env RAY_AUTH_MODE=disabled .venv/bin/python bench/cluster_skew.py [--agents 8]

For each of N short execute stages (real engine, file:// STAT workload) it records every agent's actual
start time and prints the spread (max - min). Baseline in the same invocation: the same stages started
without a common start time (each agent starts when its stage call arrives), i.e. what the synchronized
start removes. It also samples the coordinator actor's CPU time over the stages (8 agents reporting every
1 s) and prints it as a share of one core, next to its idle CPU share measured the same way.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import threading
import time
import uuid
from dataclasses import replace
from pathlib import Path

import psutil
import ray

from sbench.cluster.actors import actor_name, create_coordinator
from sbench.cluster.actorset import start_fleet
from sbench.cluster.stagerun import run_agent_stage
from sbench.config import load_config_text
from sbench.plan.stages import stage_plan


def _config(data: Path, agents: int, duration: float) -> str:
    listed = "\n".join(f"    - {{address: 'localhost:{7761 + i}', id: a{i + 1}}}" for i in range(agents))
    return f"""
target: "file://{data}/"
duration: {duration}s
concurrency: 1
workload:
  - {{op: stat, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{listed}
"""


def _coordinator_process(run_id: str) -> psutil.Process:
    """This run's coordinator, by the pid in the GCS actor table (other Ray instances on the machine may
    run coordinators of their own)."""
    from ray._private import state

    for info in state.actors().values():
        if info.get("Name") == actor_name("coordinator", run_id) and info.get("Pid"):
            return psutil.Process(info["Pid"])
    raise RuntimeError("coordinator process not found")


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--stages", type=int, default=5)
    parser.add_argument("--duration", type=float, default=2.0, help="seconds per skew stage")
    parser.add_argument("--cpu-duration", type=float, default=20.0, help="seconds of the CPU stage")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp(prefix="sbench-skew-"))
    for i in range(200):
        (data / f"f{i:04d}.dat").write_bytes(b"x" * 1024)
    config = load_config_text(_config(data, args.agents, args.duration)).config
    plan = next(p for p in stage_plan(config) if p.type.value == "execute")
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    run_id = uuid.uuid4().hex[:8]
    coordinator = create_coordinator(run_id, 1.0, 10)
    fleet = start_fleet(config, run_id, coordinator, interval_s=1.0)
    abort = threading.Event()
    try:
        proc = _coordinator_process(run_id)
        t0, c0 = time.monotonic(), _cpu_s(proc)
        time.sleep(5.0)
        idle_share = (_cpu_s(proc) - c0) / (time.monotonic() - t0)

        def stage(duration: float, lead: float | None) -> tuple[int, float]:
            """One stage: (start skew ms, coordinator CPU share of one core while it ran)."""
            w0, cpu0 = time.monotonic(), _cpu_s(proc)
            run = run_agent_stage(
                coordinator,
                fleet.agents,
                replace(plan, duration=duration),
                on_poll=lambda _d: None,
                abort_requested=abort,
                abort_reason=lambda: "",
                lead_s=lead,
            )
            share = (_cpu_s(proc) - cpu0) / (time.monotonic() - w0)
            starts = [r.started_ms for r in run.results.values() if r.started_ms]
            assert len(starts) == args.agents, run.results
            return max(starts) - min(starts), share

        synced = [stage(args.duration, None)[0] for _ in range(args.stages)]
        unsynced = [stage(args.duration, 0.0)[0] for _ in range(args.stages)]
        _, share = stage(args.cpu_duration, None)
    finally:
        fleet.shutdown()
        ray.kill(coordinator)
        ray.shutdown()
        shutil.rmtree(data, ignore_errors=True)
    print(f"agents on one node             {args.agents}")
    med_s, med_u = statistics.median(synced), statistics.median(unsynced)
    print(f"synchronized start, skew (ms)  {synced}  max {max(synced)}  median {med_s}")
    print(f"baseline, no common start (ms) {unsynced}  max {max(unsynced)}  median {med_u}")
    print(f"synchronized/baseline median   {med_s / max(1, med_u):.2f}")
    print(f"max skew vs 50 ms target       {max(synced) / 50:.2f}x of the limit")
    where = f"{args.cpu_duration:g} s stage, {args.agents} agents, 1 s intervals"
    print(f"coordinator CPU during stage   {share * 100:.2f}% of one core ({where})")
    print(f"coordinator CPU idle           {idle_share * 100:.2f}% of one core")
    print("(machine shared with other work: absolute figures are noisy)")


if __name__ == "__main__":
    main()
