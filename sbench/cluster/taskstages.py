"""The stages the driver runs as Ray tasks: prepare and cleanup shards, and per-agent preflight.

Object spaces: with `shared_filesystem: true` every `ensure_objects` entry is one index space shared by all
agents (shard k is attributed to agent k mod N and prefers that agent's node); with `false` each agent has
its own space under its own prefix, and file:// shards must run on the agent's node (its local disk).

The metadata cache records what each shard created (exact bitmaps, in batches), so a resumed prepare needs
no LIST, cleanup deletes exactly the created set, and the GET pools of the execute stage are handed to the
agents as prepared records (no agent lists the prepared objects again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import ray

from sbench.cluster.env import ForwardedEnv
from sbench.cluster.metadata_cache import (
    WRITE_BATCH,
    ObjectState,
    compress_ranges,
    config_hash,
    subtract_ranges,
)
from sbench.cluster.stagerun import AgentRef
from sbench.cluster.tasks import (
    TaskJob,
    TaskStageState,
    cleanup_task,
    preflight_task,
    prepare_task,
    put_cleanup_task,
    run_task_jobs,
    scan_task,
    shard_ranges,
    verify_task,
)
from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.cleanup import CleanupShardResult, cleanup_failure, unconfirmed
from sbench.engine.deletes import cleanup_mode
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.leftovers import NOT_ATTEMPTED, Leftover, merge
from sbench.engine.prepare import ShardResult
from sbench.engine.putcleanup import PutCleanupResult
from sbench.engine.state import PreparedRecord
from sbench.layout.paths import op_name
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams, prepare_params
from sbench.plan.stages import StagePlan
from sbench.run.barrier import BarrierStatus, StageBarrier
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus
from sbench.storage.uri import parse_uri

LOCAL_SCHEMES = ("file", "direct")


@dataclass
class TaskStageContext:
    """What a task stage needs from the run."""

    config: Config
    agents: list[AgentRef]
    agent_configs: dict[str, Config]
    coordinator: Any
    cache: Any
    #: the run's stop (a Ctrl-C on the driver aborts it)
    control: RunControl
    interval_s: float
    max_in_flight: int
    on_interval: Callable[[Snapshot, dict[str, Snapshot]], None]
    say: Callable[[str], None]
    cleanup_only: bool = False
    #: the driver's storage variables, set in every task's worker (names only in any output)
    env: ForwardedEnv = field(default_factory=lambda: ForwardedEnv({}))


@dataclass
class Space:
    """One object index space (a prepare entry, shared or of one agent) and who works on it."""

    key: str
    params: PrepareParams
    agents: list[AgentRef]
    hard: bool
    concurrency: dict[str, int]
    scope: int = 0
    created: IndexSet = field(default_factory=lambda: IndexSet(0, 0))
    dirs: IndexSet | None = None
    failed: int = 0
    existed: int = 0
    complete: bool = True

    def spec(self) -> dict[str, Any]:
        """What defines the objects of this space (its metadata-cache identity)."""
        p = self.params
        return {
            "roots": p.roots,
            "count": p.count,
            "pools": p.pools,
            "sampler": repr(p.sampler),
            "size_seed": p.size_seed,
            "payload_seed": p.payload_seed,
            "fill": p.fill,
            "dedup": p.dedup_factor,
            "compress": p.compress_factor,
            "tree": repr(p.tree),
        }


def object_spaces(ctx: TaskStageContext) -> list[Space]:
    dist = ctx.config.distributed
    shared = bool(dist is not None and dist.shared_filesystem)
    spaces: list[Space] = []
    if shared:
        for params in prepare_params(ctx.config, AgentIdentity(count=1)):
            conc = {a.agent_id: ctx.agent_configs[a.agent_id].concurrency for a in ctx.agents}
            spaces.append(Space(f"entry-{params.entry}", params, list(ctx.agents), False, conc))
        return spaces
    for agent in ctx.agents:
        own = ctx.agent_configs[agent.agent_id]
        identity = AgentIdentity(agent_id=agent.agent_id, index=agent.index, count=1)
        for params in prepare_params(own, identity):
            local = parse_uri(params.base_uri).scheme in LOCAL_SCHEMES
            spaces.append(
                Space(
                    f"{agent.agent_id}/entry-{params.entry}",
                    params,
                    [agent],
                    local,
                    {agent.agent_id: own.concurrency},
                )
            )
    return spaces


def _ranges_of(bits: IndexSet) -> list[tuple[int, int]]:
    return compress_ranges(iter(bits))


def _index_set(total: int, ranges: list[tuple[int, int]]) -> IndexSet:
    """Bitmap of [0, total) with the given ranges set, whole bytes at a time (10 M objects in < 1 s)."""
    bits = bytearray((total + 7) // 8)
    for lo, hi in ranges:
        hi = min(hi, total)
        while lo < hi and lo & 7:
            bits[lo >> 3] |= 1 << (lo & 7)
            lo += 1
        full_end = hi & ~7
        if lo < full_end:
            bits[lo >> 3 : full_end >> 3] = b"\xff" * ((full_end - lo) >> 3)
            lo = full_end
        while lo < hi:
            bits[lo >> 3] |= 1 << (lo & 7)
            lo += 1
    return IndexSet(0, total, bits)


def _verdict(
    plan: StagePlan, agents: list[AgentRef], failures: dict[str, str]
) -> tuple[BarrierStatus, StageBarrier]:
    barrier = StageBarrier(plan.barrier, tuple(a.agent_id for a in agents))
    for agent in agents:
        if agent.agent_id in failures:
            barrier.fail(agent.agent_id, failures[agent.agent_id])
        else:
            barrier.arrive(agent.agent_id, 0.0)
    return barrier.evaluate(0.0), barrier


def _stage_run(plan: StagePlan, agents: list[AgentRef], state: TaskStageState, elapsed_s: float) -> StageRun:
    failures = dict(state.failures)
    if state.aborted:
        for agent in agents:
            failures.setdefault(agent.agent_id, "aborted")
    elif state.timed_out:
        for agent in agents:
            failures.setdefault(agent.agent_id, f"stage exceeded timeout_secs={plan.timeout_s:g}")
    status, barrier = _verdict(plan, agents, failures)
    results = {}
    for agent in agents:
        acc = state.per_agent.get(agent.agent_id)
        why = failures.get(agent.agent_id, "")
        if not why:
            result_status = StageStatus.OK
        elif state.aborted:
            result_status = StageStatus.ABORTED
        elif state.timed_out:
            result_status = StageStatus.TIMEOUT
        else:
            result_status = StageStatus.FAILED
        results[agent.agent_id] = AgentStageResult(
            agent.agent_id,
            plan.index,
            result_status,
            why,
            acc.snapshot() if acc is not None else Snapshot(),
            state.durations.get(agent.agent_id, 0.0),
        )
    return StageRun(
        plan=plan,
        status=status,
        results=results,
        states={a: s.value for a, s in barrier.states.items()},
        reasons=dict(barrier.reasons),
        stuck={},
        start_skew_ms=None,
        elapsed_s=elapsed_s,
        aborted=state.aborted,
        timed_out=state.timed_out,
    )


def _run(
    ctx: TaskStageContext, plan: StagePlan, jobs: list[TaskJob], state: TaskStageState, t_limit: float | None
):
    return run_task_jobs(
        jobs,
        max_in_flight=ctx.max_in_flight,
        env=ctx.env,
        coordinator=ctx.coordinator,
        stage_index=plan.index,
        control=ctx.control,
        timeout_s=t_limit,
        interval_s=ctx.interval_s,
        on_interval=ctx.on_interval,
        state=state,
    )


# -- prepare --


def run_prepare_stage(
    ctx: TaskStageContext, plan: StagePlan
) -> tuple[StageRun, dict[str, dict[int, PreparedRecord]]]:
    """Create the missing objects of every space with shard tasks; returns the stage and, per agent, the
    prepared records its execute stages read."""
    import time

    t0 = time.monotonic()
    spaces = object_spaces(ctx)
    state = TaskStageState()
    for space in spaces:
        space.scope = ray.get(ctx.cache.scope_id.remote(config_hash(space.spec()), space.key))
        space.created = IndexSet(0, space.params.total)
        ray.get(ctx.cache.put_manifest.remote(config_hash(space.spec()), space.key, space.spec()))
    existing = _existing_sets(ctx, plan, spaces, state)
    # Tree spaces: shard 0 creates the directories first; the other shards follow once it is done.
    first_round: list[TaskJob] = []
    second_round: list[TaskJob] = []
    for space in spaces:
        have = existing.get(space.key)
        have_ref = ray.put(have) if have is not None else None
        for k, (lo, hi) in enumerate(shard_ranges(space.params.total, len(space.agents))):
            if have is not None and all(i in have for i in range(lo, hi)):
                space.existed += hi - lo
                continue
            agent = space.agents[k % len(space.agents)]
            params = replace(space.params, concurrency=space.concurrency[agent.agent_id])
            job = TaskJob(
                agent.agent_id,
                prepare_task,
                (ctx.coordinator, plan.index, params, lo, hi, have_ref),
                agent.node_id,
                hard=space.hard,
                on_start=_prepare_start(ctx, space, lo, hi, have),
                on_done=_prepare_done(ctx, space),
                label=f"prepare shard [{lo}, {hi}) of {space.params.base_uri}",
            )
            (first_round if space.params.tree is not None and lo == 0 else second_round).append(job)
    if first_round:
        _run(ctx, plan, first_round, state, plan.timeout_s)
    if not (state.aborted or state.timed_out):
        remaining = plan.timeout_s - (time.monotonic() - t0) if plan.timeout_s else None
        _run(ctx, plan, second_round, state, remaining)
    if state.unfinished:
        for space in spaces:
            space.complete = False
    records = _records(ctx, spaces)
    run = _stage_run(plan, _participants(spaces), state, time.monotonic() - t0)
    for space in spaces:
        if space.failed:
            for agent in space.agents:
                run.reasons.setdefault(
                    agent.agent_id, f"{space.failed} objects of {space.params.base_uri} failed"
                )
    created = sum(len(s.created) for s in spaces)
    ctx.say(
        f"prepare: {created:,} objects created, {sum(s.existed for s in spaces):,} already there, "
        f"{sum(s.failed for s in spaces):,} failed"
    )
    return run, records


def _participants(spaces: list[Space]) -> list[AgentRef]:
    seen: dict[str, AgentRef] = {}
    for space in spaces:
        for agent in space.agents:
            seen.setdefault(agent.agent_id, agent)
    return list(seen.values())


def _existing_sets(
    ctx: TaskStageContext, plan: StagePlan, spaces: list[Space], state: TaskStageState
) -> dict[str, IndexSet | None]:
    """Gap fill: what already exists per space, from the metadata cache (resume, no LIST) or one LIST."""
    out: dict[str, IndexSet | None] = {}
    to_list: list[Space] = []
    for space in spaces:
        p = space.params
        if p.force_overwrite:
            out[space.key] = None
            continue
        known = ray.get(ctx.cache.ranges_in_state.remote(space.scope, 0, p.total, [int(ObjectState.CREATED)]))
        if known:
            have = _index_set(p.total, known)
            out[space.key] = have
            ctx.say(
                f"prepare {p.base_uri}: resuming from the metadata cache, {len(have):,} of {p.total:,} "
                "objects already created (no LIST)"
            )
        elif p.skip_verification:
            out[space.key] = None
        else:
            to_list.append(space)
    if to_list:
        found: dict[str, IndexSet] = {}

        def done(job: TaskJob, value: Any) -> None:
            if isinstance(value, IndexSet):
                found[job.label] = value

        jobs = [
            TaskJob(
                s.agents[0].agent_id,
                scan_task,
                (ctx.coordinator, plan.index, s.params),
                s.agents[0].node_id,
                hard=s.hard,
                on_done=done,
                label=s.key,
                num_cpus=0.25,
            )
            for s in to_list
        ]
        _run(ctx, plan, jobs, state, plan.timeout_s)
        for space in to_list:
            out[space.key] = found.get(space.key, IndexSet(0, space.params.total))
    return out


def _prepare_start(
    ctx: TaskStageContext, space: Space, lo: int, hi: int, have: IndexSet | None
) -> Callable[[TaskJob], None]:
    """Record the shard's objects as planned, and the ones it will create as CREATING: after a crash the
    cache shows what was in flight (resume recreates everything not CREATED)."""

    def start(job: TaskJob) -> None:
        ray.get(ctx.cache.plan.remote(space.scope, lo, None, hi))
        p = space.params
        if p.skip_verification and not p.force_overwrite:
            return  # assumed present: nothing will be created
        if have is None:
            missing = [(lo, hi)]
        else:
            missing = subtract_ranges(lo, hi, compress_ranges(i for i in range(lo, hi) if i in have))
        if missing:
            ray.get(ctx.cache.mark_ranges.remote(space.scope, missing, int(ObjectState.CREATING)))

    return start


def _prepare_done(ctx: TaskStageContext, space: Space) -> Callable[[TaskJob, Any], None]:
    def done(job: TaskJob, value: Any) -> None:
        if not isinstance(value, ShardResult):
            space.complete = False
            return
        created = _ranges_of(value.created)
        if created:
            space.created.update(value.created)
            ray.get(ctx.cache.mark_ranges.remote(space.scope, created, int(ObjectState.CREATED)))
        failed = _ranges_of(value.failed)
        if failed:
            ray.get(ctx.cache.mark_ranges.remote(space.scope, failed, int(ObjectState.FAILED)))
        space.failed += len(value.failed)
        space.existed += value.existed
        if value.aborted or len(value.failed):
            space.complete = False
        if value.dirs_created is not None and len(value.dirs_created):
            space.dirs = value.dirs_created
            ray.get(
                ctx.cache.mark_ranges.remote(
                    _dirs_scope(ctx, space), _ranges_of(value.dirs_created), int(ObjectState.CREATED)
                )
            )

    return done


def _dirs_scope(ctx: TaskStageContext, space: Space) -> int:
    return ray.get(ctx.cache.scope_id.remote(config_hash(space.spec()), space.key + "/dirs"))


def _records(ctx: TaskStageContext, spaces: list[Space]) -> dict[str, dict[int, PreparedRecord]]:
    out: dict[str, dict[int, PreparedRecord]] = {}
    for space in spaces:
        p = space.params
        record = PreparedRecord(
            entry=p.entry,
            base_uri=p.base_uri,
            pools=p.pools,
            count=p.count,
            created=space.created,
            complete=space.complete and space.failed == 0,
            tree=p.tree is not None,
            created_dirs=space.dirs,
        )
        for agent in space.agents:
            out.setdefault(agent.agent_id, {})[p.entry] = record
    return out


# -- cleanup --


@dataclass
class CleanupStage:
    """The cleanup stage as the driver sees it: the barrier run, notes, what stayed and the mode."""

    run: StageRun
    notes: list[str]
    leftovers: list[Leftover]
    mode: str
    #: workload PUT objects confirmed gone (deleted or not found) by the tasks that returned
    put_gone: int = 0
    #: tasks whose result never came back (how many deletes they had in flight is unknown)
    lost_jobs: int = 0


@dataclass
class _CleanupJobs:
    """The cleanup jobs of a stage and what each of them reported (or would report if it never returns)."""

    mode: str
    live: list[AgentRef]
    jobs: list[TaskJob] = field(default_factory=list)
    dir_jobs: list[TaskJob] = field(default_factory=list)
    #: id(job) -> the leftovers to report when the job never returns (all of its objects, unconfirmed)
    unreturned: dict[int, Callable[[str], list[Leftover]]] = field(default_factory=dict)
    #: id(job) -> its failure reason for the barrier ("" when nothing stays)
    failures: dict[int, str] = field(default_factory=dict)
    leftovers: list[Leftover] = field(default_factory=list)
    put_gone: int = 0
    lost_jobs: int = 0

    def stand_in(self, owner: AgentRef) -> AgentRef:
        """The live agent that does (and answers for) a share: the owner itself, or for a dead owner a
        live agent picked by the owner's index. Cleanup is never handed to a dead agent."""
        if any(a.agent_id == owner.agent_id for a in self.live):
            return owner
        return self.live[owner.index % len(self.live)]

    def returned(self, job: TaskJob, items: list[Leftover], missing: int = 0, rmdirs: int = 0) -> None:
        self.unreturned.pop(id(job), None)
        self.leftovers.extend(items)
        why = cleanup_failure(self.mode, items, missing, rmdirs)
        if why:
            self.failures[id(job)] = why

    def lost(self, job: TaskJob, why: str) -> None:
        """A job that failed or never finished: none of its objects is confirmed gone."""
        make = self.unreturned.pop(id(job), None)
        if make is not None:
            self.lost_jobs += 1
            items = make(why)
            self.leftovers.extend(items)
            self.failures[id(job)] = cleanup_failure(self.mode, items)


