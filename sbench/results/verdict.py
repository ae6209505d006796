"""The rules a stage must pass besides its own status: stated once here, applied by the run driver.

A stage can end "ok" by its own account (the duration ran out, the barrier released it) and still have
measured nothing worth reporting. The run driver (through run.stageverdict) calls `judge_stage` on the
stage's merged snapshot (all agents) and its stuck flags; every broken rule gives a reason that names the
rule and its figures, and the stage fails with them:

- **no success**: an execute, hybrid or prepare stage in which no op succeeded fails (a workload stage that
  attempted nothing fails too: it measured nothing). A prepare stage that had nothing to create is fine.
- **success ratio**: succeeded ops / attempted ops (ops still in flight at the stage's end are not attempts)
  below `error_handling.min_success_ratio` fails an execute, hybrid or prepare stage: a benchmark whose
  failed ops are a large share measures the storage's error path, not its normal one. 0 disables the rule.
- **outage**: an execute, hybrid or prepare stage in which the storage was seen failing, with no op
  succeeding, for longer than `error_handling.max_outage` fails, however few errors it counted. During an
  outage the error backoff (and the retry waits) keep the failed-op count low: 28 errors in 10 s of a dead
  server stay far under any ratio, so the ratio rule alone would call that run a success. `OutageWatch`
  follows the stage's aggregate perf-log intervals (the ones both drivers already produce, merged over
  agents on Ray). An outage is a run of intervals in which ops failed (or were retried) and none
  succeeded, together with the interval just before it when that one saw failures among its successes (the
  store died inside it); the next interval with a success ends it. It is measured in whole intervals, from
  the start of its first interval to the end of its last failing one. Intervals with no completed
  op at all between two failing ones (workers asleep in the error backoff or a retry wait) belong to it;
  idle intervals after its last failure do not, since nothing was learnt about the store in them (a long
  op still in flight, or the backoff of a store that came back). So a blip that the 5 s error backoff
  sleeps through is as long as the failures seen, while a dead store, probed again after every backoff,
  shows its whole outage. 0 disables the rule.
- **stuck**: a stage that ends with an agent flagged stuck (no progress for `stuck_intervals` intervals) is
  not a success, whatever its barrier decided; the agent is named with the reason it was flagged.

Failed ops are counted once per op (its final failure), so a throttled try that a retry turned into a
success does not count against the ratio.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sbench.metrics.snapshot import Snapshot
from sbench.storage.base import ErrorClass

#: stage types whose ops are the benchmark's own measurements (the no-success and ratio rules apply)
MEASURED_TYPES = frozenset({"execute", "hybrid", "prepare"})
_WORKLOAD_TYPES = frozenset({"execute", "hybrid"})


@dataclass(frozen=True, slots=True)
class StageCounts:
    """Ops that succeeded and ops that finally failed in a stage."""

    succeeded: int
    failed: int

    @classmethod
    def of(cls, snapshot: Snapshot) -> StageCounts:
        return cls(snapshot.total_ops(), snapshot.errors_total())

    @property
    def attempts(self) -> int:
        return self.succeeded + self.failed

    @property
    def ratio(self) -> float:
        return self.succeeded / self.attempts if self.attempts else 0.0


@dataclass(frozen=True, slots=True)
class Outage:
    """A stretch of a stage in which ops failed and none succeeded: where it began (seconds after the
    stage's first interval began), how long failures were seen, what failed in it and its first error."""

    start_s: float
    length_s: float
    failed: int
    retries: int
    #: (error class, message) of the first failed op or try in it; None when only retries were recorded
    first_error: tuple[str, str] | None = None

    def describe(self) -> str:
        """The outage in words, for the stage's reason (STATUS.txt, summary.json, console)."""
        first = (
            f"first error ({self.first_error[0]}): {self.first_error[1]}"
            if self.first_error
            else "no error message recorded"
        )
        return (
            f"no op succeeded for {self.length_s:.1f} s from {self.start_s:.1f} s into the stage "
            f"({self.failed:,} failed ops, {self.retries:,} retries in it); {first}"
        )

    def to_dict(self) -> dict[str, Any]:
        """For summary.json's stage entry."""
        kind, message = self.first_error or ("", "")
        return {
            "start_offset_secs": round(self.start_s, 3),
            "length_secs": round(self.length_s, 3),
            "failed_ops": self.failed,
            "retries": self.retries,
            "first_error": {"kind": kind, "message": message} if self.first_error else None,
        }


class _Open:
    """The outage being followed: where it starts, where its last failure was seen, what failed in it."""

    __slots__ = ("end_ms", "failed", "first", "retries", "start_ms")

    def __init__(self, start_ms: int) -> None:
        self.start_ms = start_ms
        self.end_ms = start_ms
        self.failed = 0
        self.retries = 0
        self.first: tuple[int, ErrorClass, str] | None = None

    def take(self, interval: Snapshot) -> None:
        """Count the failures of `interval` (and keep the earliest error message)."""
        self.failed += interval.errors_total()
        self.retries += interval.retries_total()
        for kind, at_ms, message in interval.first_error_list():
            if self.first is None or at_ms < self.first[0]:
                self.first = (at_ms, kind, message)


class OutageWatch:
    """Follows one stage's aggregate intervals, in order, and keeps its longest outage (module docstring).

    Fed once per perf-log interval by whichever driver runs the stage; keeps a few counters, never the
    snapshots, so a day-long stage costs nothing."""

    def __init__(self) -> None:
        #: start of the stage's first interval: outages are placed relative to it
        self.stage_start_ms: int | None = None
        self.longest: Outage | None = None
        self._open: _Open | None = None
        #: the failures of the last interval that also saw successes: where an outage that follows began
        self._lead: _Open | None = None

    def add(self, interval: Snapshot) -> None:
        """One aggregate interval of the stage (intervals arrive in time order)."""
        if self.stage_start_ms is None:
            self.stage_start_ms = interval.start_ms
        failing = bool(interval.errors_total() or interval.retries_total())
        if interval.total_ops():
            self._close()
            self._lead = None
            if failing:  # the store may have died inside this interval
                self._lead = _Open(interval.start_ms)
                self._lead.take(interval)
            return
        if not failing:
            return  # idle: part of an outage only if another failure follows (module docstring)
        if self._open is None:
            self._open = self._lead or _Open(interval.start_ms)
            self._lead = None
        self._open.take(interval)
        self._open.end_ms = max(self._open.end_ms, interval.end_ms)

    def add_all(self, intervals: Iterable[Snapshot]) -> None:
        for interval in intervals:
            self.add(interval)

    def result(self) -> Outage | None:
        """The longest outage of the stage so far, one still open at the last interval included."""
        self._close()
        return self.longest

    def _close(self) -> None:
        current, self._open = self._open, None
        if current is None:
            return
        origin = self.stage_start_ms if self.stage_start_ms is not None else current.start_ms
        outage = Outage(
            start_s=max(0, current.start_ms - origin) / 1000,
            length_s=max(0, current.end_ms - current.start_ms) / 1000,
            failed=current.failed,
            retries=current.retries,
            first_error=(current.first[1].value, current.first[2]) if current.first else None,
        )
        if self.longest is None or outage.length_s > self.longest.length_s:
            self.longest = outage


def _first_error(snapshot: Snapshot) -> str:
    first = snapshot.first_error_list()
    if not first:
        return "no error message recorded"
    kind, _at, message = first[0]
    return f"first error ({kind.value}): {message}"


def _by_class(snapshot: Snapshot) -> str:
    return ", ".join(f"{k.value}={n:,}" for k, n in sorted(snapshot.errors_by_class().items()))


def judge_stage(
    stage_type: str,
    snapshot: Snapshot,
    *,
    min_success_ratio: float,
    stuck: Mapping[str, str] | None = None,
    outage: Outage | None = None,
    max_outage: float = 0.0,
) -> list[str]:
    """The reasons this stage fails by the rules above (empty: it stands). `snapshot` is the stage's merged
    snapshot, `stuck` maps each agent that ended the stage stuck to the reason it was flagged, `outage` is
    the stage's longest outage (`OutageWatch.result()`), judged against `max_outage` seconds."""
    reasons: list[str] = []
    if stage_type in MEASURED_TYPES:
        counts = StageCounts.of(snapshot)
        if counts.succeeded == 0 and (counts.failed or stage_type in _WORKLOAD_TYPES):
            if counts.failed:
                reasons.append(
                    f"no operation succeeded: {counts.attempts:,} attempts, all failed "
                    f"({_by_class(snapshot)}); {_first_error(snapshot)}"
                )
            else:
                reasons.append("no operation succeeded: 0 attempts (the stage measured nothing)")
        elif counts.attempts and min_success_ratio > 0 and counts.ratio < min_success_ratio:
            reasons.append(
                f"success ratio {counts.ratio:.1%} is below error_handling.min_success_ratio "
                f"{min_success_ratio:g}: {counts.succeeded:,} of {counts.attempts:,} ops succeeded, "
                f"{counts.failed:,} failed ({_by_class(snapshot)}); {_first_error(snapshot)}"
            )
        if counts.succeeded and outage is not None and 0 < max_outage < outage.length_s:
            reasons.append(
                f"storage outage longer than error_handling.max_outage {max_outage:g} s: {outage.describe()}"
            )
    for agent_id, why in sorted((stuck or {}).items()):
        reasons.append(f"agent {agent_id} ended the stage STUCK ({why or 'no progress'})")
    return reasons
