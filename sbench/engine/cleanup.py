"""Cleanup: delete what this run created, and nothing else, and say exactly what stayed.

Two sources, neither of which needs a list of names:
- prepared objects: the bitmap of indices prepare created (`RunState`), turned back into names by the same
  `naming` functions prepare used. Objects that existed before the run are never touched. With
  `--cleanup-only` there is no record of what existed before (a new process), so every prepare name of the
  config is deleted, and the console says so.
- workload PUT objects (`putcleanup`): their keys carry the run id and agent id, so cleanup lists every
  place a PUT could have written to and deletes the keys of this run and agent only; foreign keys under the
  same prefix survive.

Every delete is retried on throttled, network and timeout errors (`deletes.Deleter`). A shard remembers
which indices are confirmed gone, so what it leaves behind is counted exactly, per root
(`leftovers.Leftover`). Modes (sai3 `cleanup_mode`): `strict` fails on every failed delete (not found
included), `tolerant` (default) accepts not-found, `besteffort` never fails the stage; whatever stays is
reported in every mode. Deletes run on `cleanup_concurrency` threads (default `concurrency`; sai3
hard-coded 32, seed item 11).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sbench.control import RunControl
from sbench.engine.deletes import Deleter
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.leftovers import NOT_ATTEMPTED, Leftover, fails_run, summary
from sbench.engine.prepare import ShardResult, ShardStorage
from sbench.engine.shards import IndexShard, ThreadTally
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.plan.objectspaces import PrepareParams
from sbench.storage.base import ErrorClass, StorageError


def root_label(root: str) -> str:
    """A prepare root as a location: its URI with one trailing `/`."""
    return root.rstrip("/") + "/"


@dataclass
class CleanupShardResult(ShardResult):
    """A cleanup shard's result: `failed` holds the indices that stay (not confirmed gone)."""

    #: indices confirmed gone: deleted, or not found
    gone: IndexSet | None = None
    #: deletes that found no object (gone all the same)
    missing: int = 0
    #: deletes that finally failed (after retries)
    failed_deletes: int = 0
    #: tree directories that could not be removed (strict mode counts them)
    rmdir_failed: int = 0
    retries: int = 0
    leftovers: list[Leftover] = field(default_factory=list)


def candidates(params: PrepareParams, start: int, stop: int, created: IndexSet | None) -> IndexSet:
    """The indices of [start, stop) a cleanup shard is to delete: those of `created` in the range, or every
    index of this agent's share when `created` is None (`--cleanup-only`)."""
    if created is not None and (created.start, created.stop) == (start, stop):
        return created
    out = IndexSet(start, stop)
    if created is not None:
        for g in created:
            if start <= g < stop:
                out.add(g)
        return out
    mine = params.mine
    for g in range(start, stop):
        if mine(g):
            out.add(g)
    return out


def count_by_root(params: PrepareParams, indices: IndexSet) -> dict[int, int]:
    """How many of `indices` live on each root (endpoint) of the entry."""
    if len(params.roots) == 1:
        return {0: len(indices)}
    counts: dict[int, int] = {}
    for g in indices:
        r = params.root_of(g)
        counts[r] = counts.get(r, 0) + 1
    return counts


def unconfirmed(
    params: PrepareParams, start: int, stop: int, created: IndexSet | None, why: str
) -> list[Leftover]:
    """The report of a shard whose result never came back (its task failed, or the stage ended first):
    none of its objects is confirmed gone."""
    counts = count_by_root(params, candidates(params, start, stop, created))
    return [
        Leftover(root_label(params.roots[r]), n, True, {NOT_ATTEMPTED: why})
        for r, n in sorted(counts.items())
        if n
    ]


