"""Shard jobs: the prepare, cleanup, gap-fill and preflight work of a stage as a batch of independent jobs,
run with a bounded number in flight by one loop whatever runs them.

A `JobRunner` says where a job runs: Ray tasks placed on the agents' nodes (`cluster.rayjobs`), or threads of
this process (`ThreadJobRunner`, the in-process fleet). Each job gets a `ShardLink`, its line back to the
loop: the stop/abort of the stage (a Ray task polls the coordinator for it; a thread shares the stage's
RunControl) and the live interval snapshots of a shard that is still running, so the perf log and the live
view move while a long shard works instead of jumping when it ends.

`run_jobs` owns what is the same everywhere: the in-flight bound, the per-interval merge per agent with each
agent's progress (objects done of objects planned), the stage timeout (the jobs stop, the stage fails), the
duration_or_tasks limit (the jobs stop, the stage succeeds), the run's abort, and the bounded give-up on a job
that does not return (counted as an unfinished op, never silently dropped).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sbench.control import RunControl
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.cpu import CpuSampler
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator

T = TypeVar("T")

#: How long the loop waits for its jobs after a stop or an abort before it gives up on them (a shard's own
#: bounded finish returns after the engine's grace, so this only catches a job that cannot return).
GIVE_UP_S = 2.0
#: Longest wait for a job to end before the loop looks at the clock, the run's control and the interval.
LOOP_POLL_S = 0.2


class ShardLink(Protocol):
    """A running job's line back to the loop (see the module docstring)."""

    #: how often a long shard reports what it measured so far
    interval_s: float

    def run(self, body: Callable[[RunControl], T]) -> T:
        """`body(control)` with `control` stopped or aborted when the stage or the run is."""
        ...

    def report(self, snapshot: Snapshot, done: int) -> None:
        """An interval of a running shard: what it measured since the last report, and how many of its
        objects it has accounted for so far (a gauge)."""
        ...


@dataclass
class ShardJob:
    """One job of a stage, done for (and answered for by) one agent."""

    agent_id: str
    #: called as fn(link, *args) where the job runs
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    #: the node of the agent (Ray); "" in process
    node_id: str = ""
    #: True: must run on that node (its local disk); False: prefer it, run anywhere when it is busy
    hard: bool = False
    #: called by the loop when the job is launched, and with its return value (or exception) when done
    on_start: Callable[[ShardJob], None] | None = None
    on_done: Callable[[ShardJob, Any], None] | None = None
    label: str = ""
    #: objects the job works on (its agent's progress total); None: not known beforehand (a LIST decides)
    objects: int | None = 0
    #: shards are I/O-bound thread pools: a quarter CPU each lets several share a Ray node
    num_cpus: float = 0.25


class JobRunner(Protocol):
    """Where jobs run (see the module docstring)."""

    #: the jobs run in this process, so its CPU is the agents' CPU
    local: bool

    def submit(self, job: ShardJob, stage_index: int, key: int) -> Hashable:
        """Start `job`; its link reports under `key`. Returns a handle for `wait`, `result` and `abandon`."""
        ...

    def wait(self, handles: list[Hashable], timeout_s: float) -> list[Hashable]:
        """The handles of jobs that ended (at least one, or none after `timeout_s`)."""
        ...

    def result(self, handle: Hashable) -> Any:
        """An ended job's return value; raises what the job raised."""
        ...

    def abandon(self, handle: Hashable) -> None:
        """Stop waiting for a job that did not return in time."""
        ...

    def halt(self, stage_index: int, reason: str, *, abort: bool) -> None:
        """Tell the stage's running jobs to stop (its time is up) or the whole run's to abort."""
        ...

    def live(self, stage_index: int) -> list[tuple[int, Snapshot, int]]:
        """The interval reports of running jobs since the last call: (key, snapshot, done)."""
        ...

    def share(self, value: Any) -> Any:
        """`value` as an argument many jobs take (Ray: put once in the object store)."""
        ...

    def end_stage(self, stage_index: int) -> None:
        """The stage is over: its stop must not reach a later stage's jobs."""
        ...


