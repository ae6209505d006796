"""STATUS.txt (reference §2.5): the run's verdict, agent states and, on failure, why.

sai3 writes it for distributed runs only and has no stuck detection; sbench writes it for every run and adds
`Stuck`, `Total errors` and per-agent stuck flags (seed item 15).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path


class RunStatus(StrEnum):
    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    ABORTED = "ABORTED"


class AgentState(StrEnum):
    IDLE = "Idle"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DISCONNECTED = "Disconnected"
    ABORTING = "Aborting"
    ABORTED = "Aborted"


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


def format_status(
    status: RunStatus | str,
    agents: Sequence[AgentStatus],
    *,
    total_operations: int,
    total_errors: int,
    reason: str = "",
    timestamp: datetime | None = None,
    unfinished_operations: int = 0,
) -> str:
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
    unfinished_operations: int = 0,
) -> Path:
    path.write_text(
        format_status(
            status,
            agents,
            total_operations=total_operations,
            total_errors=total_errors,
            reason=reason,
            timestamp=timestamp,
            unfinished_operations=unfinished_operations,
        ),
        encoding="utf-8",
    )
    return path
