"""`populate_ledger.tsv` (sai3 HEAD v0.8.90, reference §1.7): what each prepare stage created, found
existing and failed, one row per agent and, for a distributed run, an `AGGREGATE` row per stage.

sai3's columns come first, in its order; sbench adds `objects_failed` at the end (a prepare that failed part
of its objects says so in the same row, and scripts that read sai3's columns by position still work). The
counts are the prepare stage's own per-agent tallies (run.shardstages), the bytes its PUT counters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.results.atomic import write_text_atomic

LEDGER_FILE = "populate_ledger.tsv"
COLUMNS = (
    "timestamp",
    "test_name",
    "agent_id",
    "stage",
    "objects_created",
    "objects_existed",
    "total_objects",
    "total_bytes",
    "avg_bytes",
    "wall_seconds",
    "ops_per_sec",
    "objects_failed",
)
AGGREGATE = "AGGREGATE"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One agent's share of one prepare stage."""

    agent_id: str
    stage: str
    created: int
    existed: int
    failed: int
    #: the agent's prepare PUT counters (bytes written by the objects it created)
    snapshot: Snapshot
    wall_seconds: float


def _row(timestamp: str, test_name: str, agent_id: str, stage: str, created: int, existed: int,
         failed: int, nbytes: int, wall: float) -> str:
    avg = nbytes / created if created else 0.0
    rate = created / wall if wall > 0 else 0.0
    cells = (timestamp, test_name, agent_id, stage, created, existed, created + existed, nbytes,
             f"{avg:.0f}", f"{wall:.3f}", f"{rate:.2f}", failed)
    return "\t".join(str(c) for c in cells)


def ledger_text(test_name: str, entries: Iterable[LedgerEntry], *, aggregate: bool,
                now: float | None = None) -> str:
    """The ledger's text: a header, then per stage its agents' rows and (with `aggregate`) their sum, whose
    wall time is the longest agent's (agents run a stage at the same time)."""
    moment = datetime.fromtimestamp(now) if now is not None else datetime.now()
    timestamp = moment.astimezone().isoformat(timespec="seconds")
    lines = ["\t".join(COLUMNS)]
    by_stage: dict[str, list[LedgerEntry]] = {}
    for entry in entries:
        by_stage.setdefault(entry.stage, []).append(entry)
    for stage, rows in by_stage.items():
        for e in rows:
            put = e.snapshot.total_bytes(OpClass.PUT)
            lines.append(_row(timestamp, test_name, e.agent_id, stage, e.created, e.existed, e.failed, put,
                              e.wall_seconds))
        if aggregate:
            lines.append(_row(
                timestamp, test_name, AGGREGATE, stage,
                sum(e.created for e in rows), sum(e.existed for e in rows), sum(e.failed for e in rows),
                sum(e.snapshot.total_bytes(OpClass.PUT) for e in rows),
                max((e.wall_seconds for e in rows), default=0.0),
            ))
    return "\n".join(lines) + "\n"


def write_ledger(path: Path, test_name: str, entries: Iterable[LedgerEntry], *, aggregate: bool) -> Path:
    return write_text_atomic(path, ledger_text(test_name, entries, aggregate=aggregate))