def run_cleanup_shards(
    ctx: TaskStageContext,
    plan: StagePlan,
    *,
    owners: list[AgentRef] | None = None,
    run_id: str = "",
) -> CleanupStage:
    """Delete exactly the objects the metadata cache records as created (all prepare names of the config
    with --cleanup-only when the cache knows nothing) and the workload PUT objects of `run_id`, for every
    agent in `owners` (default: the participants), dead ones included; `ctx.agents` are the live agents
    that do the work. Returns the stage, notes and exactly what stayed where."""
    import time

    t0 = time.monotonic()
    mode = cleanup_mode(ctx.config)
    retry = ErrorHandling.for_cleanup(ctx.config.error_handling)
    prep = ctx.config.prepare
    concurrency = int(getattr(prep, "cleanup_concurrency", None) or ctx.config.concurrency)
    notes: list[str] = []
    owners = owners or list(ctx.agents)
    book = _CleanupJobs(mode, list(ctx.agents) or owners)
    spaces = object_spaces(replace(ctx, agents=owners))
    for space in spaces:
        _prepared_jobs(ctx, plan, space, book, notes, concurrency, retry)
    if run_id and not ctx.cleanup_only:
        _put_jobs(ctx, plan, owners, book, run_id, concurrency)
    state = TaskStageState()
    _run(ctx, plan, book.jobs, state, plan.timeout_s)
    if book.dir_jobs and not (state.aborted or state.timed_out):
        _run(ctx, plan, book.dir_jobs, state, plan.timeout_s)
    why = "the stage was aborted" if state.aborted else "the stage timed out" if state.timed_out else ""
    for job in [*book.jobs, *book.dir_jobs]:
        if id(job) in book.unreturned:
            book.lost(job, f"cleanup task did not finish: {why or 'no result came back'}")
        reason = book.failures.get(id(job))
        if reason and not state.aborted:
            state.failures.setdefault(job.agent_id, reason)
    run = _stage_run(plan, book.live, state, time.monotonic() - t0)
    return CleanupStage(run, notes, merge(book.leftovers), mode, book.put_gone, book.lost_jobs)


