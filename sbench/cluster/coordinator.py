"""The coordinator actor: stage barriers, synchronized starts, live stats, stuck/liveness checks, abort.

A named async actor, so hundreds of agent reports and the driver's polls interleave on one event loop without
threads. Per stage it holds a `StageMonitor`; a tick task (one per perf-log interval) merges the interval,
counts idle intervals for stuck detection, queries silent agents (heartbeat_interval x missed_threshold, then
`query_retries` status calls of `query_timeout` each with 1 s -> 10 s backoff), and checks `ray.nodes()` so an
agent on a removed node fails at once instead of after the heartbeat timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import ray
from ray.exceptions import RayActorError

from sbench.config.models import BarrierType
from sbench.plan.stages import PhaseBarrier
from sbench.run.barrier import AgentStageState, BarrierStatus
from sbench.run.monitor import AgentReport, Drained, StageEvent, StageMonitor
from sbench.status import StageStatus

#: Bounds of the lead time between "begin stage" and the synchronized start.
log = logging.getLogger(__name__)

MIN_START_LEAD_S = 0.1
MAX_START_LEAD_S = 0.5


def start_lead_s(n_agents: int) -> float:
    """Time for the driver to hand the stage to every agent before the common start (about 2 ms each)."""
    return min(MAX_START_LEAD_S, MIN_START_LEAD_S + 0.01 * n_agents)


def _now() -> tuple[float, int]:
    return time.monotonic(), time.time_ns() // 1_000_000


class CoordinatorActor:
    """Wrapped with `ray.remote` by `cluster.actors.create_coordinator`."""

    def __init__(self, run_id: str, interval_s: float, stuck_intervals: int) -> None:
        self.run_id = run_id
        self.interval_s = interval_s
        self.stuck_intervals = stuck_intervals
        self._agents: dict[str, Any] = {}
        self._agent_nodes: dict[str, str] = {}
        self._stage: StageMonitor | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._queries: dict[str, asyncio.Task[None]] = {}
        self._aborted = ""
        #: agents that sit out the rest of the run, with the reason (dead, or stragglers under majority)
        self._excluded: dict[str, str] = {}
        self._dead: set[str] = set()
        #: events of the stages already ended (the open stage keeps its own)
        self._past_events: list[StageEvent] = []
        self._stage_open = False
        #: stage index -> reason, for task-based stages told to stop (timeout, failed barrier)
        self._task_stops: dict[int, str] = {}
        #: stage index -> the interval reports of running shard tasks, until the driver takes them
        self._task_reports: dict[int, list[tuple[int, Any, int]]] = {}

    async def register(self, agents: dict[str, Any], nodes: dict[str, str]) -> None:
        """The agent handles (for abort and liveness queries) and the node id each one runs on."""
        self._agents = dict(agents)
        self._agent_nodes = dict(nodes)

    # -- stage life cycle --

    async def begin_stage(
        self,
        index: int,
        name: str,
        barrier: PhaseBarrier,
        participants: list[str],
        watch_progress: bool,
        lead_s: float | None = None,
    ) -> int:
        """Open the stage's barrier and return the synchronized start time (epoch ms) for its agents."""
        await self._stop_ticker()
        now_s, now_ms = _now()
        self._stage = StageMonitor(
            index,
            name,
            barrier,
            participants,
            interval_s=self.interval_s,
            stuck_intervals=self.stuck_intervals,
            watch_progress=watch_progress,
            now_s=now_s,
        )
        self._stage_open = True
        if participants:
            self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(self._stage))
        lead = start_lead_s(len(participants)) if lead_s is None else lead_s
        return now_ms + int(lead * 1000)

    async def report(self, report: AgentReport) -> str:
        """An agent's interval report. The answer tells it what to do: continue, stop (its stage is over
        without it) or abort (the run is being aborted), so a lost abort call is caught within an interval."""
        return self._take(report, *_now())

    async def report_batch(self, reports: list[AgentReport]) -> list[str]:
        """The reports a node's relay collected (cluster.relay), taken one by one as `report` takes them:
        one call instead of one per agent. The answers are in the reports' order."""
        now_s, now_ms = _now()
        return [self._take(report, now_s, now_ms) for report in reports]

    def _take(self, report: AgentReport, now_s: float, now_ms: int) -> str:
        stage = self._stage
        if stage is None or stage.stage_index != report.stage_index:
            return "abort" if self._aborted else "continue"
        stage.on_report(report, now_s, now_ms)  # also after an abort: these ops belong in the results
        if self._aborted:
            return "abort"
        state = stage.barrier.states.get(report.agent_id)
        return "stop" if state in (AgentStageState.STRAGGLER, AgentStageState.FAILED) else "continue"

    async def arrive(
        self, agent_id: str, index: int, ok: bool, reason: str = "", status: StageStatus = StageStatus.FAILED
    ) -> None:
        stage = self._stage
        if stage is not None and stage.stage_index == index:
            now_s, now_ms = _now()
            stage.arrive(agent_id, ok, reason, now_s, now_ms, status)

    async def agent_failed(self, agent_id: str, index: int, kind: str, reason: str) -> None:
        """The driver saw the agent's stage call fail (actor died, node gone, error raised)."""
        if kind in ("died", "node_removed"):
            self._dead.add(agent_id)
            self._excluded.setdefault(agent_id, reason)
        stage = self._stage
        if stage is not None and stage.stage_index == index:
            now_s, now_ms = _now()
            stage.fail(agent_id, kind, reason, now_ms, now_s)

    async def poll(self, index: int) -> Drained | None:
        """Barrier verdict, new intervals and events, and the per-agent view (the driver polls ~5x/s)."""
        stage = self._stage
        if stage is None or stage.stage_index != index:
            return None
        return stage.drain(time.monotonic())

    async def end_stage(self, index: int) -> dict[str, Any]:
        """Close the stage: final aggregate interval, exclusions for later stages, the stage's summary."""
        stage = self._stage
        if stage is None or stage.stage_index != index:
            return {}
        await self._stop_ticker()
        if self._stage_open:
            self._stage_open = False
            self._past_events.extend(stage.all_events)
        stage.flush(*_now())
        status = stage.status(time.monotonic())
        for agent_id in stage.barrier.excluded_after():
            self._excluded.setdefault(agent_id, stage.barrier.reasons.get(agent_id, "failed"))
        return {
            "status": status.value,
            "start_skew_ms": stage.start_skew_ms(),
            "stuck": stage.stuck_flags(),
            "stuck_at_end": stage.stuck_at_end(),
            "states": {a: s.value for a, s in stage.barrier.states.items()},
            "reasons": dict(stage.barrier.reasons),
            "lost": dict(stage.lost),
        }

    async def excluded(self) -> dict[str, str]:
        return dict(self._excluded)

    async def events(self) -> list[StageEvent]:
        """Every event of the run so far (stuck, disconnects, failures, stragglers)."""
        current = self._stage.all_events if self._stage is not None and self._stage_open else []
        return [*self._past_events, *current]

    # -- task-based stages (prepare, cleanup, validation shards poll this) --

    async def task_command(self, index: int) -> str:
        """What a running shard task should do: continue, stop (its stage is over) or abort (the run is)."""
        if self._aborted:
            return "abort"
        return "stop" if index in self._task_stops else "continue"

    async def stop_tasks(self, index: int, reason: str) -> None:
        self._task_stops[index] = reason

    async def task_report(self, index: int, key: int, snapshot: Any, done: int) -> None:
        """An interval of a running shard task (its job `key`): what it measured, and its objects done."""
        self._task_reports.setdefault(index, []).append((key, snapshot, done))

    async def take_task_reports(self, index: int) -> list[tuple[int, Any, int]]:
        return self._task_reports.pop(index, [])

    # -- abort --

    async def abort(self, reason: str, timeout_s: float = 1.5) -> list[str]:
        """Tell every agent to abort now; returns the agents that confirmed within `timeout_s`."""
        self._aborted = reason or "aborted"
        return await self._broadcast(list(self._agents), "abort", self._aborted, timeout_s)

    async def _broadcast(self, agent_ids: list[str], method: str, reason: str, timeout_s: float) -> list[str]:
        refs = {}
        for agent_id in agent_ids:
            if agent_id in self._dead or agent_id not in self._agents:
                continue
            refs[agent_id] = getattr(self._agents[agent_id], method).remote(reason)
        if not refs:
            return []
        futures = {asyncio.wrap_future(ref.future()): a for a, ref in refs.items()}
        done, _ = await asyncio.wait(futures, timeout=timeout_s)
        return sorted(futures[f] for f in done if not f.exception())

    # -- background checks --

    async def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
            self._ticker = None
        for task in self._queries.values():
            task.cancel()
        self._queries.clear()

    async def _tick_loop(self, stage: StageMonitor) -> None:
        loop = asyncio.get_running_loop()
        next_at = loop.time() + self.interval_s
        while True:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            next_at += self.interval_s
            try:
                now_s, now_ms = _now()
                for agent_id in stage.tick(now_s, now_ms):
                    if agent_id not in self._queries:
                        self._queries[agent_id] = loop.create_task(self._query(stage, agent_id))
                await self._check_nodes(stage)
                await self._act_on_verdict(stage)
            except Exception:  # a bug here must not silently end liveness checks for the rest of the stage
                log.exception("coordinator tick failed (stage %s)", stage.stage_name)

    async def _check_nodes(self, stage: StageMonitor) -> None:
        """Agents whose Ray node is no longer alive fail now (no waiting for missed heartbeats)."""
        running = [
            a for a, v in stage.views.items() if v.state is AgentStageState.RUNNING and a in self._agent_nodes
        ]
        if not running:
            return
        nodes = await asyncio.get_running_loop().run_in_executor(None, ray.nodes)
        alive = {n["NodeID"]: n for n in nodes if n.get("Alive")}
        gone = {n["NodeID"]: n for n in nodes if not n.get("Alive")}
        for agent_id in running:
            node_id = self._agent_nodes[agent_id]
            if node_id in alive:
                continue
            addr = gone.get(node_id, {}).get("NodeManagerAddress", "?")
            reason = f"Ray node {node_id[:12]} ({addr}) is no longer alive (removed or crashed)"
            self._dead.add(agent_id)
            self._excluded.setdefault(agent_id, reason)
            stage.fail(agent_id, "node_removed", reason, _now()[1], time.monotonic())

    async def _act_on_verdict(self, stage: StageMonitor) -> None:
        """all_or_nothing failed: stop everyone now. Released without stragglers: stop the stragglers."""
        status = stage.status(time.monotonic())
        if status is BarrierStatus.FAILED and stage.spec.type is BarrierType.ALL_OR_NOTHING:
            still = [a for a, v in stage.views.items() if v.state is AgentStageState.RUNNING]
            reason = f"stage {stage.stage_name!r} failed its all_or_nothing barrier"
            await self._broadcast(still, "stop", reason, 1.0)
        elif status is not BarrierStatus.WAITING and stage.stragglers():
            reason = f"released stage {stage.stage_name!r} without it ({stage.spec.type.value} barrier)"
            await self._broadcast(stage.stragglers(), "stop", reason, 1.0)

    async def _query(self, stage: StageMonitor, agent_id: str) -> None:
        """Missed heartbeats: ask the agent directly (control group) before declaring it disconnected."""
        spec = stage.spec
        handle = self._agents.get(agent_id)
        attempts = spec.query_retries + 1
        backoff = 1.0
        try:
            for attempt in range(attempts):
                try:
                    fut = asyncio.wrap_future(handle.ping.remote().future()) if handle else None
                    if fut is not None:
                        await asyncio.wait_for(fut, spec.query_timeout)
                        stage.on_contact(agent_id, time.monotonic())
                        return
                except RayActorError as exc:
                    self._dead.add(agent_id)
                    self._excluded.setdefault(agent_id, f"actor died: {exc}")
                    stage.fail(agent_id, "died", f"agent actor died: {exc}", _now()[1], time.monotonic())
                    return
                except TimeoutError:
                    pass
                if attempt + 1 < attempts:
                    await asyncio.sleep(backoff)
                    backoff = min(10.0, backoff * 2)
            silent = spec.heartbeat_interval * spec.missed_threshold
            stage.fail(
                agent_id,
                "disconnected",
                f"silent for {silent:g}s and no answer to {attempts} status queries "
                f"({spec.query_timeout:g}s each)",
                _now()[1],
                time.monotonic(),
            )
        finally:
            self._queries.pop(agent_id, None)
