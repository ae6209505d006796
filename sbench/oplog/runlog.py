"""A run's op-log as the driver sees it: where it goes, who the client is, and what summary.json says.

Where: `--op-log PATH` (beats the config's `op_log_path`). A relative path is placed in the results
directory, so the log stays with the run it describes (and survives `ray job submit`, whose working
directory Ray deletes); an absolute path is used as it is. In a distributed run each agent's own log is kept
too, as `agents/<id>/op_log.tsv[.zst]` in the results directory, next to its other per-agent files.

Who: the `client_id` column is the agent id: `standalone` in process (or `SBENCH_CLIENT_ID` when set, as
sai3's SAI3_CLIENT_ID), the agent's id on Ray.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbench.oplog.agentlog import LogSummary
from sbench.oplog.writer import compressed_name

CLIENT_ID_ENV = "SBENCH_CLIENT_ID"


def op_log_path(cli: Path | None, configured: str | None, results_dir: Path) -> Path | None:
    """The run's op-log file, or None when no log is asked for (see the module docstring)."""
    chosen = cli if cli is not None else (Path(os.path.expanduser(configured)) if configured else None)
    if chosen is None:
        return None
    return chosen if chosen.is_absolute() else results_dir / chosen


def in_process_client_id(agent_id: str) -> str:
    return os.environ.get(CLIENT_ID_ENV) or agent_id


def agent_log_name(final: Path) -> str:
    """An agent's own log name: compressed as the run's log is."""
    return "op_log.tsv.zst" if compressed_name(final) else "op_log.tsv"


@dataclass
class ClockOffset:
    """An agent's clock against the driver's, measured NTP-style at a stage's start."""

    stage: str
    agent_id: str
    #: agent clock minus driver clock; subtracted from the agent's times
    offset_us: float
    #: half the shortest probe's round trip: the offset is right within this
    uncertainty_us: float
    same_node: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage,
            "agent_id": self.agent_id,
            "offset_us": round(self.offset_us, 1),
            "uncertainty_us": round(self.uncertainty_us, 1),
            "same_node": self.same_node,
        }


@dataclass
class OpLogReport:
    """What summary.json's `op_log` says: the log, its rows, each agent's log and capture figures, the
    clock offsets applied, and anything that went wrong (which never fails the run)."""

    path: str
    rows: int = 0
    agents: list[LogSummary] = field(default_factory=list)
    clock: list[ClockOffset] = field(default_factory=list)
    merge_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "merge_s": round(self.merge_s, 3),
            "agents": [a.to_dict() for a in self.agents],
            "clock_offsets": [c.to_dict() for c in self.clock],
            "problems": list(self.problems),
        }

    def lines(self) -> list[str]:
        """The console's account of the log."""
        out = [f"op-log: {self.rows:,} rows in {self.path}"]
        waits = sum(a.backpressure_waits for a in self.agents)
        if waits:
            secs = sum(a.backpressure_s for a in self.agents)
            out.append(
                f"op-log: workers waited {waits:,} times ({secs:.2f} s in all) for the log writer to catch up"
            )
        late = sum(a.late_calls for a in self.agents)
        if late:
            out.append(f"op-log: {late:,} calls ended after their agent's log was closed (not logged)")
        out.extend(f"op-log problem: {p}" for p in self.problems)
        return out

    @classmethod
    def of_one(cls, summary: LogSummary) -> OpLogReport:
        """The report of a run with one agent, whose log is the run's log."""
        problems = [f"{summary.client_id}: {summary.failed}"] if summary.failed else []
        if summary.unwritten:
            problems.append(f"{summary.client_id}: {summary.unwritten:,} calls could not be written")
        return cls(summary.path, summary.rows, [summary], problems=problems)