def _prepared_jobs(
    ctx: TaskStageContext,
    plan: StagePlan,
    space: Space,
    book: _CleanupJobs,
    notes: list[str],
    concurrency: int,
    retry: ErrorHandling,
) -> None:
    """One cleanup task per shard of the space's created objects (and one for its tree directories)."""
    p = replace(space.params, concurrency=concurrency)
    space.scope = ray.get(ctx.cache.scope_id.remote(config_hash(space.spec()), space.key))
    created_ranges = _created_ranges(ctx, space.scope)
    if created_ranges:
        created: IndexSet | None = _index_set(p.total, created_ranges)
    elif ctx.cleanup_only:
        created = None
        notes.append(
            f"{p.base_uri}: the metadata cache has no record of this prepare, so every prepare name "
            f"({p.total:,} objects) is deleted (--cleanup-only)"
        )
    else:
        notes.append(f"{p.base_uri}: nothing recorded as created by sbench; nothing deleted")
        return
    for k, (lo, hi) in enumerate(shard_ranges(p.total, len(space.agents))):
        if created is not None and not any(i in created for i in range(lo, hi)):
            continue
        owner = space.agents[k % len(space.agents)]
        part = None
        if created is not None:
            part = IndexSet(lo, hi)
            for i in range(lo, hi):
                if i in created:
                    part.add(i)
        job = TaskJob(
            book.stand_in(owner).agent_id,
            cleanup_task,
            (ctx.coordinator, plan.index, p, lo, hi, part, book.mode, concurrency, None, retry),
            owner.node_id,
            hard=space.hard,
            on_done=_cleanup_done(ctx, space, book),
            label=f"cleanup shard [{lo}, {hi}) of {p.base_uri}",
        )
        book.unreturned[id(job)] = partial(unconfirmed, p, lo, hi, part)
        book.jobs.append(job)
    if p.tree is not None:
        dirs_ranges = ray.get(
            ctx.cache.ranges_in_state.remote(_dirs_scope(ctx, space), 0, 2**62, [int(ObjectState.CREATED)])
        )
        if dirs_ranges:
            total_dirs = max(hi for _, hi in dirs_ranges)
            owner = space.agents[0]
            dirs = _index_set(total_dirs, dirs_ranges)
            args = (ctx.coordinator, plan.index, p, 0, 0, IndexSet(0, 0), book.mode, 1, dirs, retry)
            book.dir_jobs.append(
                TaskJob(
                    book.stand_in(owner).agent_id,
                    cleanup_task,
                    args,
                    owner.node_id,
                    hard=space.hard,
                    on_done=_dirs_done(ctx, space, book),
                    label=f"cleanup directories of {p.base_uri}",
                )
            )