@dataclass
class JobStream:
    """Jobs made as they are launched, with what the loop must know beforehand: a 10^12-object space has
    10^8 shards, which are never held in a list."""

    jobs: Iterable[ShardJob]
    count: int
    #: per agent, the objects its jobs work on (its progress total); None: not known beforehand
    totals: dict[str, int | None]

    @classmethod
    def of(cls, jobs: Sequence[ShardJob]) -> JobStream:
        totals: dict[str, int | None] = {}
        for job in jobs:
            before = totals.get(job.agent_id, 0)
            totals[job.agent_id] = None if before is None or job.objects is None else before + job.objects
        return cls(jobs, len(jobs), totals)

    @classmethod
    def chain(cls, streams: Sequence[JobStream]) -> JobStream:
        totals: dict[str, int | None] = {}
        for stream in streams:
            for agent_id, n in stream.totals.items():
                before = totals.get(agent_id, 0)
                totals[agent_id] = None if before is None or n is None else before + n
        jobs = itertools.chain.from_iterable(s.jobs for s in streams)
        return cls(jobs, sum(s.count for s in streams), totals)


def failure_text(exc: BaseException) -> str:
    """What a failed job says in one line: the last line of its error (a Ray task's error text is its
    remote traceback, whose last line is the exception)."""
    text = str(exc).strip()
    return text.splitlines()[-1] if text else type(exc).__name__


@dataclass
class JobsState:
    """What the loop saw: per-agent figures and failures, and whether and how it was cut short."""

    per_agent: dict[str, SnapshotAccumulator] = field(default_factory=dict)
    #: per agent, from the start of its first job to the end of its last (its jobs overlap)
    durations: dict[str, float] = field(default_factory=dict)
    first_start: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    aborted: bool = False
    timed_out: bool = False
    #: the duration_or_tasks limit ended the stage (a success)
    soft_stopped: bool = False
    #: jobs that never started or never returned
    unfinished: int = 0


@dataclass
class StageLimits:
    """The time limits of a stage's jobs, measured from the stage's start (`t0`, monotonic)."""

    t0: float
    #: timeout_secs: the jobs stop and the stage fails
    timeout_s: float | None = None
    #: duration_or_tasks: the jobs stop and the stage succeeds
    soft_limit_s: float | None = None


@dataclass
class _Progress:
    """Each agent's objects done (per job, a gauge) and planned, for the ProgressCounters of an interval."""

    stage: str
    start_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)
    done: dict[int, int] = field(default_factory=dict)
    owner: dict[int, str] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)

    def counters(self, agent_id: str) -> ProgressCounters:
        done = sum(n for key, n in self.done.items() if self.owner[key] == agent_id)
        return ProgressCounters(
            objects_done=done,
            objects_total=self.total.get(agent_id, 0),
            phase_start_ms=self.start_ms,
            at_ms=time.time_ns() // 1_000_000,
            stage=self.stage,
        )


