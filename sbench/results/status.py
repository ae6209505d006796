"""STATUS.txt (reference §2.5): the run's verdict, agent states and, on failure, why.

sai3 writes it for distributed runs only and has no stuck detection; sbench writes it for every run and adds
`Stuck`, `Total errors`, per-agent stuck flags (seed item 15) and, whatever the verdict, the first message of
every error class each stage saw (a run that passed with a few throttled ops says what the store answered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sbench.metrics.snapshot import Snapshot
from sbench.results.atomic import write_text_atomic
from sbench.status import AgentState, RunStatus


@dataclass(slots=True)
class AgentStatus:
    agent_id: str
    state: AgentState
    reason: str = ""
    stuck: bool = False
    stuck_reason: str = ""
    reconnects: int = 0
    operations: int = 0
    errors: int = 0


@dataclass(frozen=True, slots=True)
class FirstError:
    """The first failed op of one error class in one stage: when, how many of that class, what was said."""

    stage: str
    kind: str
    count: int
    at_ms: int
    message: str

    @property
    def at(self) -> str:
        return datetime.fromtimestamp(self.at_ms / 1000).astimezone().isoformat(timespec="milliseconds")

    def line(self) -> str:
        head = f"stage {self.stage}: {self.kind} ({self.count:,} failed ops)"
        return f"{head}, first at {self.at}: {self.message}"


def first_errors_of(stage: str, snapshot: Snapshot) -> list[FirstError]:
    """The first error of every class in a stage's (merged) snapshot, earliest first."""
    counts = snapshot.errors_by_class()
    return [
        FirstError(stage, kind.value, counts.get(kind, 0), at_ms, message)
        for kind, at_ms, message in snapshot.first_error_list()
    ]


def format_status(
    status: RunStatus | str,
    agents: Sequence[AgentStatus],
    *,
    total_operations: int,
    total_errors: int,
    reason: str = "",
    timestamp: datetime | None = None,
    first_errors: Sequence[FirstError] = (),
    left_lines: Sequence[str] = (),
    unfinished_operations: int = 0,
) -> str:
    """The text of STATUS.txt; `left_lines` (objects cleanup left behind, a failure or a warning) get a
    section of their own whatever the status."""
    status = RunStatus(status)
    ts = (timestamp or datetime.now().astimezone()).isoformat(timespec="seconds")

    def count(state: AgentState) -> int:
        return sum(1 for a in agents if a.state is state)

    lines = [
        f"TEST STATUS: {status.value}",
        f"Timestamp: {ts}",
        "",
        "=== Summary ===",
        f"Total agents: {len(agents)}",
        f"Completed: {count(AgentState.COMPLETED)}",
        f"Failed: {count(AgentState.FAILED)}",
        f"Disconnected: {count(AgentState.DISCONNECTED)}",
        f"Disconnect/Reconnect Count: {sum(a.reconnects for a in agents)}",
        f"Aborting: {count(AgentState.ABORTING) + count(AgentState.ABORTED)}",
        f"Stuck: {sum(1 for a in agents if a.stuck)}",
        f"Total operations: {total_operations}",
        f"Total errors: {total_errors}",
    ]
    if unfinished_operations:
        lines.append(f"Unfinished operations (in flight when their stage ended): {unfinished_operations}")
    lines += [
        "",
        "=== Agent Details ===",
    ]
    for a in agents:
        line = f"{a.agent_id}: {a.state.value}"
        if a.reason:
            line += f" ({a.reason})"
        if a.stuck:
            line += f" [STUCK: {a.stuck_reason or 'no progress'}]"
        lines.append(line)
    if status is not RunStatus.SUCCESS:
        lines += ["", "=== Failure Analysis ===", f"Reason: {reason or 'not recorded'}"]
        for a in agents:
            if a.state in (AgentState.FAILED, AgentState.DISCONNECTED, AgentState.ABORTED) or a.stuck:
                detail = a.reason or a.stuck_reason or "no reason given"
                lines.append(f"- {a.agent_id}: {a.state.value}: {detail}")
    if first_errors:
        lines += ["", "=== First Error of Each Class ==="]
        lines += [e.line() for e in first_errors]
    if left_lines:
        lines += ["", "=== Objects Left Behind ===", *left_lines]
    return "\n".join(lines) + "\n"


def write_status(
    path: Path,
    status: RunStatus | str,
    agents: Sequence[AgentStatus],
    *,
    total_operations: int,
    total_errors: int,
    reason: str = "",
    timestamp: datetime | None = None,
    first_errors: Sequence[FirstError] = (),
    left_lines: Sequence[str] = (),
    unfinished_operations: int = 0,
) -> Path:
    text = format_status(
        status,
        agents,
        total_operations=total_operations,
        total_errors=total_errors,
        reason=reason,
        timestamp=timestamp,
        first_errors=first_errors,
        left_lines=left_lines,
        unfinished_operations=unfinished_operations,
    )
    return write_text_atomic(path, text)
