"""The shard machinery prepare and cleanup share: one function over a range of object indices on N threads
(with per-thread recorders), the shard thread around it, and how their interval snapshots are reported.

Threads take indices from one `itertools.count` (its `next()` is atomic under the GIL, so there is no lock
and no list of indices: memory stays flat however large the range), and each thread records into its own
Recorder, which the caller's interval collector drains while the shard runs.
"""

from __future__ import annotations

import itertools
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol, Self

from sbench.control import RunControl
from sbench.engine.bounded import POLL_S, grace_over, join_bounded
from sbench.engine.gil import worker_switch_interval
from sbench.engine.stall import StallWatch
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.objectspaces import PrepareParams


@dataclass
class ThreadTally:
    """What one thread of a shard did; summed into the ShardResult at the end."""

    recorder: Recorder = field(default_factory=Recorder)
    created: int = 0
    existed: int = 0
    deleted: int = 0
    skipped: int = 0
    failed: int = 0
    nbytes: int = 0
    first_error: str = ""


IndexTask = Callable[[int, ThreadTally], None]


class IndexRange:
    """Runs `task(index, tally)` for every index of [start, stop) on `threads` threads."""

    def __init__(
        self, start: int, stop: int, threads: int, task: IndexTask, control: RunControl, name: str
    ) -> None:
        self.start = start
        self.stop = stop
        self.task = task
        self.control = control
        self.name = name
        n = max(1, min(threads, stop - start)) if stop > start else 0
        self.tallies = [ThreadTally() for _ in range(n)]
        self._next = itertools.count(start)
        self._threads: list[threading.Thread] = []
        self._crash: BaseException | None = None

    def _loop(self, tally: ThreadTally) -> None:
        take, stop, task = self._next.__next__, self.stop, self.task
        stopping = self.control.stop_flag()
        try:
            with worker_switch_interval():
                while not stopping():
                    index = take()
                    if index >= stop:
                        return
                    task(index, tally)
        except BaseException as exc:  # a bug, not a storage error (those are counted by the task)
            self._crash = exc
            self.control.abort(f"{self.name} crashed: {type(exc).__name__}: {exc}")

    def begin(self) -> IndexRange:
        for i, tally in enumerate(self.tallies):
            t = threading.Thread(target=self._loop, args=(tally,), name=f"{self.name}-{i}", daemon=True)
            self._threads.append(t)
            t.start()
        return self

    def join_bounded(self, on_poll: Callable[[], object] | None = None) -> int:
        """Wait for the threads, giving up once the stop is GRACE_S old (bounded.join_bounded); how many
        are still inside a call (in flight)."""
        return join_bounded(self._threads, self.control, on_poll=on_poll)

    def in_flight(self) -> int:
        """Threads still running: after a stop, each one is inside a storage call."""
        return sum(1 for t in self._threads if t.is_alive())

    def drain(self) -> Snapshot:
        """Take the current interval of every thread's recorder."""
        return Snapshot.merge_all(t.recorder.take_interval() for t in self.tallies)

    @property
    def crash(self) -> BaseException | None:
        return self._crash


