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
from dataclasses import dataclass, field, replace
from typing import Any

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.backends import BackendSet
from sbench.engine.deletes import Deleter, cleanup_mode
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.leftovers import NOT_ATTEMPTED, Leftover, fails_run, summary
from sbench.engine.prepare import ShardResult, ShardStorage
from sbench.engine.putcleanup import PutCleanup
from sbench.engine.shards import IndexShard, IntervalEmitter, ThreadTally, wait_ticking
from sbench.engine.state import RunState
from sbench.layout.naming import put_key_prefix
from sbench.layout.paths import op_name
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams, prepare_params
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


# -- the local cleanup stage -------------------------------------------------------------------------------


@dataclass
class CleanupOutcome:
    snapshot: Snapshot
    elapsed_s: float
    deleted: int
    failed: int
    put_deleted: int
    aborted: bool
    reason: str
    first_error: str
    notes: list[str]
    mode: str = "tolerant"
    #: deletes that found no object (gone all the same)
    missing: int = 0
    retries: int = 0
    #: this run's objects that stay, per location
    leftovers: list[Leftover] = field(default_factory=list)
    #: workload PUT objects confirmed gone (deleted or not found)
    put_gone: int = 0


def run_cleanup(
    config: Config,
    identity: AgentIdentity,
    control: RunControl,
    on_interval: Callable[[Snapshot], None] | None = None,
    *,
    state: RunState | None = None,
    cleanup_only: bool = False,
    interval_s: float | None = None,
    stage_name: str = "Cleanup",
) -> CleanupOutcome:
    """Delete this run's prepared objects (per the RunState record) and its workload PUT objects."""
    prep = config.prepare
    mode = cleanup_mode(config)
    retry = ErrorHandling.for_cleanup(config.error_handling)
    concurrency = int((prep.cleanup_concurrency if prep else None) or config.concurrency)
    interval = float(interval_s or config.perf_log.interval)
    notes: list[str] = []
    jobs: list[CleanupShard] = []
    for params in prepare_params(config, identity, concurrency=concurrency):
        record = state.prepared.get(params.entry) if state is not None else None
        if record is not None:
            if len(record.created) == 0 and not record.created_dirs:
                notes.append(f"{params.base_uri}: prepare created nothing in this run; nothing to delete")
                continue
            created, dirs = record.created, record.created_dirs
        elif cleanup_only:
            created, dirs = None, None
            notes.append(
                f"{params.base_uri}: --cleanup-only has no record of which objects existed before, so "
                f"every prepare name ({params.owned_total():,} objects) is deleted"
            )
        else:
            notes.append(
                f"{params.base_uri}: prepare did not run in this invocation; prepared objects are kept"
            )
            continue
        jobs.append(
            CleanupShard(
                replace(params, concurrency=concurrency),
                0,
                params.total,
                control,
                created=created,
                mode=mode,
                concurrency=concurrency,
                dirs=dirs,
                retry=retry,
            )
        )
    backends = BackendSet(config)
    emitter = IntervalEmitter(identity.agent_id, stage_name, on_interval)
    t0 = time.monotonic()
    put_job: PutCleanup | None = None
    in_flight = 0
    try:
        if not cleanup_only:
            head = put_key_prefix(identity.run_id, identity.agent_id)
            deleter = Deleter(retry, control, mode)
            put_job = PutCleanup(config, head, control, backends, concurrency=concurrency, deleter=deleter)
            if not put_job.locations:
                put_job = None
        elif any(op_name(op) == "put" for op in config.workload):
            notes.append("workload PUT objects of earlier runs are kept: their keys carry those runs' ids")
        active: list[Any] = [j.begin() for j in jobs] + ([put_job.begin()] if put_job is not None else [])

        def emit(snap: Snapshot) -> None:
            done = sum(j.done_count() for j in active)
            emitter(snap, objects_done=done, objects_deleted=sum(j.deleted_count() for j in active))

        wait_ticking(active, interval, lambda: emit(Snapshot.merge_all(j.drain() for j in active)), control)
        results = [j.finish() for j in jobs]
        puts = put_job.result() if put_job is not None else None
        if state is not None:
            for job, r in zip(jobs, results, strict=True):
                record = state.prepared.get(job.params.entry)
                if not r.leftovers:
                    state.prepared.pop(job.params.entry, None)  # deleted: nothing of it is ours any more
                elif record is not None:  # a later cleanup stage retries exactly what stays
                    record.created, record.complete = r.failed, False
        in_flight = sum(r.snapshot.unfinished_ops for r in [*results, *([puts] if puts else [])])
        emit(Snapshot.merge_all([r.snapshot for r in results] + ([puts.snapshot] if puts else [])))
    finally:
        if not in_flight:
            backends.close()  # never under a call still in flight: those clients are left to their threads
    leftovers = [item for r in results for item in r.leftovers] + (puts.leftovers if puts else [])
    missing = sum(r.missing for r in results) + (puts.missing if puts else 0)
    first = next((r.first_error for r in results if r.first_error), "") or (puts.first_error if puts else "")
    aborted = control.aborted or any(r.aborted for r in results)
    if aborted:
        reason = control.reason if control.aborted else next((r.reason for r in results if r.aborted), "")
    else:
        rmdirs = sum(r.rmdir_failed for r in results)
        reason = cleanup_failure(mode, leftovers, missing, rmdirs)
    return CleanupOutcome(
        snapshot=emitter.acc.snapshot(),
        elapsed_s=time.monotonic() - t0,
        deleted=sum(r.deleted for r in results),
        failed=sum(r.failed_deletes for r in results) + (puts.failed if puts else 0),
        put_deleted=puts.deleted if puts else 0,
        aborted=aborted,
        reason=reason,
        first_error=first,
        notes=notes,
        mode=mode,
        missing=missing,
        retries=sum(r.retries for r in results) + (puts.retries if puts else 0),
        leftovers=leftovers,
        put_gone=puts.deleted + puts.missing if puts else 0,
    )
