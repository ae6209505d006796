"""Engine overhead of two (or more) source trees, measured alternately in one invocation.

Run:  .venv/bin/python bench/compare_trees.py --tree before=/path/to/old --tree after=/path/to/new
      [--invocations 6] [-- engine_overhead.py options, e.g. --seconds 2 --rounds 5 --no-processes]

Why: a change to the worker loop must not cost throughput, but on a shared 2-core machine the load drifts
by more than the difference being looked for, so two runs of `bench/engine_overhead.py` minutes apart say
little. This runs that script (this tree's copy, so both sides are measured the same way) once per tree in
turn, with PYTHONPATH switched to each tree, the order rotating every invocation, so drifting load falls
on all sides alike; then it prints each invocation's figures and, per tree, the median of every round's
ratio (sbench/bare) over all its invocations and the median of the engine's cost per op. Give one tree
twice under two names to see the spread of the method itself.
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
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "engine_overhead.py"


def _measure(tree: Path, options: list[str]) -> dict[str, Any]:
    """One engine_overhead.py run against `tree`'s sbench package; its figures."""
    with tempfile.TemporaryDirectory(prefix="sbench-compare-") as work:
        out = Path(work) / "figures.json"
        env = {**os.environ, "PYTHONPATH": str(tree)}
        done = subprocess.run(
            [sys.executable, str(SCRIPT), *options, "--json", str(out)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise SystemExit(
                f"engine_overhead.py on {tree} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
            )
        figures: dict[str, Any] = json.loads(out.read_text())
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tree", action="append", required=True, help="NAME=PATH of a tree to measure")
    parser.add_argument("--invocations", type=int, default=6, help="runs of engine_overhead.py per tree")
    parser.add_argument("options", nargs=argparse.REMAINDER, help="options for engine_overhead.py, after --")
    args = parser.parse_args()
    trees = [(name, Path(path)) for name, _, path in (t.partition("=") for t in args.tree)]
    if len(trees) < 2 or any(not (path / "sbench").is_dir() for _, path in trees):
        parser.error("give two or more --tree NAME=PATH, each a checkout holding sbench/")
    options = [o for o in args.options if o != "--"]
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
    for n in range(args.invocations):
        order = trees[n % len(trees) :] + trees[: n % len(trees)]  # who goes first rotates
        for name, path in order:
            figures = _measure(path, options)
            runs[name].append(figures)
            ratios = ", ".join(f"{k} {v:.1%}" for k, v in figures["ratios"].items() if "bare" not in k)
            print(
                f"invocation {n + 1} {name:<8} load {figures['load']:.2f}  {ratios}  "
                f"engine {figures['engine_cost_us']:.2f} µs/op",
                flush=True,
            )
    keys = [k for k in runs[trees[0][0]][0]["ratios"] if "bare" not in k]
    print(f"\nper tree, over {args.invocations} invocations (engine_overhead.py {' '.join(options)}):")
    print("  ratio: median of every round's ratio to its bare loop, all invocations pooled (n rounds)")
    print("  engine µs/op: median of the invocations' figures")
    print(f"{'tree':<10}" + "".join(f"{k:>16}" for k in keys) + f"{'engine µs/op':>14}")
    for name, _ in trees:
        cells = "".join(f"{_pooled(runs[name], k):>16}" for k in keys)
        cost = statistics.median(r["engine_cost_us"] for r in runs[name])
        print(f"{name:<10}{cells}{cost:>14.2f}")


def _pooled(runs: list[dict[str, Any]], key: str) -> str:
    """The median of the per-round ratios `key` ("PUT threads") of all runs, and how many rounds."""
    op, side = key.split()
    ratios = [s / b for r in runs for s, b in zip(r["rates"][op][side], r["rates"][op]["bare"], strict=True)]
    return f"{statistics.median(ratios):.1%} ({len(ratios)})"


if __name__ == "__main__":
    main()