def _put_jobs(
    ctx: TaskStageContext,
    plan: StagePlan,
    owners: list[AgentRef],
    book: _CleanupJobs,
    run_id: str,
    concurrency: int,
) -> None:
    """One task per distinct set of PUT places (agents that share a config share one task): it deletes the
    run's PUT keys of every agent there, so a dead agent's objects go too. File-system places of isolated
    agents are cleaned on their owner's node (its local disk)."""
    dist = ctx.config.distributed
    shared = bool(dist is not None and dist.shared_filesystem)
    groups: dict[tuple[Any, ...], AgentRef] = {}
    for owner in owners:
        cfg = ctx.agent_configs[owner.agent_id]
        paths = tuple(sorted(str(op.path) for op in cfg.workload if op_name(op) == "put"))
        if not paths or (cfg.prepare is not None and cfg.prepare.directory_structure is not None):
            continue
        me = cfg.multi_endpoint
        endpoints = tuple(me.endpoints) if me is not None else ()
        first = cfg.target or (endpoints[0] if endpoints else "")
        local = not shared and bool(first) and parse_uri(first).scheme in LOCAL_SCHEMES
        groups.setdefault((cfg.target, endpoints, paths, owner.node_id if local else ""), owner)
    for (target, endpoints, paths, node), owner in groups.items():
        where = f"{target or ', '.join(endpoints)} ({', '.join(paths)})"
        job = TaskJob(
            book.stand_in(owner).agent_id,
            put_cleanup_task,
            (ctx.coordinator, plan.index, ctx.agent_configs[owner.agent_id], run_id, concurrency),
            owner.node_id,
            hard=bool(node),
            on_done=_put_done(book),
            label=f"cleanup of the workload PUT objects under {where}",
        )
        location = f"workload PUT objects of run {run_id} under {where}"
        book.unreturned[id(job)] = partial(_put_unknown, location)
        book.jobs.append(job)