def run_jobs(
    jobs: Sequence[ShardJob] | JobStream,
    runner: JobRunner,
    *,
    stage_index: int,
    stage_name: str,
    max_in_flight: int,
    control: RunControl,
    limits: StageLimits,
    interval_s: float,
    on_interval: Callable[[Snapshot, dict[str, Snapshot]], None],
    snapshot_of: Callable[[Any], Snapshot | None] = lambda r: getattr(r, "snapshot", None),
    done_of: Callable[[Any], int] = lambda r: int(getattr(r, "done", 0)),
    state: JobsState | None = None,
) -> JobsState:
    """Run `jobs` with at most `max_in_flight` at once; every `interval_s` hand the merged interval (aggregate
    and per agent) to `on_interval`. Returns once every job ended, or GIVE_UP_S after a stop."""
    state = state or JobsState()
    progress = _Progress(stage_name)
    stream = jobs if isinstance(jobs, JobStream) else JobStream.of(jobs)
    progress.total = {agent_id: n or 0 for agent_id, n in stream.totals.items()}
    cpu = CpuSampler() if runner.local else None
    queue = enumerate(stream.jobs)
    launched = 0
    in_flight: dict[Hashable, tuple[int, ShardJob]] = {}
    next_interval = time.monotonic() + interval_s
    parts: list[tuple[str, Snapshot]] = []
    give_up_at: float | None = None
    window_start_ms = [time.time_ns() // 1_000_000]

    def add(agent_id: str, snap: Snapshot) -> None:
        state.per_agent.setdefault(agent_id, SnapshotAccumulator()).add(snap)
        parts.append((agent_id, snap))

    def flush() -> None:
        for key, snap, done in runner.live(stage_index):
            progress.done[key] = done
            add(progress.owner[key], snap)
        per: dict[str, list[Snapshot]] = {}
        for agent_id, snap in parts:
            per.setdefault(agent_id, []).append(snap)
        if not per and not in_flight:
            return
        merged = {a: Snapshot.merge_all(snaps) for a, snaps in per.items()}
        now_ms = time.time_ns() // 1_000_000
        for agent_id in progress.total:
            snap = merged.setdefault(agent_id, Snapshot())
            if not snap.end_ms:  # no op timed in it (a LIST, progress only): the interval is the wall clock's
                snap.start_ms, snap.end_ms = window_start_ms[0], now_ms
            snap.set_progress(agent_id, progress.counters(agent_id))
            if cpu is not None:
                snap.set_cpu(agent_id, *cpu.sample())
        on_interval(Snapshot.merge_all(merged.values()), merged)
        parts.clear()
        window_start_ms[0] = now_ms

    def ended(handle: Hashable) -> None:
        key, job = in_flight.pop(handle)
        try:
            value: Any = runner.result(handle)
        except Exception as exc:
            value = exc
            if state.aborted or state.timed_out or state.soft_stopped or control.stopping:
                add(job.agent_id, Snapshot(unfinished_ops=1))  # it gave up on a call that never returned
            else:  # a crashed job or a dead node: that agent's share failed
                state.failures.setdefault(job.agent_id, f"{job.label or 'job'} failed: {failure_text(exc)}")
        else:
            snap = snapshot_of(value)
            if snap is not None:
                add(job.agent_id, snap)
            progress.done[key] = done_of(value)
            if getattr(value, "aborted", False) and not (state.aborted or state.timed_out):
                # the shard ended itself (stalled, over its error budget): that agent's share failed
                why = getattr(value, "reason", "") or "aborted"
                state.failures.setdefault(job.agent_id, f"{job.label or 'job'}: {why}")
        state.durations[job.agent_id] = time.monotonic() - state.first_start[job.agent_id]
        if job.on_done is not None:
            job.on_done(job, value)

    while launched < stream.count or in_flight:
        stopping = state.aborted or state.timed_out or state.soft_stopped
        while launched < stream.count and len(in_flight) < max_in_flight and not stopping:
            key, job = next(queue)
            launched += 1
            progress.owner[key] = job.agent_id
            if job.on_start is not None:
                job.on_start(job)
            state.first_start.setdefault(job.agent_id, time.monotonic())
            in_flight[runner.submit(job, stage_index, key)] = (key, job)
        if not in_flight:
            break
        for handle in runner.wait(list(in_flight), LOOP_POLL_S):
            ended(handle)
        now = time.monotonic()
        if now >= next_interval:
            flush()
            next_interval += interval_s
        elapsed = now - limits.t0
        if control.aborted and not state.aborted:
            state.aborted = True
            runner.halt(stage_index, control.reason or "aborted", abort=True)
            give_up_at = now + GIVE_UP_S
        elif limits.timeout_s and elapsed > limits.timeout_s and not state.timed_out:
            state.timed_out = True
            runner.halt(
                stage_index,
                f"stage time limit of {limits.timeout_s:g} s (timeout_secs) exceeded",
                abort=False,
            )
            give_up_at = now + GIVE_UP_S
        elif limits.soft_limit_s and elapsed > limits.soft_limit_s and not state.soft_stopped:
            state.soft_stopped = True
            reason = f"duration {limits.soft_limit_s:g} s reached (completion: duration_or_tasks)"
            runner.halt(stage_index, reason, abort=False)
            give_up_at = now + GIVE_UP_S
        if give_up_at is not None and now >= give_up_at:
            break
    state.unfinished = stream.count - launched + len(in_flight)
    for handle, (_key, job) in in_flight.items():
        runner.abandon(handle)
        add(job.agent_id, Snapshot(unfinished_ops=1))  # at least one of its calls was in flight
    flush()
    return state


# -- in process -------------------------------------------------------------------------------------------


class _ThreadLink:
    """A job's link in process: the stage's own control, and reports straight into the runner."""

    def __init__(self, runner: ThreadJobRunner, key: int, control: RunControl) -> None:
        self.interval_s = runner.interval_s
        self._runner = runner
        self._key = key
        self._control = control

    def run(self, body: Callable[[RunControl], T]) -> T:
        return body(self._control)

    def report(self, snapshot: Snapshot, done: int) -> None:
        with self._runner.lock:
            self._runner.reports.append((self._key, snapshot, done))


class _ThreadJob:
    """One job on its own daemon thread (a job stuck in a storage call must not hold up the exit)."""

    def __init__(self, fn: Callable[[], Any], name: str, finished: threading.Event) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self._fn = fn
        self._finished = finished
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)

    def _run(self) -> None:
        try:
            self.value = self._fn()
        except BaseException as exc:  # handed to the loop, which records the agent's share as failed
            self.error = exc
        finally:
            self._finished.set()


