"""The agent actor: one engine loop for its share of the work, reporting to the coordinator every interval.

The engine runs in a worker thread of the actor, ticking every `FLUSH_S` (a whole number of ticks per perf-log
interval; less often in a fleet too large for the coordinator to take that many calls); the actor's stage
thread hands each tick's snapshot to the coordinator at once (a few calls per interval, never one per op;
through its node's relay in a large fleet, cluster.relay),
marking the ones that end a perf-log interval, so an agent that is killed loses at most its last tick. It also
watches the stage deadline and turns the coordinator's answer into stop/abort. Its last report of a stage is
confirmed before the stage call returns, so what the stage result counts is what the perf logs show. `ping`,
`status`, `stop` and `abort` live in their own concurrency group, so a stage that keeps every worker busy can
still be stopped within an interval.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ray

from sbench.cluster.env import ForwardedEnv
from sbench.cluster.listing import ShareStats, listing_scope, shared_backends
from sbench.cluster.oplogs import OPLOG_GROUP, NodeLog
from sbench.cluster.relay import ReportLink
from sbench.config.models import Config, StageType
from sbench.control import RunControl
from sbench.engine.state import PreparedRecord, RunState
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import StagePlan
from sbench.run.monitor import AgentReport
from sbench.run.stagerecord import AgentStageResult
from sbench.status import StageStatus

#: How long after a stop/abort (or past its deadline) the agent waits for the engine before returning
#: what it has; the engine's own abort grace is shorter, so this only matters when a backend call hangs.
ABANDON_AFTER_S = 1.5
#: Extra time an execute stage may run past its duration before the agent stops it (drain of in-flight ops).
DURATION_SLACK_S = 15.0
#: Extra time past timeout_secs before the agent gives up on an engine that did not honour it.
TIMEOUT_SLACK_S = 2.0
CONTROL_GROUP = "control"
#: Target time between an agent's reports within a perf-log interval: what a killed agent can lose.
FLUSH_S = 0.25
#: Reports a second the fleet may send the one coordinator actor: bench/coordinator_scale.py measured 0.7
#: cores for 1,000 a second (Ray's per-call work is most of it), so a large fleet flushes less often
#: than FLUSH_S (1,000 agents: once per 1 s interval, not 4,000 calls a second).
COORDINATOR_REPORTS_PER_S = 1000
#: How long an agent waits for the coordinator to take its last report of a stage.
FINAL_REPORT_TIMEOUT_S = 10.0

#: the engine's run_stage signature (plan, config, identity, control, on_interval, *, state)
StageFn = Callable[..., Any]


@dataclass(slots=True)
class StageRequest:
    """What the driver sends an agent to run one stage."""

    plan: StagePlan
    #: synchronized start (driver's wall-clock epoch ms; the agent adds its measured clock offset)
    start_at_ms: int
    #: hard limit in seconds from the start (timeout_secs), None = none
    timeout_s: float | None = None
    #: objects this agent is expected to handle (progress total), 0 = unknown
    objects_total: int = 0


def flush_ticks(interval_s: float, agents: int = 1) -> tuple[float, int]:
    """(engine tick in seconds, ticks per perf-log interval): about FLUSH_S, or longer when `agents` reports
    of that period would exceed COORDINATOR_REPORTS_PER_S, dividing the interval evenly, so every k-th tick
    ends an interval at the same instant as the in-process engine's would."""
    period = max(FLUSH_S, agents / COORDINATOR_REPORTS_PER_S)
    ticks = max(1, round(interval_s / period))
    return interval_s / ticks, ticks


def ticking_config(config: Config, tick_s: float) -> Config:
    """The config the engine runs with in an agent: its interval is the flush tick (not validated again:
    this is no user input)."""
    perf = config.perf_log.model_copy(update={"interval": tick_s})
    return config.model_copy(update={"perf_log": perf})


def default_stage_fn() -> StageFn:
    from sbench.engine.stage import run_stage

    return run_stage


