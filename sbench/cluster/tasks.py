"""Ray tasks for the stages that are plain batches of work: prepare and cleanup shards, the gap-fill LIST and
per-agent preflight, and the driver-side loop that keeps a bounded number of them in flight.

Each shard runs the engine's own `prepare_shard` / `CleanupShard` on a range of the object index space, in a
worker thread of the task; the task's main thread asks the coordinator every 0.25 s whether to go on, so an
abort or a stage timeout stops every shard mid-range and still returns what it did (which objects it
created), instead of losing it to a task cancellation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sbench.cluster.env import ForwardedEnv
from sbench.cluster.stagerun import ABORT_WAIT_S
from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.cleanup import CleanupShard
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.prepare import ShardResult, prepare_shard, scan_existing, verify_prepared
from sbench.engine.putcleanup import PutCleanupResult, cleanup_puts
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams
from sbench.preflight import run_preflight
from sbench.preflight.result import PreflightResult

#: Objects per shard at most (about a second of work on a fast file system, ~10 s on a remote store).
SHARD_MAX = 10_000
COMMAND_POLL_S = 0.25
#: How long a task waits for its shard after a stop/abort before giving up on it (the shard's own bounded
#: finish returns after the engine's grace, GRACE_S, so this only catches a shard that cannot return).
TASK_ABANDON_S = 1.5

_REMOTE_FNS: dict[Callable[..., Any], Any] = {}


def _remote(fn: Callable[..., Any]) -> Any:
    """One RemoteFunction per task function (registering a function with Ray on every call is slow); it
    takes the forwarded environment as its first argument (see `_with_env`)."""
    remote = _REMOTE_FNS.get(fn)
    if remote is None:
        remote = _REMOTE_FNS[fn] = ray.remote(_with_env(fn))
    return remote


def _with_env(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run with the driver's forwarded variables set in the worker, and the worker's own environment
    put back afterwards (Ray reuses the process for later tasks). The variables come as an argument, never
    as a runtime_env, which Ray would log (see cluster.env)."""

    def task(env: ForwardedEnv, *args: Any) -> Any:
        with env.applied():
            return fn(*args)

    # fn's name in Ray's task list; no __wrapped__, or Ray would check the call against fn's signature
    task.__name__, task.__qualname__, task.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return task


