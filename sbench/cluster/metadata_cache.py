"""Shared, persistent metadata of a run: object plans and states, tree manifests and LIST results.

sai3-bench created a metadata cache but never wrote object states into it (reference §7.14), so prepare could
not resume without a LIST and cleanup could not tell what it had created. Here one named Ray actor owns a
SQLite database; prepare tasks mark shards created in batches, a resumed prepare skips what is already
created, cleanup deletes exactly the created set, and one LIST is done once and
fetched by every agent in pages.

`MetadataStore` is the storage logic as a plain class (testable without Ray); `MetadataCacheActor` wraps it.

Schema choices for 10^9+ objects: object states are stored as runs, one row per maximal range of consecutive
indices in one state (`object_runs`, a `WITHOUT ROWID` table clustered on (scope, lo)). Prepare and cleanup
report whole shards, so a billion created objects are a handful of rows and only the exceptions (a failed
PUT, an object deleted in the middle) split a run: the database grows with the number of exceptions, not of
objects (a row per object took 151 MB per 10 M states, 15 GB for a billion). Paths and sizes are not stored:
they are a pure function of (pool, index) (`layout.naming`, `layout.tree.TreeLayout`, `data.sizes`). Runs
never overlap and adjacent runs in the same state are merged on every write, so each query reads only the
runs that touch its range.
"""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import groupby
from pathlib import Path
from typing import Any

from sbench.run.objectbook import ObjectState, Range, compress_ranges, subtract_ranges

DB_FILE_NAME = "metadata.sqlite"
#: Directory under the results dir when `distributed.kv_cache_dir` is not set.
DEFAULT_SUBDIR = ".sbench-metadata"
#: Rows per transaction when callers hand over an unbounded iterable.
WRITE_BATCH = 50_000


def default_db_path(results_dir: Path | None, kv_cache_dir: str | Path | None) -> Path:
    """Where the database lives: `kv_cache_dir` persists across runs (resume); else inside the results dir."""
    if kv_cache_dir:
        return Path(kv_cache_dir) / DB_FILE_NAME
    if results_dir is None:
        raise ValueError("a results directory or distributed.kv_cache_dir is needed for the metadata cache")
    return Path(results_dir) / DEFAULT_SUBDIR / DB_FILE_NAME


@dataclass(frozen=True, slots=True)
class ListingInfo:
    """Where a shared LIST stands: who produced it, whether it is complete and how many entries it has."""

    listing_id: int
    uri: str
    complete: bool
    count: int
    owner: str


_SCHEMA = """
CREATE TABLE IF NOT EXISTS scopes (
    scope_id INTEGER PRIMARY KEY,
    config_hash TEXT NOT NULL,
    pool TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    UNIQUE (config_hash, pool)
);
CREATE TABLE IF NOT EXISTS object_runs (
    scope_id INTEGER NOT NULL,
    lo INTEGER NOT NULL,
    hi INTEGER NOT NULL,
    state INTEGER NOT NULL,
    PRIMARY KEY (scope_id, lo)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS manifests (
    config_hash TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (config_hash, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS listings (
    listing_id INTEGER PRIMARY KEY,
    uri TEXT NOT NULL UNIQUE,
    owner TEXT NOT NULL,
    complete INTEGER NOT NULL DEFAULT 0,
    count INTEGER NOT NULL DEFAULT 0,
    created_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS listing_entries (
    listing_id INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    key TEXT NOT NULL,
    size INTEGER NOT NULL,
    PRIMARY KEY (listing_id, seq)
) WITHOUT ROWID;
"""


