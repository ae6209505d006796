"""The progress gauges an agent puts into every interval snapshot, keyed by agent id: a leaf of metrics, so
the snapshot can carry them and the progress tracker (metrics.progress) can read snapshots."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass(slots=True)
class ProgressCounters:
    """One agent's stage progress at `at_ms` (gauges, not deltas: the latest report wins on merge)."""

    objects_done: int = 0
    #: 0 when the stage has no object target (duration-driven workload).
    objects_total: int = 0
    objects_deleted: int = 0
    phase_start_ms: int = 0
    at_ms: int = 0
    stage: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProgressCounters:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    @classmethod
    def combine(cls, parts: list[ProgressCounters]) -> ProgressCounters:
        """Sum over agents (the stage-wide view)."""
        starts = [p.phase_start_ms for p in parts if p.phase_start_ms]
        stages = {p.stage for p in parts if p.stage}
        return cls(
            objects_done=sum(p.objects_done for p in parts),
            objects_total=sum(p.objects_total for p in parts),
            objects_deleted=sum(p.objects_deleted for p in parts),
            phase_start_ms=min(starts) if starts else 0,
            at_ms=max((p.at_ms for p in parts), default=0),
            stage=stages.pop() if len(stages) == 1 else "",
        )
