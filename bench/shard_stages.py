"""Prepare and cleanup rates of `sbench run` in process, for two (or more) source trees, alternately.

Run:  .venv/bin/python bench/shard_stages.py --tree before=/path/to/old --tree after=/path/to/new
      [--count 100000] [--concurrency 8] [--size 1KiB] [--invocations 4] [--dir /dev/shm]

Why: prepare and cleanup are orchestrated as shard jobs (run.shardstages); a change there must not cost the
in-process run its objects per second. This runs the same config through `python -m sbench run` (a stable
interface, so old and new trees are measured the same way) once per tree in turn, with PYTHONPATH switched
to each tree and the order rotating every invocation, so drifting load on a shared machine falls on all
trees alike. Each run prepares `--count` objects on file:// (tmpfs by default), runs a 1 s STAT workload and
cleans up; the figures are the prepare and cleanup stages' ops/s from summary.json. It prints every
invocation and, per tree, the median rates and their ratio to the first tree.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIG = """\
target: "file://{root}/"
duration: 1s
concurrency: {concurrency}
prepare:
  ensure_objects:
    - {{base_uri: "file://{root}/data/", count: {count}, size_spec: {size}, fill: zero}}
  cleanup: true
workload:
  - {{op: stat, path: "data/", weight: 1}}
"""


def _run(tree: Path, args: argparse.Namespace) -> dict[str, float]:
    """One `sbench run` against `tree`'s sbench package: prepare and cleanup ops/s."""
    with tempfile.TemporaryDirectory(prefix="sbench-shards-", dir=args.dir) as work:
        root = Path(work)
        config = root / "run.yaml"
        config.write_text(
            CONFIG.format(root=root / "store", count=args.count, concurrency=args.concurrency, size=args.size)
        )
        (root / "store").mkdir()
        results = root / "results"
        done = subprocess.run(
            [sys.executable, "-m", "sbench", "run", str(config), "--results-dir", str(results)],
            env={**os.environ, "PYTHONPATH": str(tree)},
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"{tree}: sbench run exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        stages = {s["name"]: s for s in json.loads((results / "summary.json").read_text())["stages"]}
        return {name: float(stages[name]["totals"]["ops_per_sec"]) for name in ("prepare", "cleanup")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a source tree")
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--size", default="1KiB")
    parser.add_argument("--invocations", type=int, default=4)
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None)
    args = parser.parse_args()
    trees = [(name, Path(path).resolve()) for name, path in (t.split("=", 1) for t in args.tree)]
    figures: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
    print(
        f"{args.count:,} objects of {args.size} on file:// under {args.dir}, concurrency {args.concurrency}"
    )
    for i in range(args.invocations):
        order = trees[i % len(trees) :] + trees[: i % len(trees)]
        for name, tree in order:
            got = _run(tree, args)
            figures[name].append(got)
            print(
                f"  invocation {i + 1} {name:>10}: prepare {got['prepare']:>9,.0f} ops/s"
                f"  cleanup {got['cleanup']:>9,.0f} ops/s"
            )
    base = trees[0][0]
    medians = {
        name: {stage: statistics.median(f[stage] for f in runs) for stage in ("prepare", "cleanup")}
        for name, runs in figures.items()
    }
    print("median ops/s (ratio to the first tree):")
    for name, med in medians.items():
        ratios = {stage: med[stage] / medians[base][stage] for stage in med}
        print(
            f"  {name:>10}: prepare {med['prepare']:>9,.0f} ({ratios['prepare']:.2f})"
            f"  cleanup {med['cleanup']:>9,.0f} ({ratios['cleanup']:.2f})"
        )


if __name__ == "__main__":
    main()
