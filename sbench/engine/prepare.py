"""Prepare: make sure the objects (and directory tree) a workload reads exist, creating only what is missing.

The unit of work is a shard: `PrepareShard(params, start, stop, control)` creates the missing objects of
indices [start, stop) of one `ensure_objects` entry on `concurrency` threads; the shard stages
(`run.shardstages`) run many of them, on threads in process or as Ray tasks over a cluster. All a shard needs
is in one picklable `PrepareParams` (sai3 passed eleven positional arguments, seed item 12).

Guarantees:
- Names come from `naming` (`prepared-NNNNNNNN.dat`, `deletable-…`, tree `…/file_NNNNNNNN.dat`), sizes from
  `SizeSampler.size_for_index(index, seed_for_uri(base_uri))` and bytes from a PayloadGenerator seeded by the
  base URI, so a re-run or a retry recreates exactly the same object (seed item 10: the retry keeps fill,
  dedup and compress).
- Gap fill: one streaming LIST marks existing indices in a bitmap; only missing ones are created, and the
  indices this run created are returned as a bitmap too, so cleanup deletes nothing that existed before.
- Memory is flat in the object count: indices come from a counter, never from a list of paths
  (1,000,000 objects cost two 125 KB bitmaps).
- Tree directories are created first, each mkdir timed into the META histograms (seed item 9).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.bounded import Abandoned, call_bounded
from sbench.engine.indexset import IndexSet
from sbench.engine.shards import IndexRange, IndexShard, ThreadTally
from sbench.engine.stall import StallWatch
from sbench.layout.naming import parse_prepared_path, parse_tree_file, prepared_key
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.capture import wrap as capture_wrap
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams, prepare_params
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.multi import EndpointStats, MultiEndpointBackend, open_multi

#: immediate retries of one PUT on a retryable error (throttled, network, timeout)
PUT_RETRIES = 3
#: deferred rounds over the objects that still failed after the main pass
RETRY_ROUNDS = 3


# -- backends and names ------------------------------------------------------------------------------------


class ShardStorage:
    """The backends of a shard (one per root) and the key of every index."""

    def __init__(self, params: PrepareParams) -> None:
        from sbench.storage.registry import open_backend

        self.params = params
        self.layout = params.layout()
        self.backends: list[Backend] = []
        #: with several roots (multi-endpoint), a router whose pinned views count each endpoint's calls
        self.router: MultiEndpointBackend | None = None
        if len(params.roots) > 1:
            self.router = open_multi(params.roots, "round_robin", params.options)
            self.backends = [capture_wrap(self.router.pinned(i)) for i in range(len(params.roots))]
            return
        try:
            for root in params.roots:
                self.backends.append(capture_wrap(open_backend(root, params.options)))
        except BaseException:
            self.close()
            raise

    def take_endpoint_interval(self) -> list[EndpointStats]:
        """Per-endpoint counters since the last call (empty without multi-endpoint)."""
        return self.router.take_endpoint_interval() if self.router is not None else []

    def key_of(self, g: int) -> str:
        p = self.params
        if self.layout is not None:
            return self.layout.file_path(g)
        pool, index = divmod(g, p.count)
        return prepared_key(p.pools[pool], index, p.key_shards)

    def backend_of(self, g: int) -> Backend:
        return self.backends[self.params.root_of(g)]

    def close(self) -> None:
        if self.router is not None:
            self.router.close()
        else:
            for backend in self.backends:
                backend.close()
        self.backends = []


def _list_or_empty(backend: Backend, prefix: str, recursive: bool):  # type: ignore[no-untyped-def]
    try:
        yield from backend.list(prefix, recursive=recursive)
    except StorageError as exc:
        if exc.kind is not ErrorClass.NOT_FOUND:
            raise


def scan_existing(
    params: PrepareParams, control: RunControl | None = None, storage: ShardStorage | None = None
) -> IndexSet:
    """Indices whose object already exists, from one streaming LIST per root (sai3 gap fill).

    Flat pools list the base directory only (not recursively: PUT directories below it are not scanned),
    sharded ones (`key_prefix_shards`) recursively, keeping only names in their own shard directory;
    tree files count only when found at their own path. The LIST runs on its own thread: a stop abandons it
    after the grace period (raising bounded.Abandoned), and a LIST that brings no key for stall_timeout aborts
    `control` as stalled.
    """
    control = control if control is not None else RunControl()
    own = storage is None
    storage = storage or ShardStorage(params)
    listed = [0]
    stall = StallWatch(f"the gap-fill LIST of {params.base_uri}", params.stall_timeout_s)

    def watch() -> None:
        reason = None if control.stopping else stall.check(listed[0])
        if reason is not None:
            control.abort(reason)

    try:
        return call_bounded(
            lambda: _scan(params, storage, control.stop_flag(), listed),
            control,
            name=f"sbench-scan-{params.entry}",
            on_poll=watch,
        )
    finally:
        if own:
            storage.close()


def _scan(
    params: PrepareParams, storage: ShardStorage, stopping: Callable[[], bool], listed: list[int]
) -> IndexSet:
    """scan_existing's LIST; `listed[0]` counts the keys seen so far (its progress, for stall detection)."""
    existing = IndexSet(0, params.total)
    for backend in storage.backends:
        if storage.layout is not None:
            layout = storage.layout
            for n, (key, _size) in enumerate(_list_or_empty(backend, "", True)):
                listed[0] += 1
                idx = parse_tree_file(key)
                if idx is not None and idx < params.total and layout.file_path(idx) == key.lstrip("/"):
                    existing.add(idx)
                if n & 0xFFF == 0 and stopping():
                    break
            continue
        pools, count, shards = params.pools, params.count, params.key_shards
        for n, (key, _size) in enumerate(_list_or_empty(backend, "", shards is not None)):
            listed[0] += 1
            parsed = parse_prepared_path(key, shards)
            if parsed is not None and parsed[0] in pools and parsed[1] < count:
                existing.add(pools.index(parsed[0]) * count + parsed[1])
            if n & 0xFFF == 0 and stopping():
                break
    return existing


