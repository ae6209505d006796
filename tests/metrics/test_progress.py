"""PhaseProgress fields and rate-based stuck detection from successive interval snapshots."""

from __future__ import annotations

from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.progress import ProgressTracker
from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import ErrorClass


def _interval(t: int, done: int, total: int, ops: int = 0, errors: int = 0) -> Snapshot:
    snap = Snapshot(start_ms=t, end_ms=t + 1000)
    if ops:
        snap.ops[(OpClass.PUT, 1)] = ops
        snap.nbytes[(OpClass.PUT, 1)] = ops * 100
    if errors:
        snap.errors[(OpClass.PUT, ErrorClass.NETWORK)] = errors
    snap.set_progress("a1", ProgressCounters(done, total, 0, phase_start_ms=0 + 10_000, at_ms=t + 1000))
    return snap


def test_fields_from_counters() -> None:
    tracker = ProgressTracker(stuck_intervals=3, source="a1")
    tracker.update(_interval(10_000, 100, 1000, ops=100))
    p = tracker.update(_interval(11_000, 300, 1000, ops=200, errors=2))
    assert (p.objects_done, p.objects_total, p.objects_remaining) == (300, 1000, 700)
    assert p.progress_rate == 200.0
    assert p.current_throughput == 200.0
    assert p.errors_encountered == 2
    assert p.phase_start_time_ms == 10_000
    assert p.phase_elapsed_ms == 2000
    assert not p.is_stuck


def test_stuck_after_k_idle_intervals_and_recovers() -> None:
    tracker = ProgressTracker(stuck_intervals=3, source="a1")
    tracker.update(_interval(0, 10, 100, ops=10))
    states = [tracker.update(_interval(1000 * i, 10, 100, errors=1)).is_stuck for i in range(1, 5)]
    assert states == [False, False, True, True]
    assert tracker.current.stuck_reason.startswith("no progress for 4 consecutive intervals (")
    assert not tracker.update(_interval(6000, 11, 100, ops=1)).is_stuck


def test_duration_stage_uses_ops_as_progress_and_inactive_is_never_stuck() -> None:
    tracker = ProgressTracker(stuck_intervals=1, source="a1")
    p = tracker.update(_interval(0, 0, 0, ops=50))
    assert p.progress_rate == 50.0
    assert not p.is_stuck
    assert not tracker.update(_interval(1000, 0, 0), active=False).is_stuck
    assert tracker.update(_interval(2000, 0, 0), active=True).is_stuck
