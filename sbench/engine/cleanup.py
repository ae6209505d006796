"""Cleanup: delete what this run created, and nothing else.

Two sources, neither of which needs a list of names:
- prepared objects: the bitmap of indices prepare created (`RunState`), turned back into names by the same
  `naming` functions prepare used. Objects that existed before the run are never touched. With
  `--cleanup-only` there is no record of what existed before (a new process), so every prepare name of the
  config is deleted, and the console says so.
- workload PUT objects: their keys carry the run id and agent id, so cleanup lists each PUT directory and
  deletes the keys of this run and agent only; foreign keys under the same prefix survive.

Modes (sai3 `cleanup_mode`): `strict` counts every failed delete as a failure, `tolerant` (default) accepts
not-found, `besteffort` ignores every error. Deletes run on `cleanup_concurrency` threads (default
`concurrency`; sai3 hard-coded 32, seed item 11).
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import Any

from sbench.engine.backends import BackendSet
from sbench.engine.bounded import POLL_S, grace_over
from sbench.engine.context import AgentIdentity, RunControl
from sbench.engine.indexset import IndexSet
from sbench.engine.naming import put_key_prefix
from sbench.engine.paths import join_key, op_name, put_directory
from sbench.engine.prepare import PrepareParams, ShardResult, ShardStorage, prepare_params
from sbench.engine.shards import IndexShard, IntervalEmitter, ThreadTally, wait_ticking
from sbench.engine.stall import StallWatch
from sbench.engine.state import RunState
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import Backend, ErrorClass, StorageError

MODES = ("strict", "tolerant", "besteffort")


def _delete(backend: Backend, key: str, tally: ThreadTally, mode: str) -> None:
    """One timed delete; failures counted per mode (besteffort: ignored, tolerant: not-found is fine)."""
    t0 = time.monotonic_ns()
    try:
        backend.delete(key)
    except StorageError as exc:
        if mode == "besteffort" or (mode == "tolerant" and exc.kind is ErrorClass.NOT_FOUND):
            tally.skipped += 1
            return
        tally.recorder.record_error(OpClass.META, exc.kind)
        tally.failed += 1
        tally.first_error = tally.first_error or str(exc)
        return
    except Exception as exc:  # a client bug surfacing as a non-storage error: counted, never swallowed
        if mode == "besteffort":
            tally.skipped += 1
            return
        tally.recorder.record_error(OpClass.META, ErrorClass.OTHER)
        tally.failed += 1
        tally.first_error = tally.first_error or f"{type(exc).__name__}: {exc}"
        return
    tally.recorder.record(OpClass.META, 0, (time.monotonic_ns() - t0) // 1000)
    tally.deleted += 1


class CleanupShard(IndexShard):
    """Deletes the indices of [start, stop) that `created` holds (all of them when `created` is None)."""

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
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"cleanup_mode {mode!r} is not one of {', '.join(MODES)}")
        super().__init__(params, start, stop, control)
        self.created = created
        self.mode = mode
        self.concurrency = int(concurrency or params.concurrency)
        self.dirs = dirs
        self.storage = ShardStorage(params)

    def drain(self) -> Snapshot:
        return Snapshot.merge_all(t.recorder.take_interval() for t in self.tallies())

    def done_count(self) -> int:
        return sum(t.deleted + t.failed + t.skipped for t in self.tallies())

    def deleted_count(self) -> int:
        return sum(t.deleted for t in self.tallies())

    def _task(self) -> Callable[[int, ThreadTally], None]:
        created, mine, storage, mode = self.created, self.params.mine, self.storage, self.mode

        def task(g: int, tally: ThreadTally) -> None:
            if (created is not None and g not in created) or (created is None and not mine(g)):
                return
            _delete(storage.backend_of(g), storage.key_of(g), tally, mode)

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
                        tally.recorder.record_error(OpClass.META, exc.kind)
                        tally.failed += 1
                        tally.first_error = tally.first_error or str(exc)
                    continue
                tally.recorder.record(OpClass.META, 0, (time.monotonic_ns() - t0) // 1000)

    def _run(self) -> None:
        self._run_range(self.concurrency)
        self._rmdirs()

    def finish(self) -> ShardResult:
        """Wait for the shard (bounded by a stop, checking for a stall) and return its result; deletes still
        in flight after the stop's grace are counted in the snapshot's unfinished_ops."""
        in_flight = self.join_bounded()
        tallies = self.tallies()
        failed = IndexSet(self.start, max(self.start, self.stop))
        result = ShardResult(
            entry=self.params.entry,
            start=self.start,
            stop=self.stop,
            created=IndexSet(0, 0),
            failed=failed,
            skipped=sum(t.skipped for t in tallies),
            deleted=sum(t.deleted for t in tallies),
            snapshot=self.drain(),
            elapsed_s=time.monotonic() - self.t0,
            first_error=self.first_error(),
            aborted=self.control.aborted,
            reason=self.control.reason if self.control.aborted else "",
        )
        result.existed = sum(t.failed for t in tallies)  # failed deletes (count only; no per-index record)
        result.snapshot.unfinished_ops = in_flight
        self.parent_control.release(self.control)
        if not in_flight:
            self.storage.close()  # never under a call still in flight: that client is left to its thread
        return result


def cleanup_shard(
    params: PrepareParams,
    start_index: int,
    stop_index: int,
    control: RunControl,
    *,
    created: IndexSet | None,
    mode: str = "tolerant",
    concurrency: int | None = None,
    dirs: IndexSet | None = None,
) -> ShardResult:
    """Delete the created objects of [start_index, stop_index); `created=None` deletes every prepare name of
    this agent's share (`--cleanup-only`). Failed deletes are in `result.existed` (a count)."""
    return (
        CleanupShard(
            params,
            start_index,
            stop_index,
            control,
            created=created,
            mode=mode,
            concurrency=concurrency,
            dirs=dirs,
        )
        .begin()
        .finish()
    )


