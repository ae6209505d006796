"""Metadata cache at scale: 10 M object states, batch write rate, counts, resume and cleanup queries.

Run:  scripts/netns-run env RAY_AUTH_MODE=disabled .venv/bin/python bench/cluster_metadata.py \
          [--objects N] [--ray]

Prints the write rate of sbench's schema (WITHOUT ROWID, INTEGER key, no stored paths) next to a baseline of
the obvious schema (rowid table with the object path as TEXT and a UNIQUE index) measured in the same
invocation, the ratio to the 50,000 states/s floor, and, with --ray, the rate through the Ray actor.
"""

from __future__ import annotations

import argparse
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from sbench.cluster.metadata_cache import WRITE_BATCH, MetadataStore
from sbench.run.objectbook import ObjectState

FLOOR = 50_000


def bench_store(root: Path, n: int) -> dict[str, float]:
    store = MetadataStore(root / "sbench.sqlite")
    scope = store.scope_id("bench", "pool-0")
    out: dict[str, float] = {}
    t0 = time.perf_counter()
    for start in range(0, n, WRITE_BATCH):
        stop = min(n, start + WRITE_BATCH)
        store.plan(scope, start, sizes=[4096] * (stop - start))
    out["plan_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    for start in range(0, n, WRITE_BATCH):
        store.mark_ranges(scope, [(start, min(n, start + WRITE_BATCH))], ObjectState.CREATED)
    out["mark_per_s"] = n / (time.perf_counter() - t0)
    t0 = time.perf_counter()
    counts = store.count_by_state(scope)
    out["count_s"] = time.perf_counter() - t0
    assert counts[ObjectState.CREATED] == n, counts
    t0 = time.perf_counter()
    missing = store.missing_ranges(scope, n // 2, n // 2 + 10_000)
    out["resume_shard_ms"] = (time.perf_counter() - t0) * 1000
    assert missing == []
    t0 = time.perf_counter()
    seen = sum(hi - lo for batch in store.iter_created(scope) for lo, hi in batch)
    out["created_scan_per_s"] = seen / (time.perf_counter() - t0)
    assert seen == n
    store.close()
    out["db_mb"] = sum(p.stat().st_size for p in root.glob("sbench.sqlite*")) / 1e6
    return out


def bench_baseline(root: Path, n: int) -> float:
    """The obvious schema: rowid table keyed by a TEXT path with a UNIQUE index, same batching."""
    db = sqlite3.connect(root / "baseline.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("CREATE TABLE objects (id INTEGER PRIMARY KEY, path TEXT UNIQUE, state INTEGER, size INTEGER)")
    t0 = time.perf_counter()
    for start in range(0, n, WRITE_BATCH):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO objects (path, state, size) VALUES (?, 1, 4096)",
            ((f"bench/prepared-{i:08d}.dat",) for i in range(start, min(n, start + WRITE_BATCH))),
        )
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return rate


def bench_actor(root: Path, n: int) -> float:
    import ray

    from sbench.cluster.actors import create_metadata_cache

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        actor = create_metadata_cache(root / "actor.sqlite", run_id="bench")
        scope = ray.get(actor.scope_id.remote("bench", "pool"))
        t0 = time.perf_counter()
        refs = [
            actor.mark_ranges.remote(scope, [(s, min(n, s + WRITE_BATCH))], int(ObjectState.CREATED))
            for s in range(0, n, WRITE_BATCH)
        ]
        ray.get(refs)
        rate = n / (time.perf_counter() - t0)
        counts = ray.get(actor.count_by_state.remote(scope))
        assert counts["created"] == n, counts
        return rate
    finally:
        ray.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--objects", type=int, default=10_000_000)
    parser.add_argument("--baseline-objects", type=int, default=2_000_000)
    parser.add_argument("--ray", action="store_true", help="also measure writes through the Ray actor")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sbench-meta-bench-"))
    try:
        res = bench_store(root, args.objects)
        base = bench_baseline(root, args.baseline_objects)
        print(f"objects                      {args.objects:,}")
        plan, mark = res["plan_per_s"], res["mark_per_s"]
        print(f"plan (INSERT, sizes)         {plan:,.0f} states/s  = {plan / FLOOR:.1f}x floor")
        print(f"mark created (upsert)        {mark:,.0f} states/s  = {mark / FLOOR:.1f}x floor")
        print(f"baseline TEXT-path schema    {base:,.0f} states/s  (sbench plan = {plan / base:.2f}x)")
        print(f"count_by_state over all      {res['count_s']:.2f} s")
        print(f"resume query, 10k shard      {res['resume_shard_ms']:.1f} ms")
        print(f"created-set scan (cleanup)   {res['created_scan_per_s']:,.0f} states/s")
        print(f"database size                {res['db_mb']:,.0f} MB")
        if args.ray:
            n = min(args.objects, 2_000_000)
            rate = bench_actor(root, n)
            print(f"through the Ray actor        {rate:,.0f} states/s over {n:,} ({rate / FLOOR:.1f}x floor)")
        print("(machine shared with other work: absolute rates are noisy, ratios are the result)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
