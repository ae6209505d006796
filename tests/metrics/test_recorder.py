"""Recorder: bucketing, response vs service histograms, errors, late ops, interval swap."""

from __future__ import annotations

import pickle
import threading

from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import SLOT_BITS, Recorder, slot_for
from sbench.storage.base import ErrorClass


def test_buckets_counts_and_bytes() -> None:
    rec = Recorder()
    rec.record(OpClass.GET, 0, 10)
    rec.record(OpClass.GET, 8192, 20)
    rec.record(OpClass.GET, 8193, 30)
    rec.record(OpClass.PUT, 5 * 1024 * 1024, 40)
    rec.record(OpClass.META, 1234, 50)  # META always lands in bucket 0
    snap = rec.take_interval()
    assert snap.ops == {
        (OpClass.GET, 0): 1,
        (OpClass.GET, 1): 1,
        (OpClass.GET, 2): 1,
        (OpClass.PUT, 5): 1,
        (OpClass.META, 0): 1,
    }
    assert snap.total_bytes(OpClass.GET) == 8192 + 8193
    assert snap.total_bytes(OpClass.META) == 1234
    assert snap.latency(OpClass.GET).count == 3
    assert snap.latency(OpClass.GET, 2).max == 30


def test_closed_loop_service_mirrors_response() -> None:
    rec = Recorder()
    for v in (100, 200, 300, 40_000):
        rec.record(OpClass.PUT, 4096, v)
    snap = rec.take_interval()
    assert snap.service_latency(OpClass.PUT) == snap.latency(OpClass.PUT)


def test_open_loop_keeps_service_and_response_apart() -> None:
    rec = Recorder()
    for _ in range(99):
        rec.record(OpClass.GET, 4096, 100, 100)
    rec.record(OpClass.GET, 4096, 1_000_000, 200)  # a stall seen only from the intended start
    snap = rec.take_interval()
    assert snap.latency(OpClass.GET).max >= 999_000
    assert snap.service_latency(OpClass.GET).max < 300
    assert snap.service_latency(OpClass.GET).count == 100


def test_mixed_service_forms_stay_exact() -> None:
    rec = Recorder()
    rec.record(OpClass.GET, 10, 500)  # no service time: equals response
    rec.record(OpClass.GET, 10, 900, 50)
    rec.record(OpClass.GET, 10, 700)
    svc = rec.take_interval().service_histogram(OpClass.GET)
    assert svc.count == 3
    assert (svc.min, svc.max) == (50, 700)


def test_errors_retries_late_and_reset() -> None:
    rec = Recorder()
    rec.record_error(OpClass.GET, ErrorClass.NOT_FOUND)
    rec.record_error(OpClass.GET, ErrorClass.NOT_FOUND)
    rec.record_error(OpClass.PUT, ErrorClass.THROTTLED)
    rec.record_retry(OpClass.PUT)
    rec.record_late(2_000)
    rec.record_late(9_000)
    snap = rec.take_interval()
    assert snap.errors == {(OpClass.GET, ErrorClass.NOT_FOUND): 2, (OpClass.PUT, ErrorClass.THROTTLED): 1}
    assert snap.errors_total() == 3
    assert snap.errors_by_op() == {OpClass.GET: 2, OpClass.PUT: 1}
    assert snap.retries == {OpClass.PUT: 1}
    assert snap.late_ops == 2
    assert snap.lag_histogram().max >= 8_990
    empty = rec.take_interval()
    assert empty.is_empty
    assert empty.start_ms >= snap.end_ms


def test_take_interval_under_concurrent_recording_loses_nothing() -> None:
    rec = Recorder()
    stop = threading.Event()
    done = [0]

    def worker() -> None:
        while not stop.is_set() and done[0] < 200_000:
            rec.record(OpClass.PUT, 100, 7)
            done[0] += 1

    t = threading.Thread(target=worker)
    t.start()
    parts = []
    while t.is_alive() and len(parts) < 10_000:
        parts.append(rec.take_interval())
        if done[0] >= 200_000:
            break
    stop.set()
    t.join()
    parts.append(rec.take_interval())
    assert sum(p.total_ops() for p in parts) == done[0]


def _sink_record(rec: Recorder, op: OpClass, nbytes: int, latency_us: int) -> None:
    append, bytes_by_slot = rec.sink()
    slot = slot_for(op, nbytes)
    append(latency_us << SLOT_BITS | slot)
    bytes_by_slot[slot] += nbytes


def test_sink_matches_record() -> None:
    """The lock-free sink gives the same snapshot as record() for the same closed-loop ops."""
    ops = [(OpClass.GET, 0, 10), (OpClass.GET, 8192, 20), (OpClass.GET, 8193, 30), (OpClass.GET, 8193, 30)]
    ops += [(OpClass.PUT, 5 * 1024 * 1024, 40), (OpClass.META, 0, 50), (OpClass.PUT, 4096, 3_600_000_001)]
    locked, sunk = Recorder(), Recorder()
    for op in ops:
        locked.record(*op)
        _sink_record(sunk, *op)
    a, b = locked.take_interval(), sunk.take_interval()
    assert a.ops == b.ops and a.nbytes == b.nbytes
    for op in OpClass:
        assert a.latency(op) == b.latency(op)
        assert a.service_latency(op) == b.service_latency(op)
    assert b.latency(OpClass.GET).count == 4 and b.latency(OpClass.GET, 2).max == 30
    assert sunk.take_interval().is_empty


def test_sink_and_open_loop_records_share_the_service_histogram() -> None:
    rec = Recorder()
    rec.record(OpClass.GET, 10, 900, 50)  # explicit service time
    _sink_record(rec, OpClass.GET, 10, 700)  # closed loop: service = response
    snap = rec.take_interval()
    svc = snap.service_histogram(OpClass.GET)
    assert svc.count == 2 and (svc.min, svc.max) == (50, 700)
    assert snap.latency(OpClass.GET).count == 2


def test_sink_under_concurrent_take_interval_loses_nothing() -> None:
    rec = Recorder()
    append, bytes_by_slot = rec.sink()
    slot = slot_for(OpClass.PUT, 4096)
    total = 300_000
    done = [0]

    def worker() -> None:
        for i in range(total):
            append((i % 50) << SLOT_BITS | slot)
            bytes_by_slot[slot] += 4096
            done[0] = i + 1

    t = threading.Thread(target=worker)
    t.start()
    parts = []
    while t.is_alive():
        parts.append(rec.take_interval())
    t.join()
    parts.append(rec.take_interval())
    assert len(parts) > 2  # the intervals really were taken while the worker appended
    assert sum(p.total_ops() for p in parts) == total
    assert sum(p.total_bytes() for p in parts) == total * 4096
    assert sum(p.latency(OpClass.PUT).count for p in parts if p.ops) == total


def test_snapshot_pickles() -> None:
    rec = Recorder()
    rec.record(OpClass.GET, 4096, 100)
    snap = rec.take_interval()
    snap.latency(OpClass.GET)  # fills the decoded cache, which must not travel
    clone = pickle.loads(pickle.dumps(snap))
    assert clone.latency(OpClass.GET) == snap.latency(OpClass.GET)


def test_error_keys_are_normalised() -> None:
    rec = Recorder()
    rec.record_error(0, "throttled")  # type: ignore[arg-type]
    snap = rec.take_interval()
    assert snap.errors == {(OpClass.GET, ErrorClass.THROTTLED): 1}
    assert snap.to_dict()["errors"] == {"GET/throttled": 1}
