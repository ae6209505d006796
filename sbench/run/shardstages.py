"""The shard stages: prepare, cleanup and (on Ray) preflight as batches of jobs, written once for both fleets.

Each prepare entry becomes object spaces: with `distributed.shared_filesystem: true` one space shared by all
agents (shard k is attributed to agent k mod N and prefers that agent's node); otherwise each agent has its
own space under its own prefix, and file:// shards run on the agent's node (its local disk). The in-process
fleet is the degenerate case: one agent, one space per entry, jobs on threads.

The object book (`run.objectbook`) records what each shard created, so a resumed prepare needs no LIST,
cleanup deletes exactly the created set, and the execute stages get the prepared records (no agent lists the
prepared objects again). With `prepare_strategy: sequential` (the default) the entries are prepared one after
the other; `parallel` prepares them at once, each agent's `concurrency` shared among its entries.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine import leftovers
from sbench.engine.cleanup import CleanupShardResult, cleanup_failure, unconfirmed
from sbench.engine.deletes import cleanup_mode
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.leftovers import NOT_ATTEMPTED, Leftover, merge
from sbench.engine.prepare import ShardResult
from sbench.engine.putcleanup import PutCleanupResult
from sbench.engine.rangeset import RangeSet
from sbench.engine.state import PreparedRecord
from sbench.layout.paths import op_name
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams, prepare_params
from sbench.plan.shardplan import SHARD_MAX, ShardPlan
from sbench.plan.stages import StagePlan
from sbench.run.barrier import StageBarrier
from sbench.run.objectbook import ObjectBook, ObjectState, subtract_ranges
from sbench.run.shardjobs import (
    JobRunner,
    JobsState,
    JobStream,
    ShardJob,
    StageLimits,
    failure_text,
    run_jobs,
)
from sbench.run.shardtasks import (
    ScanResult,
    cleanup_task,
    preflight_task,
    prepare_task,
    put_cleanup_task,
    scan_task,
    verify_task,
)
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import StageStatus
from sbench.storage.uri import parse_uri

LOCAL_SCHEMES = ("file", "direct")


@dataclass(frozen=True)
class StageAgent:
    """An agent as the shard stages see it: who answers for a share, and where its jobs prefer to run."""

    agent_id: str
    index: int = 0
    #: its Ray node ("" in process)
    node_id: str = ""


@dataclass
class ShardStageContext:
    """What a shard stage needs from its fleet."""

    config: Config
    #: the live agents that do the work
    agents: list[StageAgent]
    agent_configs: dict[str, Config]
    runner: JobRunner
    book: ObjectBook
    #: the run's stop (a Ctrl-C on the driver aborts it)
    control: RunControl
    interval_s: float
    max_in_flight: int
    on_interval: Callable[[Snapshot, dict[str, Snapshot]], None]
    say: Callable[[str], None]
    cleanup_only: bool = False
    shard_max: int = SHARD_MAX


#: what exists of a space before prepare: the object book's runs, or the bitmap of one LIST
Known = IndexSet | RangeSet

@dataclass
class Space:
    """One object index space (a prepare entry, shared or of one agent) and who works on it."""

    key: str
    params: PrepareParams
    agents: list[StageAgent]
    hard: bool
    concurrency: dict[str, int]
    scope: int = 0
    created: RangeSet = field(default_factory=lambda: RangeSet(0, 0))
    dirs: IndexSet | None = None
    failed: int = 0
    existed: int = 0
    complete: bool = True
    #: per agent, the objects its shards created, found existing and failed (summary.json, populate ledger)
    per_agent: dict[str, dict[str, int]] = field(default_factory=dict)

    def tally(self, agent_id: str, *, created: int = 0, existed: int = 0, failed: int = 0) -> None:
        """Count a shard's outcome for the agent that ran (or, for a shard found complete, owned) it."""
        mine = self.per_agent.setdefault(agent_id, {"created": 0, "existed": 0, "failed": 0})
        mine["created"] += created
        mine["existed"] += existed
        mine["failed"] += failed

    def spec(self) -> dict[str, Any]:
        """What defines the objects of this space (its identity in the object book)."""
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
            **({"key_shards": p.key_shards} if p.key_shards else {}),
        }

    def dirs_total(self) -> int:
        layout = self.params.layout()
        return layout.total_dirs if layout is not None else 0

    def open(self, book: ObjectBook) -> None:
        self.scope = book.open_scope(self.key, self.spec(), self.params.total)

    def dirs_scope(self, book: ObjectBook) -> int:
        return book.open_scope(self.key + "/dirs", self.spec(), self.dirs_total())


