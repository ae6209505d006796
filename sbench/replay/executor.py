"""One agent's replay: its stream of due ops executed against storage, measured as the open loop measures.

Workers (one per op in flight, `max_concurrent` of them, at most MAX_WORKERS: threads, or asyncio tasks in
one thread when the first backend opened is a native cloud driver, as the engine drives those) take the
next op from the one shared stream in due order; in strict mode a worker sleeps until the op is due
(waking at once on a stop), in best effort it starts at once (backpressure.ModeController decides).
Latency is measured twice, as in the open loop (engine.ratecontrol): from the due time (response time: a
target that falls behind shows it) and from the actual start (service time); an op that starts more than
1 ms after its due time is late, and its lag goes into the lag histogram. The epoch is a wall-clock time
(ns), so agents on several hosts share it (distributed replay).

The per-op path is kept to what the engine's open loop does, since on a fast target every line of it is
GIL time the other workers wait for (bench/replay_rate.py):
- the stream arrives in batches (replay.plan.batches, or the driver's pushes on Ray); a worker that finds
  the shared deque empty binds the next batch under the lock (backend and key resolved, the call picked,
  the op class's slot base) and the others pop ops from the deque without a lock (`popleft` is atomic),
  so ops are still taken one at a time in due order;
- the worker loop is generated from one template for threads and asyncio tasks (engine.codegen, as the
  engine's loops), so neither pays for the other's steps;
- a finished op is two appends and an add (replay.sink); the histograms, late ops and the largest lag are
  derived from those columns once per interval.

Calls go through the storage protocol every engine stage uses (storage.base.Backend, opened by scheme
through storage.registry, one backend per bucket-level root and reused: sai3's store cache), wrapped by
the op-log capture when one is active in this process, so a replay can log its own calls (`--op-log`).
PUT data comes from sbench's payload generator (data.payload: random, different per op), sized as logged.

Stops: without `--continue-on-error` the first failed op stops the replay (sai3's rule); a drain (too many
mode switches) stops taking ops and gives those in flight `drain_timeout`; a stall (ops due or in flight and
none succeeded for `stall_timeout`, engine.stall's rule: a store that stopped answering, or answers only
errors) stops it as failed, checked by the interval thread; Ctrl-C (RunControl abort) ends
the wait within engine.bounded.GRACE_S, ops still inside a storage call are abandoned and counted
(`unfinished_ops`).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache, partial
from typing import Any

from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.bounded import GRACE_S
from sbench.engine.codegen import compile_source, select, substitute
from sbench.engine.opcalls import WORDS
from sbench.engine.stall import StallWatch
from sbench.errors import SbenchError
from sbench.metrics.buckets import BUCKET_UPPER_BOUNDS as SIZE_BOUNDS
from sbench.metrics.buckets import NUM_BUCKETS
from sbench.metrics.recorder import SLOT_BITS, Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.capture import wrap as capture_wrap
from sbench.oplog.format import OP_CLASS
from sbench.replay.backpressure import ModeController
from sbench.replay.plan import ReplayOp
from sbench.replay.settings import Backpressure
from sbench.replay.sink import ReplaySink
from sbench.run.stagerecord import AgentStageResult
from sbench.status import StageStatus
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend
from sbench.storage.uri import parse_uri

#: threads at most, whatever `max_concurrent` says (one Python process drives a few hundred at best)
MAX_WORKERS = 256
_now = time.time_ns
#: log op name -> the first (op class, size bucket) slot of its class
_SLOT_BASE = {op: cls * NUM_BUCKETS for op, cls in OP_CLASS.items()}


def _in_thread(fn: Callable[..., int], *args: Any) -> Awaitable[int]:
    """A blocking call from an asyncio worker (a backend without coroutines, or MKDIR/RMDIR)."""
    return asyncio.to_thread(fn, *args)


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


def _list(backend: Backend, key: str, _n: int, _seq: int) -> int:
    for _ in backend.list(key, recursive=True):
        pass
    return 0


def calls_for(payload: Callable[[int, int], Any]) -> dict[str, Callable[[Backend, str, int, int], int]]:
    """call -> (backend, key, logged bytes, seq) -> bytes moved; a PUT's data is `payload(bytes, seq)`."""
    return {
        "get": lambda b, k, n, s: len(b.get(k)),
        "get_range": lambda b, k, n, s: len(b.get_range(k, 0, n)),
        "put": lambda b, k, n, s: (b.put(k, payload(n, s)), n)[1],
        "stat": lambda b, k, n, s: (b.stat(k), 0)[1],
        "list": _list,
        "delete": lambda b, k, n, s: (b.delete(k), 0)[1],
        "mkdir": lambda b, k, n, s: (b.mkdir(k), 0)[1],
        "rmdir": lambda b, k, n, s: (b.rmdir(k), 0)[1],
        "rmdir_recursive": lambda b, k, n, s: (b.rmdir(k, recursive=True), 0)[1],
    }