class MetadataStore:
    """SQLite-backed object states, manifests and listings. Thread-safe: one connection behind one lock."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        # isolation_level=None: explicit BEGIN/COMMIT per batch, so a batch is one transaction and one fsync.
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute("PRAGMA cache_size=-65536")
        self._db.execute("PRAGMA temp_store=MEMORY")
        self._db.executescript(_SCHEMA)
        self._migrate_object_rows()

    def _migrate_object_rows(self) -> None:
        """Turn the one-row-per-object table of sbench before 2026-12 into runs, so a `kv_cache_dir` written
        by an older version still resumes and cleans up exactly."""
        with self._lock:
            old = self._db.execute(
                "SELECT name FROM sqlite_master WHERE type='table' AND name='objects'"
            ).fetchone()
            if old is None:
                return
            rows = self._db.execute("SELECT scope_id, idx, state FROM objects ORDER BY scope_id, state, idx")
            with self._transaction():
                for (scope, state), group in groupby(rows, key=lambda r: (r[0], r[2])):
                    for lo, hi in compress_ranges(row[1] for row in group):
                        self._paint(scope, lo, hi, ObjectState(state))
                self._db.execute("DROP TABLE objects")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- scopes --

    def scope_id(self, config_hash: str, pool: str = "") -> int:
        """The id of one set of objects (a prepare pool under one config hash); created on first use."""
        with self._lock:
            row = self._db.execute(
                "SELECT scope_id FROM scopes WHERE config_hash=? AND pool=?", (config_hash, pool)
            ).fetchone()
            if row:
                return int(row[0])
            cur = self._db.execute(
                "INSERT INTO scopes (config_hash, pool, created_ms) VALUES (?, ?, ?)",
                (config_hash, pool, int(time.time() * 1000)),
            )
            return int(cur.lastrowid)

    # -- object states --

    def plan(self, scope: int, start: int, stop: int) -> int:
        """Record the objects of [start, stop) that have no state yet as planned; returns how many were new.

        Objects with a state keep it, so re-planning a resumed prepare never forgets what was created."""
        with self._lock, self._transaction():
            runs = self._runs_over(scope, start, stop)
            gaps = subtract_ranges(start, stop, [(lo, hi) for lo, hi, _ in runs])
            for lo, hi in gaps:
                self._paint(scope, lo, hi, ObjectState.PLANNED)
            return sum(hi - lo for lo, hi in gaps)

    def mark(self, scope: int, indices: Iterable[int], state: ObjectState) -> int:
        """Set the state of individual objects (planned or not)."""
        return self.mark_ranges(scope, compress_ranges(sorted({int(i) for i in indices})), state)

    def mark_ranges(self, scope: int, ranges: Iterable[Range], state: ObjectState) -> int:
        """Set the state of whole index ranges (what a prepare/cleanup shard reports), in one transaction per
        WRITE_BATCH ranges; returns how many objects were marked."""
        total = 0
        batch: list[Range] = []
        with self._lock:
            for lo, hi in ranges:
                if hi > lo:
                    batch.append((int(lo), int(hi)))
                if len(batch) >= WRITE_BATCH:
                    total += self._paint_all(scope, batch, state)
                    batch = []
            if batch:
                total += self._paint_all(scope, batch, state)
        return total

    def _paint_all(self, scope: int, ranges: list[Range], state: ObjectState) -> int:
        with self._transaction():
            for lo, hi in ranges:
                self._paint(scope, lo, hi, state)
        return sum(hi - lo for lo, hi in ranges)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One transaction (one fsync) for a batch of writes; rolled back whole when one of them fails."""
        self._db.execute("BEGIN")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _runs_over(self, scope: int, lo: int, hi: int, margin: int = 0) -> list[tuple[int, int, int]]:
        """The runs that overlap [lo, hi) (with `margin` 1: also those that only touch it), in index order.

        At most one run starts before `lo` and reaches into it (runs never overlap), so two primary-key
        lookups find them all."""
        before = self._db.execute(
            "SELECT lo, hi, state FROM object_runs WHERE scope_id=? AND lo<? ORDER BY lo DESC LIMIT 1",
            (scope, lo),
        ).fetchone()
        inside = self._db.execute(
            "SELECT lo, hi, state FROM object_runs WHERE scope_id=? AND lo>=? AND lo<? ORDER BY lo",
            (scope, lo, hi + margin),
        ).fetchall()
        runs = [before] if before is not None and before[1] + margin > lo else []
        return runs + inside

    def _paint(self, scope: int, lo: int, hi: int, state: ObjectState) -> None:
        """Give [lo, hi) `state`: cut the runs it overlaps, merge it with touching runs in the same state."""
        new_lo, new_hi = lo, hi
        gone: list[int] = []
        keep: list[tuple[int, int, int]] = []
        for r_lo, r_hi, r_state in self._runs_over(scope, lo, hi, margin=1):
            if r_state == state:  # same state, overlapping or adjacent: absorb it
                new_lo, new_hi = min(new_lo, r_lo), max(new_hi, r_hi)
            elif r_lo >= hi or r_hi <= lo:
                continue  # another state that only touches the range: stays as it is
            else:  # overlapped: what sticks out on either side keeps its state
                keep += [(r_lo, lo, r_state)] if r_lo < lo else []
                keep += [(hi, r_hi, r_state)] if r_hi > hi else []
            gone.append(r_lo)
        self._db.executemany("DELETE FROM object_runs WHERE scope_id=? AND lo=?", [(scope, g) for g in gone])
        self._db.executemany(
            "INSERT INTO object_runs (scope_id, lo, hi, state) VALUES (?, ?, ?, ?)",
            [(scope, a, b, st) for a, b, st in [*keep, (new_lo, new_hi, int(state))]],
        )

    def count_by_state(self, scope: int | None = None) -> dict[ObjectState, int]:
        """Real object counts per state (sai3 reported a hard-coded 0, seed item 16)."""
        with self._lock:
            if scope is None:
                rows = self._db.execute("SELECT state, sum(hi-lo) FROM object_runs GROUP BY state").fetchall()
            else:
                rows = self._db.execute(
                    "SELECT state, sum(hi-lo) FROM object_runs WHERE scope_id=? GROUP BY state", (scope,)
                ).fetchall()
        counts = dict.fromkeys(ObjectState, 0)
        for state, count in rows:
            counts[ObjectState(state)] = int(count)
        return counts

    def objects_count(self, scope: int | None = None) -> int:
        return sum(self.count_by_state(scope).values())

    def runs_count(self) -> int:
        """Rows that hold the object states (what the database's size grows with)."""
        with self._lock:
            (n,) = self._db.execute("SELECT count(*) FROM object_runs").fetchone()
        return int(n)

    def ranges_in_state(
        self, scope: int, start: int, stop: int, states: Iterable[ObjectState] = (ObjectState.CREATED,)
    ) -> list[Range]:
        """Index ranges within [start, stop) whose objects are in one of `states`, merged where they touch."""
        wanted = {int(s) for s in states}
        with self._lock:
            runs = self._runs_over(scope, start, stop)
        out: list[Range] = []
        for lo, hi, state in runs:
            if state not in wanted:
                continue
            lo, hi = max(lo, start), min(hi, stop)
            if out and out[-1][1] == lo:
                out[-1] = (out[-1][0], hi)
            else:
                out.append((lo, hi))
        return out

    def missing_ranges(self, scope: int, start: int, stop: int) -> list[Range]:
        """What a resumed prepare still has to create in [start, stop): everything not CREATED."""
        return subtract_ranges(start, stop, self.ranges_in_state(scope, start, stop))

    def created_batch(self, scope: int, after: int, limit: int = WRITE_BATCH) -> list[Range]:
        """Up to `limit` created indices above `after`, as ranges (cleanup pages through the created set).

        The runs are read one at a time off the primary key until `limit` indices are in hand: a page of a
        billion-object set is a few runs, not `limit` rows."""
        start, created = after + 1, int(ObjectState.CREATED)
        out: list[Range] = []
        left = limit
        with self._lock:
            holding = self._db.execute(
                "SELECT lo, hi, state FROM object_runs WHERE scope_id=? AND lo<=? ORDER BY lo DESC LIMIT 1",
                (scope, start),
            ).fetchone()
            first = [(start, holding[1])] if holding and holding[1] > start and holding[2] == created else []
            later = self._db.execute(
                "SELECT lo, hi FROM object_runs WHERE scope_id=? AND lo>? AND state=? ORDER BY lo",
                (scope, start, created),
            )
            for lo, hi in itertools.chain(first, later):
                hi = min(hi, lo + left)
                out.append((lo, hi))
                left -= hi - lo
                if left <= 0:
                    break
        return out

    def iter_created(self, scope: int, batch: int = WRITE_BATCH) -> Iterator[list[Range]]:
        """The exact created set, in batches of ranges (cleanup deletes only these)."""
        after = -1
        while ranges := self.created_batch(scope, after, batch):
            after = ranges[-1][1] - 1
            yield ranges

    # -- tree manifests --

    def put_manifest(self, config_hash: str, name: str, body: dict[str, Any]) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO manifests (config_hash, name, body) VALUES (?, ?, ?) "
                "ON CONFLICT (config_hash, name) DO UPDATE SET body=excluded.body",
                (config_hash, name, json.dumps(body, sort_keys=True)),
            )

    def get_manifest(self, config_hash: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            row = self._db.execute(
                "SELECT body FROM manifests WHERE config_hash=? AND name=?", (config_hash, name)
            ).fetchone()
        return json.loads(row[0]) if row else None

    # -- shared listings --

    def claim_listing(self, uri: str, owner: str) -> tuple[ListingInfo, bool]:
        """Return the listing of `uri` and whether the caller must produce it (first claimant only)."""
        with self._lock:
            info = self.listing(uri)
            if info is not None:
                return info, False
            self._db.execute(
                "INSERT INTO listings (uri, owner, created_ms) VALUES (?, ?, ?)",
                (uri, owner, int(time.time() * 1000)),
            )
            info = self.listing(uri)
            assert info is not None
            return info, True

    def listing(self, uri: str) -> ListingInfo | None:
        with self._lock:
            row = self._db.execute(
                "SELECT listing_id, uri, complete, count, owner FROM listings WHERE uri=?", (uri,)
            ).fetchone()
        if row is None:
            return None
        return ListingInfo(int(row[0]), row[1], bool(row[2]), int(row[3]), row[4])

    def append_listing(self, listing_id: int, entries: Sequence[tuple[str, int]]) -> int:
        """Add one page of (key, size) entries; returns the listing's entry count afterwards."""
        with self._lock:
            (count,) = self._db.execute(
                "SELECT count FROM listings WHERE listing_id=?", (listing_id,)
            ).fetchone()
            self._db.execute("BEGIN")
            try:
                self._db.executemany(
                    "INSERT INTO listing_entries (listing_id, seq, key, size) VALUES (?, ?, ?, ?)",
                    ((listing_id, count + i, key, int(size)) for i, (key, size) in enumerate(entries)),
                )
                count += len(entries)
                self._db.execute("UPDATE listings SET count=? WHERE listing_id=?", (count, listing_id))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return int(count)

    def finish_listing(self, listing_id: int) -> None:
        with self._lock:
            self._db.execute("UPDATE listings SET complete=1 WHERE listing_id=?", (listing_id,))

    def drop_listing(self, uri: str) -> None:
        """Forget a listing (its producer failed, or the objects under it changed)."""
        with self._lock:
            row = self._db.execute("SELECT listing_id FROM listings WHERE uri=?", (uri,)).fetchone()
            if row is None:
                return
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM listing_entries WHERE listing_id=?", (row[0],))
            self._db.execute("DELETE FROM listings WHERE listing_id=?", (row[0],))
            self._db.execute("COMMIT")

    def drop_listings(self, scope_prefix: str) -> int:
        """Forget every listing whose key starts with `scope_prefix` (a finished stage's listings)."""
        escaped = scope_prefix.replace("\\", "\\\\").replace("%", r"\%").replace("_", r"\_")
        pattern = escaped + "%"
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute(
                "DELETE FROM listing_entries WHERE listing_id IN "
                "(SELECT listing_id FROM listings WHERE uri LIKE ? ESCAPE '\\')",
                (pattern,),
            )
            cur = self._db.execute("DELETE FROM listings WHERE uri LIKE ? ESCAPE '\\'", (pattern,))
            self._db.execute("COMMIT")
            return cur.rowcount

    def fetch_listing(self, listing_id: int, offset: int, limit: int) -> list[tuple[str, int]]:
        """One page of a listing, in the order it was produced."""
        with self._lock:
            rows = self._db.execute(
                "SELECT key, size FROM listing_entries WHERE listing_id=? AND seq>=? AND seq<? ORDER BY seq",
                (listing_id, offset, offset + limit),
            ).fetchall()
        return [(key, int(size)) for key, size in rows]

    def stats(self) -> dict[str, Any]:
        """What STATUS/summary report about the cache."""
        counts = self.count_by_state()
        with self._lock:
            (listings,) = self._db.execute("SELECT count(*) FROM listings").fetchone()
            (manifests,) = self._db.execute("SELECT count(*) FROM manifests").fetchone()
        return {
            "path": str(self.path),
            "objects_count": sum(counts.values()),
            "by_state": {state.name.lower(): n for state, n in counts.items()},
            "listings": int(listings),
            "manifests": int(manifests),
        }


class MetadataCacheActor:
    """The Ray actor around one MetadataStore (threaded, so a slow count never blocks a listing page).

    Wrapped with `ray.remote` by `cluster.actors`; pinned to the driver's node because the database file lives
    next to the results, which only the driver's host is assumed to have.
    """

    def __init__(self, path: str) -> None:
        self._store = MetadataStore(Path(path))

    def scope_id(self, config_hash: str, pool: str = "") -> int:
        return self._store.scope_id(config_hash, pool)

    def plan(self, scope: int, start: int, stop: int) -> int:
        return self._store.plan(scope, start, stop)

    def mark(self, scope: int, indices: list[int], state: int) -> int:
        return self._store.mark(scope, indices, ObjectState(state))

    def mark_ranges(self, scope: int, ranges: list[Range], state: int) -> int:
        return self._store.mark_ranges(scope, ranges, ObjectState(state))

    def count_by_state(self, scope: int | None = None) -> dict[str, int]:
        return {state.name.lower(): n for state, n in self._store.count_by_state(scope).items()}

    def missing_ranges(self, scope: int, start: int, stop: int) -> list[Range]:
        return self._store.missing_ranges(scope, start, stop)

    def ranges_in_state(self, scope: int, start: int, stop: int, states: list[int]) -> list[Range]:
        return self._store.ranges_in_state(scope, start, stop, [ObjectState(s) for s in states])

    def created_batch(self, scope: int, after: int, limit: int) -> list[Range]:
        return self._store.created_batch(scope, after, limit)

    def put_manifest(self, config_hash: str, name: str, body: dict[str, Any]) -> None:
        self._store.put_manifest(config_hash, name, body)

    def get_manifest(self, config_hash: str, name: str) -> dict[str, Any] | None:
        return self._store.get_manifest(config_hash, name)

    def claim_listing(self, uri: str, owner: str) -> tuple[ListingInfo, bool]:
        return self._store.claim_listing(uri, owner)

    def append_listing(self, listing_id: int, entries: list[tuple[str, int]]) -> int:
        return self._store.append_listing(listing_id, entries)

    def finish_listing(self, listing_id: int) -> None:
        self._store.finish_listing(listing_id)

    def drop_listing(self, uri: str) -> None:
        self._store.drop_listing(uri)

    def wait_listing(self, uri: str, timeout_s: float) -> ListingInfo | None:
        """Block until the listing of `uri` is complete (another agent is producing it) or the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            info = self._store.listing(uri)
            if info is None or info.complete or time.monotonic() >= deadline:
                return info
            time.sleep(0.05)

    def fetch_listing(self, listing_id: int, offset: int, limit: int) -> list[tuple[str, int]]:
        return self._store.fetch_listing(listing_id, offset, limit)

    def drop_listings(self, scope_prefix: str) -> int:
        return self._store.drop_listings(scope_prefix)

    def stats(self) -> dict[str, Any]:
        return self._store.stats()

    def close(self) -> None:
        self._store.close()