# -- workload PUT objects ----------------------------------------------------------------------------------


def put_locations(config: Any, backends: BackendSet) -> list[tuple[Backend, str]]:
    """(backend, directory) of every non-tree PUT op, deduplicated."""
    if getattr(getattr(config, "prepare", None), "directory_structure", None) is not None:
        return []  # tree PUTs overwrite tree files; those belong to prepare's record
    seen, out = set(), []
    for op in config.workload:
        if op_name(op) != "put":
            continue
        backend, rel = backends.locate(str(op.path))
        directory = put_directory(rel)
        key = (backend.root_uri, directory)
        if key not in seen:
            seen.add(key)
            out.append((backend, directory))
    return out


def _run_put_keys(backend: Backend, directory: str, head: str, control: RunControl) -> Iterator[str]:
    prefix = join_key(directory, head)
    try:
        for key, _size in backend.list(prefix, recursive=False):
            if control.stopping:
                return
            if not key.endswith("/") and key.rsplit("/", 1)[-1].startswith(head):
                yield key
    except StorageError as exc:
        if exc.kind is not ErrorClass.NOT_FOUND:
            raise


class PutCleanup:
    """Streams each PUT directory's listing into a bounded queue drained by `concurrency` delete threads."""

    def __init__(
        self,
        config: Any,
        identity: AgentIdentity,
        control: RunControl,
        backends: BackendSet,
        *,
        mode: str,
        concurrency: int,
    ) -> None:
        self.locations = put_locations(config, backends)
        self.head = put_key_prefix(identity.run_id, identity.agent_id)
        self.control = control
        self.mode = mode
        self.tallies = [ThreadTally() for _ in range(max(1, concurrency))]
        self._queue: queue.Queue[tuple[Backend, str] | None] = queue.Queue(maxsize=4 * len(self.tallies))
        self._threads: list[threading.Thread] = []
        self.list_error = ""
        #: keys the listing brought so far (progress, with the deletes, for stall detection)
        self.listed = 0
        self.stall = StallWatch("cleanup of the workload PUT objects", getattr(config, "stall_timeout", None))

    def _consume(self, tally: ThreadTally) -> None:
        stopping = self.control.stop_flag()
        while not stopping():  # never blocks on the queue: a stop reaches every consumer within POLL_S
            try:
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if item is None:
                return
            _delete(item[0], item[1], tally, self.mode)

    def _offer(self, item: tuple[Backend, str] | None) -> bool:
        """Queue `item`, waiting for room while the cleanup runs; False once it is stopping."""
        while not self.control.stopping:
            try:
                self._queue.put(item, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self) -> None:
        try:
            for backend, directory in self.locations:
                for key in _run_put_keys(backend, directory, self.head, self.control):
                    self.listed += 1
                    if not self._offer((backend, key)):
                        return
        except StorageError as exc:
            self.list_error = str(exc)
        finally:
            for _ in self.tallies:
                if not self._offer(None):
                    break

    def begin(self) -> PutCleanup:
        for i, tally in enumerate(self.tallies):
            t = threading.Thread(
                target=self._consume, args=(tally,), name=f"sbench-cleanup-put-{i}", daemon=True
            )
            self._threads.append(t)
            t.start()
        producer = threading.Thread(target=self._produce, name="sbench-cleanup-list", daemon=True)
        self._threads.append(producer)
        producer.start()
        return self

    def alive(self) -> bool:
        """Still working (once the stop is older than the grace period, what is left is in flight)."""
        return any(t.is_alive() for t in self._threads) and not (
            self.control.stopping and grace_over(self.control)
        )

    def in_flight(self) -> int:
        """Threads still inside a call (a delete, or the producer's LIST) after the stop's grace."""
        return sum(1 for t in self._threads if t.is_alive())

    def watch(self) -> None:
        """Abort the cleanup as stalled when no key was listed and nothing deleted for stall_timeout."""
        if not self.control.stopping:
            units = self.listed + sum(t.deleted + t.skipped for t in self.tallies)
            reason = self.stall.check(units)
            if reason is not None:
                self.control.abort(reason)

    def wait(self, timeout: float | None) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        for t in self._threads:
            t.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def drain(self) -> Snapshot:
        return Snapshot.merge_all(t.recorder.take_interval() for t in self.tallies)

    def done_count(self) -> int:
        return sum(t.deleted + t.failed + t.skipped for t in self.tallies)

    def deleted_count(self) -> int:
        return sum(t.deleted for t in self.tallies)


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


