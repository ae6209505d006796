"""Shard jobs as Ray tasks (the Ray fleet's `JobRunner`) and the metadata-cache actor as the object book.

A job runs in a Ray task placed on (or near) its agent's node, with the driver's forwarded storage variables
set in the worker for its duration. Its link polls the coordinator every 0.25 s for the stage's command
(continue, stop, abort) and sends the shard's interval reports there; the driver's job loop takes them each
interval. An abort or a stage timeout so stops every shard mid-range and it still returns what it did,
instead of losing it to a task cancellation.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Hashable, Mapping
from typing import Any, TypeVar

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sbench.cluster.env import ForwardedEnv
from sbench.cluster.oplogs import RayOpLogs, TaskLogSpec, task_capture
from sbench.control import RunControl
from sbench.engine.rangeset import RangeSet
from sbench.metrics.snapshot import Snapshot
from sbench.run.objectbook import ObjectState, Range, config_hash
from sbench.run.shardjobs import ShardJob

T = TypeVar("T")

COMMAND_POLL_S = 0.25
#: How long a task waits for its shard after a stop/abort before giving up on it (the shard's own bounded
#: finish returns after the engine's grace, GRACE_S, so this only catches a shard that cannot return).
TASK_ABANDON_S = 1.5
#: Created indices per page read from the metadata cache (constant memory per call).
PAGE = 50_000

_REMOTE_FNS: dict[Callable[..., Any], Any] = {}


def _remote(fn: Callable[..., Any]) -> Any:
    """One RemoteFunction per job function (registering a function with Ray on every call is slow); it
    takes the forwarded environment, the op-log spec and the link before the job's own arguments (see
    `_with_env`)."""
    remote = _REMOTE_FNS.get(fn)
    if remote is None:
        remote = _REMOTE_FNS[fn] = ray.remote(_with_env(fn))
    return remote


def _with_env(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` run with the driver's forwarded variables set in the worker, and the worker's own environment
    put back afterwards (Ray reuses the process for later tasks); its storage calls captured for its agent
    when the run has an op-log (cluster.oplogs). The variables come as an argument, never
    as a runtime_env, which Ray would log (see cluster.env)."""

    def task(env: ForwardedEnv, oplog: TaskLogSpec | None, *args: Any) -> Any:
        with env.applied(), task_capture(oplog):
            return fn(*args)

    # fn's name in Ray's task list; no __wrapped__, or Ray would check the call against fn's signature
    task.__name__, task.__qualname__, task.__doc__ = fn.__name__, fn.__qualname__, fn.__doc__
    return task


class CoordinatorLink:
    """A Ray task's link to the job loop, through the coordinator actor (picklable: an actor handle)."""

    def __init__(self, coordinator: Any, stage_index: int, key: int, interval_s: float) -> None:
        self.interval_s = interval_s
        self._coordinator = coordinator
        self._stage_index = stage_index
        self._key = key

    def report(self, snapshot: Snapshot, done: int) -> None:
        """Sent before the task returns, so the driver never sees a result before its last report."""
        ray.get(
            self._coordinator.task_report.remote(self._stage_index, self._key, snapshot, done), timeout=10
        )

    def run(self, body: Callable[[RunControl], T]) -> T:
        """`body(control)` on a thread; this thread stops or aborts it when the coordinator says so."""
        control = RunControl()
        box: dict[str, Any] = {}

        def work() -> None:
            try:
                box["result"] = body(control)
            except BaseException as exc:  # re-raised below in the task's thread, so Ray reports it
                box["error"] = exc

        worker = threading.Thread(target=work, name="sbench-shard", daemon=True)
        worker.start()
        abandon_at: float | None = None
        while worker.is_alive():
            worker.join(COMMAND_POLL_S)
            if not worker.is_alive():
                break
            if abandon_at is None:
                try:
                    command = ray.get(self._coordinator.task_command.remote(self._stage_index), timeout=5)
                except Exception:  # the coordinator is gone: the driver is tearing the run down
                    command = "abort"
                if command == "abort":
                    control.abort("the run is being aborted")
                elif command == "stop":
                    control.stop("the stage was stopped")
                if control.stopping:
                    abandon_at = time.monotonic() + TASK_ABANDON_S
            elif time.monotonic() >= abandon_at:
                raise TimeoutError(f"shard did not stop within {TASK_ABANDON_S:g}s ({control.reason})")
        if "error" in box:
            raise box["error"]
        return box["result"]


