"""The workload loop of one agent: `concurrency` workers picking weighted ops until the stage ends.

Workers are threads, or asyncio tasks on one event-loop thread (asyncio's or uvloop's, `workers.event_loop`)
when every backend the ops use is an AsyncBackend (native obstore drivers, null://); engine.workermode
decides from `workers.mode` (`auto`: threads where the native S3 driver's sync calls measured cheaper, at
moderate concurrency and object sizes). Each
iteration: pick an op by weight (cumulative weights + bisect on the worker's own `random.Random`), wait for
its slot when the load is open loop, take the op's limiter when it has one, resolve its key, run it, record
it in the worker's own Recorder. Nothing else is shared on the success path, so the engine's cost per op
stays a small fraction of the client's (bench/engine_overhead.py measures it against a bare loop).

Three modules, one job each: engine.binding binds the config's ops to backends, pools and calls (the calls
generated per op kind by engine.opcalls); engine.loops generates each worker's loop from one template; this
module runs the stage around them (workers, intervals, stall and stop handling, the retry bookkeeping the
loop calls back into, the result).

Differences from sai3 on purpose (reference §7): every PUT draws its own size from the distribution with the
worker's generator (§7.1); DELETE removes keys from its pool and never deletes one twice (§7.3); a per-op
`concurrency` above the global value gets extra workers dedicated to that op, so its in-flight count can
reach the limit (§7.4), while a lower one caps that op's in-flight count with a semaphore; tree selection
uses the real agent index (§7.5); open-loop rates are aggregate (§7.9).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.data.sizes import index_hash, seed_for_uri
from sbench.engine.backends import BackendSet
from sbench.engine.batchloops import NATIVE_BATCHES, batch_loop, batch_refusal_for
from sbench.engine.binding import WorkerState, WorkloadOp, build_ops
from sbench.engine.bounded import GRACE_S, POLL_S, Abandoned, call_bounded
from sbench.engine.errorpolicy import ErrorHandling, ErrorPolicy
from sbench.engine.eventloop import run_on
from sbench.engine.gil import worker_switch_interval
from sbench.engine.loops import LoopShape, loop_for
from sbench.engine.ratecontrol import OpenLoopSchedule, schedule_from_config
from sbench.engine.stall import StallWatch
from sbench.engine.state import RunState
from sbench.engine.workermode import choose_workers
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.cpu import CpuSampler
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import ErrorClass, StorageError

#: how long a stage that reached its end (duration, expected tasks, stop) lets in-flight ops finish
DRAIN_S = 10.0


@dataclass
class WorkloadResult:
    """What a workload stage measured and why it ended."""

    snapshot: Snapshot
    elapsed_s: float
    #: "duration" | "tasks" | "exhausted" | "stopped" | "aborted"
    ended_by: str
    reason: str = ""
    #: the first failure message seen, for the console and STATUS.txt
    first_error: str = ""
    deleted: int = 0
    workers: int = 0
    #: one line per condition the user should see once (an op whose pool ran dry), for console and summary
    notes: list[str] = field(default_factory=list)
    open_loop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


# -- the run -----------------------------------------------------------------------------------------------


def _seed(identity: AgentIdentity) -> int:
    return index_hash(seed_for_uri(identity.run_id), identity.index)


class WorkloadRun:
    """One execution of the workload loop (a stage); `run()` blocks until it ends and returns the result."""

    def __init__(
        self,
        config: Config,
        identity: AgentIdentity,
        control: RunControl,
        on_interval: Callable[[Snapshot], None] | None,
        *,
        duration_s: float | None,
        max_ops: int | None = None,
        stage_name: str = "Workload",
        state: RunState | None = None,
        concurrency: int | None = None,
        interval_s: float | None = None,
        warmup_s: float | None = None,
        backends: BackendSet | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        #: backends opened by the caller (kept open after the stage) or None to open and close our own
        self.given_backends = backends
        self.parent_control = control
        #: the stage's own control: exhausted pools, expected tasks and the error budget stop this stage,
        #: while a run-wide abort (Ctrl-C) still reaches it through the parent
        self.control = control.child()
        self.on_interval = on_interval
        self.duration_s = duration_s
        self.max_ops = max_ops
        self.stage_name = stage_name
        self.state = state
        self.concurrency = int(concurrency or config.concurrency)
        self.interval_s = float(interval_s or config.perf_log.interval)
        self.warmup_s = float(warmup_s if warmup_s is not None else (config.warmup_period or 0))
        self.policy = ErrorPolicy(ErrorHandling.from_config(config.error_handling), self.control)
        self.schedule: OpenLoopSchedule | None = None
        self.workers: list[WorkerState] = []
        self.ops: list[WorkloadOp] = []
        self.first_error = ""
        self.ended_by = ""
        self._ended_reason = ""
        self._counter = itertools.count(1)
        self.notes: list[str] = []
        self._notes_lock = threading.Lock()
        #: workers still in their loop; when the stage ends, the ones left are inside an op (in flight)
        self._alive = 0
        self._alive_lock = threading.Lock()
        self._done = threading.Event()
        self.deadline_ns = 0
        #: when the first worker started and the last finished worker left its loop (the measured window)
        self._first_op_ns = 0
        self._last_exit_ns = 0
        #: ops cut off by the stop while they waited to retry (unfinished, like those left in flight)
        self._cut = 0
        #: successful ops so far (stall detection's progress count, fed once per interval)
        self._progress_units = 0

    # -- setup -------------------------------------------------------------------------------------------
    def _make_workers(self, ops: list[WorkloadOp], seed: int) -> list[WorkerState]:
        n = self.concurrency
        workers = [WorkerState(i, index_hash(seed, i), ops) for i in range(n)]
        limits = []
        for op_cfg, op in zip((c for c in self.config.workload if float(c.weight) > 0), ops, strict=True):
            limit = getattr(op_cfg, "concurrency", None)
            if limit is None:
                continue
            op.limit = int(limit)
            if op.limit < n:
                limits.append(op)
            else:
                for _ in range(op.limit - n):
                    workers.append(WorkerState(len(workers), index_hash(seed, len(workers)), [op]))
        for op in limits:
            op.sem = threading.BoundedSemaphore(op.limit)
        return workers

    def _stop_stage(self, ended_by: str, reason: str) -> None:
        if not self.ended_by:
            self.ended_by, self._ended_reason = ended_by, reason
        self.control.stop(reason)

    def _crashed(self, who: str, exc: BaseException) -> None:
        """A bug in sbench: end the stage and the run, naming it, instead of hanging."""
        message = f"{who} crashed: {type(exc).__name__}: {exc}"
        self._stop_stage("aborted", message)
        self.control.abort(message)

    # -- worker loops ------------------------------------------------------------------------------------
    def _retryable(
        self, op: WorkloadOp, w: WorkerState, exc: BaseException, attempt: int
    ) -> StorageError | None:
        """The failure of try number `attempt` as a StorageError, counted as a retry, when the policy allows
        another try; None when it does not (the op's final failure, recorded) or when the stage has stopped
        (the op is unfinished: counted with the ops in flight at the end)."""
        err = (
            exc
            if isinstance(exc, StorageError)
            else StorageError(
                ErrorClass.OTHER,
                f"{type(exc).__name__}: {exc}",
                uri=op.backend.uri_of(w.key) if w.key else None,
            )
        )
        if not self.policy.should_retry(err.kind, attempt):
            self._final_failure(op, w, err)
            return None
        if self.control.stopping:
            self._cut_short()  # the stage ended before the retry could run: unfinished, not failed
            return None
        self.policy.on_error(err.kind, final=False)
        w.recorder.record_retry(op.cls)
        return err

    def _cut_short(self) -> None:
        """An op that was waiting to retry when the stage stopped: unfinished (neither a success nor a final
        failure), counted with the ops still in flight at the end."""
        with self._alive_lock:
            self._cut += 1

    def _final_failure(self, op: WorkloadOp, w: WorkerState, err: StorageError) -> None:
        message = f"{op.label}: {err}"
        w.recorder.record_error(op.cls, err.kind, message)
        where = err.uri or (op.backend.uri_of(w.key) if w.key else op.label)
        if not self.first_error:
            self.first_error = message
        self.policy.on_error(err.kind, final=True, where=where)

    def _exhausted(self, op: WorkloadOp, ops: Sequence[WorkloadOp]) -> bool:
        """Mark an op whose pool ran dry (said once, in the stage's notes); True when this worker has nothing
        left to do."""
        with self._notes_lock:
            if not op.exhausted:
                op.exhausted = True
                taken = op.pool.taken if op.pool is not None else 0
                done = f" after {taken:,} deletes" if op.kind == "delete" else ""
                self.notes.append(f"{op.label}: its pool of keys is empty{done}; this op stopped")
        if all(o.exhausted for o in self.ops):
            self._stop_stage("exhausted", "every op's pool of keys is empty (nothing left to read or delete)")
        return all(o.exhausted for o in ops)

    def _shape(self, w: WorkerState, *, asynchronous: bool) -> LoopShape:
        """The steps this worker's loop needs (engine.loops): the inline fixed-size PUT or static GET when
        its one op is one of those, a schedule wait only in an open loop, limiters and a task budget only
        when configured."""
        single = w.ops[0] if len(w.ops) == 1 else None
        pick = "mixed"
        if single is not None and not asynchronous:
            pick = single.inline.pick if single.inline is not None else "mixed"
        return LoopShape(
            asynchronous=asynchronous,
            pick=pick,
            open_loop=self.schedule is not None,
            limited=any(op.sem is not None for op in w.ops),
            counted=bool(self.max_ops),
        )

    def _file_loop(self, w: WorkerState) -> str:
        """Why this thread worker runs the Python loop; "" when it runs native file:// batches
        (engine.batchloops)."""
        shape = self._shape(w, asynchronous=False)
        return batch_refusal_for(shape, w.ops[0], self.config.workers.native_file_io)

    def _file_loops(self, use_async: bool) -> str | None:
        """Which loop the workers on file:// run, for the stage's details; None when no op is on file://."""
        on_file = [w for w in self.workers if any(op.backend.scheme == "file" for op in w.ops)]
        if not on_file:
            return None
        if use_async:
            return "python: asyncio workers"
        why = sorted({self._file_loop(w) for w in on_file})
        if why == [""]:
            return NATIVE_BATCHES
        return "python: " + "; ".join(reason for reason in why if reason)

    def _sync_worker(self, w: WorkerState) -> None:
        if not self._first_op_ns:
            self._first_op_ns = time.monotonic_ns()
        shape = self._shape(w, asynchronous=False)
        loop = loop_for(shape) if self._file_loop(w) else batch_loop(shape)
        try:
            with worker_switch_interval():
                loop(self, w)
        except BaseException as exc:
            self._crashed(f"worker {w.index}", exc)
            raise
        finally:
            self._worker_done()

    async def _asleep(self, seconds: float) -> bool:
        """Sleep up to `seconds` on the event loop, waking within 0.1 s of a stop (the duration's end is one);
        True when stopping, as RunControl.wait."""
        end = time.monotonic() + seconds
        stopping = self.control.stop_flag()
        while not stopping():
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.1))
        return True

    def _run_async(self) -> None:
        async def worker(w: WorkerState, sems: dict[int, asyncio.Semaphore]) -> None:
            try:
                await loop_for(self._shape(w, asynchronous=True))(self, w, sems)
            finally:
                self._worker_done()

        async def main() -> None:
            self._first_op_ns = time.monotonic_ns()
            sems = {id(op): asyncio.Semaphore(op.limit) for op in self.ops if op.sem is not None}
            await asyncio.gather(*(worker(w, sems) for w in self.workers))

        try:
            with worker_switch_interval():
                run_on(self.config.workers.event_loop, main())
        except BaseException as exc:
            self._crashed("worker loop", exc)
            raise
        finally:
            with self._alive_lock:
                self._alive = 0
            self._done.set()

    def _worker_done(self) -> None:
        """A worker left its loop (once per worker): its last op, if any, ended just before."""
        now = time.monotonic_ns()
        with self._alive_lock:
            self._alive -= 1
            self._last_exit_ns = max(self._last_exit_ns, now)
            if self._alive <= 0:
                self._done.set()

    # -- intervals ---------------------------------------------------------------------------------------
    def _collect(
        self,
        acc: SnapshotAccumulator,
        cpu: CpuSampler,
        backends: BackendSet,
        start_ms: int,
        *,
        emit: bool = True,
        unfinished: int = 0,
    ) -> None:
        snap = Snapshot.merge_all(w.recorder.take_interval() for w in self.workers)
        self._progress_units += snap.total_ops()
        if not emit:
            return
        snap.unfinished_ops = unfinished
        agent = self.identity.agent_id
        snap.set_cpu(agent, *cpu.sample())
        endpoints = backends.endpoint_interval()
        if endpoints:
            snap.set_endpoints(endpoints)
        progress = ProgressCounters(
            objects_done=sum(acc.ops.values()) + snap.total_ops(),
            objects_total=self.max_ops or 0,
            objects_deleted=self._deleted(),
            phase_start_ms=start_ms,
            at_ms=time.time_ns() // 1_000_000,
            stage=self.stage_name,
        )
        snap.set_progress(agent, progress)
        acc.add(snap)
        if self.on_interval is not None:
            self.on_interval(snap)

    def _deleted(self) -> int:
        return sum(op.pool.taken for op in self.ops if op.kind == "delete" and op.pool is not None)

    def _check_stall(self, stall: StallWatch, now_ns: int) -> None:
        """Fail the stage when no op succeeded for stall_timeout (an open loop waiting for its next slot is
        idle by design, not stalled)."""
        if self.schedule is not None and self.schedule.next_ns > now_ns:
            stall.reset()
            return
        reason = stall.check(self._progress_units)
        if reason is not None:
            self._stop_stage("stalled", reason)
            self.control.abort(reason)

    # -- run ---------------------------------------------------------------------------------------------
    def run(self) -> WorkloadResult:
        seed = _seed(self.identity)
        backends = self.given_backends or BackendSet(self.config)
        try:
            try:
                # resolving the pools may LIST a store that does not answer: never block a stop on it
                self.ops = call_bounded(
                    lambda: build_ops(self.config, self.identity, backends, self.state, seed),
                    self.control,
                    name="sbench-resolve-pools",
                )
            except Abandoned as exc:
                return WorkloadResult(
                    Snapshot(unfinished_ops=1), 0.0, "aborted", f"{self.control.reason} ({exc})"
                )
            return self._run(backends, seed)
        finally:
            self.parent_control.release(self.control)
            if self.given_backends is None:
                backends.close()

    def _run(self, backends: BackendSet, seed: int) -> WorkloadResult:
        self.workers = self._make_workers(self.ops, seed)
        choice = choose_workers(
            self.config,
            [o.backend for o in self.ops],
            all(o.acall is not None for o in self.ops),
            len(self.workers),
            [o.pool.largest if o.pool is not None else None for o in self.ops if o.kind == "get"],
        )
        use_async = choice.asyncio
        start_ns = time.monotonic_ns()
        start_ms = time.time_ns() // 1_000_000
        warmup_ns = int(self.warmup_s * 1e9)
        duration_ns = int(self.duration_s * 1e9) if self.duration_s else 10**18
        self.deadline_ns = start_ns + warmup_ns + duration_ns
        self.schedule = schedule_from_config(self.config.io_rate, seed=seed, start_ns=start_ns)
        cpu = CpuSampler()
        acc = SnapshotAccumulator()
        stall = StallWatch(f"stage {self.stage_name!r}", self.config.stall_timeout)
        threads: list[threading.Thread] = []
        self._alive = len(self.workers)
        if use_async:
            threads.append(threading.Thread(target=self._run_async, name="sbench-async-workers", daemon=True))
        else:
            threads.extend(
                threading.Thread(
                    target=self._sync_worker, args=(w,), name=f"sbench-worker-{w.index}", daemon=True
                )
                for w in self.workers
            )
        for t in threads:
            t.start()
        measure_from = start_ns + warmup_ns
        in_warmup = warmup_ns > 0
        next_tick = measure_from if in_warmup else start_ns + int(self.interval_s * 1e9)
        stop_deadline = None
        while not self._done.is_set():
            now = time.monotonic_ns()
            if now >= self.deadline_ns and not self.control.stopping:
                # wakes every worker asleep in a retry wait or an error backoff: none starts an op after this
                self._stop_stage("duration", f"duration {self.duration_s:g} s reached")
            if self.control.aborted:
                # also while draining after the duration ended: an abort never waits the full drain window
                grace_end = self.control.halted_at_ns + int(GRACE_S * 1e9)
                if stop_deadline is None or stop_deadline > grace_end:
                    stop_deadline = grace_end
            elif stop_deadline is None and self.control.stopping:
                stop_deadline = now + int(DRAIN_S * 1e9)
            wake = min(next_tick, self.deadline_ns if stop_deadline is None else stop_deadline)
            wake = min(wake, now + int(POLL_S * 1e9))  # a stop is seen within POLL_S, whatever the interval
            if self._done.wait(max(0.0, (wake - now) / 1e9)):
                break
            now = time.monotonic_ns()
            if stop_deadline is not None and now >= stop_deadline:
                break  # in-flight ops that outlive the grace period are left behind (daemon threads)
            if now >= next_tick:
                self._collect(acc, cpu, backends, start_ms, emit=not in_warmup)
                in_warmup = False
                next_tick = max(next_tick + int(self.interval_s * 1e9), now + 1)
                if not self.control.stopping:
                    self._check_stall(stall, now)
        end_ns = time.monotonic_ns()
        with self._alive_lock:
            unfinished = max(0, self._alive) + self._cut
            last_exit = self._last_exit_ns
        self._collect(acc, cpu, backends, start_ms, emit=not in_warmup, unfinished=unfinished)
        window_start = max(start_ns if in_warmup else measure_from, self._first_op_ns)
        elapsed = (self._window_end(end_ns, last_exit) - window_start) / 1e9
        if self.ended_by == "stalled":
            ended_by, reason = "stalled", self._ended_reason
        elif self.control.aborted:
            ended_by, reason = "aborted", self.control.reason
        elif self.ended_by:
            ended_by, reason = self.ended_by, self._ended_reason
        elif self.control.stopping:
            ended_by, reason = "stopped", self.control.reason
        else:
            ended_by, reason = "duration", ""
        snapshot = acc.snapshot()
        return WorkloadResult(
            snapshot=snapshot,
            elapsed_s=max(0.0, elapsed),
            ended_by=ended_by,
            reason=reason,
            first_error=self.first_error,
            deleted=self._deleted(),
            workers=len(self.workers),
            notes=list(self.notes),
            open_loop=self.schedule is not None,
            extra={
                "async": use_async,
                "worker_mode": choice.mode,
                "worker_mode_why": choice.why,
                "file_loop": self._file_loops(use_async),
                "retries": self.policy.retries,
                "backoffs": self.policy.backoffs,
                "unfinished_ops": unfinished,
            },
        )

    def _window_end(self, end_ns: int, last_exit_ns: int) -> int:
        """The end of the measured window: the moment the stage stopped (its deadline, or the stop or abort
        that came first), or the end of the last op finished after it, whichever is later. Ops abandoned in
        flight do not extend it; they are counted as unfinished."""
        halted = self.control.halted_at_ns or end_ns
        return max(min(self.deadline_ns, halted, end_ns), last_exit_ns)


def run_workload(
    config: Config,
    identity: AgentIdentity,
    control: RunControl,
    on_interval: Callable[[Snapshot], None] | None = None,
    **kwargs: Any,
) -> WorkloadResult:
    """Run the workload loop once; see WorkloadRun for the keyword arguments."""
    return WorkloadRun(config, identity, control, on_interval, **kwargs).run()
