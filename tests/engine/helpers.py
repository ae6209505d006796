"""Shared pieces of the engine tests: configs from YAML text, prepared files, a probing file backend, and one
agent's prepare and cleanup stages run as the in-process fleet runs them.

ProbeBackend is the real file:// backend with two test hooks around each call: it counts calls in flight per
method (to check per-op concurrency limits) and can pause every call during a time window (an injected
server stall, which no real component can produce on demand).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sbench.config.loader import load_config_text
from sbench.config.models import Completion, StageType
from sbench.control import RunControl
from sbench.engine.backends import BackendSet
from sbench.engine.leftovers import Leftover, from_report
from sbench.engine.state import RunState
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import prepare_params
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.run.fleet import StageCall
from sbench.run.inprocess import InProcessFleet
from sbench.run.objectbook import ObjectState
from sbench.run.shardstages import Space, StageAgent
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus
from sbench.storage.file import FileBackend
from sbench.storage.options import BackendOptions
from sbench.storage.uri import parse_uri


def config_from(text: str) -> Any:
    return load_config_text(text).config


def make_files(directory: Path, names: list[str], size: int = 1024) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name in names:
        (directory / name).write_bytes(b"x" * size)


class ProbeBackend(FileBackend):
    """file:// backend that measures concurrency per method and can stall all calls in a window."""

    def __init__(self, root_uri: str, *, op_sleep_s: float = 0.0) -> None:
        super().__init__(parse_uri(root_uri), BackendOptions())
        self.op_sleep_s = op_sleep_s
        self._lock = threading.Lock()
        self.in_flight: dict[str, int] = {}
        self.max_in_flight: dict[str, int] = {}
        self.calls: dict[str, list[str]] = {}
        self.stall_from = 0.0
        self.stall_until = 0.0

    def stall(self, start_in_s: float, length_s: float) -> None:
        """Every call that starts inside [now+start, now+start+length) waits until the window ends."""
        self.stall_from = time.monotonic() + start_in_s
        self.stall_until = self.stall_from + length_s

    def _enter(self, name: str, key: str) -> None:
        with self._lock:
            n = self.in_flight.get(name, 0) + 1
            self.in_flight[name] = n
            self.max_in_flight[name] = max(self.max_in_flight.get(name, 0), n)
            self.calls.setdefault(name, []).append(key)
        now = time.monotonic()
        if self.stall_from <= now < self.stall_until:
            time.sleep(self.stall_until - now)
        if self.op_sleep_s:
            time.sleep(self.op_sleep_s)

    def _exit(self, name: str) -> None:
        with self._lock:
            self.in_flight[name] -= 1

    def get(self, key: str):  # type: ignore[no-untyped-def]
        self._enter("get", key)
        try:
            return super().get(key)
        finally:
            self._exit("get")

    def stat(self, key: str):  # type: ignore[no-untyped-def]
        self._enter("stat", key)
        try:
            return super().stat(key)
        finally:
            self._exit("stat")

    def put(self, key: str, data) -> None:  # type: ignore[no-untyped-def]
        self._enter("put", key)
        try:
            super().put(key, data)
        finally:
            self._exit("put")

    def delete(self, key: str) -> None:
        self._enter("delete", key)
        try:
            super().delete(key)
        finally:
            self._exit("delete")


def backends_with(config: Any, uri: str, backend: Any) -> BackendSet:
    """A BackendSet whose `uri` root is served by `backend`."""
    bs = BackendSet(config)
    bs.adopt(uri, backend)
    return bs


@dataclass
class StageDone:
    """What one prepare or cleanup stage of a single agent did, read from its StageRun."""

    run: StageRun

    @property
    def result(self) -> AgentStageResult:
        (result,) = self.run.results.values()
        return result

    def _count(self, name: str) -> int:
        return int(self.result.extra.get(name, 0))

    created = property(lambda self: self._count("created"))
    existed = property(lambda self: self._count("existed"))
    failed = property(lambda self: self._count("failed"))
    deleted = property(lambda self: self._count("deleted"))
    put_deleted = property(lambda self: self._count("put_deleted"))
    missing = property(lambda self: self._count("missing"))

    @property
    def snapshot(self) -> Snapshot:
        return self.run.merged

    @property
    def status(self) -> StageStatus:
        return self.result.status

    @property
    def details(self) -> dict[str, Any]:
        return self.result.extra

    @property
    def ok(self) -> bool:
        return self.status is StageStatus.OK

    @property
    def reason(self) -> str:
        """Why the stage failed ("" when it did not)."""
        return "" if self.ok else self.result.reason

    @property
    def aborted(self) -> bool:
        return self.run.aborted

    @property
    def notes(self) -> list[str]:
        return self.run.notes

    @property
    def leftovers(self) -> list[Leftover]:
        return from_report(self.run.left_behind)


class OneAgent:
    """One agent's prepare and cleanup stages as the in-process fleet runs them (shard jobs on threads, its
    own object book), keeping what one stage hands the next (`state`: the prepared records)."""

    def __init__(self, config: Any, *, run_id: str = "run", cleanup_only: bool = False) -> None:
        self.fleet = InProcessFleet(config, run_id, cleanup_only=cleanup_only)
        self.lines: list[str] = []

    @property
    def state(self) -> RunState:
        return self.fleet.state

    @property
    def identity(self) -> AgentIdentity:
        return self.fleet.identity

    def _stage(self, kind: StageType, control: RunControl | None, plan: StagePlan | None) -> StageDone:
        self.fleet.control = control or RunControl()
        plan = plan or StagePlan(kind.value, 1, kind, Completion.TASKS_DONE, PhaseBarrier())
        call = StageCall(plan, [self.identity.agent_id], lambda aggregate, per_agent: None, self.lines.append)
        return StageDone(self.fleet.run_stage(call))

    def prepare(self, control: RunControl | None = None, plan: StagePlan | None = None) -> StageDone:
        return self._stage(StageType.PREPARE, control, plan)

    def cleanup(self, control: RunControl | None = None, plan: StagePlan | None = None) -> StageDone:
        return self._stage(StageType.CLEANUP, control, plan)

    def record_created(self, entry: int = 0) -> None:
        """Record every object of prepare entry `entry` as created by this run, as its prepare would."""
        params = prepare_params(self.fleet.config, self.identity)[entry]
        agent = StageAgent(self.identity.agent_id)
        space = Space(f"{agent.agent_id}/entry-{entry}", params, [agent], True, {})
        space.open(self.fleet.book)
        self.fleet.book.mark(space.scope, [(0, params.total)], ObjectState.CREATED)
