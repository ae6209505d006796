"""Key pools (draw without replacement, dynamic growth), patterns, the pool split and tree selection."""

from __future__ import annotations

import random
import threading

import pytest

from sbench.errors import ConfigError
from sbench.layout import paths
from sbench.layout.paths import KeyPool, Pattern, PreparedSet, TreeSelector
from sbench.layout.tree import TreeLayout, TreeSpec


def test_take_never_returns_a_key_twice_and_empties() -> None:
    pool = KeyPool(1000, lambda i: f"k{i}", label="t")
    rng = random.Random(1)
    seen = [pool.take(rng) for _ in range(1000)]
    assert len(set(seen)) == 1000
    assert pool.take(rng) is None and len(pool) == 0
    assert pool.pick(rng) is None


def test_take_is_thread_safe() -> None:
    pool = KeyPool(20_000, str, label="t")
    out: list[list[str]] = [[] for _ in range(4)]

    def drain(i: int) -> None:
        rng = random.Random(i)
        while (key := pool.take(rng)) is not None:
            out[i].append(key)

    threads = [threading.Thread(target=drain, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [k for part in out for k in part]
    assert len(flat) == len(set(flat)) == 20_000


def test_pick_after_take_only_sees_remaining_and_added() -> None:
    pool = KeyPool(10, lambda i: f"k{i}", label="t")
    rng = random.Random(2)
    taken = {pool.take(rng) for _ in range(5)}
    pool.add("new")
    remaining = {pool.pick(rng) for _ in range(2000)}
    assert remaining.isdisjoint(taken)
    assert "new" in remaining and len(remaining) == 6
    rest = {pool.take(rng) for _ in range(6)}
    assert rest == remaining and pool.take(rng) is None


def test_pattern_parsing() -> None:
    assert Pattern.parse("data/").kind == "prefix"
    g = Pattern.parse("data/prepared-*.dat")
    assert (g.kind, g.directory, g.match) == ("glob", "data", "prepared-*.dat")
    r = Pattern.parse("data/**/file_*.dat")
    assert (r.kind, r.directory, r.match) == ("recursive", "data", "**/file_*.dat")
    assert paths.pattern_regex(r.match).match("a/b/file_00000001.dat")
    assert not paths.pattern_regex("*.dat").match("a/b.dat")
    e = Pattern.parse("/data/one.bin")
    assert (e.kind, e.key) == ("exact", "data/one.bin")
    with pytest.raises(ConfigError):
        Pattern.parse("da*ta/x")
    assert paths.put_directory("data/obj-*") == "data"
    assert paths.put_directory("out/") == "out"


class _Op:
    def __init__(self, op: str) -> None:
        self.op = op


def test_pool_split_rule() -> None:
    assert paths.pools_for([_Op("get"), _Op("delete")]) == ("prepared", "deletable")
    assert paths.pools_for([_Op("stat"), _Op("rmdir")]) == ("prepared", "deletable")
    assert paths.pools_for([_Op("get"), _Op("put")]) == ("prepared",)
    assert paths.pools_for([_Op("delete")]) == ("prepared",)
    assert paths.delete_path("data/prepared-*.dat", True) == "data/deletable-*.dat"
    assert paths.delete_path("data/prepared-*.dat", False) == "data/prepared-*.dat"


def test_prepared_set_covers_only_whole_pools() -> None:
    ps = PreparedSet("file:///t", "data", ("prepared", "deletable"), 5)
    assert ps.covers(Pattern.parse("data/*")) == ("prepared", "deletable")
    assert ps.covers(Pattern.parse("data/")) == ("prepared", "deletable")
    assert ps.covers(Pattern.parse("data/deletable-*")) == ("deletable",)
    assert ps.covers(Pattern.parse("data/prepared-0000*.dat")) is None
    assert ps.covers(Pattern.parse("other/*")) is None
    pool = ps.pool(("prepared", "deletable"), label="x")
    rng = random.Random(0)
    keys = {pool.take(rng) for _ in range(10)}
    assert keys == {f"data/{p}-{i:08d}.dat" for p in ("prepared", "deletable") for i in range(5)}


@pytest.mark.parametrize("strategy", ["exclusive", "partitioned", "weighted", "random"])
def test_tree_selection_respects_agent_index(strategy: str) -> None:
    layout = TreeLayout(TreeSpec(width=4, depth=2, files_per_dir=3))
    rng = random.Random(3)
    sel = TreeSelector(layout, strategy, agent_index=1, agent_count=3, partition_overlap=0.3)
    dirs = [layout.file_dir_index(sel.select_file(rng)) - layout.first_file_dir for _ in range(6000)]
    own = sum(1 for d in dirs if d % 3 == 1) / len(dirs)
    expected = {"exclusive": 1.0, "weighted": 0.7, "partitioned": 0.7 + 0.3 / 3, "random": 1 / 3}[strategy]
    assert abs(own - expected) < 0.04
    assert all(0 <= d < layout.file_dirs for d in dirs)
    others = {d for d in dirs if d % 3 != 1}
    if strategy == "weighted":
        assert others == {d for d in range(layout.file_dirs) if d % 3 != 1}
    picks = {sel.select_dir(rng) for _ in range(3000)}
    assert picks <= set(range(layout.total_dirs))


def test_tree_delete_pool_is_agent_disjoint() -> None:
    layout = TreeLayout(TreeSpec(width=3, depth=2, files_per_dir=2))
    rng = random.Random(4)
    taken = []
    for idx in range(2):
        pool = TreeSelector(layout, "exclusive", agent_index=idx, agent_count=2).delete_pool()
        taken.append({pool.take(rng) for _ in range(len(pool))})
    assert taken[0].isdisjoint(taken[1])
    assert taken[0] | taken[1] == {p for _, p in layout.iter_files()}
