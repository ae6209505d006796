"""TreeLayout: sai3 naming, level-major numbering, inverses, and a 64M-file tree that costs nothing."""

from __future__ import annotations

import tracemalloc

import pytest

from sbench.layout.tree import TreeLayout, TreeSpec


def test_counts_bottom_and_all() -> None:
    bottom = TreeLayout(TreeSpec(width=3, depth=2, files_per_dir=4))
    assert bottom.dirs_per_level == (3, 9)
    assert bottom.total_dirs == 12
    assert bottom.total_files == 36
    assert [bottom.files_at_level(lv) for lv in (1, 2)] == [0, 36]
    every = TreeLayout(TreeSpec(width=3, depth=2, files_per_dir=4, distribution="all"))
    assert every.total_files == 48
    assert [every.files_at_level(lv) for lv in (1, 2)] == [12, 36]


def test_dir_names_follow_sai3_mask() -> None:
    t = TreeLayout({"width": 2, "depth": 2, "files_per_dir": 1})
    assert [p for _, p in t.iter_dirs()] == [
        "sai3bench.d1_w1.dir",
        "sai3bench.d1_w2.dir",
        "sai3bench.d1_w1.dir/sai3bench.d2_w1.dir",
        "sai3bench.d1_w1.dir/sai3bench.d2_w2.dir",
        "sai3bench.d1_w2.dir/sai3bench.d2_w1.dir",
        "sai3bench.d1_w2.dir/sai3bench.d2_w2.dir",
    ]
    assert t.file_path(0) == "sai3bench.d1_w1.dir/sai3bench.d2_w1.dir/file_00000000.dat"
    assert t.file_path(3) == "sai3bench.d1_w2.dir/sai3bench.d2_w2.dir/file_00000003.dat"


def test_custom_mask_and_all_distribution() -> None:
    t = TreeLayout(TreeSpec(width=2, depth=2, files_per_dir=2, distribution="all", dir_mask="L%d-%d"))
    assert t.file_path(0) == "L1-1/file_00000000.dat"
    assert t.file_path(4) == "L1-1/L2-1/file_00000004.dat"
    assert list(t.file_range_of_dir(2)) == [4, 5]


@pytest.mark.parametrize("dist", ["bottom", "all"])
def test_inverses_round_trip(dist: str) -> None:
    t = TreeLayout(TreeSpec(width=3, depth=3, files_per_dir=2, distribution=dist))
    for idx, path in t.iter_dirs():
        assert t.dir_index(path) == idx
    files = list(t.iter_files())
    assert [i for i, _ in files] == list(range(t.total_files))
    for idx, path in files:
        assert path == t.file_path(idx)
        assert t.dir_index(path.rsplit("/", 1)[0]) == t.file_dir_index(idx)


def test_bad_paths_and_specs_rejected() -> None:
    t = TreeLayout(TreeSpec(width=2, depth=2, files_per_dir=1))
    with pytest.raises(ValueError):
        t.dir_index("sai3bench.d2_w1.dir")  # level 2 name at level 1
    with pytest.raises(ValueError):
        t.dir_index("sai3bench.d1_w3.dir")  # local index beyond width
    with pytest.raises(IndexError):
        t.file_path(t.total_files)
    with pytest.raises(ValueError):
        TreeLayout(TreeSpec(width=0, depth=1))
    with pytest.raises(ValueError):
        TreeLayout(TreeSpec(width=2, depth=1, dir_mask="d%d"))


def test_64m_file_tree_is_arithmetic() -> None:
    tracemalloc.start()
    t = TreeLayout(TreeSpec(width=24, depth=4, files_per_dir=193))
    last = t.file_path(t.total_files - 1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert t.total_files == 64_032_768
    assert t.total_dirs == 24 + 576 + 13_824 + 331_776
    assert last.endswith("sai3bench.d4_w24.dir/file_64032767.dat")
    assert peak < 100_000