def _put_unknown(location: str, why: str) -> list[Leftover]:
    """A PUT cleanup task that never returned: how many objects stay there is unknown."""
    return [Leftover(location, 0, False, {NOT_ATTEMPTED: why})]


def _put_done(book: _CleanupJobs) -> Callable[[TaskJob, Any], None]:
    def done(job: TaskJob, value: Any) -> None:
        if isinstance(value, PutCleanupResult):
            book.put_gone += value.deleted + value.missing
            book.returned(job, value.leftovers, value.missing)
        else:
            book.lost(job, f"{job.label} failed: {value}")

    return done


def _created_ranges(ctx: TaskStageContext, scope: int) -> list[tuple[int, int]]:
    """The exact created set of a space, paged from the cache in batches (constant memory per call)."""
    out: list[tuple[int, int]] = []
    after = -1
    while batch := ray.get(ctx.cache.created_batch.remote(scope, after, WRITE_BATCH)):
        if out and out[-1][1] == batch[0][0]:
            out[-1] = (out[-1][0], batch[0][1])
            batch = batch[1:]
        out.extend(batch)
        after = out[-1][1] - 1
    return out


def _cleanup_done(ctx: TaskStageContext, space: Space, book: _CleanupJobs) -> Callable[[TaskJob, Any], None]:
    def done(job: TaskJob, value: Any) -> None:
        if not isinstance(value, CleanupShardResult):
            book.lost(job, f"{job.label} failed: {value}")
            return
        # exactly the objects confirmed gone are no longer this run's: a later cleanup retries the rest
        gone = _ranges_of(value.gone) if value.gone is not None else []
        if gone:
            ray.get(ctx.cache.mark_ranges.remote(space.scope, gone, int(ObjectState.DELETED)))
        book.returned(job, value.leftovers, value.missing, value.rmdir_failed)

    return done


