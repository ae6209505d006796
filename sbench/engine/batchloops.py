"""Worker loops for file:// GETs and PUTs in native batches (storage.filebatch says why).

They are engine.loops' inline static GET and fixed-size PUT with the calls moved out of Python: the same keys
from the same random draws and sequence numbers, the same payload bytes, the same records in the same sink.
Per batch, this loop makes the keys of up to BATCH ops and their confined paths (`FileBackend.path_of`),
and filebatch.c opens, reads or writes and closes each with the GIL released, times it with the clock the
inline loops read, and appends its record. An op the batch hands back before making any change (a failed
open, a symlink, a missing parent directory, a directory) and a key whose path is refused run here, one at
a time, through FileBackend and the retry path, exactly as in the inline loop; an op whose read, write or
close failed raises the error FileBackend would have raised into the same retry path, so it is neither
made twice nor hidden.

What differs from the inline loops: a stop is seen between batches, which return after BUDGET_NS, so within
2 ms plus one op; keys are drawn up to a batch ahead, so the draws a retry's jitter takes from the worker's
random stream come after that batch's keys instead of between two keys.
"""

from __future__ import annotations

import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable
from typing import Any, NoReturn

from sbench.data.payload import WEYL_STEP
from sbench.data.sizes import MASK64
from sbench.engine.binding import WorkerState, WorkloadOp
from sbench.engine.loops import LoopShape, retry_sync
from sbench.metrics.buckets import BUCKET_UPPER_BOUNDS
from sbench.metrics.recorder import SLOT_BITS
from sbench.storage.errors_map import storage_error_from_os
from sbench.storage.filebatch import FILE_MODE, READ_FLAGS, WRITE_FLAGS, batch_refusal, native

#: the stage detail `file_loop` of workers that ran batches (otherwise "python: <why>")
NATIVE_BATCHES = "native batches"
#: ops per batch: enough that the Python per batch is a small share, few enough that keys drawn ahead are few
BATCH = 64
#: a batch returns after the op that ends this long after it began, so a stop is seen within it plus one op
BUDGET_NS = 2_000_000
#: the buffer a GET reads into, in chunks for larger objects (what fio does with its block size)
SCRATCH_BYTES = 1 << 20

_BOUNDS = array("q", BUCKET_UPPER_BOUNDS)

Loop = Callable[[Any, WorkerState], None]
#: an op the batch made and saw fail after its open: (errno, monotonic ns when the op began)
Failure = tuple[int, int]


def batch_refusal_for(shape: LoopShape, op: WorkloadOp, enabled: bool) -> str:
    """Why a worker of `shape` whose one op is `op` runs the inline Python loop; "" when it runs batches.
    Only the closed-loop inline GET and PUT without a per-op limiter or a task budget have batches: an open
    loop waits for each op's slot, and a limiter or budget is taken per op."""
    if not enabled:
        return "workers.native_file_io: false"
    if shape.pick == "mixed":
        return "more than one op, or an op without an inline form"
    if shape.asynchronous or shape.open_loop or shape.limited or shape.counted:
        return f"a {shape.name} loop (batches are closed-loop, without limiter or task budget)"
    return batch_refusal(op.backend)


def batch_loop(shape: LoopShape) -> Loop:
    """The batch loop of a shape `batch_refusal_for` accepted."""
    return batch_get_loop if shape.pick == "static_get" else batch_put_loop