# -- the shard ---------------------------------------------------------------------------------------------


@dataclass
class ShardResult:
    """What a prepare or cleanup shard did over [start, stop); `snapshot` holds what was not yet drained."""

    entry: int
    start: int
    stop: int
    created: IndexSet
    failed: IndexSet
    existed: int = 0
    skipped: int = 0
    deleted: int = 0
    nbytes: int = 0
    snapshot: Snapshot = field(default_factory=Snapshot)
    elapsed_s: float = 0.0
    first_error: str = ""
    aborted: bool = False
    reason: str = ""
    dirs_created: IndexSet | None = None
    #: objects of the shard accounted for (its progress)
    done: int = 0

    @property
    def created_count(self) -> int:
        return len(self.created)


def _retry_delay(attempt: int, rng: random.Random, base_s: float = 0.1, cap_s: float = 5.0) -> float:
    delay = min(base_s * 2 ** (attempt - 1), cap_s)
    return delay * rng.uniform(0.75, 1.25)


class PrepareShard(IndexShard):
    """One prepare shard in progress; `begin()`, then `finish()`."""

    kind = "prepare"

    def __init__(
        self,
        params: PrepareParams,
        start: int,
        stop: int,
        control: RunControl,
        *,
        existing: IndexSet | None = None,
        storage: ShardStorage | None = None,
        own_storage: bool | None = None,
    ) -> None:
        super().__init__(params, start, stop, control)
        self.storage = storage or ShardStorage(params)
        self._own_storage = storage is None if own_storage is None else own_storage
        self.existing = existing
        self.created = IndexSet(self.start, max(self.start, self.stop))
        self.failed = IndexSet(self.start, max(self.start, self.stop))
        self.payload = payload = PayloadGenerator(
            params.fill,
            params.dedup_factor,
            params.compress_factor,  # type: ignore[arg-type]
            params.payload_seed,
        )
        # build the payload buffer before the first timed PUT (32 MiB of random bytes take ~0.5 s)
        payload.payload(max(1, min(int(params.sampler.max_size), payload.buffer_size // 2)), 0)
        self._lock = threading.Lock()
        self._failures = 0
        #: a PUT failed with no_space: the deferred retry rounds are skipped (a full store stays full)
        self.out_of_space = False
        self.dirs_created: IndexSet | None = None
        self.phase = "files"

    # -- progress for the collector ----------------------------------------------------------------------
    def done_count(self) -> int:
        return sum(t.created + t.existed + t.failed + t.skipped for t in self.tallies())

    def drain(self) -> Snapshot:
        snap = Snapshot.merge_all(t.recorder.take_interval() for t in self.tallies())
        endpoints = self.storage.take_endpoint_interval()
        if endpoints:
            snap.set_endpoints(endpoints)
        return snap

    # -- work --------------------------------------------------------------------------------------------
    def _put(self, g: int, tally: ThreadTally, rng: random.Random) -> bool:
        """PUT object g with its deterministic size and bytes; immediate retries on retryable errors."""
        backend = self.storage.backend_of(g)
        key = self.storage.key_of(g)
        size = self.params.size_of(g)
        data = self.payload.payload(size, g)
        attempt = 0
        while True:
            t0 = time.monotonic_ns()
            try:
                backend.put(key, data)
            except Exception as exc:
                err = (
                    exc
                    if isinstance(exc, StorageError)
                    else StorageError(
                        ErrorClass.OTHER, f"{type(exc).__name__}: {exc}", uri=backend.uri_of(key)
                    )
                )
                attempt += 1
                if err.retryable and attempt <= PUT_RETRIES and not self.control.stopping:
                    tally.recorder.record_retry(OpClass.PUT)
                    if not self.control.wait(_retry_delay(attempt, rng)):
                        continue  # a stop during the wait ends the object here, as a failure
                tally.recorder.record_error(OpClass.PUT, err.kind, f"PUT {key}: {err}")
                if not tally.first_error:
                    tally.first_error = str(err)
                if err.kind is ErrorClass.NO_SPACE:
                    self.out_of_space = True
                return False
            tally.recorder.record(OpClass.PUT, size, (time.monotonic_ns() - t0) // 1000)
            tally.nbytes += size
            return True

    def _task(self) -> Callable[[int, ThreadTally], None]:
        params, existing = self.params, self.existing
        assume_all = params.skip_verification and not params.force_overwrite
        mine, created_add = params.mine, self.created.add
        rngs: dict[int, random.Random] = {}

        def task(g: int, tally: ThreadTally) -> None:
            if not mine(g):
                tally.skipped += 1
                return
            if assume_all or (existing is not None and not params.force_overwrite and g in existing):
                tally.existed += 1
                return
            rng = rngs.get(id(tally))
            if rng is None:
                rng = rngs[id(tally)] = random.Random(g)
            if self._put(g, tally, rng):
                tally.created += 1
                created_add(g)
            else:
                self._failed(g, tally)

        return task

    def _failed(self, g: int, tally: ThreadTally) -> None:
        tally.failed += 1
        with self._lock:
            self.failed.add(g)
            self._failures += 1
            over = self.params.max_errors and self._failures > self.params.max_errors
        if over:
            self.control.abort(
                f"prepare of {self.params.base_uri}: more than {self.params.max_errors} objects "
                f"failed (first error: {tally.first_error})"
            )

    def _mkdirs(self) -> None:
        """Create the tree's directories (file systems only) before its files, timing each mkdir as META."""
        layout = self.storage.layout
        if layout is None or self.start != 0:
            return
        backends = [b for b in self.storage.backends if b.has_directories]
        if not backends:
            return
        self.phase = "dirs"
        params = self.params
        created = self.dirs_created = IndexSet(0, layout.total_dirs)
        tally = self.dir_tally
        stopping = self.control.stop_flag()
        for d, path in layout.iter_dirs():
            if stopping():
                return
            if params.agent_count > 1 and d % params.agent_count != params.agent_index:
                continue
            for backend in backends:
                try:
                    backend.stat(path)
                    continue  # it was there before: not ours to remove later
                except StorageError as exc:
                    if exc.kind is not ErrorClass.NOT_FOUND:
                        tally.recorder.record_error(OpClass.META, exc.kind, f"STAT {path}: {exc}")
                        tally.first_error = tally.first_error or str(exc)
                        continue
                t0 = time.monotonic_ns()
                try:
                    backend.mkdir(path)
                except StorageError as exc:
                    tally.recorder.record_error(OpClass.META, exc.kind, f"MKDIR {path}: {exc}")
                    tally.first_error = tally.first_error or str(exc)
                    continue
                tally.recorder.record(OpClass.META, 0, (time.monotonic_ns() - t0) // 1000)
                created.add(d)

    def _run(self) -> None:
        try:
            self._mkdirs()
            self.phase = "files"
            self._run_range(self.params.concurrency)
            self._retry_failed()
        except BaseException as exc:
            self.control.abort(f"prepare of {self.params.base_uri} failed: {type(exc).__name__}: {exc}")
            raise

    def _retry_failed(self) -> None:
        """Deferred rounds over the objects that still failed, recreating identical bytes (seed item 10)."""
        rng = random.Random(self.start)
        for round_no in range(1, RETRY_ROUNDS + 1):
            pending = list(self.failed)
            if not pending or self.control.stopping or self.out_of_space:
                return
            if self.control.wait(_retry_delay(round_no, rng, base_s=0.5, cap_s=30.0)):
                return
            tally = self.range.tallies[0] if self.range and self.range.tallies else self.dir_tally
            for g in pending:
                if self.control.stopping:
                    return
                if self._put(g, tally, rng):
                    with self._lock:
                        self.failed.discard(g)
                    self.created.add(g)
                    tally.created += 1
                    tally.failed -= 1

    def finish(self) -> ShardResult:
        """Wait for the shard (bounded by a stop, checking for a stall) and return its result; closes the
        backends. PUTs still in flight after the stop's grace are counted in the snapshot's unfinished_ops;
        one that lands later is still recorded in `created`."""
        in_flight, common = self._finish()
        tallies = self.tallies()
        result = ShardResult(
            **common,
            created=self.created,
            failed=self.failed,
            existed=sum(t.existed for t in tallies),
            nbytes=sum(t.nbytes for t in tallies),
            dirs_created=self.dirs_created,
        )
        if self._own_storage and not in_flight:
            self.storage.close()  # never under a call still in flight: that client is left to its thread
        return result


def verify_prepared(config: Config, identity: AgentIdentity, control: RunControl) -> tuple[bool, list[str]]:
    """`--verify`: every prepared object must be listed and stat-able (sai3 verify_prepared_objects). A stop
    or a stall ends it within the grace period, with the entry reported as not verified."""
    lines, ok = [], True
    for params in prepare_params(config, identity):
        if control.stopping:
            break
        storage = ShardStorage(params)
        in_flight = 0
        try:
            existing = scan_existing(params, control, storage)
            mine = params.owned_total()
            found = len(existing)

            def stat_task(
                g: int, tally: ThreadTally, existing: IndexSet = existing, storage: ShardStorage = storage
            ) -> None:
                if g in existing:
                    try:
                        storage.backend_of(g).stat(storage.key_of(g))
                        tally.existed += 1
                    except StorageError as exc:
                        tally.failed += 1
                        tally.first_error = tally.first_error or str(exc)

            rng = IndexRange(0, params.total, params.concurrency, stat_task, control, "sbench-verify").begin()
            stall = StallWatch(f"verify of {params.base_uri}", params.stall_timeout_s)

            def watch(rng: IndexRange = rng, stall: StallWatch = stall) -> None:
                reason = None if control.stopping else stall.check(sum(t.existed for t in rng.tallies))
                if reason is not None:
                    control.abort(reason)

            in_flight = rng.join_bounded(on_poll=watch)
            bad = sum(t.failed for t in rng.tallies)
            first = next((t.first_error for t in rng.tallies if t.first_error), "")
        except Abandoned:
            in_flight = 1
            lines.append(f"{params.base_uri}: not verified: {control.reason} (its LIST did not return)")
            ok = False
            continue
        finally:
            if not in_flight:
                storage.close()
        entry_ok = found >= mine and bad == 0 and not control.stopping
        ok = ok and entry_ok
        stopped = f" -> not finished: {control.reason}" if control.stopping else ""
        lines.append(
            f"{params.base_uri}: {found:,} of {mine:,} objects found, {bad:,} failed stat"
            + (stopped or ("" if entry_ok else f" -> FAILED{': ' + first if first else ''}"))
        )
    return ok, lines
