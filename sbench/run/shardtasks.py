"""The jobs of the shard stages, as functions a `JobRunner` calls as fn(link, *args) on a thread of this
process or in a Ray task on an agent's node: one prepare or cleanup shard, the workload PUT cleanup of a run,
the gap-fill LIST of an object space, `--verify` and one agent's preflight.

Each runs the engine's own shard under the link's control, reporting the shard's interval snapshots while it
runs; a stop or an abort ends it mid-range and it still returns what it did (which objects it created or
confirmed gone), so nothing is lost to a cancellation.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.bounded import Abandoned
from sbench.engine.cleanup import CleanupShard, CleanupShardResult
from sbench.engine.errorpolicy import ErrorHandling
from sbench.engine.indexset import IndexSet
from sbench.engine.prepare import PrepareShard, ShardResult, ShardStorage, scan_existing, verify_prepared
from sbench.engine.putcleanup import PutCleanupResult, cleanup_puts
from sbench.engine.shards import IndexShard, wait_ticking
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import PrepareParams
from sbench.preflight import run_preflight
from sbench.preflight.result import PreflightResult
from sbench.run.shardjobs import ShardLink


def _worked(link: ShardLink, shard: IndexShard, control: RunControl) -> None:
    """Wait for a running shard, reporting its intervals over the link."""
    wait_ticking([shard], link.interval_s, lambda: link.report(shard.drain(), shard.done_count()), control)


def prepare_task(
    link: ShardLink, params: PrepareParams, start: int, stop: int, existing: IndexSet | None
) -> ShardResult:
    """Create the objects of [start, stop) that `existing` (the gap-fill bitmap of this range) lacks; None:
    none exist (skip_verification or force_overwrite)."""

    def body(control: RunControl) -> ShardResult:
        shard = PrepareShard(params, start, stop, control, existing=existing).begin()
        _worked(link, shard, control)
        return shard.finish()

    return link.run(body)


def cleanup_task(
    link: ShardLink,
    params: PrepareParams,
    start: int,
    stop: int,
    created: IndexSet | None,
    mode: str,
    concurrency: int,
    dirs: IndexSet | None,
    retry: ErrorHandling,
) -> CleanupShardResult:
    """Delete the indices of [start, stop) that `created` holds (every prepare name: None), then the tree
    directories `dirs` this run made."""

    def body(control: RunControl) -> CleanupShardResult:
        shard = CleanupShard(
            params,
            start,
            stop,
            control,
            created=created,
            mode=mode,
            concurrency=concurrency,
            dirs=dirs,
            retry=retry,
        ).begin()
        _worked(link, shard, control)
        return shard.finish()

    return link.run(body)


def put_cleanup_task(
    link: ShardLink, config: Config, run_id: str, agent_id: str | None, concurrency: int
) -> PutCleanupResult:
    """Delete the workload PUT objects of `run_id` (of `agent_id`, or of every agent of the run when None)
    at the places one agent config's PUT ops could have written to; run by any live agent, so a dead agent's
    objects are cleaned up too."""
    return link.run(
        lambda control: cleanup_puts(
            config,
            run_id,
            control,
            agent_id=agent_id,
            concurrency=concurrency,
            report=link.report,
            interval_s=link.interval_s,
        )
    )


@dataclass
class ScanResult:
    """The gap-fill LIST of one object space: what exists, and the LIST's requests per endpoint."""

    existing: IndexSet
    snapshot: Snapshot


def scan_task(link: ShardLink, params: PrepareParams) -> ScanResult:
    """The gap-fill LIST of one object space, done once for every agent (sai3 had each agent list)."""

    def body(control: RunControl) -> ScanResult:
        storage = ShardStorage(params)
        try:
            existing = scan_existing(params, control, storage)
        except Abandoned:
            raise  # its client stays open for the thread still inside the LIST
        except BaseException:
            storage.close()
            raise
        snapshot = Snapshot()
        endpoints = storage.take_endpoint_interval()
        if endpoints:
            snapshot.set_endpoints(endpoints)
        storage.close()
        return ScanResult(existing, snapshot)

    return link.run(body)


def verify_task(link: ShardLink, config: Config, identity: AgentIdentity) -> tuple[bool, list[str]]:
    """`--verify` for one agent's share: every prepared object listed and stat-able."""
    return link.run(lambda control: verify_prepared(config, identity, control))


def preflight_task(link: ShardLink, config: Config, identity: AgentIdentity) -> PreflightResult:
    """One agent's preflight checks, on that agent's node (its mounts, credentials and network); an abort
    ends the waits between retries at once."""
    return link.run(lambda control: run_preflight(config, identity, control))
