"""Scaling with agent processes: 2 agents x 1 worker against 1 agent x 1 worker on a CPU-bound workload.

Run:  scripts/netns-run env RAY_AUTH_MODE=disabled .venv/bin/python bench/cluster_scaling.py [--rounds 3]

The workload is file:// STAT of prepared objects (each op is a cheap syscall, so one worker is bound by its
own CPU and the GIL of its process). Both configurations run through the real driver (prepare as shard
tasks, execute in the agents) in the same invocation, alternating, and the ratio of aggregate STAT ops/s is
printed per round and as a median. One Python process is one GIL: this is why sbench scales load with
agent processes per node rather than threads.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
from pathlib import Path

import ray

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.run.launch import run


def _config(data: Path, agents: int, duration: float) -> str:
    listed = "\n".join(f"    - {{address: 'localhost:{7761 + i}', id: s{i + 1}}}" for i in range(agents))
    return f"""
target: "file://{data}/"
duration: {duration}s
concurrency: 1
prepare:
  ensure_objects:
    - {{count: 2000, size_spec: 1024, fill: zero}}
workload:
  - {{op: stat, path: "*", weight: 1}}
distributed:
  shared_filesystem: true
  agents:
{listed}
"""


def _ops_per_s(results: Path) -> float:
    for line in (results / "workload_results.tsv").read_text().splitlines():
        cells = line.split("\t")
        if cells[:2] == ["META", "ALL"]:
            return float(cells[10])
    raise RuntimeError(f"no META ALL row in {results}/workload_results.tsv")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=8.0)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sbench-scaling-"))
    data = root / "data"
    data.mkdir()
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    rates: dict[int, list[float]] = {1: [], 2: []}
    try:
        n = 0
        for _ in range(args.rounds):
            for agents in (1, 2):
                n += 1
                path = root / f"run{n}.yaml"
                path.write_text(_config(data, agents, args.duration))
                results = root / f"run{n}"
                code = run(load_config(path), RunOptions(results_dir=results), path, on_ray=True)
                if code != 0:
                    raise RuntimeError((results / "STATUS.txt").read_text())
                rates[agents].append(_ops_per_s(results))
    finally:
        ray.shutdown()
        shutil.rmtree(root, ignore_errors=True)
    ratios = [two / one for one, two in zip(rates[1], rates[2], strict=True)]
    print(f"1 agent  x 1 worker, STAT ops/s per round   {[round(r) for r in rates[1]]}")
    print(f"2 agents x 1 worker, STAT ops/s per round   {[round(r) for r in rates[2]]}")
    print(f"ratio per round                             {[round(r, 2) for r in ratios]}")
    print(f"median ratio (target >= 1.6)                {statistics.median(ratios):.2f}")
    print("(2 cores shared with other work: absolute rates are noisy, the ratio is the result)")


if __name__ == "__main__":
    main()
