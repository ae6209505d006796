"""The fleet: what runs a stage's work for the driver, in this process or on Ray agents.

The driver (run.driver) knows nothing of threads, actors or tasks; it asks its fleet to start, to run one
stage on some of its agents, and to stop. The in-process fleet (run.inprocess) is a degenerate distributed
one, as in Locust's runners: one agent, whose barrier is its own outcome. The Ray fleet
(cluster.rayfleet) has agent actors, a coordinator and a metadata cache. Both hand back the same
`StageRun` records and feed the same interval hook, so everything after them (verdict, live display, perf
logs, result files, final report) is written once.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from sbench.control import RunControl
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.runlog import OpLogReport
from sbench.plan.stages import StagePlan
from sbench.run.stagerecord import StageRun

#: the interval hook: the stage's merged intervals and each agent's own, as they arrive
OnIntervals = Callable[[list[Snapshot], dict[str, list[Snapshot]]], None]


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """An agent as the driver and the result files name it."""

    agent_id: str
    node_ip: str


@dataclass(frozen=True, slots=True)
class StageCall:
    """What the driver gives a fleet for one stage."""

    plan: StagePlan
    #: the agents that take part (an agent a majority barrier dropped earlier sits out)
    agents: list[str]
    on_intervals: OnIntervals
    #: a line for the console and console_log.txt
    say: Callable[[str], None]


class Fleet(Protocol):
    """What the driver needs from whoever runs the work."""

    #: True for Ray agents: metadata.json says `distributed`, the merged perf log is the `controller`'s
    distributed: bool

    def start(self, control: RunControl, say: Callable[[str], None], results_path: Path) -> list[AgentInfo]:
        """Bring the agents up (the run's stop reaches them through `control`; their shared state may live
        under `results_path`); the agents in order."""
        ...

    def run_stage(self, call: StageCall) -> StageRun:
        """Run one stage and return once it is decided; never raises for storage or agent failures."""
        ...

    def describe(self) -> str:
        """The console's line about where the agents run ("" when there is nothing to say)."""
        ...

    def verify(self) -> tuple[bool, list[str]]:
        """`--verify`: whether every prepared object is there and readable, and what to print."""
        ...

    def dropped(self) -> dict[str, str]:
        """Agents the fleet no longer runs stages on, and why (majority barriers drop failed agents)."""
        ...

    def metadata(self) -> dict[str, Any]:
        """What metadata.json records about the fleet (Ray: connection, clock offsets, events...)."""
        ...

    def open_op_log(self, path: Path, agent_dir: Callable[[str], Path]) -> None:
        """Capture every storage call of the agents from now on, for the op-log at `path` (`agent_dir`: an
        agent's results folder, where a distributed run keeps each agent's own log)."""
        ...

    def close_op_log(self) -> OpLogReport:
        """End the capture and write the run's op-log (merged over agents, sorted by start)."""
        ...

    def stop(self) -> None:
        """Tear everything down; safe on every exit path and more than once."""
        ...

    def kill(self) -> None:
        """A second Ctrl-C: end what can be ended at once, without waiting for anything."""
        ...
