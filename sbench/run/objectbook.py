"""The object book: which objects of each object space this run (or an earlier one) created and deleted.

Prepare records what each shard created, a resumed prepare skips it without a LIST, and cleanup deletes
exactly the created set, then records what is gone. Two books behind one protocol:
- on Ray, the metadata-cache actor's SQLite database (`cluster.metadata_cache`): shared by every node, one row
  per run of consecutive objects in one state, durable (with `distributed.kv_cache_dir` a later run resumes
  from it), and it also keeps the objects planned and in flight, so after a crash it shows what was being
  created;
- in process, `MemoryBook`: the created runs of each space in memory (`engine.rangeset`); nothing outlives
  the process, so nothing is written for a record nobody reads after the run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any, Protocol

from sbench.engine.rangeset import RangeSet

Range = tuple[int, int]  # half-open [start, stop)


class ObjectState(IntEnum):
    """Life cycle of one planned object (sai3's numbering, without its DirectoryNonExistent=0)."""

    PLANNED = 1
    CREATING = 2
    CREATED = 3
    FAILED = 4
    DELETED = 5


def config_hash(spec: Any) -> str:
    """Stable hash of whatever defines a set of objects (pool URI, count, sizes, fill...).

    Only the definition of the objects goes in, not the whole config: changing the workload or the duration
    must not throw away a 10 M-object prepare that is still valid.
    """
    text = json.dumps(spec, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def compress_ranges(indices: Iterable[int]) -> list[Range]:
    """Sorted indices -> half-open runs."""
    out: list[Range] = []
    start = prev = None
    for idx in indices:
        if start is None:
            start = prev = idx
        elif idx == prev + 1:
            prev = idx
        else:
            out.append((start, prev + 1))
            start = prev = idx
    if start is not None:
        out.append((start, prev + 1))
    return out


def subtract_ranges(start: int, stop: int, taken: Sequence[Range]) -> list[Range]:
    """The parts of [start, stop) not covered by the sorted, disjoint `taken` ranges."""
    out: list[Range] = []
    cursor = start
    for lo, hi in taken:
        if lo > cursor:
            out.append((cursor, min(lo, stop)))
        cursor = max(cursor, hi)
        if cursor >= stop:
            break
    if cursor < stop:
        out.append((cursor, stop))
    return out


class ObjectBook(Protocol):
    """What the prepare and cleanup stages read and write about the objects of each space."""

    #: what the console calls it ("the metadata cache")
    name: str

    def open_scope(self, key: str, spec: dict[str, Any], total: int) -> int:
        """The id of one object space (`key`, defined by `spec`, indices [0, total)); created on first use."""
        ...

    def created(self, scope: int, total: int) -> RangeSet:
        """The indices of the space recorded as created (and not since deleted)."""
        ...

    def starting(self, scope: int, lo: int, hi: int, missing: list[Range]) -> None:
        """A prepare shard over [lo, hi) starts and will create `missing` (the durable book keeps them as
        planned and in flight, so a crash leaves a trace of what was being created)."""
        ...

    def mark(self, scope: int, ranges: list[Range], state: ObjectState) -> None:
        """Record `ranges` of the space in `state` (CREATED, FAILED or DELETED)."""
        ...


class MemoryBook:
    """The in-process book: the created set of each space as runs (see the module docstring)."""

    name = "this run's record"

    def __init__(self) -> None:
        self._scopes: dict[tuple[str, str], int] = {}
        self._created: dict[int, RangeSet] = {}

    def open_scope(self, key: str, spec: dict[str, Any], total: int) -> int:
        scope = self._scopes.setdefault((config_hash(spec), key), len(self._scopes))
        self._created.setdefault(scope, RangeSet(0, total))
        return scope

    def created(self, scope: int, total: int) -> RangeSet:
        return self._created[scope].copy()

    def starting(self, scope: int, lo: int, hi: int, missing: list[Range]) -> None:
        """Nothing to keep: an in-process run leaves no record behind."""

    def mark(self, scope: int, ranges: list[Range], state: ObjectState) -> None:
        created = self._created[scope]
        if state is ObjectState.CREATED:
            for lo, hi in ranges:
                created.add_range(lo, hi)
        elif state is ObjectState.DELETED:
            for lo, hi in ranges:
                created.discard_range(lo, hi)
