"""MetadataStore (plain SQLite, no Ray): states, resume ranges, exact created set, listings, manifests."""

from __future__ import annotations

import itertools
import random
import sqlite3
import threading
from pathlib import Path

import pytest

from sbench.cluster.metadata_cache import MetadataStore, default_db_path
from sbench.run.objectbook import ObjectState, compress_ranges, config_hash, subtract_ranges


@pytest.fixture
def store(tmp_path: Path):
    s = MetadataStore(tmp_path / "m.sqlite")
    yield s
    s.close()


def test_range_helpers() -> None:
    assert compress_ranges([1, 2, 3, 7, 9, 10]) == [(1, 4), (7, 8), (9, 11)]
    assert compress_ranges([]) == []
    assert subtract_ranges(0, 10, [(2, 4), (6, 7)]) == [(0, 2), (4, 6), (7, 10)]
    assert subtract_ranges(0, 5, [(0, 5)]) == []
    assert subtract_ranges(3, 8, [(0, 4), (9, 12)]) == [(4, 8)]


def test_config_hash_is_stable_and_sensitive() -> None:
    a = config_hash({"uri": "s3://b/p", "count": 10, "size": 4096})
    assert a == config_hash({"count": 10, "size": 4096, "uri": "s3://b/p"})
    assert a != config_hash({"uri": "s3://b/p", "count": 11, "size": 4096})


def test_default_db_path(tmp_path: Path) -> None:
    assert default_db_path(tmp_path, None) == tmp_path / ".sbench-metadata" / "metadata.sqlite"
    assert default_db_path(tmp_path, tmp_path / "kv") == tmp_path / "kv" / "metadata.sqlite"
    with pytest.raises(ValueError):
        default_db_path(None, None)


def test_plan_mark_count_resume_and_cleanup_set(store: MetadataStore) -> None:
    scope = store.scope_id("h1", "pool-0")
    assert store.scope_id("h1", "pool-0") == scope
    assert store.scope_id("h1", "pool-1") != scope
    assert store.plan(scope, 0, 1000) == 1000
    store.mark_ranges(scope, [(0, 300), (500, 600)], ObjectState.CREATED)
    store.mark(scope, [300, 301], ObjectState.FAILED)
    counts = store.count_by_state(scope)
    assert counts[ObjectState.CREATED] == 400
    assert counts[ObjectState.FAILED] == 2
    assert counts[ObjectState.PLANNED] == 598
    assert store.objects_count(scope) == 1000
    # Re-planning keeps states (resume never forgets what was created).
    assert store.plan(scope, 0, 1200) == 200
    assert store.count_by_state(scope)[ObjectState.CREATED] == 400
    assert store.missing_ranges(scope, 0, 1200) == [(300, 500), (600, 1200)]
    assert store.missing_ranges(scope, 100, 250) == []
    batches = list(store.iter_created(scope, batch=150))
    flat = [i for b in batches for lo, hi in b for i in range(lo, hi)]
    assert flat == list(range(300)) + list(range(500, 600))
    assert len(batches) == 3
    store.mark_ranges(scope, [(0, 300), (500, 600)], ObjectState.DELETED)
    assert list(store.iter_created(scope)) == []
    assert store.count_by_state()[ObjectState.DELETED] == 400


def test_persistence_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "p.sqlite"
    first = MetadataStore(path)
    scope = first.scope_id("h", "")
    first.mark_ranges(scope, [(0, 50)], ObjectState.CREATED)
    first.put_manifest("h", "tree", {"width": 3, "depth": 2})
    first.close()
    second = MetadataStore(path)
    assert second.scope_id("h", "") == scope
    assert second.missing_ranges(scope, 0, 60) == [(50, 60)]
    assert second.get_manifest("h", "tree") == {"depth": 2, "width": 3}
    assert second.get_manifest("h", "other") is None
    assert second.stats()["objects_count"] == 50
    second.close()


def test_listing_is_claimed_once_and_paged(store: MetadataStore) -> None:
    info, owner = store.claim_listing("s3://b/data/", "agent-1")
    assert owner and not info.complete
    again, owner2 = store.claim_listing("s3://b/data/", "agent-2")
    assert not owner2 and again.listing_id == info.listing_id and again.owner == "agent-1"
    store.append_listing(info.listing_id, [(f"k{i}", i) for i in range(70)])
    assert store.append_listing(info.listing_id, [(f"k{i}", i) for i in range(70, 100)]) == 100
    store.finish_listing(info.listing_id)
    done = store.listing("s3://b/data/")
    assert done is not None and done.complete and done.count == 100
    pages = [store.fetch_listing(info.listing_id, off, 40) for off in (0, 40, 80)]
    assert [k for page in pages for k, _ in page] == [f"k{i}" for i in range(100)]
    store.drop_listing("s3://b/data/")
    assert store.listing("s3://b/data/") is None


