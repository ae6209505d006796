"""The shard executor on threads (run.shardjobs): the in-flight bound, results and failures per agent, live
interval reports with progress, the stage timeout, the duration_or_tasks limit, the run's abort, the bounded
give-up on a job that never returns; and the in-process object book."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from sbench.control import RunControl
from sbench.engine.indexset import IndexSet
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.run.objectbook import MemoryBook, ObjectState
from sbench.run.shardjobs import (
    GIVE_UP_S,
    JobsState,
    ShardJob,
    ShardLink,
    StageLimits,
    ThreadJobRunner,
    run_jobs,
)


@dataclass
class Result:
    snapshot: Snapshot
    done: int
    aborted: bool = False


def _ops(n: int) -> Snapshot:
    recorder = Recorder()
    for _ in range(n):
        recorder.record(OpClass.PUT, 10, 100)
    return recorder.take_interval()


@dataclass
class Gauge:
    lock: threading.Lock = field(default_factory=threading.Lock)
    now: int = 0
    peak: int = 0

    def __enter__(self) -> None:
        with self.lock:
            self.now += 1
            self.peak = max(self.peak, self.now)

    def __exit__(self, *exc: object) -> None:
        with self.lock:
            self.now -= 1


def counted_job(link: ShardLink, gauge: Gauge, n: int) -> Result:
    def body(control: RunControl) -> Result:
        with gauge:
            time.sleep(0.05)
        return Result(_ops(n), n)

    return link.run(body)


def waiting_job(link: ShardLink, seconds: float) -> Result:
    """Works until its control stops it, reporting one op per 50 ms over the link."""

    def body(control: RunControl) -> Result:
        done = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and not control.wait(0.05):
            done += 1
            link.report(_ops(1), done)
        return Result(Snapshot(), done, aborted=control.aborted)

    return link.run(body)


def stuck_job(link: ShardLink, release: threading.Event) -> Result:
    """Ignores every stop, as a job inside a storage call that never returns."""
    release.wait(30)
    return Result(Snapshot(), 0)


def crashing_job(link: ShardLink) -> Result:
    raise RuntimeError("boom in the shard")


def _run(
    jobs: list[ShardJob], *, control: RunControl | None = None, max_in_flight: int = 8, **limits: Any
) -> tuple[JobsState, list[tuple[Snapshot, dict[str, Snapshot]]]]:
    control = control or RunControl()
    intervals: list[tuple[Snapshot, dict[str, Snapshot]]] = []
    runner = ThreadJobRunner(control, 0.1)
    state = run_jobs(
        jobs,
        runner,
        stage_index=1,
        stage_name="prepare",
        max_in_flight=max_in_flight,
        control=control,
        limits=StageLimits(time.monotonic(), **limits),
        interval_s=0.1,
        on_interval=lambda aggregate, per_agent: intervals.append((aggregate, per_agent)),
    )
    runner.end_stage(1)
    return state, intervals


def test_jobs_run_at_most_max_in_flight_at_once_and_every_result_is_counted_for_its_agent() -> None:
    gauge = Gauge()
    seen: list[int] = []
    jobs = [
        ShardJob(f"agent-{i % 2}", counted_job, (gauge, i + 1), on_done=lambda j, v: seen.append(v.done))
        for i in range(6)
    ]
    state, intervals = _run(jobs, max_in_flight=2)
    assert gauge.peak == 2
    assert sorted(seen) == [1, 2, 3, 4, 5, 6]
    assert state.per_agent["agent-0"].snapshot().total_ops() == 1 + 3 + 5
    assert state.per_agent["agent-1"].snapshot().total_ops() == 2 + 4 + 6
    assert sum(agg.total_ops() for agg, _ in intervals) == 21  # every op in exactly one interval
    assert not state.failures and state.unfinished == 0


def test_live_reports_move_the_intervals_and_progress_while_a_job_runs() -> None:
    state, intervals = _run([ShardJob("agent-0", waiting_job, (0.6,), objects=40)])
    live = [per["agent-0"] for _, per in intervals if per["agent-0"].total_ops()]
    assert len(live) >= 3  # several intervals while the one job ran, not one at its end
    last = intervals[-1][1]["agent-0"].progress["agent-0"]
    assert last.objects_total == 40 and 8 <= last.objects_done <= 12
    assert state.per_agent["agent-0"].snapshot().total_ops() == last.objects_done


def test_a_crashing_job_fails_its_agent_with_its_label() -> None:
    gauge = Gauge()
    jobs = [
        ShardJob("agent-0", crashing_job, (), label="prepare shard [0, 10)"),
        ShardJob("agent-1", counted_job, (gauge, 1)),
    ]
    state, _ = _run(jobs)
    assert state.failures == {"agent-0": "prepare shard [0, 10) failed: boom in the shard"}


def test_the_stage_timeout_stops_the_jobs_and_marks_the_stage_timed_out() -> None:
    t0 = time.monotonic()
    state, _ = _run([ShardJob("agent-0", waiting_job, (30.0,))], timeout_s=0.3)
    assert state.timed_out and not state.soft_stopped and time.monotonic() - t0 < 1.5


def test_the_duration_limit_stops_the_jobs_without_failing_the_stage() -> None:
    state, _ = _run([ShardJob("agent-0", waiting_job, (30.0,))], soft_limit_s=0.3)
    assert state.soft_stopped and not state.timed_out and not state.failures


def test_the_runs_abort_reaches_running_jobs_and_queued_ones_never_start() -> None:
    control = RunControl()
    threading.Timer(0.2, control.abort, args=("Ctrl-C",)).start()
    started: list[str] = []
    jobs = [
        ShardJob(f"agent-{i}", waiting_job, (30.0,), on_start=lambda j: started.append(j.agent_id))
        for i in range(3)
    ]
    t0 = time.monotonic()
    state, _ = _run(jobs, control=control, max_in_flight=1)
    assert state.aborted and time.monotonic() - t0 < 1.5
    assert started == ["agent-0"] and state.unfinished == 2


def test_a_job_that_never_returns_is_given_up_on_and_counted_as_unfinished() -> None:
    release = threading.Event()
    try:
        t0 = time.monotonic()
        state, intervals = _run([ShardJob("agent-0", stuck_job, (release,))], timeout_s=0.2)
        took = time.monotonic() - t0
    finally:
        release.set()
    assert state.timed_out and state.unfinished == 1
    assert took < 0.2 + GIVE_UP_S + 1.0, took
    assert state.per_agent["agent-0"].snapshot().unfinished_ops == 1
    assert sum(agg.unfinished_ops for agg, _ in intervals) == 1


def test_the_memory_book_keeps_each_spaces_created_set_until_deleted() -> None:
    book = MemoryBook()
    spec = {"roots": ["file:///x/"], "count": 100}
    scope = book.open_scope("standalone/entry-0", spec, 100)
    assert book.open_scope("standalone/entry-0", spec, 100) == scope
    assert book.open_scope("standalone/entry-0", {**spec, "count": 50}, 50) != scope  # other objects
    book.starting(scope, 0, 100, [(0, 100)])
    book.mark(scope, [(0, 40), (60, 70)], ObjectState.CREATED)
    book.mark(scope, [(40, 60)], ObjectState.FAILED)
    created = book.created(scope, 100)
    assert created.ranges() == [(0, 40), (60, 70)]
    created.add_range(99, 100)  # a copy: the book is not changed through it
    book.mark(scope, [(0, 10)], ObjectState.DELETED)
    assert book.created(scope, 100).ranges() == [(10, 40), (60, 70)]


def test_index_set_ranges_round_trip_across_byte_boundaries() -> None:
    ranges = [(3, 5), (9, 40), (41, 42), (90, 100)]
    bits = IndexSet.of_ranges(3, 100, [*ranges, (100, 200)])
    assert bits.ranges() == ranges and len(bits) == 2 + 31 + 1 + 10
    assert bits.slice(11, 95).ranges() == [(11, 40), (41, 42), (90, 95)]
    assert bits.slice(36, 43).ranges() == [(36, 40), (41, 42)]  # off a byte boundary
    assert bits.covers(9, 40) and not bits.covers(9, 41)
    bits.discard_range(4, 93)
    assert bits.ranges() == [(3, 4), (93, 100)]


def test_an_agents_duration_is_the_span_of_its_jobs_not_their_sum() -> None:
    gauge = Gauge()
    jobs = [ShardJob("agent-0", waiting_job, (0.4,)) for _ in range(3)]
    state, _ = _run(jobs, max_in_flight=3)
    assert 0.35 < state.durations["agent-0"] < 0.9, state.durations
    state, _ = _run([ShardJob("agent-0", counted_job, (gauge, 1))])
    assert state.durations["agent-0"] < 0.5


def test_every_interval_has_a_wall_clock_window_even_without_an_op() -> None:
    """A LIST or a progress-only interval still has its time (a perf-log row at epoch 0 otherwise)."""
    _, intervals = _run(
        [ShardJob("agent-0", waiting_job, (0.3,), objects=5), ShardJob("agent-1", crashing_job, ())]
    )
    assert intervals and all(agg.end_ms > 0 and agg.start_ms > 0 for agg, _ in intervals)
    assert all(snap.end_ms > 0 for _, per in intervals for snap in per.values())
