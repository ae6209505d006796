"""Metadata cache at scale: a billion object states, their write rate, size, counts, resume and cleanup
queries.

Run:  scripts/netns-run env RAY_AUTH_MODE=disabled .venv/bin/python bench/cluster_metadata.py \
          [--objects N] [--failure-rate F] [--ray]

Replays what a prepare over N objects writes (per 10,000-object shard, as `run.shardstages` does:
planned, creating, then created, with a fraction of scattered single-object failures), then times the queries
resume and cleanup make. The baseline, measured in the same invocation over --baseline-objects, is the
one-row-per-object schema sbench used before (WITHOUT ROWID, key (scope, idx)); its size and rate are
extrapolated per state.
Goals (issue 16 §4): 1,000,000,000 states in at most 1 GB, written at 1,000,000 states/s or more.
"""

from __future__ import annotations

import argparse
import random
import resource
import shutil
import sqlite3
import tempfile
import time
from pathlib import Path

from sbench.cluster.metadata_cache import MetadataStore
from sbench.run.objectbook import ObjectState

SHARD = 10_000
GOAL_BYTES = 1_000_000_000
GOAL_RATE = 1_000_000


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _db_bytes(root: Path, name: str) -> int:
    return sum(p.stat().st_size for p in root.glob(f"{name}*"))


def bench_store(root: Path, n: int, failure_rate: float) -> dict[str, float]:
    rss0 = _rss_mb()
    store = MetadataStore(root / "sbench.sqlite")
    scope = store.scope_id("bench", "pool-0")
    rng = random.Random(1)
    failures = 0
    t0 = time.perf_counter()
    for lo in range(0, n, SHARD):
        hi = min(n, lo + SHARD)
        store.plan(scope, lo, hi)
        store.mark_ranges(scope, [(lo, hi)], ObjectState.CREATING)
        store.mark_ranges(scope, [(lo, hi)], ObjectState.CREATED)
        k = int(failure_rate * (hi - lo) + rng.random())  # scattered failures, `failure_rate` on average
        if k:
            store.mark(scope, rng.sample(range(lo, hi), k), ObjectState.FAILED)
            failures += k
    out: dict[str, float] = {"write_per_s": n / (time.perf_counter() - t0), "failures": failures}
    t0 = time.perf_counter()
    counts = store.count_by_state(scope)
    out["count_s"] = time.perf_counter() - t0
    assert counts[ObjectState.CREATED] == n - failures, counts
    t0 = time.perf_counter()
    store.missing_ranges(scope, n // 2, n // 2 + SHARD)
    out["resume_shard_ms"] = (time.perf_counter() - t0) * 1000
    t0 = time.perf_counter()
    seen = sum(hi - lo for batch in store.iter_created(scope) for lo, hi in batch)
    out["created_scan_per_s"] = seen / (time.perf_counter() - t0)
    assert seen == n - failures
    out["runs"] = store.runs_count()
    store.close()
    out["db_bytes"] = _db_bytes(root, "sbench.sqlite")
    out["rss_growth_mb"] = _rss_mb() - rss0
    return out


def bench_per_object(root: Path, n: int) -> dict[str, float]:
    """sbench's previous schema: one row per object, one transaction per 10,000-object shard."""
    db = sqlite3.connect(root / "per-object.sqlite", isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute(
        "CREATE TABLE objects (scope_id INTEGER NOT NULL, idx INTEGER NOT NULL, state INTEGER NOT NULL,"
        " size INTEGER, PRIMARY KEY (scope_id, idx)) WITHOUT ROWID"
    )
    t0 = time.perf_counter()
    for lo in range(0, n, SHARD):
        db.execute("BEGIN")
        db.executemany(
            "INSERT INTO objects (scope_id, idx, state) VALUES (1, ?, 3) "
            "ON CONFLICT (scope_id, idx) DO UPDATE SET state=excluded.state",
            ((i,) for i in range(lo, min(n, lo + SHARD))),
        )
        db.execute("COMMIT")
    rate = n / (time.perf_counter() - t0)
    db.close()
    return {"write_per_s": rate, "bytes_per_state": _db_bytes(root, "per-object.sqlite") / n}


def bench_actor(root: Path, n: int) -> float:
    import ray

    from sbench.cluster.actors import create_metadata_cache

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        actor = create_metadata_cache(root / "actor.sqlite", run_id="bench")
        scope = ray.get(actor.scope_id.remote("bench", "pool"))
        t0 = time.perf_counter()
        refs = [
            actor.mark_ranges.remote(scope, [(s, min(n, s + SHARD))], int(ObjectState.CREATED))
            for s in range(0, n, SHARD)
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
    parser.add_argument("--objects", type=int, default=1_000_000_000)
    parser.add_argument("--failure-rate", type=float, default=1e-4, help="fraction of objects that fail")
    parser.add_argument("--baseline-objects", type=int, default=2_000_000)
    parser.add_argument("--ray", action="store_true", help="also measure writes through the Ray actor")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="sbench-meta-bench-"))
    try:
        base = bench_per_object(root, args.baseline_objects)
        res = bench_store(root, args.objects, args.failure_rate)
        n = args.objects
        per_object_bytes = base["bytes_per_state"] * n
        rate = res["write_per_s"]
        size = res["db_bytes"]
        print(f"objects                        {n:,} ({int(res['failures']):,} scattered failures)")
        print(f"rows holding the states        {int(res['runs']):,}")
        print(
            f"write (plan, creating, created per 10k shard, failures)  {rate:,.0f} states/s"
            f"  = {rate / GOAL_RATE:.1f}x the 1 M/s goal; one row per object: {base['write_per_s']:,.0f}/s"
            f" ({rate / base['write_per_s']:.1f}x)"
        )
        print(
            f"database size                  {size / 1e6:,.1f} MB = {size / GOAL_BYTES:.4f}x the 1 GB goal;"
            f" one row per object would take {per_object_bytes / 1e9:,.1f} GB"
            f" ({per_object_bytes / size:,.0f}x)"
        )
        print(f"RSS growth                     {res['rss_growth_mb']:,.0f} MB")
        print(f"count_by_state over all        {res['count_s'] * 1000:.1f} ms")
        print(f"resume query, 10k shard        {res['resume_shard_ms']:.2f} ms")
        print(f"created-set scan (cleanup)     {res['created_scan_per_s']:,.0f} states/s")
        if args.ray:
            m = min(n, 100_000_000)
            actor_rate = bench_actor(root, m)
            print(f"through the Ray actor          {actor_rate:,.0f} states/s over {m:,}")
        print("(machine shared with other work: absolute rates are noisy, ratios are the result)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