def _dirs_done(ctx: TaskStageContext, space: Space, book: _CleanupJobs) -> Callable[[TaskJob, Any], None]:
    def done(job: TaskJob, value: Any) -> None:
        if not isinstance(value, CleanupShardResult):
            book.lost(job, f"{job.label} failed: {value}")
            return
        book.returned(job, value.leftovers, value.missing, value.rmdir_failed)
        if value.rmdir_failed == 0 and not value.aborted:
            scope = _dirs_scope(ctx, space)
            ranges = ray.get(ctx.cache.ranges_in_state.remote(scope, 0, 2**62, [int(ObjectState.CREATED)]))
            ray.get(ctx.cache.mark_ranges.remote(scope, ranges, int(ObjectState.DELETED)))

    return done


# -- validation --


def run_validation_stage(ctx: TaskStageContext, plan: StagePlan) -> tuple[StageRun, list[Any]]:
    """Preflight on every agent's node (as tasks) plus the controller's config checks on the driver."""
    import time

    from sbench.preflight import controller_checks
    from sbench.preflight.result import PreflightResult, unfinished_check

    t0 = time.monotonic()
    controller = controller_checks(ctx.config)
    results: dict[str, Any] = {}

    def done(job: TaskJob, value: Any) -> None:
        results[job.agent_id] = value

    jobs = [
        TaskJob(
            a.agent_id,
            preflight_task,
            (
                ctx.coordinator,
                plan.index,
                ctx.agent_configs[a.agent_id],
                AgentIdentity(agent_id=a.agent_id, index=a.index, count=len(ctx.agents)),
            ),
            a.node_id,
            hard=True,
            on_done=done,
            label="preflight",
            num_cpus=0,
        )
        for a in ctx.agents
    ]
    state = TaskStageState()
    run_task_jobs(
        jobs,
        max_in_flight=max(1, len(jobs)),
        env=ctx.env,
        coordinator=ctx.coordinator,
        stage_index=plan.index,
        control=ctx.control,
        timeout_s=plan.timeout_s,
        interval_s=ctx.interval_s,
        on_interval=ctx.on_interval,
        snapshot_of=lambda _r: None,
        state=state,
    )
    for agent in ctx.agents:
        if not hasattr(results.get(agent.agent_id), "passed"):
            # stopped, lost or failed: preflight.json says which agent's checks did not finish
            lost = str(results.get(agent.agent_id, "its task did not return"))
            why = (ctx.control.reason or "aborted") if ctx.control.aborted else lost
            check = unfinished_check(why, agent_id=agent.agent_id, endpoint=None)
            results[agent.agent_id] = PreflightResult(checks=[check])
    for agent_id, result in results.items():
        if not result.passed:
            state.failures.setdefault(agent_id, result.failure_message())
    if not controller.passed:
        for agent in ctx.agents:
            state.failures.setdefault(agent.agent_id, "controller checks: " + controller.failure_message())
    for agent_id, result in results.items():
        ctx.say(f"preflight {agent_id}: {result.summary_line()}")
    ctx.say(f"preflight controller: {controller.summary_line()}")
    run = _stage_run(plan, list(ctx.agents), state, time.monotonic() - t0)
    return run, [controller, *results.values()]