def _one_op(
    run: Any,
    op: WorkloadOp,
    w: WorkerState,
    slot: int | None,
    call: Callable[..., Any],
    *args: Any,
    began: int | None = None,
) -> int:
    """One op through the driver and the retry path, recorded as the inline loops record it (`slot` None:
    by the bytes a GET returned; `began`: when the op's first try began, if before this call); returns the
    clock at its end. `w.key` (and a PUT's `w.data`) are the op's, for the retry."""
    t0 = time.monotonic_ns() if began is None else began
    try:
        result = call(*args)
        nbytes = len(result) if slot is None else op.inline.size
    except Exception as exc:
        nbytes = retry_sync(run, op, w, exc)
    t1 = time.monotonic_ns()
    if nbytes is not None:
        if slot is None:
            slot = op.base_slot + bisect_left(BUCKET_UPPER_BOUNDS, nbytes)
        raw, bytes_by_slot = w.recorder.batch_sink()
        raw.append((t1 - t0) // 1000 << SLOT_BITS | slot)
        bytes_by_slot[slot] += nbytes
    return t1


def _raise_failure(op: WorkloadOp, key: str, action: str, err: int) -> NoReturn:
    """The error FileBackend raises for an OSError of `err` during `action` on `key`."""
    exc = OSError(err, os.strerror(err))
    raise storage_error_from_os(exc, op.backend.uri_of(key), action) from exc


def _redo(
    run: Any,
    op: WorkloadOp,
    w: WorkerState,
    slot: int | None,
    action: str,
    call: Callable[..., Any],
    key: str,
    *args: Any,
    failure: Failure | None,
) -> int:
    """An op the batch handed back (`failure` None: made here through the driver) or saw fail (raised as
    the driver's error, into the retry path, timed from its first try)."""
    if failure is None:
        return _one_op(run, op, w, slot, call, key, *args)
    err, began = failure
    return _one_op(run, op, w, slot, _raise_failure, op, key, action, err, began=began)


#: makes the next batch: (one item per path, the paths, the item of a key path_of refused, which ends it)
Make = Callable[[], tuple[list[Any], list[str], Any]]


def _run_batches(
    run: Any,
    make: Make,
    call: Callable[[list[str], int], tuple[int, int, int, int]],
    one: Callable[[Any, Failure | None], int],
) -> None:
    """What both batch loops do: make a batch, run it natively from where it stopped (`call`), run each op
    it hands back or saw fail, and each refused key, through the driver (`one`, which returns the clock at
    the op's end), until the stage stops or an op ends at or after its deadline."""
    control, deadline, policy = run.control, run.deadline_ns, run.policy
    items: list[Any] = []
    paths: list[str] = []
    refused: Any = None
    i = 0
    while not control.halted:
        if policy.backoff_until:
            policy.pause_if_backing_off()
        failure: Failure | None = None
        if i < len(paths):
            i, status, err, began = call(paths, i)
            if status == native.DEADLINE:
                return
            if status == native.FAILED:
                failure = err, began
            elif status != native.FALLBACK:
                continue
            item = items[i]
            i += 1
        elif refused is not None:
            item, refused = refused, None
        else:
            items, paths, refused = make()
            i = 0
            continue
        if one(item, failure) >= deadline:
            return


def batch_get_loop(run: Any, w: WorkerState) -> None:
    op = w.ops[0]
    source = op.inline
    get, key_of, count, base_slot = source.get, source.key_of, source.count, op.base_slot
    path_of = op.backend.path_of
    rnd = w.rng.random
    raw, bytes_by_slot = w.recorder.batch_sink()
    scratch = bytearray(SCRATCH_BYTES)

    def make() -> tuple[list[str], list[str], str | None]:
        keys: list[str] = []
        paths: list[str] = []
        for _ in range(BATCH):
            key = key_of(int(rnd() * count))
            try:
                paths.append(path_of(key, "get"))
            except Exception:
                return keys, paths, key
            keys.append(key)
        return keys, paths, None

    def call(paths: list[str], i: int) -> tuple[int, int, int, int]:
        return native.get_batch(
            paths, i, READ_FLAGS, scratch, _BOUNDS, base_slot, SLOT_BITS, raw, bytes_by_slot, run.deadline_ns,
            BUDGET_NS,
        )  # fmt: skip

    def one(key: str, failure: Failure | None) -> int:
        w.key = key
        return _redo(run, op, w, None, "get", get, key, failure=failure)

    _run_batches(run, make, call, one)


def batch_put_loop(run: Any, w: WorkerState) -> None:
    op = w.ops[0]
    fixed = op.inline
    put, size, slot = fixed.put, fixed.size, op.slot
    path_of = op.backend.path_of
    head = f"{fixed.head}{w.tag}"
    view, positions, seed_mix = fixed.window
    raw, bytes_by_slot = w.recorder.batch_sink()
    seq = w.seq
    weyl = ((((w.index << 40) | seq) * WEYL_STEP) + seed_mix) & MASK64
    offsets = array("q")  # the payload offset of each path of the current batch

    def make() -> tuple[list[tuple[str, int]], list[str], tuple[str, int] | None]:
        nonlocal seq, weyl, offsets
        items: list[tuple[str, int]] = []
        paths: list[str] = []
        offsets = array("q")
        for _ in range(BATCH):
            key = f"{head}{seq}.dat"
            offset = (weyl * positions) >> 64
            weyl = (weyl + WEYL_STEP) & MASK64
            seq += 1
            try:
                paths.append(path_of(key, "put"))
            except Exception:
                return items, paths, (key, offset)
            items.append((key, offset))
            offsets.append(offset)
        return items, paths, None

    def call(paths: list[str], i: int) -> tuple[int, int, int, int]:
        return native.put_batch(
            paths, i, WRITE_FLAGS, FILE_MODE, view, offsets, size, slot, SLOT_BITS, raw, bytes_by_slot,
            run.deadline_ns, BUDGET_NS,
        )  # fmt: skip

    def one(item: tuple[str, int], failure: Failure | None) -> int:
        key, offset = item
        data = view[offset : offset + size]
        w.key, w.data = key, data
        return _redo(run, op, w, slot, "put", put, key, data, failure=failure)

    _run_batches(run, make, call, one)
