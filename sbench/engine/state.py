"""What one agent remembers between the stages of a run: which prepared objects exist and which it created.

run_stage's contract has no room for cross-stage data, so each agent (the in-process fleet's, or a Ray
agent actor) keeps one RunState and passes it to every stage. The record is what makes cleanup safe: it
deletes the indices prepare created, never objects that were there before.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sbench.engine.indexset import IndexSet
from sbench.engine.rangeset import RangeSet


@dataclass
class PreparedRecord:
    """The outcome of preparing one `ensure_objects` entry (or the directory tree)."""

    entry: int
    base_uri: str
    pools: tuple[str, ...]
    #: objects per pool (tree: total files, with a single pool)
    count: int
    #: global indices (pool-major: pool p index i -> p * count + i) this run created
    created: RangeSet
    #: every index exists now (prepare finished without failures, or skip_verification assumed so)
    complete: bool
    tree: bool = False
    #: tree directories this run created (mkdir), removed by cleanup after the files
    created_dirs: IndexSet | None = None
    #: `prepare.key_prefix_shards` of the entry (names under `{idx % N:02x}/`), None: flat
    shards: int | None = None


@dataclass
class RunState:
    """Cross-stage memory of one agent."""

    prepared: dict[int, PreparedRecord] = field(default_factory=dict)
