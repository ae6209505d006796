"""Per-worker measurement recorder: the only metrics code on the per-op hot path.

One Recorder per worker (thread or asyncio task group). Two ways in:

- `sink()`, the closed-loop hot path: the worker appends one int per op (`latency_us << SLOT_BITS | slot`)
  to a list and adds the op's bytes to a per-slot counter, without a lock and without touching a histogram.
  With two threads on a fast file system, every extra 0.1 µs a worker holds the GIL between syscalls makes
  the other worker wait for it more often, so the per-op cost had to go down to an append and an add. The
  interval thread folds the list into the histograms in `take_interval()`: it copies the list and deletes the
  copied head (each one C call, so atomic under the GIL: an append lands either in this copy or in the next),
  counts equal values with `Counter` (latencies in µs repeat a lot) and records each distinct value once with
  its count. Byte counters only grow; the interval's bytes are the difference from the previous reading.
- `record()`, under the lock, for everything else: open-loop ops (response and service time), prepare and
  cleanup, and `record_error` / `record_retry` / `record_late`. `record_error` also keeps the first message of
  each error class in the interval (scrubbed of credentials), so every class a run saw can be shown with an
  example; that costs one dict lookup per failed op and one scrub per class and interval.

Response vs service time: `latency_us` is the response time (open loop: measured from the intended start, so
coordinated omission cannot hide stalls); `service_us` is measured from the actual start. In closed loop the
two are equal and the engine passes `service_us=None`: the recorder then skips the second histogram record
and, at `take_interval()`, sets the service histogram of that op class to the sum of its response-time
histograms. If an interval mixes both forms, the first explicit `service_us` switches that op class to
recording both (after folding in the ops seen so far), so the service histogram stays exact either way.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable
from typing import Any

from sbench.metrics.buckets import BUCKET_UPPER_BOUNDS, NUM_BUCKETS, OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import ErrorClass
from sbench.storage.scrub import scrub_message

_META_SLOT = int(OpClass.META) * NUM_BUCKETS
_SLOTS = len(OpClass) * NUM_BUCKETS
#: low bits of a sink value that hold the slot (op class * NUM_BUCKETS + bucket)
SLOT_BITS = 5
_SLOT_MASK = (1 << SLOT_BITS) - 1
assert _SLOTS <= 1 << SLOT_BITS


def slot_for(op: OpClass | int, nbytes: int) -> int:
    """The (op class, size bucket) slot of an op: GET buckets by bytes returned, PUT by object size, META
    always bucket 0."""
    slot = op * NUM_BUCKETS
    return slot if slot == _META_SLOT else slot + bisect_left(BUCKET_UPPER_BOUNDS, nbytes)


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


#: longest error message kept per class (client messages quote whole response bodies)
MAX_MESSAGE = 600


def _one_line(message: str) -> str:
    """A message fit for one line of STATUS.txt: whitespace runs (newlines of a quoted XML body) become one
    space, and the length is capped."""
    flat = " ".join(message.split())
    return flat if len(flat) <= MAX_MESSAGE else flat[: MAX_MESSAGE - 1] + "…"


class _Interval:
    """The mutable state of one interval; swapped out whole by `take_interval()`."""

    __slots__ = (
        "bytes",
        "errors",
        "explicit",
        "first_errors",
        "hists",
        "lag",
        "late",
        "ops",
        "retries",
        "service",
        "start_ms",
    )

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.ops = [0] * _SLOTS
        self.bytes = [0] * _SLOTS
        self.hists: list[LatencyHistogram | None] = [None] * _SLOTS
        self.service: list[LatencyHistogram | None] = [None] * len(OpClass)
        self.explicit = [False] * len(OpClass)
        self.errors: dict[tuple[OpClass, ErrorClass], int] = {}
        self.first_errors: dict[ErrorClass, tuple[int, str]] = {}
        self.retries = [0] * len(OpClass)
        self.late = 0
        self.lag: LatencyHistogram | None = None


class Recorder:
    """Collects one worker's ops, latencies, errors, retries and schedule lag for the current interval."""

    __slots__ = ("_bytes_seen", "_cur", "_lock", "_raw", "_raw_bytes")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._cur = _Interval(_now_ms())
        self._raw: list[int] = []
        self._raw_bytes = [0] * _SLOTS
        self._bytes_seen = [0] * _SLOTS

    def sink(self) -> tuple[Callable[[int], None], list[int]]:
        """(append, bytes_by_slot) for the closed-loop hot path of the one worker that owns this recorder:
        per op, `append(latency_us << SLOT_BITS | slot)` and `bytes_by_slot[slot] += nbytes`, where `slot`
        comes from `slot_for`. Service time equals response time for these ops."""
        return self._raw.append, self._raw_bytes

    def batch_sink(self) -> tuple[list[int], list[int]]:
        """The lists behind `sink`, for a caller that appends a batch of sink values at once (the native
        file:// batches of engine.batchloops, which append them in C while holding the GIL)."""
        return self._raw, self._raw_bytes

    def record(self, op: OpClass, nbytes: int, latency_us: int, service_us: int | None = None) -> None:
        """One completed op. GET buckets by bytes returned, PUT by object size; META always uses bucket 0."""
        slot = slot_for(op, nbytes)
        with self._lock:
            cur = self._cur
            cur.ops[slot] += 1
            cur.bytes[slot] += nbytes
            # Service first: a first explicit service time folds in the response histograms as they were
            # before this op.
            if service_us is not None:
                self._service(cur, op).record_us(service_us)
            elif cur.explicit[op]:
                self._service(cur, op).record_us(latency_us)
            hist = cur.hists[slot]
            if hist is None:
                hist = cur.hists[slot] = LatencyHistogram()
            hist.record_us(latency_us)

    @staticmethod
    def _service(cur: _Interval, op: OpClass) -> LatencyHistogram:
        hist = cur.service[op]
        if hist is None:
            hist = cur.service[op] = LatencyHistogram()
        if not cur.explicit[op]:
            # First explicit service time this interval: everything recorded so far was closed-loop style.
            base = op * NUM_BUCKETS
            for bucket_hist in cur.hists[base : base + NUM_BUCKETS]:
                if bucket_hist is not None:
                    hist.add(bucket_hist)
            cur.explicit[op] = True
        return hist

    def record_error(self, op: OpClass, kind: ErrorClass, message: str = "") -> None:
        """One failed op (after retries, if any were made), with what the store said. Rare, so it can afford
        to normalise its keys; the message is kept (scrubbed) only when it is the interval's first of its
        class."""
        kind = ErrorClass(kind)
        key = (OpClass(op), kind)
        with self._lock:
            cur = self._cur
            cur.errors[key] = cur.errors.get(key, 0) + 1
            if message and kind not in cur.first_errors:
                cur.first_errors[kind] = (_now_ms(), _one_line(scrub_message(message)))

    def record_retry(self, op: OpClass) -> None:
        """One retry attempt of a failed op."""
        with self._lock:
            self._cur.retries[op] += 1

    def record_late(self, lag_us: int) -> None:
        """Open loop: an op started `lag_us` after its intended start."""
        with self._lock:
            cur = self._cur
            cur.late += 1
            lag = cur.lag
            if lag is None:
                lag = cur.lag = LatencyHistogram()
            lag.record_us(lag_us)

    def record_bulk(self, slot: int, nbytes: int, latency_us: Any, service_us: Any) -> None:
        """Many completed ops of one (op class, size bucket) `slot` at once, their response and service
        times as integer arrays (numpy): what `record` does op by op, for a caller that keeps its hot path to
        an append per op and folds once per interval (replay.sink). No engine loop calls it."""
        op = OpClass(slot // NUM_BUCKETS)
        with self._lock:
            cur = self._cur
            cur.ops[slot] += len(latency_us)
            cur.bytes[slot] += nbytes
            if not len(latency_us):
                return
            self._service(cur, op).record_many_us(service_us)
            hist = cur.hists[slot]
            if hist is None:
                hist = cur.hists[slot] = LatencyHistogram()
            hist.record_many_us(latency_us)

    def record_late_bulk(self, lag_us: Any) -> None:
        """`record_late` for every lag (µs) of an integer array at once."""
        if not len(lag_us):
            return
        with self._lock:
            cur = self._cur
            cur.late += len(lag_us)
            if cur.lag is None:
                cur.lag = LatencyHistogram()
            cur.lag.record_many_us(lag_us)

    def take_interval(self) -> Snapshot:
        """Return everything recorded since the previous call and start a fresh interval."""
        now = _now_ms()
        fresh = _Interval(now)
        with self._lock:
            cur, self._cur = self._cur, fresh
            self._fold_sink(cur)
        return self._to_snapshot(cur, now)

    def _fold_sink(self, cur: _Interval) -> None:
        """Move what the sink collected into `cur` (called by the one thread that takes intervals)."""
        raw = self._raw
        values = raw[:]
        del raw[: len(values)]
        ops, hists, explicit = cur.ops, cur.hists, cur.explicit
        for value, count in Counter(values).items():
            slot = value & _SLOT_MASK
            latency_us = value >> SLOT_BITS
            ops[slot] += count
            hist = hists[slot]
            if hist is None:
                hist = hists[slot] = LatencyHistogram()
            hist.record_us(latency_us, count)
            op = slot // NUM_BUCKETS
            if explicit[op]:
                service = cur.service[op]
                assert service is not None  # explicit is only set together with the service histogram
                service.record_us(latency_us, count)
        now_bytes = self._raw_bytes[:]
        seen = self._bytes_seen
        for slot, total in enumerate(now_bytes):
            if total != seen[slot]:
                cur.bytes[slot] += total - seen[slot]
        self._bytes_seen = now_bytes

    @staticmethod
    def _to_snapshot(cur: _Interval, end_ms: int) -> Snapshot:
        snap = Snapshot(start_ms=cur.start_ms, end_ms=end_ms)
        for op in OpClass:
            base = op * NUM_BUCKETS
            mirrored: LatencyHistogram | None = None
            for bucket in range(NUM_BUCKETS):
                slot = base + bucket
                key = (op, bucket)
                if cur.bytes[slot] or cur.ops[slot]:
                    # bytes may come without ops: an op at the interval's edge whose bytes the sink's counter
                    # showed before its latency (the other one lands in the next interval)
                    snap.nbytes[key] = cur.bytes[slot]
                if not cur.ops[slot]:
                    continue
                snap.ops[key] = cur.ops[slot]
                hist = cur.hists[slot]
                if hist is not None and hist.count:
                    snap.hists[key] = hist.encode()
                    if not cur.explicit[op]:
                        if mirrored is None:
                            mirrored = LatencyHistogram()
                        mirrored.add(hist)
            service = cur.service[op] if cur.explicit[op] else mirrored
            if service is not None and service.count:
                snap.service[op] = service.encode()
            if cur.retries[op]:
                snap.retries[op] = cur.retries[op]
        snap.errors = cur.errors
        snap.first_errors = cur.first_errors
        snap.late_ops = cur.late
        snap.lag_hist = cur.lag.encode() if cur.lag is not None else b""
        return snap