def object_spaces(ctx: ShardStageContext, agents: list[StageAgent] | None = None) -> list[Space]:
    """The object spaces of the config's prepare entries for `agents` (default: the live ones)."""
    agents = agents if agents is not None else ctx.agents
    dist = ctx.config.distributed
    spaces: list[Space] = []
    if dist is not None and dist.shared_filesystem:
        for params in prepare_params(ctx.config, AgentIdentity(count=1)):
            conc = {a.agent_id: ctx.agent_configs[a.agent_id].concurrency for a in agents}
            spaces.append(Space(f"entry-{params.entry}", params, list(agents), False, conc))
        return spaces
    for agent in agents:
        own = ctx.agent_configs[agent.agent_id]
        identity = AgentIdentity(agent_id=agent.agent_id, index=agent.index, count=1)
        for params in prepare_params(own, identity):
            local = parse_uri(params.base_uri).scheme in LOCAL_SCHEMES
            key = f"{agent.agent_id}/entry-{params.entry}"
            spaces.append(Space(key, params, [agent], local, {agent.agent_id: own.concurrency}))
    return spaces


def _stage_run(
    ctx: ShardStageContext,
    plan: StagePlan,
    agents: list[StageAgent],
    state: JobsState,
    t0: float,
    extras: dict[str, dict[str, Any]] | None = None,
    done_reason: str = "",
) -> StageRun:
    """The stage's barrier verdict and per-agent results from what the job loop saw (its jobs are over)."""
    ctx.runner.end_stage(plan.index)
    failures = dict(state.failures)
    if state.aborted:
        for agent in agents:
            failures.setdefault(agent.agent_id, ctx.control.reason or "aborted")
    elif state.timed_out:
        for agent in agents:
            failures.setdefault(
                agent.agent_id, f"stage time limit of {plan.timeout_s:g} s (timeout_secs) exceeded"
            )
    barrier = StageBarrier(plan.barrier, tuple(a.agent_id for a in agents))
    for agent in agents:
        if agent.agent_id in failures:
            barrier.fail(agent.agent_id, failures[agent.agent_id])
        else:
            barrier.arrive(agent.agent_id, 0.0)
    status = barrier.evaluate(0.0)
    soft = (
        f"duration {plan.soft_limit_s:g} s reached (completion: duration_or_tasks); "
        if state.soft_stopped
        else ""
    )
    results = {}
    for agent in agents:
        acc = state.per_agent.get(agent.agent_id)
        why = failures.get(agent.agent_id, "")
        if not why:
            result_status, why = StageStatus.OK, soft + done_reason
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
            extra=(extras or {}).get(agent.agent_id, {}),
        )
    return StageRun(
        plan=plan,
        status=status,
        results=results,
        states={a: s.value for a, s in barrier.states.items()},
        reasons=dict(barrier.reasons),
        elapsed_s=time.monotonic() - t0,
        aborted=state.aborted,
        timed_out=state.timed_out,
    )