class RayJobRunner:
    """Jobs as Ray tasks on the agents' nodes (see the module docstring)."""

    local = False

    def __init__(
        self,
        coordinator: Any,
        env: ForwardedEnv,
        interval_s: float,
        oplog: RayOpLogs | None = None,
        envs: Mapping[str, ForwardedEnv] | None = None,
    ) -> None:
        self.coordinator = coordinator
        self.env = env
        #: per agent id, the environment of the agent a job works for (`env` for any other job)
        self.envs = dict(envs or {})
        self.interval_s = interval_s
        #: the run's op-log, when there is one: each task captures its calls for its agent
        self.oplog = oplog

    def submit(self, job: ShardJob, stage_index: int, key: int) -> Hashable:
        link = CoordinatorLink(self.coordinator, stage_index, key, self.interval_s)
        strategy = (
            NodeAffinitySchedulingStrategy(node_id=job.node_id, soft=not job.hard)
            if job.node_id
            else "DEFAULT"
        )
        return (
            _remote(job.fn)
            .options(num_cpus=job.num_cpus, scheduling_strategy=strategy, max_retries=0)
            .remote(
                self.envs.get(job.agent_id, self.env),
                self.oplog and self.oplog.task_spec(job.agent_id),
                link,
                *job.args,
            )
        )

    def wait(self, handles: list[Hashable], timeout_s: float) -> list[Hashable]:
        ready, _ = ray.wait(handles, num_returns=1, timeout=timeout_s)
        return ready

    def result(self, handle: Hashable) -> Any:
        return ray.get(handle)

    def abandon(self, handle: Hashable) -> None:
        ray.cancel(handle, force=True)

    def halt(self, stage_index: int, reason: str, *, abort: bool) -> None:
        if abort:
            ray.get(self.coordinator.abort.remote(reason))
        else:
            ray.get(self.coordinator.stop_tasks.remote(stage_index, reason))

    def live(self, stage_index: int) -> list[tuple[int, Snapshot, int]]:
        return ray.get(self.coordinator.take_task_reports.remote(stage_index))

    def share(self, value: Any) -> Any:
        return ray.put(value)

    def end_stage(self, stage_index: int) -> None:
        """Reports of tasks that outlived the stage are dropped with it (they were counted as unfinished)."""
        ray.get(self.coordinator.take_task_reports.remote(stage_index))


class ActorBook:
    """The object book of a Ray run: the metadata-cache actor (durable, shared by every node)."""

    name = "the metadata cache"

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def open_scope(self, key: str, spec: dict[str, Any], total: int) -> int:
        digest = config_hash(spec)
        scope = ray.get(self.cache.scope_id.remote(digest, key))
        ray.get(self.cache.put_manifest.remote(digest, key, spec))
        return int(scope)

    def created(self, scope: int, total: int) -> RangeSet:
        """The created set, paged from the cache."""
        out = RangeSet(0, total)
        after = -1
        while batch := ray.get(self.cache.created_batch.remote(scope, after, PAGE)):
            for lo, hi in batch:
                out.add_range(lo, hi)
            after = batch[-1][1] - 1
        return out

    def starting(self, scope: int, lo: int, hi: int, missing: list[Range]) -> None:
        ray.get(self.cache.plan.remote(scope, lo, hi))
        if missing:
            ray.get(self.cache.mark_ranges.remote(scope, missing, int(ObjectState.CREATING)))

    def mark(self, scope: int, ranges: list[Range], state: ObjectState) -> None:
        if ranges:
            ray.get(self.cache.mark_ranges.remote(scope, ranges, int(state)))
