"""What a run leaves on the storage when no cleanup stage removed its objects: the run was aborted or failed
before cleanup, or cleanup is off on purpose (`cleanup: false`, `--no-cleanup`, `--prepare-only`).

The count comes from what the run knows it created, the same on both fleets: the prepared objects its
records hold (created, not found) and its successful workload PUTs (their keys carry the run id, so they
can be found and removed exactly). It is a lower bound (`exact: false`) whenever an object may exist that
the run cannot confirm (an op in flight when the run stopped, a PUT that failed after sending) or may be
gone (a workload DELETE). Each entry says how to remove exactly those objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sbench.config.models import Config
from sbench.engine.backends import BackendSet
from sbench.engine.deletes import cleanup_mode
from sbench.engine.leftovers import Leftover, from_report, report
from sbench.engine.putcleanup import put_places
from sbench.engine.state import PreparedRecord
from sbench.layout.naming import DELETABLE_POOL, put_key_prefix
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot


def uncleaned_report(
    config: Config,
    run_id: str,
    prepared: Iterable[PreparedRecord],
    prepare: Snapshot,
    workload: Snapshot,
    *,
    deleted_in_workload: int,
    why: str,
) -> dict[str, Any] | None:
    """The `left_behind` report (leftovers.report form) of a run no cleanup stage reported on, from its
    prepared records and the merged snapshots of its prepare and workload stages; None when the run
    created nothing that could still be there."""
    put_unsure = workload.unfinished_ops > 0 or workload.errors_total(OpClass.PUT) > 0
    puts = workload.total_ops(OpClass.PUT)
    items = not_cleaned(
        prepared,
        put_labels(config, run_id) if (puts or put_unsure) else [],
        puts,
        prepare_unsure=prepare.unfinished_ops > 0 or prepare.errors_total(OpClass.PUT) > 0,
        put_unsure=put_unsure,
        deleted_in_workload=deleted_in_workload,
    )
    return report(cleanup_mode(config), items, not_run=why) if items else None


def why_not_cleaned(cleanup_planned: bool, status: str, reason: str) -> str:
    """The reason no cleanup stage removed this run's objects, as reports say it."""
    if not cleanup_planned:
        return "this run has no cleanup stage (prepare.cleanup is false, or --no-cleanup/--prepare-only)"
    return f"the run ended before its cleanup stage ({status}: {reason or 'no reason given'})"


def with_known_puts(
    left_behind: dict[str, Any],
    config: Config,
    run_id: str,
    workload: Snapshot,
    put_gone: int,
    deletes_in_flight: int | None,
) -> dict[str, Any]:
    """A cleanup report whose PUT listing did not finish (an abort, a dead store) counts only the keys it
    listed; the run knows better: of its successful PUTs, those cleanup confirmed gone are gone and those
    whose delete was still in flight may be, the rest stay. That floor replaces a smaller listed count; it
    is exact when one place had PUTs, no PUT was in doubt and no delete was in flight. `deletes_in_flight`
    None: cleanup lost a task, so how many deletes it had in flight is unknown and the report stays."""
    if deletes_in_flight is None:
        return left_behind
    labels = put_labels(config, run_id) if workload.total_ops(OpClass.PUT) else []
    items = from_report(left_behind)
    puts = [i for i in items if any(i.location.startswith(label) for label in labels)]
    unsure = [i for i in puts if not i.exact]
    known = workload.total_ops(OpClass.PUT) - put_gone - deletes_in_flight
    listed = sum(i.left for i in puts)
    if not unsure or known <= listed:
        return left_behind
    unsure[0].left += known - listed
    in_doubt = workload.unfinished_ops or workload.errors_total(OpClass.PUT) or deletes_in_flight
    if len(puts) == 1 and not in_doubt:
        unsure[0].exact = True
    return report(
        left_behind["cleanup_mode"],
        items,
        aborted=bool(left_behind.get("aborted")),
        not_run=left_behind.get("cleanup_not_run", ""),
    )


def put_labels(config: Config, run_id: str) -> list[str]:
    """The `put_<run id>_` key prefix of every place a workload PUT of this run could have written to, as
    URIs (no storage call: backends only build names here)."""
    backends = BackendSet(config)
    try:
        return [place.label for place in put_places(config, backends, put_key_prefix(run_id))]
    finally:
        backends.close()


def not_cleaned(
    prepared: Iterable[PreparedRecord],
    put_labels: Sequence[str],
    puts_done: int,
    *,
    prepare_unsure: bool = False,
    put_unsure: bool = False,
    deleted_in_workload: int = 0,
) -> list[Leftover]:
    """The objects this run created that no cleanup removed: each prepared record's created objects, and
    the `puts_done` workload PUT objects at `put_labels` (the `put_<run id>_` key prefixes of every place
    PUTs went; their total is reported at the first, with the others named, since op counts are not kept
    per place).

    `*_unsure`: an op may have created an object the run did not count (in flight at the stop, or a
    create that failed after sending), so the count is a lower bound. `deleted_in_workload`: workload
    DELETEs (which draw from `deletable` pools when prepare made one, else from every prepared pool) may
    have removed up to that many of a record's objects (or objects that existed before; the run cannot
    tell), so that record's count is a lower bound too."""
    records = list({(r.entry, r.base_uri): r for r in prepared}.values())
    split = any(DELETABLE_POOL in r.pools for r in records)
    out: list[Leftover] = []
    for record in records:
        created = len(record.created)
        hit = deleted_in_workload > 0 and (DELETABLE_POOL in record.pools or not split)
        left = max(0, created - deleted_in_workload) if hit else created
        exact = not (prepare_unsure or hit)
        if left or not exact:
            remove = _remove_prepared(record, created)
            out.append(Leftover(_root(record.base_uri), left, exact, remove=remove))
    if put_labels and (puts_done or put_unsure):
        where = put_labels[0] + "*"
        others = f" (and at {', '.join(label + '*' for label in put_labels[1:])})" if put_labels[1:] else ""
        remove = "; ".join(f"sbench util delete --uri '{label}*'" for label in put_labels)
        out.append(Leftover(where + others, puts_done, not put_unsure, remove=remove))
    return out


def _root(uri: str) -> str:
    return uri.rstrip("/") + "/"


def _remove_prepared(record: PreparedRecord, created: int) -> str:
    """The command that deletes a prepared entry's objects, and what else it would take along."""
    if record.tree:
        return "sbench run CONFIG --cleanup-only (removes the whole tree, also files that existed before)"
    root = _root(record.base_uri)
    if record.shards:  # names sit in N shard directories, which one glob of `util delete` cannot reach
        return (
            f"sbench run CONFIG --cleanup-only (the names sit under {record.shards} shard prefixes of {root};"
            " it deletes exactly the prepared names, also ones that existed before this run)"
        )
    command = "; ".join(f"sbench util delete --uri '{root}{pool}-*'" for pool in record.pools)
    existed = record.count * len(record.pools) - created
    if existed > 0:
        command += f" (also deletes up to {existed:,} prepared objects that existed before this run)"
    return command