class CleanupShard(IndexShard):
    """Deletes the indices of [start, stop) that `created` holds (all of this agent's prepare names when
    `created` is None: `--cleanup-only`), retrying per `retry` (default: `ErrorHandling.for_cleanup`);
    `begin()`, then `finish()`. What stays is in the result's `failed` and `leftovers`."""

    kind = "cleanup"

    def __init__(
        self,
        params: PrepareParams,
        start: int,
        stop: int,
        control: RunControl,
        *,
        created: IndexSet | None,
        mode: str = "tolerant",
        concurrency: int | None = None,
        dirs: IndexSet | None = None,
        retry: ErrorHandling | None = None,
    ) -> None:
        super().__init__(params, start, stop, control)
        self.created = created
        self.deleter = Deleter(retry or ErrorHandling.for_cleanup(None), self.control, mode)
        self.mode = mode
        self.concurrency = int(concurrency or params.concurrency)
        self.dirs = dirs
        self.storage = ShardStorage(params)
        self.labels = [root_label(r) for r in params.roots]
        self.gone = IndexSet(self.start, max(self.start, self.stop))
        self._gone_lock = threading.Lock()

    def drain(self) -> Snapshot:
        return Snapshot.merge_all(t.recorder.take_interval() for t in self.tallies())

    def done_count(self) -> int:
        return sum(t.deleted + t.failed + t.skipped for t in self.tallies())

    def deleted_count(self) -> int:
        return sum(t.deleted for t in self.tallies())

    def _task(self) -> Callable[[int, ThreadTally], None]:
        created, params, storage, deleter = self.created, self.params, self.storage, self.deleter
        mine, labels, gone, lock = params.mine, self.labels, self.gone, self._gone_lock
        rngs: dict[int, random.Random] = {}

        def task(g: int, tally: ThreadTally) -> None:
            if (created is not None and g not in created) or (created is None and not mine(g)):
                return
            rng = rngs.get(id(tally))
            if rng is None:
                rng = rngs[id(tally)] = random.Random(g)
            where = labels[params.root_of(g)]
            if deleter.delete(storage.backend_of(g), storage.key_of(g), tally, rng, where):
                with lock:
                    gone.add(g)

        return task

    def _rmdirs(self) -> None:
        """Remove the tree directories this run created, deepest first; a dir that still holds someone
        else's files is not empty and stays."""
        layout = self.storage.layout
        if layout is None or self.dirs is None or self.start != 0:
            return
        tally = self.dir_tally
        for d in sorted(self.dirs, reverse=True):
            if self.control.stopping:
                return
            path = layout.dir_path(d)
            for backend in self.storage.backends:
                if not backend.has_directories:
                    continue
                t0 = time.monotonic_ns()
                try:
                    backend.rmdir(path, False)
                except StorageError as exc:
                    if self.mode == "strict" and exc.kind is not ErrorClass.NOT_FOUND:
                        tally.recorder.record_error(OpClass.META, exc.kind, f"RMDIR {path}: {exc}")
                        tally.failed += 1
                        tally.first_error = tally.first_error or str(exc)
                    continue
                tally.recorder.record(OpClass.META, 0, (time.monotonic_ns() - t0) // 1000)

    def _run(self) -> None:
        self._run_range(self.concurrency)
        self._rmdirs()

    def left(self) -> tuple[IndexSet, list[Leftover]]:
        """The indices that stay, and the per-root report of them (where anything stays)."""
        with self._gone_lock:
            todo = candidates(self.params, self.gone.start, self.gone.stop, self.created)
            left = todo.difference(self.gone)
        counts = count_by_root(self.params, left)
        failed = sum(t.failed for t in self.tallies() if t is not self.dir_tally)
        out = []
        for r, n in sorted(counts.items()):
            if n == 0:
                continue
            if self.control.stopping and n > failed:
                why = self.control.reason or "stopped"
                self.deleter.note(self.labels[r], NOT_ATTEMPTED, f"cleanup stopped: {why}")
            out.append(self.deleter.leftover(self.labels[r], n))
        return left, out

    def finish(self) -> CleanupShardResult:
        """Wait for the shard (bounded by a stop, checking for a stall) and return its result; deletes still
        in flight after the stop's grace are counted in the snapshot's unfinished_ops."""
        in_flight, common = self._finish()
        tallies = self.tallies()
        left, leftovers = self.left()
        result = CleanupShardResult(
            **common,
            created=IndexSet(0, 0),
            failed=left,
            deleted=sum(t.deleted for t in tallies),
            gone=self.gone,
            missing=sum(t.skipped for t in tallies),
            failed_deletes=sum(t.failed for t in tallies if t is not self.dir_tally),
            rmdir_failed=self.dir_tally.failed,
            retries=self.deleter.retries,
            leftovers=leftovers,
        )
        if not in_flight:
            self.storage.close()  # never under a call still in flight: that client is left to its thread
        return result


def cleanup_failure(mode: str, leftovers: list[Leftover], missing: int = 0, rmdir_failed: int = 0) -> str:
    """Why a cleanup stage fails ("" when it does not): objects left (`leftovers.fails_run`), or in strict
    mode any delete that found nothing or directory that could not be removed."""
    if fails_run(mode, leftovers):
        return f"{summary(leftovers)} (cleanup_mode={mode})"
    if mode == "strict" and (missing or rmdir_failed):
        parts = [f"{missing:,} deletes found no object"] if missing else []
        parts += [f"{rmdir_failed:,} directories could not be removed"] if rmdir_failed else []
        return ", ".join(parts) + " (cleanup_mode=strict)"
    return ""
