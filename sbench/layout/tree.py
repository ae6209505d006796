"""Directory-tree layout (sai3 `prepare.directory_structure`, reference §1.8) computed by arithmetic.

A 24-wide, depth-4 tree with 193 files per leaf holds 64,032,768 files in 346,200 directories; nothing here
keeps a list of them. Directories are numbered level-major (all level-1 dirs, then all level-2 dirs, ...), and
within a level in path order, so a dir's position inside its level written in base `width` gives the 1-based
local index of every component of its path. Files are numbered contiguously in directory order, which is
what sai3's TreeManifest does, so the same index always names the same path on every agent and every run.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Literal

from sbench.layout.naming import tree_file_name

DEFAULT_DIR_MASK = "sai3bench.d%d_w%d.dir"

Distribution = Literal["bottom", "all"]


@dataclass(frozen=True, slots=True)
class TreeSpec:
    """The five tree keys, detached from the config model so a Ray task can carry them cheaply."""

    width: int
    depth: int
    files_per_dir: int = 0
    distribution: Distribution = "bottom"
    dir_mask: str = DEFAULT_DIR_MASK

    @classmethod
    def from_config(cls, cfg: Any) -> TreeSpec:
        """Accept the config model (or any object/dict with the YAML key names)."""
        get = cfg.get if isinstance(cfg, dict) else lambda k, d=None: getattr(cfg, k, d)
        distribution = str(get("distribution", "bottom") or "bottom")
        return cls(
            width=int(get("width")),
            depth=int(get("depth")),
            files_per_dir=int(get("files_per_dir", 0) or 0),
            distribution="all" if distribution == "all" else "bottom",
            dir_mask=str(get("dir_mask", DEFAULT_DIR_MASK) or DEFAULT_DIR_MASK),
        )


class TreeLayout:
    """Maps file index <-> path and dir index <-> path of one tree, in O(depth) time and O(depth) memory."""

    def __init__(self, directory_structure: Any) -> None:
        spec = directory_structure if isinstance(directory_structure, TreeSpec) else (
            TreeSpec.from_config(directory_structure))
        if spec.width < 1 or spec.depth < 1:
            raise ValueError(f"directory_structure needs width >= 1 and depth >= 1 (got {spec.width}, "
                             f"{spec.depth})")
        if spec.dir_mask.count("%d") != 2:
            raise ValueError(f"dir_mask {spec.dir_mask!r} must contain exactly two %d (level, index)")
        self.spec = spec
        self.width = spec.width
        self.depth = spec.depth
        self.files_per_dir = spec.files_per_dir
        self.distribution = spec.distribution
        #: dirs_per_level[L-1] = width**L
        self.dirs_per_level = tuple(spec.width ** level for level in range(1, spec.depth + 1))
        starts, acc = [], 0
        for n in self.dirs_per_level:
            starts.append(acc)
            acc += n
        #: global index of the first dir of each level
        self.level_start = tuple(starts)
        self.total_dirs = acc
        if spec.distribution == "bottom":
            self.first_file_dir = self.level_start[-1]
            self.file_dirs = self.dirs_per_level[-1]
        else:
            self.first_file_dir = 0
            self.file_dirs = self.total_dirs
        self.total_files = self.file_dirs * spec.files_per_dir
        before, after = spec.dir_mask.split("%d", 1)
        middle, tail = after.split("%d", 1)
        self._mask_re = re.compile(
            re.escape(before) + r"(\d+)" + re.escape(middle) + r"(\d+)" + re.escape(tail) + r"\Z")

    # -- counts ------------------------------------------------------------------------------------------
    def files_at_level(self, level: int) -> int:
        """Files held by the dirs of one level (1-based), for the dry-run summary."""
        if level < 1 or level > self.depth:
            raise ValueError(f"level {level} outside 1..{self.depth}")
        if self.distribution == "bottom" and level != self.depth:
            return 0
        return self.dirs_per_level[level - 1] * self.files_per_dir

    # -- directories -------------------------------------------------------------------------------------
    def dir_level(self, dir_index: int) -> tuple[int, int]:
        """(level, position within the level) of a global dir index."""
        if not 0 <= dir_index < self.total_dirs:
            raise IndexError(f"dir index {dir_index} outside 0..{self.total_dirs - 1}")
        for level in range(self.depth, 0, -1):
            start = self.level_start[level - 1]
            if dir_index >= start:
                return level, dir_index - start
        raise AssertionError("unreachable")  # level_start[0] == 0

    def dir_path(self, dir_index: int) -> str:
        """Relative path of a dir, e.g. `sai3bench.d1_w2.dir/sai3bench.d2_w1.dir`."""
        level, pos = self.dir_level(dir_index)
        digits = [0] * level
        for i in range(level - 1, -1, -1):
            pos, digits[i] = divmod(pos, self.width)
        mask = self.spec.dir_mask
        return "/".join(mask % (lvl + 1, d + 1) for lvl, d in enumerate(digits))

    def dir_index(self, path: str) -> int:
        """Inverse of dir_path; raises ValueError for a path that is not a dir of this tree."""
        parts = [p for p in path.strip("/").split("/") if p]
        if not 1 <= len(parts) <= self.depth:
            raise ValueError(f"{path!r} is not a directory of this tree (depth {self.depth})")
        pos = 0
        for expected_level, part in enumerate(parts, start=1):
            m = self._mask_re.match(part)
            if not m or int(m.group(1)) != expected_level or not 1 <= int(m.group(2)) <= self.width:
                raise ValueError(f"{path!r}: component {part!r} does not match dir_mask "
                                 f"{self.spec.dir_mask!r} at level {expected_level}")
            pos = pos * self.width + int(m.group(2)) - 1
        return self.level_start[len(parts) - 1] + pos

    def iter_dirs(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str]]:
        """(index, path) of dirs in index order, parents before children; a generator, never a list."""
        stop = self.total_dirs if stop is None else min(stop, self.total_dirs)
        for idx in range(start, stop):
            yield idx, self.dir_path(idx)

    # -- files -------------------------------------------------------------------------------------------
    def file_dir_index(self, file_index: int) -> int:
        """Global dir index holding a file."""
        if not 0 <= file_index < self.total_files:
            raise IndexError(f"file index {file_index} outside 0..{self.total_files - 1}")
        return self.first_file_dir + file_index // self.files_per_dir

    def file_path(self, file_index: int) -> str:
        """Relative path of a file, e.g. `sai3bench.d1_w1.dir/file_00000000.dat`."""
        return self.dir_path(self.file_dir_index(file_index)) + "/" + tree_file_name(file_index)

    def file_range_of_dir(self, dir_index: int) -> range:
        """File indices held by one dir (empty for dirs that hold none)."""
        ordinal = dir_index - self.first_file_dir
        if self.files_per_dir == 0 or not 0 <= ordinal < self.file_dirs:
            return range(0)
        first = ordinal * self.files_per_dir
        return range(first, first + self.files_per_dir)

    def iter_files(self, start: int = 0, stop: int | None = None) -> Iterator[tuple[int, str]]:
        """(index, path) of files in index order; the dir path is computed once per dir, not per file."""
        stop = self.total_files if stop is None else min(stop, self.total_files)
        idx = start
        while idx < stop:
            dir_idx = self.file_dir_index(idx)
            dir_path = self.dir_path(dir_idx)
            end = min(stop, self.file_range_of_dir(dir_idx).stop)
            for i in range(idx, end):
                yield i, dir_path + "/" + tree_file_name(i)
            idx = end
