"""Cleanup of workload PUT objects: their keys carry the run id and agent id, so each place a PUT could have
written to is listed and exactly this run's keys (of one agent, or of every agent) are deleted.

Places: every PUT op's directory on every endpoint it can reach. A multi-endpoint router spreads PUTs over
its endpoints, and endpoints need not share a namespace (two buckets, two directories), so each endpoint's
directory is a place of its own. Places are done one after the other: a place's deletes all end before the
next is listed, so endpoints that do share a namespace never see a key deleted twice at once.

Accounting per place (what `leftovers.Leftover` reports): keys listed, confirmed gone (deleted or not
found), and still there (failed, or skipped because the stage stopped). A key listed again after a
listing retry is counted once. When a listing did not finish, the count is a lower bound.
"""

from __future__ import annotations

import queue
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.backends import BackendSet
from sbench.engine.bounded import POLL_S, grace_over
from sbench.engine.deletes import Deleter, as_storage_error
from sbench.engine.leftovers import NOT_ATTEMPTED, Leftover
from sbench.engine.shards import ThreadTally, wait_ticking
from sbench.engine.stall import StallWatch
from sbench.layout.naming import put_key_prefix
from sbench.layout.paths import join_key, op_name, put_directory
from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import Backend, ErrorClass
from sbench.storage.multi import MultiEndpointBackend


@dataclass(frozen=True)
class PutPlace:
    """One directory on one endpoint that workload PUTs wrote into; `label` is the key prefix's URI."""

    backend: Backend
    directory: str
    label: str


def _endpoints(backend: Backend) -> list[Backend]:
    """Every endpoint a PUT through `backend` can have reached (each endpoint of a router, counted on it)."""
    if isinstance(backend, MultiEndpointBackend):
        return [backend.pinned(i) for i in range(len(backend.endpoints))]
    return [backend]


def put_places(config: Config, backends: BackendSet, head: str) -> list[PutPlace]:
    """The places of every non-tree PUT op, deduplicated; `head` is the key-name prefix cleanup deletes."""
    if config.prepare is not None and config.prepare.directory_structure is not None:
        return []  # tree PUTs overwrite tree files; those belong to prepare's record
    seen: set[str] = set()
    out: list[PutPlace] = []
    for op in config.workload:
        if op_name(op) != "put":
            continue
        router, rel = backends.locate(str(op.path))
        directory = put_directory(rel)
        for backend in _endpoints(router):
            label = backend.uri_of(join_key(directory, head))
            if label not in seen:
                seen.add(label)
                out.append(PutPlace(backend, directory, label))
    return out


def _run_keys(place: PutPlace, head: str, stopping: Any) -> Iterator[str]:
    for key, _size in place.backend.list(join_key(place.directory, head), recursive=False):
        if stopping():
            return
        if not key.endswith("/") and key.rsplit("/", 1)[-1].startswith(head):
            yield key


class _PlaceState:
    """One place's keys: how many were queued and resolved, and which ones stay."""

    def __init__(self, place: PutPlace) -> None:
        self.place = place
        self.queued = 0
        self.done = 0
        self.stay: set[str] = set()
        self.listed_all = False
        self.lock = threading.Lock()

    def resolve(self, key: str, gone: bool) -> None:
        with self.lock:
            self.done += 1
            if gone:
                self.stay.discard(key)
            else:
                self.stay.add(key)

    def left(self) -> tuple[int, bool]:
        """(objects left, whether that count is exact)."""
        with self.lock:
            unresolved = self.queued - self.done
            return len(self.stay) + unresolved, self.listed_all and unresolved == 0


@dataclass
class PutCleanupResult:
    """What the PUT cleanup of one agent (or of every agent of a run) did."""

    snapshot: Snapshot
    deleted: int
    missing: int
    failed: int
    retries: int
    leftovers: list[Leftover]
    first_error: str
    aborted: bool
    elapsed_s: float
    #: keys accounted for (deleted, found gone, failed): the job's progress
    done: int = 0


