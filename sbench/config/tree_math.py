"""Directory-tree totals per level for summaries and space estimates, from the engine's arithmetic layout.

A 64-million-file tree is summarised without building it: `TreeLayout` computes every count in O(depth).
"""

from __future__ import annotations

from dataclasses import dataclass

from sbench.config.models import DirectoryStructure
from sbench.layout.tree import TreeLayout


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
    layout = TreeLayout(tree)
    return TreeCounts(
        tuple(
            LevelCounts(level, layout.dirs_per_level[level - 1], layout.files_at_level(level))
            for level in range(1, layout.depth + 1)
        )
    )