def test_concurrent_writers_are_serialised(store: MetadataStore) -> None:
    scope = store.scope_id("h", "")

    def writer(base: int) -> None:
        store.mark_ranges(scope, [(base, base + 5000)], ObjectState.CREATED)

    threads = [threading.Thread(target=writer, args=(i * 5000,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_by_state(scope)[ObjectState.CREATED] == 20000


def _model_paint(model: dict[int, ObjectState], lo: int, hi: int, state: ObjectState) -> None:
    for idx in range(lo, hi):
        model[idx] = state


def test_runs_answer_like_one_row_per_object(store: MetadataStore) -> None:
    """Random overlapping writes in every state: counts, range queries and the created pages equal a
    per-object model, and the runs stay maximal (no two adjacent runs in one state)."""
    rng = random.Random(7)
    scope = store.scope_id("h", "")
    model: dict[int, ObjectState] = {}
    for _ in range(400):
        lo = rng.randrange(0, 2000)
        hi = lo + rng.choice([1, 1, 2, 5, 50, 300])
        state = rng.choice(list(ObjectState))
        if rng.random() < 0.2:
            new = store.plan(scope, lo, hi)
            assert new == sum(1 for i in range(lo, hi) if i not in model)
            for idx in range(lo, hi):
                model.setdefault(idx, ObjectState.PLANNED)
        elif rng.random() < 0.3:
            picks = [rng.randrange(lo, hi) for _ in range(3)]
            store.mark(scope, picks, state)
            for idx in picks:
                model[idx] = state
        else:
            store.mark_ranges(scope, [(lo, hi)], state)
            _model_paint(model, lo, hi, state)
    counts = store.count_by_state(scope)
    for state in ObjectState:
        assert counts[state] == sum(1 for s in model.values() if s is state)
    created = sorted(i for i, s in model.items() if s is ObjectState.CREATED)
    assert store.ranges_in_state(scope, 0, 3000) == compress_ranges(created)
    assert store.ranges_in_state(scope, 500, 900) == compress_ranges([i for i in created if 500 <= i < 900])
    failed_or_deleted = sorted(i for i, s in model.items() if s in (ObjectState.FAILED, ObjectState.DELETED))
    both = store.ranges_in_state(scope, 0, 3000, [ObjectState.FAILED, ObjectState.DELETED])
    assert both == compress_ranges(failed_or_deleted)
    assert store.missing_ranges(scope, 100, 1700) == subtract_ranges(
        100, 1700, compress_ranges([i for i in created if 100 <= i < 1700])
    )
    paged = [i for batch in store.iter_created(scope, batch=97) for lo, hi in batch for i in range(lo, hi)]
    assert paged == created
    runs = store._db.execute("SELECT lo, hi, state FROM object_runs ORDER BY lo").fetchall()
    for (_, a_hi, a_state), (b_lo, _, b_state) in itertools.pairwise(runs):
        assert a_hi <= b_lo and not (a_hi == b_lo and a_state == b_state)


def test_a_billion_created_objects_are_a_few_rows(store: MetadataStore) -> None:
    scope = store.scope_id("h", "")
    for lo in range(0, 1_000_000_000, 100_000_000):
        store.mark_ranges(scope, [(lo + k, lo + k + 10_000_000) for k in range(0, 100_000_000, 10_000_000)],
                          ObjectState.CREATED)
    store.mark(scope, [123_456_789], ObjectState.FAILED)
    assert store.count_by_state(scope)[ObjectState.CREATED] == 999_999_999
    assert store.runs_count() == 3
    assert store.missing_ranges(scope, 123_456_000, 123_457_000) == [(123_456_789, 123_456_790)]


def test_an_older_per_object_database_is_converted(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    db.executescript(
        "CREATE TABLE scopes (scope_id INTEGER PRIMARY KEY, config_hash TEXT NOT NULL, pool TEXT NOT NULL,"
        " created_ms INTEGER NOT NULL, UNIQUE (config_hash, pool));"
        "CREATE TABLE objects (scope_id INTEGER NOT NULL, idx INTEGER NOT NULL, state INTEGER NOT NULL,"
        " size INTEGER, PRIMARY KEY (scope_id, idx)) WITHOUT ROWID;"
        "INSERT INTO scopes VALUES (1, 'h', 'pool', 0);"
    )
    rows = [(1, i, int(ObjectState.CREATED if i % 10 else ObjectState.FAILED), None) for i in range(100)]
    db.executemany("INSERT INTO objects VALUES (?, ?, ?, ?)", rows)
    db.commit()
    db.close()
    store = MetadataStore(path)
    assert store.count_by_state(1)[ObjectState.CREATED] == 90
    assert store.ranges_in_state(1, 0, 100, [ObjectState.FAILED]) == [(i, i + 1) for i in range(0, 100, 10)]
    assert store._db.execute("SELECT name FROM sqlite_master WHERE name='objects'").fetchone() is None
    store.close()