def run_cleanup(
    config: Any,
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
    mode = str(
        getattr(getattr(prep, "cleanup_mode", None), "value", getattr(prep, "cleanup_mode", "tolerant"))
        or "tolerant"
    )
    concurrency = int(getattr(prep, "cleanup_concurrency", None) or config.concurrency)
    interval = float(interval_s or getattr(getattr(config, "perf_log", None), "interval", 1.0) or 1.0)
    notes: list[str] = []
    jobs: list[Any] = []
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
            )
        )
    backends = BackendSet(config)
    emitter = IntervalEmitter(identity.agent_id, stage_name, on_interval)
    t0 = time.monotonic()
    put_in_flight = 0
    try:
        put_job = PutCleanup(config, identity, control, backends, mode=mode, concurrency=concurrency)
        if cleanup_only and put_job.locations:
            notes.append("workload PUT objects of earlier runs are kept: their keys carry those runs' ids")
        use_put = bool(put_job.locations) and not cleanup_only
        active: list[Any] = [j.begin() for j in jobs] + ([put_job.begin()] if use_put else [])

        def emit(snap: Snapshot) -> None:
            done = sum(j.done_count() for j in active)
            emitter(snap, objects_done=done, objects_deleted=sum(j.deleted_count() for j in active))

        wait_ticking(active, interval, lambda: emit(Snapshot.merge_all(j.drain() for j in active)), control)
        results = [j.finish() for j in jobs]
        if state is not None:
            for job, r in zip(jobs, results, strict=True):
                if not r.aborted and r.existed == 0:
                    state.prepared.pop(job.params.entry, None)  # deleted: nothing of it is ours any more
        put_last = put_job.drain()
        put_in_flight = put_job.in_flight() if use_put else 0
        put_last.unfinished_ops = put_in_flight
        emit(Snapshot.merge_all([r.snapshot for r in results] + ([put_last] if use_put else [])))
    finally:
        if not put_in_flight:
            backends.close()  # never under a call still in flight: those clients are left to their threads
    put_tallies = put_job.tallies if use_put else []
    deleted = sum(r.deleted for r in results)
    failed = sum(r.existed for r in results) + sum(t.failed for t in put_tallies)
    first = next((r.first_error for r in results if r.first_error), "") or next(
        (t.first_error for t in put_tallies if t.first_error), ""
    )
    if use_put and put_job.list_error:
        failed += 1
        first = first or f"listing PUT objects: {put_job.list_error}"
    aborted = control.aborted or any(r.aborted for r in results)
    reason = control.reason if control.aborted else next((r.reason for r in results if r.aborted), "")
    if not aborted and failed and mode != "besteffort":
        reason = f"{failed} deletes failed (cleanup_mode={mode})"
    return CleanupOutcome(
        snapshot=emitter.acc.snapshot(),
        elapsed_s=time.monotonic() - t0,
        deleted=deleted,
        failed=failed,
        put_deleted=sum(t.deleted for t in put_tallies),
        aborted=aborted,
        reason=reason,
        first_error=first,
        notes=notes,
    )
