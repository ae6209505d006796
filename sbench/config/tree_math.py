"""Directory-tree totals by arithmetic, so a 64-million-file tree is summarised without building it."""

from __future__ import annotations

from dataclasses import dataclass

from sbench.config.models import DirectoryStructure


@dataclass(frozen=True, slots=True)
class LevelCounts:
    level: int  # 1-based depth
    dirs: int
    files: int


@dataclass(frozen=True, slots=True)
class TreeCounts:
    levels: tuple[LevelCounts, ...]

    @property
    def total_dirs(self) -> int:
        return sum(level.dirs for level in self.levels)

    @property
    def total_files(self) -> int:
        return sum(level.files for level in self.levels)


def tree_counts(tree: DirectoryStructure) -> TreeCounts:
    """Level L has width**L dirs; files go to the deepest level (`bottom`) or to every dir (`all`)."""
    levels = []
    for level in range(1, tree.depth + 1):
        dirs = tree.width**level
        holds_files = tree.distribution == "all" or level == tree.depth
        levels.append(LevelCounts(level, dirs, dirs * tree.files_per_dir if holds_files else 0))
    return TreeCounts(tuple(levels))
