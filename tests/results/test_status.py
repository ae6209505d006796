"""STATUS.txt layout (reference §2.5) with sbench's stuck and error lines."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sbench.results.status import AgentStatus, write_status
from sbench.status import AgentState, RunStatus

TS = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def test_success(tmp_path: Path) -> None:
    agents = [AgentStatus("agent-1", AgentState.COMPLETED), AgentStatus("agent-2", AgentState.COMPLETED)]
    text = write_status(
        tmp_path / "STATUS.txt",
        RunStatus.SUCCESS,
        agents,
        total_operations=1234,
        total_errors=0,
        timestamp=TS,
    ).read_text()
    assert text.splitlines() == [
        "TEST STATUS: SUCCESS",
        "Timestamp: 2026-01-02T03:04:05+00:00",
        "",
        "=== Summary ===",
        "Total agents: 2",
        "Completed: 2",
        "Failed: 0",
        "Disconnected: 0",
        "Disconnect/Reconnect Count: 0",
        "Aborting: 0",
        "Stuck: 0",
        "Total operations: 1234",
        "Total errors: 0",
        "",
        "=== Agent Details ===",
        "agent-1: Completed",
        "agent-2: Completed",
    ]


def test_failure_lists_reasons_and_stuck_agents(tmp_path: Path) -> None:
    agents = [
        AgentStatus("agent-1", AgentState.COMPLETED),
        AgentStatus("agent-2", AgentState.FAILED, reason="error budget exceeded: 101 errors > 100"),
        AgentStatus(
            "agent-3",
            AgentState.RUNNING,
            stuck=True,
            stuck_reason="no progress for 10 intervals",
            reconnects=2,
        ),
    ]
    text = write_status(
        tmp_path / "STATUS.txt",
        "FAILURE",
        agents,
        total_operations=10,
        total_errors=101,
        reason="agent-2 failed",
        timestamp=TS,
    ).read_text()
    lines = text.splitlines()
    assert lines[0] == "TEST STATUS: FAILURE"
    assert "Failed: 1" in lines
    assert "Stuck: 1" in lines
    assert "Disconnect/Reconnect Count: 2" in lines
    assert "agent-2: Failed (error budget exceeded: 101 errors > 100)" in lines
    assert "agent-3: Running [STUCK: no progress for 10 intervals]" in lines
    fa = lines.index("=== Failure Analysis ===")
    assert lines[fa + 1] == "Reason: agent-2 failed"
    assert "- agent-2: Failed: error budget exceeded: 101 errors > 100" in lines[fa:]
    assert "- agent-3: Running: no progress for 10 intervals" in lines[fa:]


def test_aborted_has_failure_analysis(tmp_path: Path) -> None:
    text = write_status(
        tmp_path / "S.txt",
        RunStatus.ABORTED,
        [AgentStatus("standalone", AgentState.ABORTED, reason="interrupted (Ctrl-C)")],
        total_operations=5,
        total_errors=0,
        reason="interrupted (Ctrl-C)",
        timestamp=TS,
    ).read_text()
    assert text.startswith("TEST STATUS: ABORTED\n")
    assert "Aborting: 1" in text
    assert "Reason: interrupted (Ctrl-C)" in text