ACall = Callable[[Any, str, int, int], Awaitable[int]]


def acalls_for(payload: Callable[[int, int], Any]) -> dict[str, ACall]:
    """The calls an AsyncBackend makes as coroutines (the others go through a thread)."""

    async def aget(b: Any, k: str, n: int, s: int) -> int:
        return len(await b.get_async(k))

    async def aget_range(b: Any, k: str, n: int, s: int) -> int:
        return len(await b.get_range_async(k, 0, n))

    async def aput(b: Any, k: str, n: int, s: int) -> int:
        await b.put_async(k, payload(n, s))
        return n

    async def astat(b: Any, k: str, n: int, s: int) -> int:
        await b.stat_async(k)
        return 0

    async def adelete(b: Any, k: str, n: int, s: int) -> int:
        await b.delete_async(k)
        return 0

    async def alist(b: Any, k: str, n: int, s: int) -> int:
        async for _ in b.list_async(k, recursive=True):
            pass
        return 0

    return {"get": aget, "get_range": aget_range, "put": aput, "stat": astat, "delete": adelete,
            "list": alist}


def _unresolved(exc: BaseException) -> Callable[..., Any]:
    """The call of an op whose URI opened no backend: it fails when the op runs, counted as the op's error."""

    def fail(*_args: Any) -> Any:
        raise exc

    return fail


#: a bound op, as the workers take it: (seq, due_ns, call, backend, key, logged bytes, slot base, op, uri)
Bound = tuple[int, int, Callable[..., Any], Any, str, int, int, str, str]

# The worker loop (see the module docstring); `ex` is the ReplayExecutor, `tally` the worker's own
# [started, taken but not started, succeeded]. Tags and words as in engine.loops.
_LOOP = """
def LOOP(ex, rec, sink, tally):  @sync
async def LOOP(ex, rec, sink, tally):  @async
    control, mode, popleft, refill = ex.control, ex.mode, ex._queue.popleft, ex._refill
    wait = control.wait  @sync
    epoch_ns = ex.epoch_ns
    append_service, append_lag, bytes_by_slot = sink.service.append, sink.lag.append, sink.nbytes
    bounds, bits = SIZE_BOUNDS, SLOT_BITS
    last_end = 0
    first = True
    try:
        while not control.halted:
            try:
                op = popleft()
            except IndexError:
                op = refill()
                if op is None:
                    return
            due = epoch_ns + op[1]
            now = _now()
            if mode.strict and due > now:
                if wait((due - now) / 1e9):  @sync
                if await ex._asleep((due - now) / 1e9):  @async
                    tally[1] += 1
                    return
                now = _now()
            lag = now - due
            if first:
                first = False
                if ex.first_lag_ns is None:
                    ex.first_lag_ns = lag
            if (lag > mode.enter_ns) if mode.strict else (lag < mode.leave_ns):
                mode.observe(lag, now - epoch_ns)
                if mode.drain_reason:
                    control.stop(f"drained: {mode.drain_reason}")
                    tally[1] += 1
                    return
            tally[0] += 1
            t0 = _perf()
            try:
                nbytes = AWAIT op[2](op[3], op[4], op[5], op[0])
            except Exception as exc:  # any exception is the op's failure: a dead worker would drop ops
                ex._failed(op, exc, rec)
                continue
            t1 = _perf()
            slot = op[6] + bisect_left(bounds, nbytes)
            append_service((t1 - t0) // 1000 << bits | slot)
            append_lag(lag)
            bytes_by_slot[slot] += nbytes
            tally[2] += 1
            last_end = now + (t1 - t0)
    finally:
        ex._worker_done(last_end)
"""
_NAMESPACE: dict[str, Any] = {
    "_now": time.time_ns, "_perf": time.perf_counter_ns, "bisect_left": bisect_left,
    "SIZE_BOUNDS": SIZE_BOUNDS, "SLOT_BITS": SLOT_BITS,
}


