"""A distributed replay: the log's ops split over Ray agent actors by a hash of their object URI.

- Agents: `--agents N` spreads N agents over the cluster's nodes (a SPREAD placement group); a
  `distributed:` block in the replay's --config places them as a run's block does (cluster.placement:
  `agents[].address` picks a node, `agents_per_node` with `nodes`), with the keys replay.fleetblock honours:
  ids, per-agent `env` and `concurrency_override` (that agent's max_concurrent), `agent_ready_timeout`,
  `start_delay` (the epoch's lead).
- Split: op -> agent `crc32(uri) % N`, so every operation on one key goes to one agent, which takes them in
  due order: a key's operations keep their order and relative timing; keys spread evenly over agents.
- Stream: the driver reads the log once (replay.plan, remapped there, so round-robin fan-out follows log
  order) and sends each agent batches ahead of their due time through Ray: at most LEAD_S ahead (memory
  stays bounded whatever the log's length) and at most QUEUE_BATCHES batches queued on an agent (a push
  waits when an agent falls behind: backpressure to the reader, never an unbounded queue).
- Start: every agent starts its workers first (ReplayExecutor.start), the first batches are sent, then one
  common epoch (driver clock, START_LEAD_S ahead) goes to all; each agent applies its clock offset to the
  driver (measured NTP-style over Ray, oplog.clock), so ops due at the same time start together on every
  host. Start skew: the spread of the agents' first-op lags, in summary.json and the stage entry.
- Results merge exactly as a run's: per-agent stage results (AgentStageResult) and interval snapshots become
  one StageRun for run.report. The replay's own op-log (`--capture`) is written per agent on its node and
  merged by the driver through Ray (cluster.oplogs.RayOpLogs), as a run's is.
- Stops: Ctrl-C aborts every agent (each ends within GRACE_S); an agent's failure without
  --continue-on-error stops the others.

No Ray call per op: batches of BATCH ops, one push in flight per agent.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import ray
from ray.exceptions import GetTimeoutError
from ray.util.placement_group import placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from sbench.cluster.connect import ray_connection
from sbench.cluster.env import ForwardedEnv
from sbench.cluster.env import capture as capture_env
from sbench.cluster.oplogs import NodeLog, RayOpLogs
from sbench.cluster.placement import BUNDLE_CPU, PlacedSlot, Placement, place_agents
from sbench.control import RunControl
from sbench.errors import RunFailed
from sbench.metrics.snapshot import Snapshot
from sbench.oplog.clock import measure_offset
from sbench.plan.agents import AgentSlot, assign_ids
from sbench.replay.driver import FleetOutcome, ReplayDriver, ReplayOptions, StageCall
from sbench.replay.executor import ReplayExecutor
from sbench.replay.plan import DUE, URI, ReplayPlan
from sbench.replay.settings import Backpressure
from sbench.run.barrier import BarrierStatus
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus

#: ops per push
BATCH = 2_000
#: how far ahead of its due time an op is sent
LEAD_S = 2.0
#: batches an agent holds at most before a push waits
QUEUE_BATCHES = 8
#: the common epoch is this far after the first batches are sent
START_LEAD_S = 0.5
#: how long one wait on an agent lasts before the driver looks at Ctrl-C and intervals again
POLL_S = 0.2


class ReplayAgent:
    """One agent of a distributed replay (a threaded Ray actor; see the module docstring)."""

    def __init__(self, agent_id: str, settings: dict[str, Any], continue_on_error: bool, interval_s: float,
                 env: ForwardedEnv) -> None:
        env.apply()
        self.agent_id = agent_id
        self.control = RunControl()
        self._queue: queue.Queue[list[tuple[Any, ...]] | None] = queue.Queue(QUEUE_BATCHES)
        self._intervals: list[Snapshot] = []
        self._lock = threading.Lock()
        self._oplog: NodeLog | None = None
        self._result: AgentStageResult | None = None
        self._done = threading.Event()
        self.executor = ReplayExecutor(
            agent_id, Backpressure.model_validate(settings), self.control,
            continue_on_error=continue_on_error, interval_s=interval_s, on_interval=self._interval,
        )

    def node(self) -> tuple[str, str]:
        ctx = ray.get_runtime_context()
        return ctx.get_node_id(), ray.util.get_node_ip_address()

    def _interval(self, snap: Snapshot) -> None:
        with self._lock:
            self._intervals.append(snap)

    def _stream(self) -> Iterator[list[tuple[Any, ...]]]:
        """The pushed batches as the executor takes them (plan rows, replay.plan.ReplayOp's fields)."""
        while True:
            try:
                batch = self._queue.get(timeout=0.1)
            except queue.Empty:
                if self.control.halted:
                    return
                continue
            if batch is None:
                return
            yield batch

    # -- the driver's calls --

    def start(self) -> None:
        self.executor.start(self._stream())

    def push(self, batch: list[tuple[Any, ...]] | None, timeout_s: float) -> bool:
        """Queue a batch (None: the end of the stream); False when the queue stayed full `timeout_s`."""
        try:
            self._queue.put(batch, timeout=timeout_s)
        except queue.Full:
            return False
        return True

    def warm(self) -> None:
        """Open the backend of the first queued op (before the epoch, off the schedule)."""
        with self._queue.mutex:
            first = next((b[0] for b in self._queue.queue if b), None)
        if first is not None:
            self.executor.warm(first[URI])

    def go(self, epoch_ns: int) -> None:
        self.executor.go(epoch_ns)
        threading.Thread(target=self._wait, name="sbench-replay-wait", daemon=True).start()

    def _wait(self) -> None:
        self._result = self.executor.wait()
        self._done.set()

    def intervals(self) -> list[Snapshot]:
        with self._lock:
            out, self._intervals = self._intervals, []
        return out

    def result(self, timeout_s: float) -> AgentStageResult | None:
        return self._result if self._done.wait(timeout_s) else None

    def stop(self, reason: str, abort: bool) -> None:
        (self.control.abort if abort else self.control.stop)(reason)

    def clock(self) -> int:
        return time.time_ns()

    # -- the replay's own op-log (cluster.oplogs.RayOpLogs calls these) --

    def oplog_open(self, name: str) -> None:
        self._oplog = NodeLog(self.agent_id, name)

    def oplog_offset(self, offset_ns: int) -> None:
        assert self._oplog is not None
        self._oplog.log.set_offset(offset_ns)

    def oplog_clock(self) -> int:
        return time.time_ns()

    def oplog_finish(self) -> tuple[dict[str, Any], int]:
        assert self._oplog is not None
        return self._oplog.finish()

    def oplog_read(self, offset: int, size: int) -> bytes:
        assert self._oplog is not None
        return self._oplog.read(offset, size)

    def oplog_discard(self) -> None:
        if self._oplog is not None:
            self._oplog.discard()
            self._oplog = None


@dataclass
class AgentHandle:
    """An agent as cluster.oplogs sees agents: id, node, actor."""

    agent_id: str
    node_id: str
    ip: str
    actor: Any
    offset_ns: int = 0


@dataclass(frozen=True)
class ReplaySlot:
    """One agent before its actor exists: id, node, how Ray places it, and what it runs with."""

    agent_id: str
    placed: PlacedSlot
    settings: dict[str, Any]
    env: ForwardedEnv


def _spread(count: int, timeout_s: float) -> Placement:
    """`--agents N`: N one-agent bundles spread over the cluster's nodes (SPREAD: as even as Ray can)."""
    group = placement_group([{"CPU": BUNDLE_CPU}] * count, strategy="SPREAD")
    placement = Placement([], group)
    if not group.wait(timeout_seconds=timeout_s):
        placement.release()
        raise RunFailed(f"--agents {count}: Ray could not place {count} agents within {timeout_s:g} s",
                        hint="check `ray status`: every agent needs 0.01 free CPU")
    nodes = {n["NodeID"]: n["NodeManagerAddress"] for n in ray.nodes() if n.get("Alive")}
    table = ray.util.placement_group_table(group)["bundles_to_node_id"]
    for i in range(count):
        node_id = table[i]
        strategy = PlacementGroupSchedulingStrategy(group, placement_group_bundle_index=i)
        placement.slots.append(PlacedSlot(AgentSlot(None, "", None, i), node_id, nodes.get(node_id, "?"),
                                          strategy, BUNDLE_CPU))
    return placement


class RayReplayFleet:
    """The replay's agent actors, one per placed slot (see the module docstring); `placed()` reserves
    the nodes, so the agent ids are known before the results directory is made."""

    def __init__(self, settings: Backpressure, placement: Placement) -> None:
        dist = settings.distributed
        self.ready_timeout_s = dist.agent_ready_timeout if dist is not None else 120.0
        self.start_lead_s = dist.start_delay if dist is not None and dist.start_delay is not None \
            else START_LEAD_S
        self.placement = placement
        ids = assign_ids([p.slot.declared_id for p in placement.slots], [None] * len(placement.slots))
        base_env, common = capture_env(), settings.model_dump(exclude={"distributed"})
        self.slots: list[ReplaySlot] = []
        for agent_id, placed in zip(ids, placement.slots, strict=True):
            entry = placed.slot.entry
            own = dict(common)
            if entry is not None and entry.concurrency_override is not None:
                own["max_concurrent"] = entry.concurrency_override
            env = base_env.adding(entry.env) if entry is not None else base_env
            self.slots.append(ReplaySlot(agent_id, placed, own, env))
        self.handles: list[AgentHandle] = []
        self.agents: list[tuple[str, str]] = [(s.agent_id, s.placed.node_ip) for s in self.slots]

    @classmethod
    @contextlib.contextmanager
    def placed(cls, settings: Backpressure, count: int | None) -> Iterator[RayReplayFleet]:
        """The fleet of `--agents count` or of the settings' `distributed` block, its nodes reserved
        until the block ends."""
        dist = settings.distributed
        if dist is not None:
            placement = place_agents(dist, dist.agent_ready_timeout, uuid.uuid4().hex[:8])
        else:
            assert count is not None
            placement = _spread(count, 120.0)
        try:
            yield cls(settings, placement)
        finally:
            placement.release()

    def replay(self, plan: ReplayPlan, call: StageCall) -> FleetOutcome:
        actor_cls = ray.remote(max_concurrency=8)(ReplayAgent)
        try:
            actors = [
                actor_cls.options(scheduling_strategy=s.placed.strategy, num_cpus=s.placed.num_cpus).remote(
                    s.agent_id, s.settings, call.continue_on_error, call.interval_s, s.env
                )
                for s in self.slots
            ]
            try:
                nodes = ray.get([actor.node.remote() for actor in actors], timeout=self.ready_timeout_s)
            except GetTimeoutError as exc:
                raise RunFailed(
                    f"{len(actors)} replay agents did not start within {self.ready_timeout_s:g} s "
                    "(distributed.agent_ready_timeout)",
                    hint="check `ray status` for pending actors (a node may be full or gone)",
                ) from exc
            for s, actor, (node_id, ip) in zip(self.slots, actors, nodes, strict=True):
                self.handles.append(AgentHandle(s.agent_id, node_id, ip, actor))
            self.agents = [(h.agent_id, h.ip) for h in self.handles]
            return self._replay(plan, call)
        finally:
            for handle in self.handles:
                with contextlib.suppress(Exception):
                    ray.kill(handle.actor, no_restart=True)

    def _replay(self, plan: ReplayPlan, call: StageCall) -> FleetOutcome:
        handles, control = self.handles, call.control
        oplogs = None
        if call.capture is not None:
            oplogs = RayOpLogs(handles, call.capture, call.agent_dir)  # type: ignore[arg-type]
            oplogs.open()
            oplogs.stage_started("replay", handles)
        driver_node = ray.get_runtime_context().get_node_id()
        for h in handles:
            if h.node_id != driver_node:
                h.offset_ns, _ = measure_offset(lambda a=h.actor: ray.get(a.clock.remote(), timeout=30))
        pump = _Pump(handles, control, call)
        ops = itertools.chain.from_iterable(plan.batches())
        pump.feed(ops, until_due_ns=int(LEAD_S * 1e9), epoch_ns=None)
        ray.get([h.actor.warm.remote() for h in handles], timeout=120)  # backends open, async or not
        ray.get([h.actor.start.remote() for h in handles], timeout=120)
        epoch = time.time_ns() + int(self.start_lead_s * 1e9)
        ray.get([h.actor.go.remote(epoch + h.offset_ns) for h in handles], timeout=60)
        pump.feed(ops, until_due_ns=None, epoch_ns=epoch)
        pump.end()
        results = pump.results()
        report = None
        if oplogs is not None:
            report = oplogs.close()
        run, figures = _stage_run(call, results, control)
        figures["nodes"] = {h.agent_id: h.node_id for h in handles}
        return FleetOutcome(run, report, figures)


class _Pump:
    """The driver's side of the stream: batches to agents ahead of time, intervals back, stops forward."""

    def __init__(self, handles: list[AgentHandle], control: RunControl, call: StageCall) -> None:
        self.handles = handles
        self.control = control
        self.call = call
        self.buffers: list[list[tuple[Any, ...]]] = [[] for _ in handles]
        self._next_poll = time.monotonic() + call.interval_s
        self._stopped = False

    def _poll(self, force: bool = False) -> None:
        """Intervals from every agent (each call is one merged perf_log row), and Ctrl-C forwarded."""
        if self.control.halted and not self._stopped:
            self._stopped = True
            for h in self.handles:
                h.actor.stop.remote(self.control.reason, self.control.aborted)
        if not force and time.monotonic() < self._next_poll:
            return
        self._next_poll = time.monotonic() + self.call.interval_s
        per_agent: dict[str, Snapshot] = {}
        for h, snaps in zip(self.handles, ray.get([h.actor.intervals.remote() for h in self.handles],
                                                  timeout=60), strict=True):
            if snaps:
                per_agent[h.agent_id] = Snapshot.merge_all(snaps)
        if per_agent:
            self.call.on_interval(per_agent)

    def _push(self, index: int, batch: list[tuple[Any, ...]] | None) -> None:
        actor = self.handles[index].actor
        while not self.control.halted:
            if ray.get(actor.push.remote(batch, POLL_S), timeout=60):
                return
            self._poll()

    def feed(self, ops: Iterator[tuple[Any, ...]], *, until_due_ns: int | None, epoch_ns: int | None) -> None:
        """Send ops in batches: before the start, those due within `until_due_ns` (up to one full batch);
        after it, all of them, each at most LEAD_S before it is due (`epoch_ns`: the common epoch)."""
        n = len(self.handles)
        lead = int(LEAD_S * 1e9)
        buffers = self.buffers
        for op in ops:
            if self.control.halted:
                return
            due_ns = op[DUE]
            index = zlib.crc32(op[URI].encode()) % n
            buffers[index].append(op)
            if len(buffers[index]) >= BATCH:
                self._push(index, buffers[index])
                buffers[index] = []
                if until_due_ns is not None:
                    break  # before the start nobody takes from the queues: one batch each, at most two
            if until_due_ns is not None and due_ns >= until_due_ns:
                break
            if epoch_ns is not None:
                while due_ns > time.time_ns() - epoch_ns + lead and not self.control.halted:
                    self._flush()
                    self._poll()
                    self.control.wait(min(POLL_S, (due_ns - (time.time_ns() - epoch_ns) - lead) / 1e9))
            self._poll()
        self._flush()

    def _flush(self) -> None:
        for index, buffer in enumerate(self.buffers):
            if buffer:
                self._push(index, buffer)
                self.buffers[index] = []

    def end(self) -> None:
        self._flush()
        for index in range(len(self.handles)):
            self._push(index, None)

    def results(self) -> dict[str, AgentStageResult]:
        out: dict[str, AgentStageResult] = {}
        pending = {h.agent_id: h for h in self.handles}
        while pending:
            self._poll()
            for agent_id, h in list(pending.items()):
                result = ray.get(h.actor.result.remote(POLL_S / len(pending)), timeout=60)
                if result is not None:
                    out[agent_id] = result
                    del pending[agent_id]
                    if not result.ok and not self.control.halted:
                        self.control.stop(f"{agent_id}: {result.reason}")
        self._poll(force=True)
        return out


def _stage_run(call: StageCall, results: dict[str, AgentStageResult],
               control: RunControl) -> tuple[StageRun, dict[str, Any]]:
    """The stage over every agent, as run.report takes it; the start skew from the first-op lags."""
    first = {a: r.extra.get("replay", {}).get("first_op_lag_ms") for a, r in sorted(results.items())}
    lags = [x for x in first.values() if x is not None]
    skew = round(max(lags) - min(lags), 3) if lags else None
    failed = {a: r.reason for a, r in results.items() if not r.ok}
    run = StageRun(
        plan=call.stage,
        status=BarrierStatus.FAILED if failed else BarrierStatus.READY,
        results=results,
        states={a: "failed" if a in failed else "ready" for a in results},
        reasons=failed,
        start_skew_ms=round(skew) if skew is not None else None,
        elapsed_s=max((r.elapsed_s for r in results.values()), default=0.0),
        aborted=control.aborted or any(r.status is StageStatus.ABORTED for r in results.values()),
    )
    return run, {"start_skew_ms": skew, "first_op_lag_ms": first}


def replay_on_ray(options: ReplayOptions, settings: Backpressure, ray_address: str | None) -> int:
    """`sbench replay --agents N` or with a `distributed` block: connect (cluster.connect rules), place
    the agents, then the one replay driver."""
    with ray_connection(ray_address), RayReplayFleet.placed(settings, options.agents) as fleet:
        return ReplayDriver(options, fleet, settings).execute()

