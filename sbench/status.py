"""The status words of sbench, each stated once: a run's verdict, a stage's outcome, an agent's state.

STATUS.txt, summary.json, metadata.json, the console and the exit code speak of a run with `RunStatus`; the
stage lines of the console, summary.json's `stages`, the agents' stage results and the coordinator's barrier
bookkeeping speak of a stage with `StageStatus`; STATUS.txt's agent lines use `AgentState` (sai3's words).
"""

from __future__ import annotations

from enum import StrEnum


class RunStatus(StrEnum):
    """The run's verdict: only SUCCESS exits 0."""

    SUCCESS = "SUCCESS"
    FAILURE = "FAILURE"
    ABORTED = "ABORTED"


class StageStatus(StrEnum):
    """How a stage ended, on one agent or over all of them."""

    OK = "ok"
    #: the barrier released without some agents (majority, best effort): the rest went on
    DEGRADED = "degraded"
    FAILED = "failed"
    #: the stage ran past its `timeout_secs`
    TIMEOUT = "timeout"
    #: the run was interrupted (Ctrl-C, SIGTERM, `ray job stop`)
    ABORTED = "aborted"


class AgentState(StrEnum):
    """An agent's state at the end of the run, as STATUS.txt lists it."""

    IDLE = "Idle"
    RUNNING = "Running"
    COMPLETED = "Completed"
    FAILED = "Failed"
    DISCONNECTED = "Disconnected"
    ABORTING = "Aborting"
    ABORTED = "Aborted"
