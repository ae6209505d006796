"""MetadataStore (plain SQLite, no Ray): states, resume ranges, exact created set, listings, manifests."""

from __future__ import annotations

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
    assert store.plan(scope, 0, sizes=[100 + i for i in range(1000)]) == 1000
    store.mark_ranges(scope, [(0, 300), (500, 600)], ObjectState.CREATED)
    store.mark(scope, [300, 301], ObjectState.FAILED)
    counts = store.count_by_state(scope)
    assert counts[ObjectState.CREATED] == 400
    assert counts[ObjectState.FAILED] == 2
    assert counts[ObjectState.PLANNED] == 598
    assert store.objects_count(scope) == 1000
    # Re-planning keeps states (resume never forgets what was created).
    assert store.plan(scope, 0, stop=1200) == 200
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