@cache
def worker_loop(asynchronous: bool) -> Callable[..., Any]:
    """The compiled loop for threads or asyncio tasks (once per process; its source is in linecache)."""
    name = "replay_loop_async" if asynchronous else "replay_loop_sync"
    lines = select(_LOOP, {"async" if asynchronous else "sync"})
    source = substitute("\n".join(lines) + "\n", {**WORDS[asynchronous], "LOOP(": f"{name}("})
    return compile_source(source, f"<sbench {name}>", name, _NAMESPACE)


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
        self._calls = calls_for(self.payload.payload)
        self._acalls = acalls_for(self.payload.payload)
        self.counts = ReplayCounts()
        self._recorders = [Recorder() for _ in range(self.workers)]
        self._sinks = [ReplaySink() for _ in range(self.workers)]
        self._lock = threading.Lock()
        self._tallies = [[0, 0, 0] for _ in range(self.workers)]
        self._queue: deque[Bound] = deque()
        self._source: Iterator[list[tuple[Any, ...]]] = iter(())
        self._asynchronous = False
        self._total = Snapshot()
        self._go = threading.Event()
        self.epoch_ns = 0
        self.first_lag_ns: int | None = None
        #: why the replay stalled ("" while it has not)
        self.stalled = ""
        #: wall-clock ns when the last op that ended normally ended (the replay's active time ends there)
        self.last_end_ns = 0

    # -- the workers --

    def _refill(self) -> Bound | None:
        """The next op when the deque ran dry: bind the stream's next batch (one worker at a time, in
        order); None at the end of the stream or after a stop."""
        with self._lock:
            queue = self._queue
            while True:
                try:
                    return queue.popleft()
                except IndexError:
                    pass
                batch = None if self.control.halted else next(self._source, None)
                if batch is None:
                    return None
                queue.extend(self._bind(batch))

    def _bind(self, batch: list[tuple[Any, ...]]) -> list[Bound]:
        """Plan rows (replay.plan.ReplayOp's fields) -> bound ops: backend, key, call, slot base."""
        resolve, calls, base_of = self.router.resolve, self._calls, _SLOT_BASE
        out: list[Bound] = []
        for seq, due, call, op, uri, nbytes in batch:
            try:
                backend, key = resolve(uri)
            except (StorageError, SbenchError, OSError) as exc:
                out.append((seq, due, _unresolved(exc), None, uri, nbytes, base_of[op], op, uri))
                continue
            fn = calls[call]
            if self._asynchronous:
                native = backend.is_async and call in self._acalls
                fn = self._acalls[call] if native else partial(_in_thread, fn)
            out.append((seq, due, fn, backend, key, nbytes, base_of[op], op, uri))
        return out

    async def _asleep(self, seconds: float) -> bool:
        """An asyncio worker's wait for an op's due time, in steps of at most 0.1 s; True when stopped."""
        until = time.monotonic() + seconds
        control = self.control
        while not control.halted and (left := until - time.monotonic()) > 0:
            await asyncio.sleep(min(left, 0.1))
        return control.halted

    def _worker_done(self, last_end_ns: int) -> None:
        with self._lock:
            self.last_end_ns = max(self.last_end_ns, last_end_ns)

    def _wait_go(self) -> bool:
        """Wait for the epoch; False when stopped first."""
        while not self._go.wait(0.1):
            if self.control.halted:
                return False
        return True

    def _thread(self, rec: Recorder, sink: ReplaySink, tally: list[int]) -> None:
        if self._wait_go():
            worker_loop(False)(self, rec, sink, tally)

    def _async_workers(self) -> None:
        """The asyncio driver (a native cloud backend: its calls are coroutines, as the engine drives
        them): one thread, one task per worker."""
        if self._wait_go():
            asyncio.run(self._atasks())

    async def _atasks(self) -> None:
        loop = worker_loop(True)
        await asyncio.gather(*(loop(self, rec, sink, tally) for rec, sink, tally
                               in zip(self._recorders, self._sinks, self._tallies, strict=True)))

    def _failed(self, op: Bound, exc: BaseException, rec: Recorder) -> None:
        kind = exc.kind if isinstance(exc, StorageError) else ErrorClass.OTHER
        rec.record_error(OP_CLASS[op[7]], kind, str(exc))
        with self._lock:
            self.counts.failed += 1
            first = not self.counts.first_failure
            if first:
                self.counts.first_failure = f"op {op[0]} ({op[7]} {op[8]}) failed: {exc}"
        if first and not self.continue_on_error:
            self.control.stop(f"{self.counts.first_failure} (--continue-on-error replays past failures)")

    # -- intervals --

    def _take_interval(self) -> Snapshot:
        for sink, rec in zip(self._sinks, self._recorders, strict=True):
            largest = sink.fold_into(rec)
            if largest is not None:
                self.mode.seen(largest)
        snap = Snapshot.merge_all(r.take_interval() for r in self._recorders)
        self._total = Snapshot.merge(self._total, snap)
        return snap

    def _sampler(self, done: threading.Event) -> None:
        watch = StallWatch("replay", self.settings.stall_timeout)
        started_before = 0
        while not done.wait(self.interval_s):
            snap = self._take_interval()
            if self.on_interval is not None:
                self.on_interval(snap)
            started_before = self._check_stall(watch, started_before)

    def _check_stall(self, watch: StallWatch, started_before: int) -> int:
        """Stop the replay as stalled once no op succeeded for stall_timeout while ops were being started or
        were in flight; a gap in the log (nothing due, nothing running) is idle by design. Returns the count
        of ops started, for the next check."""
        started = sum(t[0] for t in self._tallies)
        succeeded = sum(t[2] for t in self._tallies)
        if started == started_before and started - succeeded - self.counts.failed <= 0:
            watch.reset()
        reason = watch.check(succeeded)
        if reason is not None and not self.control.halted:
            self.stalled = reason
            self.control.stop(reason)
        return started

    # -- the run --

    def start(self, batches: Iterator[list[tuple[Any, ...]]]) -> None:
        """Start the workers on the stream's `batches`; they wait for `go` (thread start-up never eats into
        the schedule). Asyncio tasks when the backend opened first (`warm`) is a native (async) one,
        threads otherwise."""
        self._started_ms = _now() // 1_000_000
        self._t0 = time.monotonic()
        self.payload.payload(1, 0)  # the shared buffer is built now (~0.3 s), not by the first PUT
        self._source = batches
        self._asynchronous = bool(self.router.first_is_async)
        self._done = threading.Event()
        self._sampler_thread = threading.Thread(target=self._sampler, args=(self._done,),
                                                name="sbench-replay-intervals", daemon=True)
        self._sampler_thread.start()
        if self._asynchronous:
            self._threads = [threading.Thread(target=self._async_workers, name="sbench-replay-async",
                                              daemon=True)]
        else:
            self._threads = [
                threading.Thread(target=self._thread, args=(rec, sink, tally), name=f"sbench-replay-{i}",
                                 daemon=True)
                for i, (rec, sink, tally) in enumerate(zip(self._recorders, self._sinks, self._tallies,
                                                           strict=True))
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
        counts.started, not_started, counts.succeeded = (sum(t[i] for t in self._tallies) for i in range(3))
        counts.taken = counts.started + not_started
        abandoned = max(0, counts.started - counts.succeeded - counts.failed)  # still inside a storage call
        self._total.unfinished_ops = abandoned
        roots = self.router.roots
        self.router.close()
        return self._result(self._started_ms, time.monotonic() - self._t0, abandoned, roots)

    def run(self, batches: Iterator[list[tuple[Any, ...]]], lead_s: float) -> AgentStageResult:
        """Replay the stream's `batches` in this process, the epoch `lead_s` after the workers are ready
        (and the first op's backend open)."""
        first = next(batches, None)
        if first is not None:
            self.warm(ReplayOp(*first[0]).uri)
            batches = itertools.chain([first], batches)
        self.start(batches)
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
        elif self.stalled:
            status, reason = StageStatus.FAILED, self.stalled
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
