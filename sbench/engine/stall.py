"""Stall detection: a stage that made no progress for `stall_timeout` fails, naming the stage.

Progress has one definition everywhere (the workload, prepare, cleanup, listings, verify; in process and in
Ray agents and shard tasks): a storage op that succeeded, or an object accounted for (created, found existing,
deleted, listed). Failed ops, retries, backoff pauses and calls still waiting for an answer are not progress,
so a store that stops answering and a store that answers every call with an error both stall a stage. This is
the rule of the Ray coordinator's stuck flag too (`metrics.progress.ProgressTracker`, errors are not
progress): an agent is flagged stuck after `distributed.stuck_intervals` intervals without progress (a
warning, shown live and in STATUS.txt), and its stage fails as stalled after `stall_timeout`.

Each consumer feeds a cumulative count of progress units from counters it keeps anyway (never a call per op),
and asks the watch once per poll whether the count has stood still for too long.
"""

from __future__ import annotations

import time


class StallWatch:
    """Follows one cumulative progress count; `check` returns the failure reason once it stood still for
    `timeout_s` (None or 0: never). `what` names the stage or the part of it, for the reason."""

    def __init__(self, what: str, timeout_s: float | None, now: float | None = None) -> None:
        self.what = what
        self.timeout_s = float(timeout_s or 0.0)
        self._units = -1
        self._since = time.monotonic() if now is None else now

    def reset(self, now: float | None = None) -> None:
        """Idle by design (an open loop waiting for its next slot): the clock starts again."""
        self._since = time.monotonic() if now is None else now

    def check(self, units: int, now: float | None = None) -> str | None:
        """Feed the current cumulative count; the reason when the stage has stalled, else None."""
        now = time.monotonic() if now is None else now
        if units != self._units:
            self._units, self._since = units, now
            return None
        idle = now - self._since
        if self.timeout_s <= 0 or idle < self.timeout_s:
            return None
        return (
            f"{self.what} stalled: no progress for {idle:.0f} s (no storage op succeeded and no object was "
            f"created, found or deleted; stall_timeout is {self.timeout_s:g} s)"
        )
