"""One agent's replay: its stream of due ops executed against storage, measured as the open loop measures.

Workers (one per op in flight, `max_concurrent` of them, at most MAX_WORKERS: threads, or asyncio tasks in
one thread when the first backend opened is a native cloud driver, as the engine drives those; one
`_steps` generator holds the per-op logic for both) take the next op from the one shared stream in due
order; in strict mode a worker sleeps until the op is due (waking at once on a
stop), in best effort it starts at once (backpressure.ModeController decides). Latency is measured twice,
as in the open loop (engine.ratecontrol): from the due time (response time: a target that falls behind
shows it) and from the actual start (service time); an op that starts more than 1 ms after its due time is
late, and its lag goes into the lag histogram. The epoch is a wall-clock time (ns), so agents on several
hosts share it (distributed replay).

Calls go through the storage protocol every engine stage uses (storage.base.Backend, opened by scheme
through storage.registry, one backend per bucket-level root and reused: sai3's store cache), wrapped by
the op-log capture when one is active in this process, so a replay can log its own calls (`--op-log`).
PUT data comes from sbench's payload generator (data.payload: random, different per op), sized as logged.

Stops: without `--continue-on-error` the first failed op stops the replay (sai3's rule); a drain (too many
mode switches) stops taking ops and gives those in flight `drain_timeout`; Ctrl-C (RunControl abort) ends
the wait within engine.bounded.GRACE_S, ops still inside a storage call are abandoned and counted
(`unfinished_ops`).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any

from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.bounded import GRACE_S
from sbench.engine.ratecontrol import LATE_THRESHOLD_NS
from sbench.errors import SbenchError
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.capture import wrap as capture_wrap
from sbench.oplog.format import OP_CLASS
from sbench.replay.backpressure import ModeController
from sbench.replay.plan import ReplayOp
from sbench.replay.settings import Backpressure
from sbench.run.stagerecord import AgentStageResult
from sbench.status import StageStatus
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend
from sbench.storage.uri import parse_uri

#: threads at most, whatever `max_concurrent` says (one Python process drives a few hundred at best)
MAX_WORKERS = 256
_now = time.time_ns
_perf = time.perf_counter_ns


def split_root(uri: str) -> tuple[str, str]:
    """(bucket-level root URI, key under it): `s3://h:p/b/k/x` -> (`s3://h:p/b/`, `k/x`), `file:///a/b` ->
    (`file:///`, `a/b`); a query (`null:///r/x?latency=1ms`) stays with the root."""
    base, _, query = uri.partition("?")
    key = parse_uri(base).prefix.lstrip("/")
    root = base[: len(base) - len(key)] if key and base.endswith(key) else base
    return root + (f"?{query}" if query else ""), key


class Router:
    """Backends by root, opened on first use and closed at the end (thread-safe)."""

    def __init__(self, options: BackendOptions) -> None:
        self.options = options
        self._by_root: dict[str, Backend] = {}
        #: (root without its query, its query, backend): a URI under a known root needs no parsing
        self._known: list[tuple[str, str, Backend]] = []
        self._lock = threading.Lock()
        #: whether the first backend opened drives asyncio tasks (decides how the workers run)
        self.first_is_async: bool | None = None

    def resolve(self, uri: str) -> tuple[Backend, str]:
        base, _, query = uri.partition("?")
        for root_base, root_query, backend in self._known:
            if root_query == query and base.startswith(root_base):
                return backend, base[len(root_base):]
        root, key = split_root(uri)
        with self._lock:
            backend = self._by_root.get(root)
            if backend is None:
                backend = self._by_root[root] = capture_wrap(open_backend(root, self.options))
                self._known.append((root.partition("?")[0], query, backend))
                if self.first_is_async is None:
                    self.first_is_async = backend.is_async
        return backend, key

    @property
    def roots(self) -> list[str]:
        return sorted(self._by_root)

    def close(self) -> None:
        with self._lock:
            backends, self._by_root, self._known = list(self._by_root.values()), {}, []
        for backend in backends:
            backend.close()


def _list(backend: Backend, key: str, _n: int, _data: Any) -> int:
    for _ in backend.list(key, recursive=True):
        pass
    return 0


#: call -> (backend, key, logged bytes, payload) -> bytes moved
CALLS: dict[str, Callable[[Backend, str, int, Any], int]] = {
    "get": lambda b, k, n, d: len(b.get(k)),
    "get_range": lambda b, k, n, d: len(b.get_range(k, 0, n)),
    "put": lambda b, k, n, d: (b.put(k, d), n)[1],
    "stat": lambda b, k, n, d: (b.stat(k), 0)[1],
    "list": _list,
    "delete": lambda b, k, n, d: (b.delete(k), 0)[1],
    "mkdir": lambda b, k, n, d: (b.mkdir(k), 0)[1],
    "rmdir": lambda b, k, n, d: (b.rmdir(k), 0)[1],
    "rmdir_recursive": lambda b, k, n, d: (b.rmdir(k, recursive=True), 0)[1],
}


async def _aget(b: Any, k: str, n: int, d: Any) -> int:
    return len(await b.get_async(k))


async def _aget_range(b: Any, k: str, n: int, d: Any) -> int:
    return len(await b.get_range_async(k, 0, n))


async def _aput(b: Any, k: str, n: int, d: Any) -> int:
    await b.put_async(k, d)
    return n


async def _astat(b: Any, k: str, n: int, d: Any) -> int:
    await b.stat_async(k)
    return 0


async def _adelete(b: Any, k: str, n: int, d: Any) -> int:
    await b.delete_async(k)
    return 0


async def _alist(b: Any, k: str, n: int, d: Any) -> int:
    async for _ in b.list_async(k, recursive=True):
        pass
    return 0


#: the calls an AsyncBackend makes as coroutines (MKDIR/RMDIR go through a thread)
ACALLS: dict[str, Callable[[Any, str, int, Any], Awaitable[int]]] = {
    "get": _aget, "get_range": _aget_range, "put": _aput, "stat": _astat, "delete": _adelete, "list": _alist,
}
#: what a worker's steps yield to be put to sleep
WAIT = "wait"


@dataclass
class ReplayCounts:
    """What happened to the ops of one agent's stream."""

    taken: int = 0
    started: int = 0
    succeeded: int = 0
    failed: int = 0
    first_failure: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class ReplayExecutor:
    """Runs one agent's stream (see the module docstring)."""

    def __init__(
        self,
        agent_id: str,
        settings: Backpressure,
        control: RunControl,
        *,
        continue_on_error: bool,
        interval_s: float = 1.0,
        on_interval: Callable[[Snapshot], None] | None = None,
        seed: int = 0,
    ) -> None:
        self.agent_id = agent_id
        self.settings = settings
        self.control = control
        self.continue_on_error = continue_on_error
        self.interval_s = interval_s
        self.on_interval = on_interval
        self.workers = min(settings.max_concurrent, MAX_WORKERS)
        self.mode = ModeController(settings)
        self.router = Router(BackendOptions(concurrency=self.workers))
        self.payload = PayloadGenerator("random", seed=seed)
        self.counts = ReplayCounts()
        self._recorders = [Recorder() for _ in range(self.workers)]
        self._lock = threading.Lock()
        self._tallies = [[0, 0, 0, 0] for _ in range(self.workers)]
        self._total = Snapshot()
        self._go = threading.Event()
        self.epoch_ns = 0
        self.first_lag_ns: int | None = None
        #: wall-clock ns when the last op that ended normally ended (the replay's active time ends there)
        self.last_end_ns = 0

    # -- the workers --

    def _steps(self, ops: Iterator[ReplayOp], rec: Recorder, tally: list[int]) -> Generator[Any, Any, None]:
        """One worker's ops, written once for both drivers (threads: `_worker`; asyncio: `_aworker`): it
        yields `(WAIT, seconds)` (sent back: True when stopped) and `(call, backend, key, bytes, data)`
        (sent back: bytes moved; a failure is thrown in). `tally` is this worker's own [taken, started,
        succeeded, in flight] (no lock per op; summed at the end)."""
        control, mode, lock = self.control, self.mode, self._lock
        resolve, payload = self.router.resolve, self.payload.payload
        record, record_late = rec.record, rec.record_late
        epoch_ns = self.epoch_ns
        last_end = max_lag = 0
        first = True
        try:
            while True:
                with lock:
                    op = None if control.halted else next(ops, None)
                if op is None:
                    return
                tally[0] += 1
                due = epoch_ns + op.due_ns
                now = _now()
                if mode.strict and due > now:
                    if (yield WAIT, (due - now) / 1e9):
                        return  # stopped while waiting: the op never started
                    now = _now()
                lag = now - due
                if first:
                    first = False
                    if self.first_lag_ns is None:
                        self.first_lag_ns = lag  # the agent's start skew: how late its first op began
                if lag > max_lag:
                    max_lag = lag
                if (lag > mode.enter_ns) if mode.strict else (lag < mode.leave_ns):
                    mode.observe(lag, now - epoch_ns)
                    if mode.drain_reason:
                        control.stop(f"drained: {mode.drain_reason}")
                        return
                if lag > LATE_THRESHOLD_NS:
                    record_late(lag // 1000)
                op_class = OP_CLASS[op.op]
                tally[1] += 1
                tally[3] = 1
                t0 = _perf()
                try:
                    backend, key = resolve(op.uri)
                    data = payload(op.nbytes, op.seq) if op.call == "put" else None
                    nbytes = yield op.call, backend, key, op.nbytes, data
                except (StorageError, SbenchError, OSError) as exc:
                    tally[3] = 0
                    kind = exc.kind if isinstance(exc, StorageError) else ErrorClass.OTHER
                    rec.record_error(op_class, kind, str(exc))
                    self._failed(op, exc)
                    continue
                t1 = _perf()
                tally[3] = 0
                tally[2] += 1
                service = (t1 - t0) // 1000
                last_end = now + (t1 - t0)
                record(op_class, nbytes, service + max(0, lag) // 1000, service)
        finally:
            mode.seen(max_lag)
            with lock:
                self.last_end_ns = max(self.last_end_ns, last_end)

    def _wait_go(self) -> bool:
        """Wait for the epoch; False when stopped first."""
        while not self._go.wait(0.1):
            if self.control.halted:
                return False
        return True

    def _worker(self, ops: Iterator[ReplayOp], rec: Recorder, tally: list[int]) -> None:
        """A worker thread: the steps with blocking waits and calls."""
        if not self._wait_go():
            return
        wait, calls = self.control.wait, CALLS
        steps = self._steps(ops, rec, tally)
        send, throw = steps.send, steps.throw
        try:
            request = next(steps)
            while True:
                if request[0] is WAIT:
                    request = send(wait(request[1]))
                    continue
                try:
                    moved = calls[request[0]](*request[1:])
                except (StorageError, SbenchError, OSError) as exc:
                    request = throw(exc)
                else:
                    request = send(moved)
        except StopIteration:
            return

    def _async_workers(self, ops: Iterator[ReplayOp]) -> None:
        """The asyncio driver (a native cloud backend: its calls are coroutines, as the engine drives
        them): one thread, one task per worker, the same steps."""
        if self._wait_go():
            asyncio.run(self._atasks(ops))

    async def _atasks(self, ops: Iterator[ReplayOp]) -> None:
        await asyncio.gather(*(self._aworker(ops, rec, tally)
                               for rec, tally in zip(self._recorders, self._tallies, strict=True)))

    async def _aworker(self, ops: Iterator[ReplayOp], rec: Recorder, tally: list[int]) -> None:
        control = self.control
        steps = self._steps(ops, rec, tally)
        send, throw = steps.send, steps.throw
        try:
            request = next(steps)
            while True:
                if request[0] is WAIT:
                    until = time.monotonic() + request[1]
                    while not control.halted and (left := until - time.monotonic()) > 0:
                        await asyncio.sleep(min(left, 0.1))
                    request = send(control.halted)
                    continue
                call, backend = request[0], request[1]
                try:
                    if backend.is_async and call in ACALLS:
                        moved = await ACALLS[call](*request[1:])
                    else:
                        moved = await asyncio.to_thread(CALLS[call], *request[1:])
                except (StorageError, SbenchError, OSError) as exc:
                    request = throw(exc)
                else:
                    request = send(moved)
        except StopIteration:
            return

    def _failed(self, op: ReplayOp, exc: BaseException) -> None:
        with self._lock:
            self.counts.failed += 1
            first = not self.counts.first_failure
            if first:
                self.counts.first_failure = f"op {op.seq} ({op.op} {op.uri}) failed: {exc}"
        if first and not self.continue_on_error:
            self.control.stop(f"{self.counts.first_failure} (--continue-on-error replays past failures)")

    # -- intervals --

    def _take_interval(self) -> Snapshot:
        snap = Snapshot.merge_all(r.take_interval() for r in self._recorders)
        self._total = Snapshot.merge(self._total, snap)
        return snap

    def _sampler(self, done: threading.Event) -> None:
        while not done.wait(self.interval_s):
            snap = self._take_interval()
            if self.on_interval is not None:
                self.on_interval(snap)

    # -- the run --

    def start(self, ops: Iterator[ReplayOp]) -> None:
        """Start the workers on `ops`; they wait for `go` (thread start-up never eats into the schedule).
        Asyncio tasks when the backend opened first (`warm`) is a native (async) one, threads otherwise."""
        self._started_ms = _now() // 1_000_000
        self._t0 = time.monotonic()
        self.payload.payload(1, 0)  # the shared buffer is built now (~0.3 s), not by the first PUT
        self._done = threading.Event()
        self._sampler_thread = threading.Thread(target=self._sampler, args=(self._done,),
                                                name="sbench-replay-intervals", daemon=True)
        self._sampler_thread.start()
        if self.router.first_is_async:
            self._threads = [threading.Thread(target=self._async_workers, args=(ops,),
                                              name="sbench-replay-async", daemon=True)]
        else:
            self._threads = [
                threading.Thread(target=self._worker, args=(ops, rec, tally), name=f"sbench-replay-{i}",
                                 daemon=True)
                for i, (rec, tally) in enumerate(zip(self._recorders, self._tallies, strict=True))
            ]
        for thread in self._threads:
            thread.start()

    def warm(self, uri: str) -> None:
        """Open the backend of `uri`'s root now (building a client can take 100 ms; not on the schedule)."""
        try:
            self.router.resolve(uri)
        except (StorageError, SbenchError, OSError):
            return  # the op itself will fail and be counted when it runs

    def go(self, epoch_ns: int) -> None:
        """Op i is due at `epoch_ns` (wall clock) + its due time."""
        self.epoch_ns = epoch_ns
        self._go.set()

    def wait(self) -> AgentStageResult:
        """Wait for the workers (bounded after a stop); the stage result of this agent."""
        self._join(self._threads)
        self._done.set()
        self._sampler_thread.join()
        last = self._take_interval()
        if self.on_interval is not None and not last.is_empty:
            self.on_interval(last)
        counts = self.counts
        counts.taken, counts.started, counts.succeeded, abandoned = (sum(t[i] for t in self._tallies)
                                                                     for i in range(4))
        self._total.unfinished_ops = abandoned
        roots = self.router.roots
        self.router.close()
        return self._result(self._started_ms, time.monotonic() - self._t0, abandoned, roots)

    def run(self, ops: Iterator[ReplayOp], lead_s: float) -> AgentStageResult:
        """Replay `ops` in this process, the epoch `lead_s` after the workers are ready (and the first
        op's backend open)."""
        first = next(ops, None)
        if first is not None:
            self.warm(first.uri)
            ops = itertools.chain([first], ops)
        self.start(ops)
        self.go(_now() + int(lead_s * 1e9))
        return self.wait()

    def _join(self, threads: list[threading.Thread]) -> None:
        """Wait for the workers; after a stop, at most the drain timeout (a drain) or GRACE_S (anything
        else), then leave the ones inside a storage call behind."""
        control = self.control
        for thread in threads:
            while thread.is_alive():
                thread.join(0.1)
                if control.halted_at_ns:
                    grace = self.settings.drain_timeout if self.mode.drain_reason else GRACE_S
                    if time.monotonic_ns() - control.halted_at_ns >= grace * 1e9:
                        return

    def _result(
        self, started_ms: int, elapsed_s: float, abandoned: int, roots: list[str]
    ) -> AgentStageResult:
        counts, control = self.counts, self.control
        if control.aborted:
            status, reason = StageStatus.ABORTED, control.reason
        elif self.mode.drain_reason or (counts.failed and not self.continue_on_error):
            status, reason = StageStatus.FAILED, control.reason
        elif counts.started and counts.succeeded == 0:
            status, reason = StageStatus.FAILED, f"all {counts.started:,} ops failed: {counts.first_failure}"
        else:
            status, reason = StageStatus.OK, f"replayed {counts.started:,} ops"
        extra = {
            "replay": {
                "ops_taken": counts.taken,
                "ops_started": counts.started,
                "ops_succeeded": counts.succeeded,
                "ops_failed": counts.failed,
                "ops_abandoned": abandoned,
                "workers": self.workers,
                "async": bool(self.router.first_is_async),
                "active_s": round(max(0, self.last_end_ns - self.epoch_ns) / 1e9, 6),
                "first_op_lag_ms": None if self.first_lag_ns is None else round(self.first_lag_ns / 1e6, 3),
                "roots": roots,
                **self.mode.report(),
            }
        }
        if counts.first_failure:
            extra["first_error"] = counts.first_failure
        return AgentStageResult(
            agent_id=self.agent_id,
            stage_index=1,
            status=status,
            reason=reason,
            snapshot=self._total,
            elapsed_s=elapsed_s,
            started_ms=started_ms,
            ended_ms=_now() // 1_000_000,
            extra=extra,
        )
