"""The worker loop, written once: one template, specialised per worker shape and compiled once per shape.

A worker's per-op sequence is always the same: pick the op, wait for its open-loop slot, take its limiter,
build the key, call, read the clock, record, check the deadline, back off after errors, and on a failure
hand over to the retry path. What differs between workers is which of those steps exist at all (an open
loop waits for slots, a closed one does not; only per-op `concurrency` limits take a semaphore; asyncio
workers await), and, for the two benchmark classics, how the op is called: a fixed-size PUT writes its key
and payload slice inline, a GET from an unchanging pool picks its key inline. Each step that is not needed
must cost nothing per op, since every line of Python here is GIL time the other workers wait for (the
engine's whole cost is ~0.2 µs per op; bench/engine_overhead.py).

So, as `dataclasses` generates methods, `loop_for(shape)` keeps the lines of `_TEMPLATE` whose tags the
shape has (engine.codegen), compiles the result once, and registers its source with `linecache`, so
tracebacks and profilers show the generated lines. A line's tags (`@tag`, all must hold; `@!tag`, must
not) are:

    sync / async   thread worker or asyncio task           open / closed   open-loop schedule or not
    mixed          op picked by weight, called via op      fixed_put / static_get   the inline single ops
    limited        per-op semaphores                       counted         stop after expected_tasks ops

`LOOP` becomes the shape's function name, `AWAIT ` becomes `await ` in async loops and nothing in sync ones,
`CALL` becomes `acall` or `call`, `RETRY` the retry path of the same kind (`_RETRY`, generated the same way).
What a mixed op's call does is generated the same way, per op kind (engine.opcalls).
"""

from __future__ import annotations

import asyncio
import time
from bisect import bisect_left, bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from sbench.data.payload import WEYL_STEP
from sbench.data.sizes import MASK64
from sbench.engine.codegen import compile_source, select, substitute
from sbench.engine.opcalls import WORDS, PoolExhausted
from sbench.engine.ratecontrol import LATE_THRESHOLD_NS
from sbench.metrics.buckets import BUCKET_UPPER_BOUNDS as SIZE_BOUNDS
from sbench.metrics.recorder import SLOT_BITS

PICKS = ("mixed", "fixed_put", "static_get")


@dataclass(frozen=True, slots=True)
class LoopShape:
    """Which steps a worker's loop has (see the module docstring)."""

    asynchronous: bool = False
    pick: str = "mixed"
    open_loop: bool = False
    limited: bool = False
    counted: bool = False

    def __post_init__(self) -> None:
        if self.pick not in PICKS:
            raise ValueError(f"pick {self.pick!r} is not one of {PICKS}")
        if self.asynchronous and self.pick != "mixed":
            raise ValueError("asyncio workers call their ops through `acall` (pick 'mixed')")

    @property
    def tags(self) -> frozenset[str]:
        return frozenset(
            {
                "async" if self.asynchronous else "sync",
                "open" if self.open_loop else "closed",
                self.pick,
                *(["limited"] if self.limited else []),
                *(["counted"] if self.counted else []),
            }
        )

    @property
    def name(self) -> str:
        extras = [word for word, on in (("limited", self.limited), ("counted", self.counted)) if on]
        load = "open" if self.open_loop else "closed"
        return "-".join(["async" if self.asynchronous else "sync", self.pick, load, *extras])


