"""The rules a stage must pass besides its own status: stated once here, applied by both drivers.

A stage can end "ok" by its own account (the duration ran out, the barrier released it) and still have
measured nothing worth reporting. Both the in-process runner and the Ray driver call `judge_stage` on the
stage's merged snapshot (all agents) and its stuck flags; every broken rule gives a reason that names the
rule and its figures, and the stage fails with them:

- **no success**: an execute, hybrid or prepare stage in which no op succeeded fails (a workload stage that
  attempted nothing fails too: it measured nothing). A prepare stage that had nothing to create is fine.
- **success ratio**: succeeded ops / attempted ops (ops still in flight at the stage's end are not attempts)
  below `error_handling.min_success_ratio` fails an execute, hybrid or prepare stage: a benchmark whose
  failed ops are a large share measures the storage's error path, not its normal one. 0 disables the rule.
- **stuck**: a stage that ends with an agent flagged stuck (no progress for `stuck_intervals` intervals) is
  not a success, whatever its barrier decided; the agent is named with the reason it was flagged.

Failed ops are counted once per op (its final failure), so a throttled try that a retry turned into a
success does not count against the ratio.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sbench.metrics.snapshot import Snapshot

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
) -> list[str]:
    """The reasons this stage fails by the rules above (empty: it stands). `snapshot` is the stage's merged
    snapshot, `stuck` maps each agent that ended the stage stuck to the reason it was flagged."""
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
    for agent_id, why in sorted((stuck or {}).items()):
        reasons.append(f"agent {agent_id} ended the stage STUCK ({why or 'no progress'})")
    return reasons