def shard_ranges(total: int, workers: int, shard_max: int = SHARD_MAX) -> list[tuple[int, int]]:
    """Split [0, total) so every agent gets work and no shard exceeds `shard_max` objects."""
    if total <= 0:
        return []
    size = max(1, min(shard_max, -(-total // max(1, workers))))
    return [(lo, min(total, lo + size)) for lo in range(0, total, size)]


def _watched(coordinator: Any, stage_index: int, body: Callable[[RunControl], Any]) -> Any:
    """Run `body(control)` in a thread; stop/abort it when the coordinator says so."""
    control = RunControl()
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["result"] = body(control)
        except BaseException as exc:  # re-raised below in the task's thread, so Ray reports it
            box["error"] = exc

    worker = threading.Thread(target=run, name="sbench-shard", daemon=True)
    worker.start()
    abandon_at: float | None = None
    while worker.is_alive():
        worker.join(COMMAND_POLL_S)
        if not worker.is_alive():
            break
        if abandon_at is None and coordinator is not None:
            try:
                command = ray.get(coordinator.task_command.remote(stage_index), timeout=5)
            except Exception:  # the coordinator is gone: the driver is tearing the run down
                command = "abort"
            if command == "abort":
                control.abort("the run is being aborted")
            elif command == "stop":
                control.stop("the stage was stopped")
            if control.stopping:
                abandon_at = time.monotonic() + TASK_ABANDON_S
        elif abandon_at is not None and time.monotonic() >= abandon_at:
            raise TimeoutError(f"shard did not stop within {TASK_ABANDON_S:g}s ({control.reason})")
    if "error" in box:
        raise box["error"]
    return box["result"]


def prepare_task(
    coordinator: Any,
    stage_index: int,
    params: PrepareParams,
    start: int,
    stop: int,
    existing: IndexSet | None,
) -> ShardResult:
    if existing is None:  # skip_verification / force_overwrite, or a resume: nothing to look up
        existing = IndexSet(0, params.total)
    return _watched(
        coordinator,
        stage_index,
        lambda control: prepare_shard(params, start, stop, control, existing=existing),
    )


def cleanup_task(
    coordinator: Any,
    stage_index: int,
    params: PrepareParams,
    start: int,
    stop: int,
    created: IndexSet | None,
    mode: str,
    concurrency: int,
    dirs: IndexSet | None,
    retry: ErrorHandling | None = None,
) -> ShardResult:
    return _watched(
        coordinator,
        stage_index,
        lambda control: (
            CleanupShard(
                params,
                start,
                stop,
                control,
                created=created,
                mode=mode,
                concurrency=concurrency,
                dirs=dirs,
                retry=retry,
            )
            .begin()
            .finish()
        ),
    )


def put_cleanup_task(
    coordinator: Any, stage_index: int, config: Config, run_id: str, concurrency: int
) -> PutCleanupResult:
    """Delete the workload PUT objects of every agent of `run_id` at the places one agent config's PUT ops
    could have written to; run by any live agent's node, so a dead agent's objects are cleaned up too."""
    return _watched(
        coordinator,
        stage_index,
        lambda control: cleanup_puts(config, run_id, control, concurrency=concurrency),
    )


def scan_task(coordinator: Any, stage_index: int, params: PrepareParams) -> IndexSet:
    """The gap-fill LIST of one prepare entry, done once for every agent (sai3 had each agent list)."""
    return _watched(coordinator, stage_index, lambda control: scan_existing(params, control))


def verify_task(config: Config, identity: AgentIdentity) -> tuple[bool, list[str]]:
    """`--verify` for one agent's share: every prepared object listed and stat-able."""
    return verify_prepared(config, identity, RunControl())


def preflight_task(
    coordinator: Any, stage_index: int, config: Config, identity: AgentIdentity
) -> PreflightResult:
    """One agent's preflight checks, on that agent's node (its mounts, credentials and network); an abort
    ends the waits between retries at once."""
    return _watched(coordinator, stage_index, lambda control: run_preflight(config, identity, control))


@dataclass
class TaskJob:
    """One task to run for one agent's share of a stage."""

    agent_id: str
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    node_id: str
    #: True: must run on that node (its local disk); False: prefer it, run anywhere when it is busy
    hard: bool = False
    #: called on the driver when the task is launched, and with its return value (or exception) when done
    on_start: Callable[[TaskJob], None] | None = None
    on_done: Callable[[TaskJob, Any], None] | None = None
    label: str = ""
    #: shards are I/O-bound thread pools: a quarter CPU each lets several share a node, and never waits
    #: for a whole CPU that the agents' placement-group bundles keep slightly short of free
    num_cpus: float = 0.25


@dataclass
class TaskStageState:
    """What the task loop saw: per-agent snapshots and failures, and whether it was cut short."""

    per_agent: dict[str, SnapshotAccumulator] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    aborted: bool = False
    timed_out: bool = False
    unfinished: int = 0


def run_task_jobs(
    jobs: list[TaskJob],
    *,
    max_in_flight: int,
    coordinator: Any,
    stage_index: int,
    control: RunControl,
    timeout_s: float | None,
    interval_s: float,
    on_interval: Callable[[Snapshot, dict[str, Snapshot]], None],
    snapshot_of: Callable[[Any], Snapshot | None] = lambda r: getattr(r, "snapshot", None),
    state: TaskStageState | None = None,
    env: ForwardedEnv | None = None,
) -> TaskStageState:
    """Run `jobs` with at most `max_in_flight` at once, each with `env` set in its worker; every
    `interval_s` hand the snapshots of the shards that finished in that interval to `on_interval`
    (aggregate, per agent)."""
    state = state or TaskStageState()
    env = env if env is not None else ForwardedEnv({})
    queue = list(reversed(jobs))
    in_flight: dict[Any, tuple[TaskJob, float]] = {}
    t0 = time.monotonic()
    next_interval = t0 + interval_s
    interval_parts: list[tuple[str, Snapshot]] = []
    give_up_at: float | None = None

    def cut_off(agent_id: str) -> None:
        """A task the stop left without a result: at least one of its calls was in flight (how many more,
        only the lost task knew), counted as unfinished in the agent's figures and the perf log."""
        cut = Snapshot(unfinished_ops=1)
        state.per_agent.setdefault(agent_id, SnapshotAccumulator()).add(cut)
        interval_parts.append((agent_id, cut))

    def flush() -> None:
        if not interval_parts:
            return
        per: dict[str, list[Snapshot]] = {}
        for agent_id, snap in interval_parts:
            per.setdefault(agent_id, []).append(snap)
        on_interval(
            Snapshot.merge_all(s for _, s in interval_parts),
            {a: Snapshot.merge_all(snaps) for a, snaps in per.items()},
        )
        interval_parts.clear()

    while queue or in_flight:
        stopping = state.aborted or state.timed_out
        while queue and len(in_flight) < max_in_flight and not stopping:
            job = queue.pop()
            if job.on_start is not None:
                job.on_start(job)
            strategy = NodeAffinitySchedulingStrategy(node_id=job.node_id, soft=not job.hard)
            ref = (
                _remote(job.fn)
                .options(num_cpus=job.num_cpus, scheduling_strategy=strategy, max_retries=0)
                .remote(env, *job.args)
            )
            in_flight[ref] = (job, time.monotonic())
        if not in_flight:
            break
        ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=0.2)
        for ref in ready:
            job, started = in_flight.pop(ref)
            try:
                value: Any = ray.get(ref)
            except Exception as exc:  # a crashed task or a dead node: that agent's share failed
                value = exc
                first = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
                state.failures.setdefault(job.agent_id, f"{job.label or 'task'} failed: {first}")
                if state.aborted or state.timed_out:
                    cut_off(job.agent_id)  # it gave up on a call that never returned
            else:
                snap = snapshot_of(value)
                if snap is not None:
                    state.per_agent.setdefault(job.agent_id, SnapshotAccumulator()).add(snap)
                    interval_parts.append((job.agent_id, snap))
                if getattr(value, "aborted", False) and not state.aborted:
                    # the shard ended itself (stalled, over its error budget): that agent's share failed
                    why = getattr(value, "reason", "") or "aborted"
                    state.failures.setdefault(job.agent_id, f"{job.label or 'task'}: {why}")
            state.durations[job.agent_id] = state.durations.get(job.agent_id, 0.0) + (
                time.monotonic() - started
            )
            if job.on_done is not None:
                job.on_done(job, value)
        now = time.monotonic()
        if now >= next_interval:
            flush()
            next_interval += interval_s
        if control.aborted and not state.aborted:
            state.aborted = True
            ray.get(coordinator.abort.remote(control.reason or "aborted"))
            give_up_at = now + ABORT_WAIT_S
        if timeout_s and now - t0 > timeout_s and not state.timed_out:
            state.timed_out = True
            ray.get(coordinator.stop_tasks.remote(stage_index, f"timeout_secs={timeout_s:g} exceeded"))
            give_up_at = now + ABORT_WAIT_S
        if give_up_at is not None and now >= give_up_at:
            break
    state.unfinished = len(queue) + len(in_flight)
    for ref, (job, _started) in in_flight.items():
        ray.cancel(ref, force=True)
        cut_off(job.agent_id)
    flush()
    return state