# The template. `run` is the WorkloadRun, `w` the worker (engine.binding.WorkerState), `sems` the asyncio
# semaphores of limited ops by id(op); a line's tags follow two spaces. The fixed-size PUT keeps `weyl`, the
# Weyl state of object id (worker << 40) | seq, the id PayloadGenerator.payload would give it: the next id's
# state is one step further, so each op adds instead of multiplying (the bytes are the same).
_TEMPLATE = """
def LOOP(run, w):  @sync
async def LOOP(run, w, sems):  @async
    ops, cum, total = w.ops, w.cum, w.total  @mixed
    single = ops[0] if len(ops) == 1 else None  @mixed
    rnd = w.rng.random  @!fixed_put
    append, bytes_by_slot, bits = *w.recorder.sink(), SLOT_BITS  @closed
    bounds = SIZE_BOUNDS  @closed @!fixed_put
    clock, control, deadline, policy = time.monotonic_ns, run.control, run.deadline_ns, run.policy
    schedule, record, record_late = run.schedule, w.recorder.record, w.recorder.record_late  @open
    intended = 0  @open
    wait = control.wait  @open @sync
    counter, max_ops = run._counter, run.max_ops  @counted
    op = w.ops[0]  @fixed_put
    fixed = op.inline  @fixed_put
    put, size, slot = fixed.put, fixed.size, op.slot  @fixed_put
    head = f"{fixed.head}{w.tag}"  @fixed_put
    view, positions, seed_mix = fixed.window  @fixed_put
    seq = w.seq  @fixed_put
    weyl = ((((w.index << 40) | seq) * WEYL_STEP) + seed_mix) & MASK64  @fixed_put
    op = w.ops[0]  @static_get
    source = op.inline  @static_get
    get, key_of, count, base_slot = source.get, source.key_of, source.count, op.base_slot  @static_get
    last = -1  @closed @static_get
    try:  @fixed_put
        while not control.halted:
            op = single or ops[bisect_right(cum, rnd() * total)]  @mixed
            if op.exhausted:  @mixed
                if all(o.exhausted for o in ops):  @mixed
                    return  @mixed
                await asyncio.sleep(0)  @mixed @async
                continue  @mixed
            key = f"{head}{seq}.dat"  @fixed_put
            offset = (weyl * positions) >> 64  @fixed_put
            data = view[offset : offset + size]  @fixed_put
            weyl = (weyl + WEYL_STEP) & MASK64  @fixed_put
            seq += 1  @fixed_put
            key = key_of(int(rnd() * count))  @static_get
            intended = schedule.claim()  @open
            if intended >= deadline:  @open
                return  @open
            delay = intended - clock()  @open @sync
            if delay > 0 and wait(delay / 1e9):  @open @sync
                return  @open @sync
            while (delay := intended - clock()) > 0:  @open @async
                await asyncio.sleep(min(delay / 1e9, 0.1))  @open @async
                if control.halted:  @open @async
                    return  @open @async
            sem = op.sem  @limited @sync
            sem = sems.get(id(op))  @limited @async
            if sem is not None:  @limited
                while not sem.acquire(timeout=0.2):  @limited @sync
                    if control.halted:  @limited @sync
                        return  @limited @sync
                await sem.acquire()  @limited @async
            t0 = clock()
            try:
                nbytes = AWAIT op.CALL(w)  @mixed
                put(key, data)  @fixed_put
                nbytes = size  @fixed_put
                nbytes = len(get(key))  @static_get
            except PoolExhausted:  @mixed
                nbytes = None  @mixed
                if run._exhausted(op, ops):  @mixed
                    return  @mixed
            except Exception as exc:
                w.key, w.data, w.seq = key, data, seq  @fixed_put
                w.key = key  @static_get
                nbytes = AWAIT RETRY(run, op, w, exc)
            finally:  @limited
                if sem is not None:  @limited
                    sem.release()  @limited
            t1 = clock()
            if nbytes is not None:
                slot = op.slot  @closed @mixed
                if slot is None:  @closed @mixed
                    slot = op.base_slot + bisect_left(bounds, nbytes)  @closed @mixed
                if nbytes != last:  @closed @static_get
                    slot, last = base_slot + bisect_left(bounds, nbytes), nbytes  @closed @static_get
                append((t1 - t0) // 1000 << bits | slot)  @closed
                bytes_by_slot[slot] += nbytes  @closed
                record(op.cls, nbytes, (t1 - intended) // 1000, (t1 - t0) // 1000)  @open
                if t0 - intended > LATE_THRESHOLD_NS:  @open
                    record_late((t0 - intended) // 1000)  @open
                if next(counter) >= max_ops:  @counted
                    run._stop_stage("tasks", f"expected_tasks={max_ops} ops done")  @counted
                    return  @counted
            if t1 >= deadline:
                return
            if policy.backoff_until:  @sync
                policy.pause_if_backing_off()  @sync
            if policy.backoff_until and (pause := policy.backoff_until - time.monotonic()) > 0:  @async
                await run._asleep(pause)  @async
    finally:  @fixed_put
        w.seq = seq  @fixed_put
"""

_NAMESPACE: dict[str, Any] = {
    "asyncio": asyncio,
    "time": time,
    "bisect_left": bisect_left,
    "bisect_right": bisect_right,
    "SIZE_BOUNDS": SIZE_BOUNDS,
    "SLOT_BITS": SLOT_BITS,
    "WEYL_STEP": WEYL_STEP,
    "MASK64": MASK64,
    "LATE_THRESHOLD_NS": LATE_THRESHOLD_NS,
    "PoolExhausted": PoolExhausted,
}


# The retry path of a failed op: retry per the policy, the wait between tries ending at once when the stage
# stops (an op cut off there is unfinished, not failed); the bytes of a successful retry, or None.
_RETRY = """
ASYNC def RETRY(run, op, w, exc):
    attempt = 0
    while True:
        attempt += 1
        err = run._retryable(op, w, exc, attempt)
        if err is None:
            return None
        if AWAIT run._asleep(run.policy.retry_delay(attempt, w.rng)):  @async
        if run.control.wait(run.policy.retry_delay(attempt, w.rng)):  @sync
            run._cut_short()
            return None
        try:
            return AWAIT op.REDO(w)
        except Exception as again:
            exc = again
"""


def _retry_path(asynchronous: bool) -> Callable[..., Any]:
    source = substitute(
        "\n".join(select(_RETRY, {"async" if asynchronous else "sync"})) + "\n", WORDS[asynchronous]
    )
    name = "retry_async" if asynchronous else "retry_sync"
    return compile_source(source, f"<sbench {name}>", name, _NAMESPACE)


_NAMESPACE["retry_sync"] = retry_sync = _retry_path(asynchronous=False)
_NAMESPACE["retry_async"] = _retry_path(asynchronous=True)

#: the first line of the worker's loop: where the lines move out one level when the loop needs no try/finally
_LOOP_START = "        while not control.halted:"


def loop_source(shape: LoopShape) -> str:
    """The template's lines for `shape`, tags removed and words substituted. The loop sits in a
    try/finally only where the finally has work (the fixed-size PUT hands its sequence number back);
    elsewhere the lines from the loop's start on move out one level."""
    lines = select(_TEMPLATE, shape.tags)
    if shape.pick != "fixed_put":
        start = lines.index(_LOOP_START)
        lines[start:] = [line[4:] for line in lines[start:]]
    words = {**WORDS[shape.asynchronous], "LOOP(": f"{function_name(shape)}("}
    return substitute("\n".join(lines) + "\n", words)


@cache
def loop_for(shape: LoopShape) -> Callable[..., Any]:
    """The compiled loop of `shape` (once per shape and process); its source is in linecache."""
    return compile_source(
        loop_source(shape), f"<sbench worker loop {shape.name}>", function_name(shape), _NAMESPACE
    )


def function_name(shape: LoopShape) -> str:
    """What profilers and tracebacks call the loop of `shape`."""
    return "worker_loop_" + shape.name.replace("-", "_")