def _run(
    ctx: ShardStageContext,
    plan: StagePlan,
    jobs: list[ShardJob] | JobStream,
    state: JobsState,
    limits: StageLimits,
    *,
    max_in_flight: int | None = None,
    snapshot_of: Callable[[Any], Snapshot | None] = lambda r: getattr(r, "snapshot", None),
) -> JobsState:
    return run_jobs(
        jobs,
        ctx.runner,
        stage_index=plan.index,
        stage_name=plan.name,
        max_in_flight=max_in_flight or ctx.max_in_flight,
        control=ctx.control,
        limits=limits,
        interval_s=ctx.interval_s,
        on_interval=ctx.on_interval,
        snapshot_of=snapshot_of,
        state=state,
    )


def _limits(plan: StagePlan, t0: float) -> StageLimits:
    return StageLimits(t0, plan.timeout_s, plan.soft_limit_s)


def _cut_short(state: JobsState) -> bool:
    return state.aborted or state.timed_out or state.soft_stopped


def _participants(spaces: list[Space]) -> list[StageAgent]:
    seen: dict[str, StageAgent] = {}
    for space in spaces:
        for agent in space.agents:
            seen.setdefault(agent.agent_id, agent)
    return list(seen.values())


# -- prepare --


def run_prepare_stage(
    ctx: ShardStageContext, plan: StagePlan
) -> tuple[StageRun, dict[str, dict[int, PreparedRecord]]]:
    """Create the missing objects of every space; returns the stage and, per agent, the prepared records its
    execute stages read (per entry)."""
    t0 = time.monotonic()
    limits = _limits(plan, t0)
    spaces = object_spaces(ctx)
    state = JobsState()
    for space in spaces:
        space.open(ctx.book)
        space.created = RangeSet(0, space.params.total)
    prep = ctx.config.prepare
    parallel = prep is not None and prep.prepare_strategy == "parallel"
    if parallel:
        _share_concurrency(spaces)
    existing = _existing_sets(ctx, plan, spaces, state, limits)
    rounds = [spaces] if parallel else [[s] for s in spaces]
    for group in rounds:
        # tree spaces: shard 0 creates the directories first, the other shards follow once it is done
        first: list[ShardJob] = []
        rest: list[JobStream] = []
        for space in group:
            tree_root, others = _prepare_jobs(ctx, space, existing.get(space.key))
            first += tree_root
            rest.append(others)
        for jobs in (JobStream.of(first), JobStream.chain(rest)):
            if jobs.count and not _cut_short(state):
                _run(ctx, plan, jobs, state, limits)
    if state.unfinished or _cut_short(state):
        for space in spaces:
            space.complete = False
    created = sum(len(s.created) for s in spaces)
    existed = sum(s.existed for s in spaces)
    failed = sum(s.failed for s in spaces)
    for space in spaces:
        if space.failed:
            for agent in space.agents:
                state.failures.setdefault(
                    agent.agent_id,
                    f"{space.failed:,} objects of {space.params.base_uri} could not be created",
                )
    counts = f"created {created:,} objects, {existed:,} existed"
    run = _stage_run(ctx, plan, _participants(spaces), state, t0, _prepare_extras(spaces, plan), counts)
    records: dict[str, dict[int, PreparedRecord]] = {}
    for space in spaces:
        record = _record(space)
        run.prepared[space.params.entry] = record
        for agent in space.agents:
            records.setdefault(agent.agent_id, {})[space.params.entry] = record
    ctx.say(f"{plan.name}: {created:,} objects created, {existed:,} already there, {failed:,} failed")
    delay = float(prep.post_prepare_delay) if prep is not None else 0.0
    if created and delay > 0 and not ctx.control.stopping:
        ctx.control.wait(delay)
    return run, records