# -- --verify --


def run_verify(ctx: TaskStageContext) -> tuple[bool, list[str]]:
    """`--verify`: every prepared object listed and stat-able, checked once per object space (shared: by
    the first agent for all of it; isolated: each agent its own, on its own node)."""
    found: dict[str, tuple[bool, list[str]]] = {}

    def done(job: TaskJob, value: Any) -> None:
        found[job.agent_id] = value if isinstance(value, tuple) else (False, [f"verify failed: {value}"])

    dist = ctx.config.distributed
    shared = bool(dist is not None and dist.shared_filesystem)
    checkers = ctx.agents[:1] if shared else ctx.agents
    jobs = [
        TaskJob(
            a.agent_id,
            verify_task,
            (ctx.config if shared else ctx.agent_configs[a.agent_id], AgentIdentity(agent_id=a.agent_id)),
            a.node_id,
            hard=True,
            on_done=done,
            label="verify",
        )
        for a in checkers
    ]
    run_task_jobs(
        jobs,
        max_in_flight=max(1, len(jobs)),
        env=ctx.env,
        coordinator=ctx.coordinator,
        stage_index=0,
        control=ctx.control,
        timeout_s=None,
        interval_s=ctx.interval_s,
        on_interval=ctx.on_interval,
        snapshot_of=lambda _r: None,
    )
    lines = [f"{agent}: {line}" for agent, (_ok, out) in found.items() for line in out]
    ok = len(found) == len(jobs) and all(ok for ok, _ in found.values())
    return ok, lines