class IndexShard(ABC):
    """A prepare or cleanup shard: [start, stop) of one ensure_objects entry, worked on its own thread (so
    the caller's collector can drain the tallies while it runs), with its own child RunControl. Subclasses
    name the `kind` (it names the threads) and implement `_run`."""

    kind: ClassVar[str]

    def __init__(self, params: PrepareParams, start: int, stop: int, control: RunControl) -> None:
        self.params = params
        self.start = max(0, start)
        self.stop = min(stop, params.total)
        self.parent_control = control
        self.control = control.child()
        #: directory ops (tree mkdir/rmdir) happen on the shard's thread, before or after the index range
        self.dir_tally = ThreadTally()
        self.range: IndexRange | None = None
        self.t0 = time.monotonic()
        self.stall = StallWatch(f"{self.kind} of {params.base_uri}", params.stall_timeout_s)

    @abstractmethod
    def _task(self) -> IndexTask:
        """What each index of the range gets done to it."""

    @abstractmethod
    def _run(self) -> None:
        """The shard's whole job, on its thread."""

    def _run_range(self, threads: int) -> None:
        """Run `_task` over [start, stop) on `threads` threads and wait for them (bounded by a stop)."""
        name = f"sbench-{self.kind}-{self.params.entry}"
        self.range = IndexRange(self.start, self.stop, threads, self._task(), self.control, name).begin()
        self.range.join_bounded()

    def progress_units(self) -> int:
        """Objects accounted for so far (created, found existing, deleted, not ours): stall detection's
        progress count. Failed objects are not progress."""
        return sum(t.created + t.existed + t.deleted + t.skipped for t in self.tallies())

    def watch(self) -> None:
        """Fail the shard (abort its own control, naming why) once it made no progress for stall_timeout."""
        if not self.control.stopping:
            reason = self.stall.check(self.progress_units())
            if reason is not None:
                self.control.abort(reason)

    def join_bounded(self) -> int:
        """Wait for the shard's thread (checking for a stall) until it ends or the stop's grace is over; the
        ops still in flight: the range threads still inside a call, else the shard thread itself when it is
        still inside one of its own calls (a tree mkdir, a deferred retry, an rmdir)."""
        join_bounded([self._thread], self.control, on_poll=self.watch)
        in_range = self.range.in_flight() if self.range is not None else 0
        return in_range or int(self._thread.is_alive())

    def tallies(self) -> list[ThreadTally]:
        return [self.dir_tally] + (self.range.tallies if self.range else [])

    @abstractmethod
    def drain(self) -> Snapshot:
        """What the shard measured since the last drain."""

    @abstractmethod
    def done_count(self) -> int:
        """Objects of the shard accounted for so far (its progress)."""

    def _finish(self) -> tuple[int, dict[str, Any]]:
        """Wait for the shard (bounded by a stop, checking for a stall): the ops still in flight after the
        stop's grace (counted in the snapshot's unfinished_ops; one that lands later is still recorded), and
        the fields every kind of shard result fills the same way."""
        in_flight = self.join_bounded()
        snapshot = self.drain()
        snapshot.unfinished_ops = in_flight
        common = {
            "entry": self.params.entry,
            "start": self.start,
            "stop": self.stop,
            "skipped": sum(t.skipped for t in self.tallies()),
            "done": self.done_count(),
            "snapshot": snapshot,
            "elapsed_s": time.monotonic() - self.t0,
            "first_error": self.first_error(),
            "aborted": self.control.aborted,
            "reason": self.control.reason if self.control.aborted else "",
        }
        self.parent_control.release(self.control)
        return in_flight, common

    def first_error(self) -> str:
        return next((t.first_error for t in self.tallies() if t.first_error), "")

    def begin(self) -> Self:
        self.t0 = time.monotonic()
        self.stall.reset(self.t0)
        self._thread = threading.Thread(
            target=self._run, name=f"sbench-{self.kind}-{self.params.entry}", daemon=True
        )
        self._thread.start()
        return self

    def alive(self) -> bool:
        """Still working: its thread runs and it was not stopped more than the grace period ago (then what
        is left is inside a storage call and is abandoned)."""
        return self._thread.is_alive() and not (self.control.stopping and grace_over(self.control))

    def wait(self, timeout: float | None) -> None:
        self._thread.join(timeout)


class _Job(Protocol):
    def alive(self) -> bool: ...

    def wait(self, timeout: float | None) -> None: ...

    def watch(self) -> None: ...


def wait_ticking(
    jobs: Sequence[_Job], interval_s: float, tick: Callable[[], None], control: RunControl | None = None
) -> None:
    """Wait until every job has ended, calling `tick` every `interval_s` meanwhile (the live interval
    snapshots) and each job's stall check; no wait is longer than POLL_S, so a job that ends is noticed at
    once. Returns once `control` has been stopping for the grace period even if a job is still inside a
    storage call (the job's own bounded finish counts it as in flight)."""
    next_tick = time.monotonic() + interval_s
    while any(j.alive() for j in jobs):
        if control is not None and control.stopping and grace_over(control):
            return
        for j in jobs:
            j.wait(max(0.0, min(POLL_S, next_tick - time.monotonic())))
            j.watch()
        if time.monotonic() >= next_tick:
            tick()
            next_tick += interval_s