def _share_concurrency(spaces: list[Space]) -> None:
    """Parallel prepare: each agent's concurrency is split among the spaces it works on at once."""
    per_agent: dict[str, int] = {}
    for space in spaces:
        for agent_id in space.concurrency:
            per_agent[agent_id] = per_agent.get(agent_id, 0) + 1
    for space in spaces:
        for agent_id, threads in space.concurrency.items():
            space.concurrency[agent_id] = max(1, int(threads) // per_agent[agent_id])


def _prepare_jobs(
    ctx: ShardStageContext, space: Space, have: Known | None
) -> tuple[list[ShardJob], JobStream]:
    """The jobs of the space's shards that still have objects to create, made as they are launched; a tree's
    shard 0 comes apart, first (it creates the directories the others fill). A job takes what exists of its
    own range only, a bitmap of at most `shard_max` bits whatever the size of the space."""
    shards = ShardPlan.of(space.params.total, len(space.agents), ctx.shard_max)
    covered = shards.covered(have.ranges()) if have is not None else []
    for agent, existed in zip(space.agents, shards.objects_by_agent(covered), strict=True):
        if existed:  # a shard found complete counts for the agent that owns it
            space.existed += existed
            space.tally(agent.agent_id, existed=existed)
    todo = subtract_ranges(0, len(shards), covered)
    first: list[ShardJob] = []
    if space.params.tree is not None and todo and todo[0][0] == 0:
        first.append(_prepare_job(ctx, space, have, *shards.shard(0), 0))
        todo = subtract_ranges(0, len(shards), [*covered, (0, 1)])
    totals: dict[str, int | None] = {}
    for agent, n in zip(space.agents, shards.objects_by_agent(todo), strict=True):
        totals[agent.agent_id] = (totals.get(agent.agent_id) or 0) + n
    jobs = (_prepare_job(ctx, space, have, lo, hi, k) for k, lo, hi in shards.shards(todo))
    return first, JobStream(jobs, sum(k1 - k0 for k0, k1 in todo), totals)


def _prepare_job(
    ctx: ShardStageContext, space: Space, have: Known | None, lo: int, hi: int, k: int
) -> ShardJob:
    agent = space.agents[k % len(space.agents)]
    params = replace(space.params, concurrency=space.concurrency[agent.agent_id])
    return ShardJob(
        agent.agent_id,
        prepare_task,
        (params, lo, hi, have.slice(lo, hi) if have is not None else None),
        agent.node_id,
        hard=space.hard,
        on_start=partial(_prepare_start, ctx, space, lo, hi, have),
        on_done=partial(_prepare_done, ctx, space),
        label=f"prepare shard [{lo}, {hi}) of {space.params.base_uri}",
        objects=hi - lo,
    )


def _existing_sets(
    ctx: ShardStageContext, plan: StagePlan, spaces: list[Space], state: JobsState, limits: StageLimits
) -> dict[str, Known | None]:
    """Gap fill: what already exists per space, from the object book (a resume, no LIST) or one LIST."""
    out: dict[str, Known | None] = {}
    to_list: list[Space] = []
    for space in spaces:
        p = space.params
        if p.force_overwrite:
            out[space.key] = None
            continue
        known = ctx.book.created(space.scope, p.total)
        if len(known):
            out[space.key] = known
            ctx.say(
                f"prepare {p.base_uri}: resuming from {ctx.book.name}, {len(known):,} of {p.total:,} "
                "objects already created (no LIST)"
            )
        elif p.skip_verification:
            out[space.key] = None
        else:
            to_list.append(space)
    if not to_list:
        return out
    found: dict[str, IndexSet] = {}

    def done(job: ShardJob, value: Any) -> None:
        if isinstance(value, ScanResult):
            found[job.label] = value.existing

    jobs = [
        ShardJob(
            s.agents[0].agent_id,
            scan_task,
            (s.params,),
            s.agents[0].node_id,
            hard=s.hard,
            on_done=done,
            label=s.key,
            num_cpus=0.25,
        )
        for s in to_list
    ]
    _run(ctx, plan, jobs, state, limits)
    for space in to_list:
        out[space.key] = found[space.key] if space.key in found else RangeSet(0, space.params.total)
    return out


def _prepare_start(
    ctx: ShardStageContext, space: Space, lo: int, hi: int, have: Known | None, job: ShardJob
) -> None:
    """Tell the book the shard starts and what it will create (after a crash the durable book shows what
    was in flight; resume recreates everything not CREATED)."""
    p = space.params
    if p.skip_verification and not p.force_overwrite:
        missing: list[tuple[int, int]] = []  # assumed present: nothing will be created
    elif have is None:
        missing = [(lo, hi)]
    else:
        missing = subtract_ranges(lo, hi, have.ranges_in(lo, hi))
    ctx.book.starting(space.scope, lo, hi, missing)


def _prepare_done(ctx: ShardStageContext, space: Space, job: ShardJob, value: Any) -> None:
    if not isinstance(value, ShardResult):
        space.complete = False
        return
    if len(value.created):
        made = value.created.ranges()
        for lo, hi in made:
            space.created.add_range(lo, hi)
        ctx.book.mark(space.scope, made, ObjectState.CREATED)
    if len(value.failed):
        ctx.book.mark(space.scope, value.failed.ranges(), ObjectState.FAILED)
    space.failed += len(value.failed)
    space.existed += value.existed
    space.tally(job.agent_id, created=len(value.created), existed=value.existed, failed=len(value.failed))
    if value.aborted or len(value.failed):
        space.complete = False
    if value.dirs_created is not None and len(value.dirs_created):
        space.dirs = value.dirs_created
        ctx.book.mark(space.dirs_scope(ctx.book), value.dirs_created.ranges(), ObjectState.CREATED)


def _record(space: Space) -> PreparedRecord:
    p = space.params
    return PreparedRecord(
        entry=p.entry,
        base_uri=p.base_uri,
        pools=p.pools,
        count=p.count,
        created=space.created,
        complete=space.complete and space.failed == 0,
        tree=p.tree is not None,
        created_dirs=space.dirs,
        shards=p.key_shards,
    )


def _prepare_extras(spaces: list[Space], plan: StagePlan) -> dict[str, dict[str, Any]]:
    """Per agent, the prepare figures of summary.json and the populate ledger: what that agent's shards
    created, found existing and failed (a shared space's shards are spread over its agents)."""
    out: dict[str, dict[str, Any]] = {}
    for space in spaces:
        for agent in space.agents:
            extra = out.setdefault(agent.agent_id, {"created": 0, "existed": 0, "failed": 0})
            for name, value in space.per_agent.get(agent.agent_id, {}).items():
                extra[name] += value
    for extra in out.values():
        extra["expected_objects"] = plan.expected_objects
    return out


# -- cleanup --


@dataclass
class _CleanupJobs:
    """The cleanup jobs of a stage and what each of them reported (or would report if it never returns)."""

    mode: str
    live: list[StageAgent]
    jobs: list[ShardJob] = field(default_factory=list)
    dir_jobs: list[ShardJob] = field(default_factory=list)
    #: id(job) -> the leftovers to report when the job never returns (all of its objects, unconfirmed)
    unreturned: dict[int, Callable[[str], list[Leftover]]] = field(default_factory=dict)
    #: id(job) -> its failure reason for the barrier ("" when nothing stays)
    failures: dict[int, str] = field(default_factory=dict)
    leftovers: list[Leftover] = field(default_factory=list)
    #: per agent that ran jobs: deleted, missing, failed, retries (summary.json's stage details)
    figures: dict[str, dict[str, Any]] = field(default_factory=dict)
    put_gone: int = 0
    lost_jobs: int = 0

    def stand_in(self, owner: StageAgent) -> StageAgent:
        """The live agent that does (and answers for) a share: the owner itself, or for a dead owner a
        live agent picked by the owner's index. Cleanup is never handed to a dead agent."""
        if any(a.agent_id == owner.agent_id for a in self.live):
            return owner
        return self.live[owner.index % len(self.live)]

    def count(self, agent_id: str, kind: str, deleted: int, missing: int, failed: int, retries: int) -> None:
        """Add a job's figures to its agent's (`kind`: "deleted" for prepared objects, "put_deleted")."""
        names = ("deleted", "put_deleted", "missing", "failed", "retries")
        mine = self.figures.setdefault(agent_id, dict.fromkeys(names, 0))
        for name, value in ((kind, deleted), ("missing", missing), ("failed", failed), ("retries", retries)):
            mine[name] += value

    def returned(self, job: ShardJob, items: list[Leftover], missing: int = 0, rmdirs: int = 0) -> None:
        self.unreturned.pop(id(job), None)
        self.leftovers.extend(items)
        why = cleanup_failure(self.mode, items, missing, rmdirs)
        if why:
            self.failures[id(job)] = why

    def lost(self, job: ShardJob, why: str) -> None:
        """A job that failed or never finished: none of its objects is confirmed gone."""
        make = self.unreturned.pop(id(job), None)
        if make is not None:
            self.lost_jobs += 1
            items = make(why)
            self.leftovers.extend(items)
            self.failures[id(job)] = cleanup_failure(self.mode, items)


def run_cleanup_stage(
    ctx: ShardStageContext,
    plan: StagePlan,
    *,
    owners: list[StageAgent] | None = None,
    run_id: str = "",
) -> StageRun:
    """Delete exactly the objects the book records as created (all prepare names of the config with
    --cleanup-only when the book knows nothing) and the workload PUT objects of `run_id`, for every agent in
    `owners` (default: the live agents), dead ones included; `ctx.agents` are the live agents that do the
    work. The stage's `left_behind` says exactly what stayed where."""
    t0 = time.monotonic()
    mode = cleanup_mode(ctx.config)
    retry = ErrorHandling.for_cleanup(ctx.config.error_handling)
    prep = ctx.config.prepare
    concurrency = int((prep.cleanup_concurrency if prep else None) or ctx.config.concurrency)
    notes: list[str] = []
    owners = owners or list(ctx.agents)
    book = _CleanupJobs(mode, list(ctx.agents) or owners)
    for space in object_spaces(ctx, owners):
        _prepared_jobs(ctx, space, book, notes, concurrency, retry)
    if run_id and not ctx.cleanup_only:
        _put_jobs(ctx, owners, book, run_id, concurrency)
    elif ctx.cleanup_only and any(op_name(op) == "put" for op in ctx.config.workload):
        notes.append("workload PUT objects of earlier runs are kept: their keys carry those runs' ids")
    state = JobsState()
    limits = _limits(plan, t0)
    _run(ctx, plan, book.jobs, state, limits)
    if book.dir_jobs and not _cut_short(state):
        _run(ctx, plan, book.dir_jobs, state, limits)
    why = "the stage was aborted" if state.aborted else "the stage timed out" if state.timed_out else ""
    if state.soft_stopped:
        why = "the stage reached its duration (completion: duration_or_tasks)"
    for job in [*book.jobs, *book.dir_jobs]:
        if id(job) in book.unreturned:
            book.lost(job, f"cleanup job did not finish: {why or 'no result came back'}")
        reason = book.failures.get(id(job))
        if reason and not state.aborted:
            state.failures.setdefault(job.agent_id, reason)
    for note in notes:
        ctx.say(f"{plan.name}: {note}")
    extras = {a.agent_id: {**book.figures.get(a.agent_id, {}), "notes": notes} for a in book.live}
    deleted = sum(f["deleted"] for f in book.figures.values())
    put_deleted = sum(f["put_deleted"] for f in book.figures.values())
    done = f"deleted {deleted:,} prepared and {put_deleted:,} workload objects"
    run = _stage_run(ctx, plan, book.live, state, t0, extras, done)
    aborted = run.aborted or ctx.control.aborted
    run.left_behind = leftovers.report(mode, merge(book.leftovers), aborted=aborted)
    run.put_gone, run.lost_jobs = book.put_gone, book.lost_jobs
    return run


def _prepared_jobs(
    ctx: ShardStageContext,
    space: Space,
    book: _CleanupJobs,
    notes: list[str],
    concurrency: int,
    retry: ErrorHandling,
) -> None:
    """One cleanup job per shard of the space's created objects (and one for its tree directories)."""
    p = replace(space.params, concurrency=concurrency)
    space.open(ctx.book)
    recorded = ctx.book.created(space.scope, p.total)
    if len(recorded):
        created: RangeSet | None = recorded
    elif ctx.cleanup_only:
        created = None
        notes.append(
            f"{p.base_uri}: --cleanup-only has no record of which objects existed before, so every prepare "
            f"name ({p.owned_total():,} objects) is deleted"
        )
    else:
        notes.append(f"{p.base_uri}: nothing recorded as created by sbench; nothing deleted")
        return
    for k, lo, hi in ShardPlan.of(p.total, len(space.agents), ctx.shard_max).shards():
        part = created.slice(lo, hi) if created is not None else None
        if part is not None and not len(part):
            continue
        owner = space.agents[k % len(space.agents)]
        job = ShardJob(
            book.stand_in(owner).agent_id,
            cleanup_task,
            (p, lo, hi, part, book.mode, concurrency, None, retry),
            owner.node_id,
            hard=space.hard,
            on_done=partial(_cleanup_done, ctx, space, book),
            label=f"cleanup shard [{lo}, {hi}) of {p.base_uri}",
            objects=len(part) if part is not None else hi - lo,
        )
        book.unreturned[id(job)] = partial(unconfirmed, p, lo, hi, part)
        book.jobs.append(job)
    if p.tree is None:
        return
    dirs = ctx.book.created(space.dirs_scope(ctx.book), space.dirs_total())
    if len(dirs):
        owner = space.agents[0]
        book.dir_jobs.append(
            ShardJob(
                book.stand_in(owner).agent_id,
                cleanup_task,
                (p, 0, 0, IndexSet(0, 0), book.mode, 1, dirs.slice(0, space.dirs_total()), retry),
                owner.node_id,
                hard=space.hard,
                on_done=partial(_dirs_done, ctx, space, book),
                label=f"cleanup directories of {p.base_uri}",
            )
        )


def _put_jobs(
    ctx: ShardStageContext, owners: list[StageAgent], book: _CleanupJobs, run_id: str, concurrency: int
) -> None:
    """One job per distinct set of PUT places (agents that share a config share one job): it deletes the
    run's PUT keys of every agent there, so a dead agent's objects go too (a run of one agent: that agent's
    keys only). File-system places of isolated agents are cleaned on their owner's node (its local disk)."""
    dist = ctx.config.distributed
    shared = bool(dist is not None and dist.shared_filesystem)
    groups: dict[tuple[Any, ...], StageAgent] = {}
    only = owners[0].agent_id if len(owners) == 1 else None
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
        job = ShardJob(
            book.stand_in(owner).agent_id,
            put_cleanup_task,
            (ctx.agent_configs[owner.agent_id], run_id, only, concurrency),
            owner.node_id,
            hard=bool(node),
            on_done=partial(_put_done, book),
            label=f"cleanup of the workload PUT objects under {where}",
            objects=None,
        )
        location = f"workload PUT objects of run {run_id} under {where}"
        book.unreturned[id(job)] = partial(_put_unknown, location)
        book.jobs.append(job)


def _put_unknown(location: str, why: str) -> list[Leftover]:
    """A PUT cleanup job that never returned: how many objects stay there is unknown."""
    return [Leftover(location, 0, False, {NOT_ATTEMPTED: why})]


def _put_done(book: _CleanupJobs, job: ShardJob, value: Any) -> None:
    if not isinstance(value, PutCleanupResult):
        book.lost(job, f"{job.label} failed: {value}")
        return
    book.put_gone += value.deleted + value.missing
    book.count(job.agent_id, "put_deleted", value.deleted, value.missing, value.failed, value.retries)
    book.returned(job, value.leftovers, value.missing)


def _cleanup_done(
    ctx: ShardStageContext, space: Space, book: _CleanupJobs, job: ShardJob, value: Any
) -> None:
    if not isinstance(value, CleanupShardResult):
        book.lost(job, f"{job.label} failed: {value}")
        return
    # exactly the objects confirmed gone are no longer this run's: a later cleanup retries the rest
    if value.gone is not None and len(value.gone):
        ctx.book.mark(space.scope, value.gone.ranges(), ObjectState.DELETED)
    book.count(job.agent_id, "deleted", value.deleted, value.missing, value.failed_deletes, value.retries)
    book.returned(job, value.leftovers, value.missing, value.rmdir_failed)


def _dirs_done(ctx: ShardStageContext, space: Space, book: _CleanupJobs, job: ShardJob, value: Any) -> None:
    if not isinstance(value, CleanupShardResult):
        book.lost(job, f"{job.label} failed: {value}")
        return
    book.returned(job, value.leftovers, value.missing, value.rmdir_failed)
    if value.rmdir_failed == 0 and not value.aborted:
        scope = space.dirs_scope(ctx.book)
        ctx.book.mark(scope, ctx.book.created(scope, space.dirs_total()).ranges(), ObjectState.DELETED)


# -- preflight and --verify (Ray: on every agent's node) --


def run_validation_stage(ctx: ShardStageContext, plan: StagePlan) -> StageRun:
    """Preflight on every agent's node (as jobs) plus the controller's config checks on the driver; the
    stage's `preflight` merges them."""
    from sbench.preflight import controller_checks
    from sbench.preflight.result import PreflightResult, unfinished_check

    t0 = time.monotonic()
    controller = controller_checks(ctx.config)
    results: dict[str, Any] = {}

    def done(job: ShardJob, value: Any) -> None:
        results[job.agent_id] = value

    jobs = [
        ShardJob(
            a.agent_id,
            preflight_task,
            (
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
    state = JobsState()
    _run(
        ctx,
        plan,
        jobs,
        state,
        _limits(plan, t0),
        max_in_flight=max(1, len(jobs)),
        snapshot_of=lambda _r: None,
    )
    for agent in ctx.agents:
        if not hasattr(results.get(agent.agent_id), "passed"):
            # stopped, lost or failed: preflight.json says which agent's checks did not finish
            value = results.get(agent.agent_id)
            lost = failure_text(value) if isinstance(value, BaseException) else "its job did not return"
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
    run = _stage_run(ctx, plan, list(ctx.agents), state, t0)
    run.preflight = controller.merge(*results.values())
    return run


def run_verify(ctx: ShardStageContext) -> tuple[bool, list[str]]:
    """`--verify`: every prepared object listed and stat-able, checked once per object space (shared: by
    the first agent for all of it; isolated: each agent its own, on its own node)."""
    found: dict[str, tuple[bool, list[str]]] = {}

    def done(job: ShardJob, value: Any) -> None:
        found[job.agent_id] = value if isinstance(value, tuple) else (False, [f"verify failed: {value}"])

    dist = ctx.config.distributed
    shared = bool(dist is not None and dist.shared_filesystem)
    checkers = ctx.agents[:1] if shared else ctx.agents
    jobs = [
        ShardJob(
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
    run_jobs(
        jobs,
        ctx.runner,
        stage_index=0,
        stage_name="verify",
        max_in_flight=max(1, len(jobs)),
        control=ctx.control,
        limits=StageLimits(time.monotonic()),
        interval_s=ctx.interval_s,
        on_interval=ctx.on_interval,
        snapshot_of=lambda _r: None,
    )
    lines = [f"{agent}: {line}" for agent, (_ok, out) in found.items() for line in out]
    ok = len(found) == len(jobs) and all(ok for ok, _ in found.values())
    return ok, lines