class AgentActor:
    """Wrapped with `ray.remote(concurrency_groups={"control": 2})` by `cluster.actors.create_agent`."""

    def __init__(self, stage_fn: StageFn | None = None) -> None:
        self._stage_fn = stage_fn
        self.identity = AgentIdentity()
        self.config: Config | None = None
        #: the config with the perf-log interval set to the flush tick, for the engine
        self._engine_config: Config | None = None
        self._ticks_per_interval = 1
        #: ticks received in the current stage (every `_ticks_per_interval`-th ends an interval)
        self._ticks = 0
        self._coordinator: Any = None
        #: how reports reach the coordinator (through the node's relay in a large fleet)
        self._link: ReportLink | None = None
        self._cache: Any = None
        self._interval_s = 1.0
        self._clock_offset_ms = 0
        self._run_control = RunControl()
        self._control: RunControl | None = None
        self._pending: list[Snapshot] = []
        self._lock = threading.Lock()
        self._phase = "idle"
        self._stage_name = ""
        #: every interval of the current stage already reported, for partial results
        self._seen = SnapshotAccumulator()
        self._wake = threading.Event()
        #: what prepare created, set by the driver after its shard tasks, so GETs need no LIST
        self._run_state = RunState()
        self._oplog: NodeLog | None = None

    # -- setup --

    def probe(self) -> dict[str, Any]:
        """Where this actor landed and what its node says about it (SBENCH_AGENT_ID, clock)."""
        ctx = ray.get_runtime_context()
        return {
            "env_agent_id": os.environ.get("SBENCH_AGENT_ID") or None,
            "node_id": ctx.get_node_id(),
            "hostname": socket.gethostname(),
            "pid": os.getpid(),
            "time_ms": time.time_ns() // 1_000_000,
        }

    def configure(
        self,
        identity: AgentIdentity,
        config: Config,
        coordinator: Any,
        interval_s: float,
        clock_offset_ms: int,
        cache: Any = None,
        env: ForwardedEnv | None = None,
        relay: Any = None,
    ) -> str:
        """Who this agent is and what it runs; `env` (the driver's storage variables) is set in this
        process before any stage builds a storage client, and custom commands inherit it; `relay`: its
        node's report relay (cluster.relay), None to report to the coordinator directly."""
        if env is not None:
            env.apply()
        self.identity = identity
        self.config = config
        self._coordinator = coordinator
        self._link = ReportLink(coordinator, relay) if coordinator is not None else None
        self._cache = cache
        # Custom stage commands run as children of this process: they learn who they run for from these.
        os.environ.update(
            SBENCH_AGENT_ID=identity.agent_id,
            SBENCH_AGENT_INDEX=str(identity.index),
            SBENCH_AGENT_COUNT=str(identity.count),
            SBENCH_RUN_ID=identity.run_id,
        )
        self._interval_s = interval_s
        tick_s, self._ticks_per_interval = flush_ticks(interval_s, identity.count)
        self._engine_config = ticking_config(config, tick_s)
        self._clock_offset_ms = clock_offset_ms
        return identity.agent_id

    # -- op-log (cluster.oplogs): its own group, so task batches never wait behind a stage --

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_open(self, name: str) -> None:
        self._oplog = NodeLog(self.identity.agent_id, name)

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_offset(self, offset_ns: int) -> None:
        assert self._oplog is not None
        self._oplog.log.set_offset(offset_ns)

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_batch(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None:
        assert self._oplog is not None
        self._oplog.log.add_batch(rows, offset_ns, source)

    @ray.method(concurrency_group=CONTROL_GROUP)
    def oplog_clock(self) -> int:
        return time.time_ns()

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_finish(self) -> tuple[dict[str, Any], int]:
        assert self._oplog is not None
        return self._oplog.finish()

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_read(self, offset: int, size: int) -> bytes:
        assert self._oplog is not None
        return self._oplog.read(offset, size)

    @ray.method(concurrency_group=OPLOG_GROUP)
    def oplog_discard(self) -> None:
        if self._oplog is not None:
            self._oplog.discard()
            self._oplog = None

    def set_prepared(self, records: dict[int, PreparedRecord]) -> None:
        """The prepared pools this agent reads (from the driver's prepare shards)."""
        self._run_state.prepared.update(records)

    # -- control group --

    @ray.method(concurrency_group=CONTROL_GROUP)
    def ping(self) -> str:
        return self.identity.agent_id

    @ray.method(concurrency_group=CONTROL_GROUP)
    def status(self) -> dict[str, Any]:
        return {"agent_id": self.identity.agent_id, "state": self._phase, "stage": self._stage_name}

    @ray.method(concurrency_group=CONTROL_GROUP)
    def stop(self, reason: str) -> bool:
        """End the current stage cleanly (its measurements count); later stages still run."""
        control = self._control
        if control is not None:
            control.stop(reason)
        self._wake.set()  # the stage thread notices now, not at its next heartbeat
        return True

    @ray.method(concurrency_group=CONTROL_GROUP)
    def abort(self, reason: str) -> bool:
        """Abort the current stage and refuse further stages (Ctrl-C, all_or_nothing failure)."""
        self._run_control.abort(reason)
        self._wake.set()
        return True

    # -- stages --

    def run_stage(self, request: StageRequest) -> AgentStageResult:
        plan = request.plan
        agent_id = self.identity.agent_id
        if self._run_control.aborted:
            return AgentStageResult(agent_id, plan.index, StageStatus.ABORTED, self._run_control.reason)
        control = self._run_control.child()
        self._control = control
        self._stage_name = plan.name
        self._phase = "waiting"
        with self._lock:
            self._pending = []
        self._ticks = 0
        self._seen = SnapshotAccumulator()
        self._wake.clear()
        if self._link is not None:
            self._link.begin_stage()
        try:
            wait_s = (request.start_at_ms + self._clock_offset_ms) / 1000 - time.time()
            if wait_s > 0 and control.wait(wait_s):
                return AgentStageResult(agent_id, plan.index, StageStatus.ABORTED, control.reason)
            started_ms = time.time_ns() // 1_000_000
            self._phase = "running"
            result = self._run_with_reports(request, control, started_ms)
            result.started_ms = started_ms
            result.ended_ms = time.time_ns() // 1_000_000
            return result
        finally:
            self._phase = "idle"
            self._control = None
            self._run_control.release(control)

    def _run_with_reports(
        self, request: StageRequest, control: RunControl, started_ms: int
    ) -> AgentStageResult:
        plan = request.plan
        box: dict[str, Any] = {}
        worker = threading.Thread(
            target=self._body, args=(request, control, box), name=f"stage-{plan.name}", daemon=True
        )
        start = time.monotonic()
        deadline = self._deadline(request, start)
        worker.start()
        counters = _Counters(self.identity.agent_id, plan, request.objects_total, started_ms)
        abandon_at: float | None = None
        heartbeat_at = start + self._interval_s
        while worker.is_alive():
            # Woken by every engine interval (reported at once) and by the end of the stage.
            wake_at = min(heartbeat_at, abandon_at or heartbeat_at, deadline or heartbeat_at)
            self._wake.wait(max(0.0, wake_at - time.monotonic()))
            self._wake.clear()
            now = time.monotonic()
            if deadline is not None and now >= deadline and not control.stopping:
                control.abort(f"stage {plan.name!r} exceeded its time limit ({deadline - start:.0f}s)")
                box.setdefault("timeout", True)
            if control.stopping and abandon_at is None:
                abandon_at = now + ABANDON_AFTER_S
            if abandon_at is not None and now >= abandon_at and worker.is_alive():
                break
            with self._lock:
                has_data = bool(self._pending)
            if has_data or now >= heartbeat_at:
                heartbeat_at = now + self._interval_s
                self._report(plan.index, counters, started_ms, control)
        self._report(plan.index, counters, started_ms, control, final=True)
        result = self._result(plan, box, control, start)
        if self._link is not None and not self._link.confirm(FINAL_REPORT_TIMEOUT_S):
            # The coordinator may not have this stage's last parts: the driver then takes the stage's
            # figures from what the coordinator has, so the result and the perf logs still agree.
            result.extra["final_report"] = "unconfirmed"
        if self._coordinator is not None:
            self._coordinator.arrive.remote(
                self.identity.agent_id, plan.index, result.ok, result.reason, result.status
            )
        return result

    def _deadline(self, request: StageRequest, start: float) -> float | None:
        limits = []
        if request.timeout_s:  # the engine enforces it; this only catches an engine that cannot return
            limits.append(request.timeout_s + TIMEOUT_SLACK_S)
        plan = request.plan
        if plan.run_for_s:
            limits.append(plan.run_for_s + DURATION_SLACK_S)
        return start + min(limits) if limits else None

    def _body(self, request: StageRequest, control: RunControl, box: dict[str, Any]) -> None:
        plan = request.plan
        try:
            assert self.config is not None, "configure() must run before run_stage()"
            fn = self._stage_fn or default_stage_fn()
            # Prepared objects are cleaned up by the driver's shard tasks (from the metadata cache); the
            # agent's cleanup stage only removes the workload PUT objects its own keys name.
            state = RunState() if plan.type is StageType.CLEANUP else self._run_state
            kwargs: dict[str, Any] = {"state": state}
            stats = ShareStats()
            if self._cache is not None and plan.type in (StageType.EXECUTE, StageType.HYBRID):
                scope = listing_scope(self.identity.run_id, plan.index)
                kwargs["backends"] = shared_backends(
                    self.config, self._cache, scope, self.identity.agent_id, stats
                )
            try:
                outcome = fn(plan, self._engine_config, self.identity, control, self._on_interval, **kwargs)
            finally:
                if "backends" in kwargs:
                    kwargs["backends"].close()
            result = AgentStageResult.of(self.identity.agent_id, plan.index, outcome)
            if "backends" in kwargs:
                result.extra["shared_listings"] = stats.as_dict()
            box["result"] = result
        except BaseException as exc:  # reported to the driver as this agent's stage failure
            box["error"] = f"{type(exc).__name__}: {exc}"
        finally:
            self._wake.set()

    def _on_interval(self, snap: Snapshot) -> None:
        with self._lock:
            self._pending.append(snap)
        self._wake.set()

    def _report(
        self,
        index: int,
        counters: _Counters,
        started_ms: int,
        control: RunControl,
        final: bool = False,
    ) -> None:
        """Send what the engine produced since the last report; act on the coordinator's answers so far (a
        coordinator that is gone answers nothing: the agent keeps running, the driver decides)."""
        link = self._link
        if link is None:
            return
        commands, _ = link.answers()
        if "abort" in commands:
            self._run_control.abort("aborted by the coordinator")
        elif "stop" in commands:
            control.stop("released from the stage by its barrier")
        if link.waiting and not final:
            return  # the coordinator is behind: never queue more than one report
        with self._lock:
            snaps, self._pending = self._pending, []
        now_ms = time.time_ns() // 1_000_000
        ends = []
        for snap in snaps:
            counters.fold(snap)
            self._seen.add(snap)
            self._ticks += 1
            ends.append(self._ticks % self._ticks_per_interval == 0)
        # No snapshot: a heartbeat (the coordinator counts the silent interval as idle by itself).
        report = AgentReport(
            self.identity.agent_id, index, snaps, started_ms, now_ms, ends=ends, final=final
        )
        link.send(report)

    def _result(
        self, plan: StagePlan, box: dict[str, Any], control: RunControl, start: float
    ) -> AgentStageResult:
        agent_id = self.identity.agent_id
        elapsed = time.monotonic() - start
        if "result" in box:
            result: AgentStageResult = box["result"]
            if control.aborted and result.status is StageStatus.OK:
                result.status, result.reason = StageStatus.ABORTED, control.reason
            if box.get("timeout"):
                result.status, result.reason = StageStatus.TIMEOUT, control.reason
            return result
        # What was reported (the final report took everything pending): a hung engine's later ticks are
        # left out here as they are from the perf logs.
        partial = self._seen
        if "error" in box:
            return AgentStageResult(
                agent_id, plan.index, StageStatus.FAILED, box["error"], partial.snapshot(), elapsed
            )
        # The engine did not return after stop/abort/deadline: a backend call hangs. Return what we have.
        status = (
            StageStatus.TIMEOUT
            if box.get("timeout")
            else (StageStatus.ABORTED if control.aborted else StageStatus.FAILED)
        )
        reason = control.reason or "stage did not finish"
        reason += f"; the engine did not return within {ABANDON_AFTER_S:g}s (a storage call hangs)"
        return AgentStageResult(agent_id, plan.index, status, reason, partial.snapshot(), elapsed)


class _Counters:
    """Progress gauges the agent adds to its reports when the engine does not set them itself."""

    def __init__(self, agent_id: str, plan: StagePlan, objects_total: int, started_ms: int) -> None:
        self.agent_id = agent_id
        self.cleanup = plan.type is StageType.CLEANUP
        self.counters = ProgressCounters(
            objects_total=objects_total, phase_start_ms=started_ms, stage=plan.name, at_ms=started_ms
        )

    def fold(self, snap: Snapshot) -> None:
        own = snap.progress.get(self.agent_id)
        if own is not None:
            self.counters = own
            return
        done = snap.total_ops() + snap.errors_total()
        c = self.counters
        if self.cleanup:
            c.objects_deleted += done
        else:
            c.objects_done += done
        c.at_ms = snap.end_ms or c.at_ms
        snap.set_progress(self.agent_id, ProgressCounters(**c.to_dict()))
