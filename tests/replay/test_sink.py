"""A replay worker's two columns, folded once per interval, give the figures of per-op records: response
time from the due time, service time from the start, late ops and their lag, bytes, the largest lag."""

from __future__ import annotations

import random

from sbench.engine.ratecontrol import LATE_THRESHOLD_NS
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import SLOT_BITS, Recorder, slot_for
from sbench.replay.sink import ReplaySink


def _ops(n: int) -> list[tuple[OpClass, int, int, int]]:
    """(op class, bytes moved, service µs, lag ns) of n ops; lags around the late threshold and early."""
    rng = random.Random(5)
    out = []
    for _ in range(n):
        op = rng.choice(list(OpClass))
        nbytes = 0 if op is OpClass.META else rng.choice([0, 4096, 8193, 5 << 20])
        edge = LATE_THRESHOLD_NS
        lag = rng.choice([-2_000, 0, 999_999, edge, edge + 1, rng.randrange(10**10)])
        out.append((op, nbytes, rng.randrange(1, 50_000), lag))
    return out


def test_a_fold_equals_per_op_records() -> None:
    ops = _ops(5_000)
    sink, folded, per_op = ReplaySink(), Recorder(), Recorder()
    for op, nbytes, service_us, lag in ops:
        slot = slot_for(op, nbytes)
        sink.service.append(service_us << SLOT_BITS | slot)
        sink.lag.append(lag)
        sink.nbytes[slot] += nbytes
        # what the replay recorded per op before: response from the due time, service from the start
        per_op.record(op, nbytes, service_us + max(0, lag) // 1000, service_us)
        if lag > LATE_THRESHOLD_NS:
            per_op.record_late(lag // 1000)
    sink.service.append(7 << SLOT_BITS)  # a row whose lag is not appended yet stays for the next fold
    assert sink.fold_into(folded) == max(lag for *_, lag in ops)
    assert sink.service == [7 << SLOT_BITS] and sink.lag == []
    a, b = folded.take_interval(), per_op.take_interval()
    assert a.ops == b.ops and a.nbytes == b.nbytes and a.hists == b.hists and a.service == b.service
    assert (a.late_ops, a.lag_hist) == (b.late_ops, b.lag_hist) and a.late_ops > 0
    assert sink.fold_into(Recorder()) is None  # nothing new: no lag to report
