"""A prepare plan for 10^12 objects over 256 agents: the dry-run and the prepare stage's shard jobs.

Run:  .venv/bin/python bench/shard_plan_scale.py [--objects N] [--agents A]

Goal (issue 16 §4): the dry-run and the shard plan of 1,000,000,000,000 objects over 256 agents take < 10 s
and < 200 MB, without materialising keys. Three measurements, each against a baseline of the same invocation:
1. `sbench run --dry-run` of such a config in a subprocess (wall time, peak RSS), next to the dry-run of the
   same config with 1,000 objects: the difference is what the object count costs.
2. The prepare stage's job stream (`run.shardstages._prepare_jobs`, the code a run uses): built for a fresh
   space and for a resumed one (the object book holds every object but a scattered few), then its first
   100,000 jobs made; peak traced memory and time.
3. The shard list the stages used before (one (lo, hi) tuple per shard), built for objects/100 and scaled by
   100: what the same plan cost without the closed forms.
No storage is touched: the config points at s3://, and nothing runs but the planning.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

from sbench.config.loader import load_config
from sbench.engine.rangeset import RangeSet
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import prepare_params
from sbench.plan.shardplan import SHARD_MAX
from sbench.run.shardstages import Space, StageAgent, _prepare_jobs

GOAL_S = 10.0
GOAL_MB = 200.0
FIRST_JOBS = 100_000


def config_text(objects: int, agents: int) -> str:
    lines = [
        'target: "s3://bench-bucket/plan/"',
        "duration: 10s",
        "concurrency: 16",
        "prepare:",
        "  ensure_objects:",
        '    - base_uri: "s3://bench-bucket/plan/data/"',
        f"      count: {objects}",
        "      min_size: 1024",
        "      max_size: 1024",
        "workload:",
        '  - {op: get, path: "data/*", weight: 100}',
        "distributed:",
        "  shared_filesystem: true",
        "  agents:",
    ]
    lines += [f'    - {{address: "10.0.{i // 250}.{i % 250 + 1}:7761", id: a{i}}}' for i in range(agents)]
    return "\n".join(lines) + "\n"


def dry_run(path: Path) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of `sbench run --dry-run` in a fresh interpreter."""
    code = (
        "import resource, runpy, sys; sys.argv = ['sbench', 'run', '--dry-run', sys.argv[1]]\n"
        "try:\n    runpy.run_module('sbench', run_name='__main__')\n"
        "except SystemExit as e:\n    assert not e.code, e.code\n"
        "print('RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)"
    )
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    wall = time.perf_counter() - t0
    rss_kb = int(out.stderr.strip().splitlines()[-1].split()[1])
    if "Shard plan" not in out.stdout:
        raise SystemExit("the dry-run printed no shard plan:\n" + out.stdout[-2000:])
    return wall, rss_kb / 1024


def job_stream(path: Path, agents: int, resumed: bool, traced: bool) -> tuple[float, float, float, int]:
    """Seconds to plan the prepare job stream, seconds to make its first jobs, peak traced MB (when
    `traced`: tracemalloc slows Python down, so the timed pass runs without it), and the jobs planned."""
    config = load_config(path).config
    params = prepare_params(config, AgentIdentity(count=1))[0]
    stage_agents = [StageAgent(f"a{i}", i) for i in range(agents)]
    space = Space("entry-0", params, stage_agents, False, {a.agent_id: 16 for a in stage_agents})
    ctx = SimpleNamespace(shard_max=SHARD_MAX)  # all `_prepare_jobs` reads of the stage context
    if traced:
        tracemalloc.start()
    t0 = time.perf_counter()
    have = None
    if resumed:  # the book holds everything but one object in every 10^7
        have = RangeSet(0, params.total, [(0, params.total)])
        for hole in range(5_000_000, params.total, 10_000_000):
            have.discard_range(hole, hole + 1)
    first, rest = _prepare_jobs(ctx, space, have)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    for _ in itertools.islice(rest.jobs, FIRST_JOBS):
        pass
    t2 = time.perf_counter()
    peak = tracemalloc.get_traced_memory()[1] / 1e6 if traced else 0.0
    if traced:
        tracemalloc.stop()
    return t1 - t0, t2 - t1, peak, rest.count + len(first)


def old_shard_list(objects: int, agents: int) -> tuple[float, float]:
    """The list the stages built before, for `objects` (seconds, peak traced MB)."""
    size = max(1, min(SHARD_MAX, -(-objects // agents)))
    tracemalloc.start()
    t0 = time.perf_counter()
    shards = [(lo, min(objects, lo + size)) for lo in range(0, objects, size)]
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    del shards
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10**12)
    parser.add_argument("--agents", type=int, default=256)
    args = parser.parse_args()
    n, a = args.objects, args.agents
    with tempfile.TemporaryDirectory(prefix="sbench-plan-") as tmp:
        big, small = Path(tmp) / "big.yaml", Path(tmp) / "small.yaml"
        big.write_text(config_text(n, a))
        small.write_text(config_text(1_000, a))
        base_s, base_mb = dry_run(small)
        big_s, big_mb = dry_run(big)
        print(f"{n:,} objects over {a} agents (goal: < {GOAL_S:g} s and < {GOAL_MB:g} MB)")
        print(
            f"dry-run                    {big_s:6.2f} s, peak RSS {big_mb:6.0f} MB;  with 1,000 objects "
            f"{base_s:.2f} s, {base_mb:.0f} MB: the count costs {big_s - base_s:+.2f} s, "
            f"{big_mb - base_mb:+.0f} MB"
        )
        for resumed in (False, True):
            plan_s, jobs_s, _, jobs = job_stream(big, a, resumed, traced=False)
            _, _, peak, _ = job_stream(big, a, resumed, traced=True)
            label = "resumed (holes 1 in 10^7)" if resumed else "fresh space"
            print(
                f"prepare jobs, {label:26s} {jobs:,} shards planned in {plan_s:.2f} s, first {FIRST_JOBS:,} "
                f"jobs made in {jobs_s:.2f} s; peak {peak:.1f} MB traced"
            )
        old_s, old_mb = old_shard_list(n // 100, a)
        print(
            f"shard list as before, {n // 100:,} objects: {old_s:.2f} s, {old_mb:.0f} MB -> for {n:,}: "
            f"~{old_s * 100:.0f} s, ~{old_mb * 100 / 1000:.1f} GB"
        )
        peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"(this process's peak RSS {peak_rss:.0f} MB)")


if __name__ == "__main__":
    main()