class PutCleanup:
    """Streams each place's listing into a bounded queue drained by `concurrency` delete threads."""

    def __init__(
        self,
        config: Config,
        head: str,
        control: RunControl,
        backends: BackendSet,
        *,
        concurrency: int,
        deleter: Deleter | None = None,
    ) -> None:
        self.head = head
        self.places = [_PlaceState(p) for p in put_places(config, backends, head)]
        self.control = control
        self.deleter = deleter or Deleter.for_config(config, control)
        self.tallies = [ThreadTally() for _ in range(max(1, concurrency))]
        self.list_tally = ThreadTally()
        self._queue: queue.Queue[tuple[_PlaceState, str] | None] = queue.Queue(maxsize=4 * len(self.tallies))
        self._threads: list[threading.Thread] = []
        self.t0 = time.monotonic()
        #: keys the listings brought so far (progress, with the deletes, for stall detection)
        self.listed = 0
        self.stall = StallWatch("cleanup of the workload PUT objects", config.stall_timeout)

    @property
    def locations(self) -> list[PutPlace]:
        return [t.place for t in self.places]

    # -- threads -----------------------------------------------------------------------------------------
    def _consume(self, index: int, tally: ThreadTally) -> None:
        rng = random.Random(index)
        deleter, control = self.deleter, self.control
        while True:
            try:  # never blocks for long: a stop reaches every consumer within POLL_S
                item = self._queue.get(timeout=POLL_S)
            except queue.Empty:
                if control.stopping:
                    return  # keys still queued stay unresolved, and are counted as left
                continue
            try:
                if item is None:
                    return
                place, key = item
                if control.stopping:  # abandoned, not attempted: it stays
                    place.resolve(key, False)
                    continue
                place.resolve(key, deleter.delete(place.place.backend, key, tally, rng, place.place.label))
            finally:
                self._queue.task_done()

    def _enqueue(self, place: _PlaceState, key: str) -> bool:
        """Queue a listed key for deletion; False when the stage stopped first (the key stays, counted)."""
        with place.lock:
            place.queued += 1
        self.listed += 1
        while not self.control.stopping:
            try:
                self._queue.put((place, key), timeout=POLL_S)
                return True
            except queue.Full:
                continue
        place.resolve(key, False)
        return False

    def _list_into(self, place: _PlaceState, rng: random.Random) -> None:
        """List one place into the queue; a failed listing is retried from the start (keys seen again are
        counted once), and given up on with its first error noted."""
        stopping = self.control.stop_flag()
        attempt = 0
        while not stopping():
            try:
                for key in _run_keys(place.place, self.head, stopping):
                    if not self._enqueue(place, key):
                        return
                place.listed_all = not stopping()
                return
            except Exception as exc:
                err = as_storage_error(exc, place.place.label)
                if err.kind is ErrorClass.NOT_FOUND:  # the directory does not exist: nothing was written
                    place.listed_all = True
                    return
                attempt += 1
                if self.deleter.retry(err.kind, attempt, rng, self.list_tally):
                    continue
                self.deleter.failed(err, self.list_tally, place.place.label)
                return

    def _drain(self) -> None:
        """Wait until every queued delete has ended (or the stage stops)."""
        done = self._queue.all_tasks_done
        with done:
            while self._queue.unfinished_tasks and not self.control.stopping:
                done.wait(POLL_S)

    def _produce(self) -> None:
        rng = random.Random(len(self.places))
        try:
            for place in self.places:
                if self.control.stopping:
                    break
                self._list_into(place, rng)
                self._drain()
        finally:
            for _ in self.tallies:
                if not self._offer_end():
                    break

    def _offer_end(self) -> bool:
        """Queue one consumer's end marker, waiting for room while the cleanup runs; False once it stops
        (the consumers then leave on their own)."""
        while not self.control.stopping:
            try:
                self._queue.put(None, timeout=POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def begin(self) -> PutCleanup:
        self.t0 = time.monotonic()
        self.stall.reset(self.t0)
        for i, tally in enumerate(self.tallies):
            t = threading.Thread(
                target=self._consume, args=(i, tally), name=f"sbench-cleanup-put-{i}", daemon=True
            )
            self._threads.append(t)
            t.start()
        producer = threading.Thread(target=self._produce, name="sbench-cleanup-list", daemon=True)
        self._threads.append(producer)
        producer.start()
        return self

    # -- progress ----------------------------------------------------------------------------------------
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
        return Snapshot.merge_all(t.recorder.take_interval() for t in [self.list_tally, *self.tallies])

    def done_count(self) -> int:
        return sum(t.deleted + t.failed + t.skipped for t in self.tallies)

    def deleted_count(self) -> int:
        return sum(t.deleted for t in self.tallies)

    # -- outcome -----------------------------------------------------------------------------------------
    def leftovers(self) -> list[Leftover]:
        """Per place: this run's keys that were listed and not confirmed gone (a lower bound where the
        listing did not finish)."""
        out = []
        for place in self.places:
            left, exact = place.left()
            if left == 0 and exact:
                continue
            if self.control.stopping:
                self.deleter.note(
                    place.place.label, NOT_ATTEMPTED, f"cleanup stopped: {self.control.reason or 'stopped'}"
                )
            out.append(self.deleter.leftover(place.place.label, left, exact=exact))
        return out

    def result(self) -> PutCleanupResult:
        tallies = [self.list_tally, *self.tallies]
        snapshot = self.drain()
        snapshot.unfinished_ops = self.in_flight()
        return PutCleanupResult(
            snapshot=snapshot,
            deleted=sum(t.deleted for t in tallies),
            missing=sum(t.skipped for t in tallies),
            failed=sum(t.failed for t in tallies),
            retries=self.deleter.retries,
            leftovers=self.leftovers(),
            first_error=next((t.first_error for t in tallies if t.first_error), ""),
            aborted=self.control.aborted,
            elapsed_s=time.monotonic() - self.t0,
            done=self.done_count(),
        )


def cleanup_puts(
    config: Config,
    run_id: str,
    control: RunControl,
    *,
    agent_id: str | None = None,
    concurrency: int | None = None,
    report: Callable[[Snapshot, int], None] | None = None,
    interval_s: float = POLL_S,
) -> PutCleanupResult:
    """Delete the workload PUT objects of `run_id` (of one agent, or of every agent when None) wherever the
    config's PUT ops could have written them; `report` gets each interval's snapshot and keys done so far."""
    prep = config.prepare
    threads = int(concurrency or (prep.cleanup_concurrency if prep else None) or config.concurrency)
    backends = BackendSet(config)
    in_flight = 0
    try:
        job = PutCleanup(config, put_key_prefix(run_id, agent_id), control, backends, concurrency=threads)
        tick = (lambda: report(job.drain(), job.done_count())) if report is not None else lambda: None
        wait_ticking([job.begin()], interval_s, tick, control)
        result = job.result()
        in_flight = result.snapshot.unfinished_ops
        return result
    finally:
        if not in_flight:
            backends.close()  # never under a call still in flight: those clients are left to their threads