class ThreadJobRunner:
    """Jobs on threads of this process, stopped through a child of the run's control per stage."""

    local = True

    def __init__(self, control: RunControl, interval_s: float) -> None:
        self.interval_s = interval_s
        self.lock = threading.Lock()
        self.reports: list[tuple[int, Snapshot, int]] = []
        self._run_control = control
        self._stages: dict[int, RunControl] = {}
        self._finished = threading.Event()

    def _stage(self, stage_index: int) -> RunControl:
        control = self._stages.get(stage_index)
        if control is None:
            control = self._stages[stage_index] = self._run_control.child()
        return control

    def submit(self, job: ShardJob, stage_index: int, key: int) -> _ThreadJob:
        link = _ThreadLink(self, key, self._stage(stage_index))
        handle = _ThreadJob(lambda: job.fn(link, *job.args), f"sbench-job-{key}", self._finished)
        handle.thread.start()
        return handle

    def wait(self, handles: list[Hashable], timeout_s: float) -> list[Hashable]:
        done = [h for h in handles if not h.thread.is_alive()]  # type: ignore[attr-defined]
        if not done:
            self._finished.clear()
            done = [h for h in handles if not h.thread.is_alive()]  # type: ignore[attr-defined]
            if not done and self._finished.wait(timeout_s):
                done = [h for h in handles if not h.thread.is_alive()]  # type: ignore[attr-defined]
        return done

    def result(self, handle: Hashable) -> Any:
        assert isinstance(handle, _ThreadJob)
        handle.thread.join()
        if handle.error is not None:
            raise handle.error
        return handle.value

    def abandon(self, handle: Hashable) -> None:
        """The thread stays inside its storage call; it is a daemon and ends with the process."""

    def halt(self, stage_index: int, reason: str, *, abort: bool) -> None:
        control = self._stage(stage_index)
        if abort:
            control.abort(reason)
        else:
            control.stop(reason)

    def live(self, stage_index: int) -> list[tuple[int, Snapshot, int]]:
        with self.lock:
            out, self.reports = self.reports, []
        return out

    def share(self, value: Any) -> Any:
        return value

    def end_stage(self, stage_index: int) -> None:
        control = self._stages.pop(stage_index, None)
        if control is not None:
            self._run_control.release(control)
