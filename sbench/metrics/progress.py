"""Stage progress of an agent and the seed's PhaseProgress fields (seed item 6), with rate-based stuck
detection (seed item 15).

Agents put `ProgressCounters` (their own gauges, keyed by agent id) into every interval snapshot; a
`ProgressTracker` per agent on the coordinator turns successive snapshots into a `PhaseProgress`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, fields
from typing import Any

from sbench.metrics.snapshot import Snapshot

DEFAULT_STUCK_INTERVALS = 10


@dataclass(slots=True)
class PhaseProgress:
    """The rich fields sai3's QueryAgentStatus left at zero, computed from real counters."""

    phase_start_time_ms: int = 0
    objects_total: int = 0
    objects_done: int = 0
    objects_deleted: int = 0
    objects_remaining: int = 0
    errors_encountered: int = 0
    #: ops/s over the last interval
    current_throughput: float = 0.0
    phase_elapsed_ms: int = 0
    #: progress units (objects, or ops when the stage has no object target) per second, last interval
    progress_rate: float = 0.0
    is_stuck: bool = False
    stuck_reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Flat fields (the coordinator sends every agent's view five times a second: no deep copy)."""
        return {name: getattr(self, name) for name in _PHASE_FIELDS}


_PHASE_FIELDS = tuple(f.name for f in fields(PhaseProgress))


class ProgressTracker:
    """Follows one agent (or the whole stage) through successive interval snapshots.

    Stuck = no progress (objects done/deleted and ops both unchanged) for `stuck_intervals` consecutive
    updates while the stage is active. Errors are not progress: an agent failing every op is stuck too. This
    is the engine's definition of progress (engine.stall): the flag here is the early, non-fatal warning, and
    the engine fails the stage as stalled once `stall_timeout` passes without progress.
    """

    def __init__(self, stuck_intervals: int = DEFAULT_STUCK_INTERVALS, source: str | None = None) -> None:
        if stuck_intervals < 1:
            raise ValueError("stuck_intervals must be >= 1")
        self.stuck_intervals = stuck_intervals
        self.source = source
        self._errors = 0
        self._idle = 0
        self._idle_since_ms = 0
        self._last_done = 0
        self.current = PhaseProgress()

    def reset(self) -> None:
        """Start of a new stage."""
        self._errors = 0
        self._idle = 0
        self._idle_since_ms = 0
        self._last_done = 0
        self.current = PhaseProgress()

    def update(self, interval: Snapshot, *, active: bool = True, now_ms: int | None = None) -> PhaseProgress:
        """Fold one interval snapshot in and return the updated fields."""
        now_ms = now_ms if now_ms is not None else (interval.end_ms or int(time.time() * 1000))
        counters = interval.progress_for(self.source)
        ops = interval.total_ops()
        seconds = interval.duration_s
        self._errors += interval.errors_total()
        done = counters.objects_done + counters.objects_deleted
        advanced = done - self._last_done if done >= self._last_done else done
        self._last_done = done
        units = advanced if counters.objects_total else ops
        moved = advanced > 0 or ops > 0
        if moved or not active:
            self._idle = 0
            self._idle_since_ms = 0
        else:
            self._idle += 1
            if not self._idle_since_ms:
                self._idle_since_ms = interval.start_ms or now_ms
        start = counters.phase_start_ms or self.current.phase_start_time_ms or interval.start_ms
        stuck = active and self._idle >= self.stuck_intervals
        reason = ""
        if stuck:
            idle_s = (now_ms - self._idle_since_ms) / 1000 if self._idle_since_ms else 0.0
            where = f" in stage {counters.stage!r}" if counters.stage else ""
            reason = f"no progress for {self._idle} consecutive intervals ({idle_s:.0f} s){where}"
        total = counters.objects_total
        self.current = PhaseProgress(
            phase_start_time_ms=start,
            objects_total=total,
            objects_done=counters.objects_done,
            objects_deleted=counters.objects_deleted,
            objects_remaining=max(0, total - counters.objects_done - counters.objects_deleted)
            if total
            else 0,
            errors_encountered=self._errors,
            current_throughput=ops / seconds if seconds > 0 else 0.0,
            phase_elapsed_ms=max(0, now_ms - start) if start else 0,
            progress_rate=units / seconds if seconds > 0 else 0.0,
            is_stuck=stuck,
            stuck_reason=reason,
        )
        return self.current
