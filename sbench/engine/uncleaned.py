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

from sbench.engine.backends import BackendSet
from sbench.engine.deletes import cleanup_mode
from sbench.engine.leftovers import Leftover, report
from sbench.engine.putcleanup import put_places
from sbench.engine.state import PreparedRecord
from sbench.layout.naming import DELETABLE_POOL, put_key_prefix
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot


def uncleaned_report(
    config: Any,
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


def put_labels(config: Any, run_id: str) -> list[str]:
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
    command = "; ".join(f"sbench util delete --uri '{root}{pool}-*'" for pool in record.pools)
    existed = record.count * len(record.pools) - created
    if existed > 0:
        command += f" (also deletes up to {existed:,} prepared objects that existed before this run)"
    return command


