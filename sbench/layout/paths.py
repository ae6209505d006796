"""Where each op's keys come from: path patterns, key pools, the prepared/deletable split and tree selection.

Patterns follow sai3 (reference §1.5/§1.6): an exact key; a prefix ending `/` (every object directly under
it);
`*` in the last component (matched against the names directly under its directory); and `**`, which sbench
makes truly recursive (sai3 treated it like `*`). Paths with `://` are absolute URIs; others are relative to
`target`. Patterns are resolved once, before the workers start; an empty match is an error, as in sai3.

A pool that covers the objects this run's prepare made is arithmetic (index -> name) instead of a listing, so
a GET over millions of prepared objects costs no LIST and no memory. DELETE draws from its pool WITHOUT
replacement (a sparse Fisher-Yates shuffle, memory proportional to the deletes done), so a key is never
deleted twice (sai3 §7.3 kept deleting the same keys).
"""

from __future__ import annotations

import random
import re
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from sbench.errors import ConfigError
from sbench.layout.naming import (
    DELETABLE_POOL,
    PREPARED_POOL,
    parse_prepared_key,
    parse_prepared_path,
    prepared_key,
)
from sbench.layout.tree import TreeLayout
from sbench.storage.base import Backend

READ_OPS = ("get", "stat")
REMOVE_OPS = ("delete", "rmdir")


class KeyPool:
    """A set of keys an op draws from: `pick` keeps the key, `take` removes it (DELETE), `add` grows it.

    Keys are a virtual array: ids below `n_base` name `base_key(id)` (computed on demand), higher ids name
    keys added later (dynamic PUT pool). Removal swaps the taken slot with the last one and records only the
    slots that moved, so a pool of 64M prepared objects costs nothing until deletes start.
    """

    def __init__(self, n_base: int, base_key: Callable[[int], str], *, label: str) -> None:
        self.n_base = n_base
        self._base_key = base_key
        self._extra: list[str] = []
        self._moved: dict[int, int] = {}
        self._size = n_base
        self._lock = threading.Lock()
        self.label = label
        self.taken = 0
        #: the largest object LIST reported for the listed keys; None when the pool was not listed (a prepared
        #: set, whose sizes the config's prepare gives); engine.workermode reads it
        self.largest: int | None = None

    @classmethod
    def of_keys(cls, keys: Sequence[str], *, label: str) -> KeyPool:
        keys = list(keys)
        return cls(len(keys), keys.__getitem__, label=label)

    def __len__(self) -> int:
        return self._size

    @property
    def base_key(self) -> Callable[[int], str]:
        """index -> key of the initial keys; valid for every index below len() while nothing is taken."""
        return self._base_key

    def _key(self, value: int) -> str:
        return self._base_key(value) if value < self.n_base else self._extra[value - self.n_base]

    def pick(self, rng: random.Random) -> str | None:
        """A uniformly random key still in the pool (lock-free: a racing `take` may hand out a key that is
        being deleted at that moment, which then shows as not_found)."""
        size = self._size
        if size == 0:
            return None
        slot = int(rng.random() * size)
        value = self._moved.get(slot, slot) if self._moved else slot
        return self._base_key(value) if value < self.n_base else self._extra[value - self.n_base]

    def take(self, rng: random.Random) -> str | None:
        """Remove and return a uniformly random key; None once the pool is empty."""
        with self._lock:
            size = self._size
            if size == 0:
                return None
            slot = int(rng.random() * size)
            moved = self._moved
            value = moved.get(slot, slot)
            last = size - 1
            if slot != last:
                moved[slot] = moved.get(last, last)
            moved.pop(last, None)
            self._size = last
            self.taken += 1
            return self._key(value)

    def add(self, key: str) -> None:
        """Grow the pool by one key (objects written by workload PUTs with `dynamic_put_pool`)."""
        with self._lock:
            self._extra.append(key)
            value = self.n_base + len(self._extra) - 1
            if value != self._size:
                self._moved[self._size] = value
            self._size += 1


# -- patterns ----------------------------------------------------------------------------------------------

def join_key(prefix: str, name: str) -> str:
    """Join a relative dir prefix (may be empty) and a name with exactly one `/`."""
    return f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name


def pattern_regex(pattern: str) -> re.Pattern[str]:
    """`**` matches across `/`, `*` within one component; everything else is literal (sai3 uses only `*`)."""
    out = []
    for token in re.split(r"(\*\*|\*)", pattern):
        if token == "**":
            out.append(".*")
        elif token == "*":
            out.append("[^/]*")
        else:
            out.append(re.escape(token))
    return re.compile("".join(out) + r"\Z")


@dataclass(frozen=True, slots=True)
class Pattern:
    """A relative op path split into the directory to list and what to match there."""

    raw: str
    #: directory prefix to list (relative to the backend root, "" = root, ends without `/`)
    directory: str
    #: part after `directory/` that names must match; "" for a prefix pattern, the key for an exact one
    match: str
    kind: str  # "exact" | "prefix" | "glob" | "recursive"

    @classmethod
    def parse(cls, path: str) -> Pattern:
        path = path.lstrip("/")
        if path == "" or path.endswith("/"):
            return cls(path, path.rstrip("/"), "", "prefix")
        if "**" in path:
            head = path.split("**", 1)[0]
            directory = head.rsplit("/", 1)[0] if "/" in head else ""
            rest = path[len(directory) + 1:] if directory else path
            return cls(path, directory, rest, "recursive")
        directory, _, name = path.rpartition("/")
        if "*" in directory:
            raise ConfigError(f"path {path!r}: `*` is only allowed in the last path component (use `**` to "
                              "match across directories)")
        if "*" in name:
            return cls(path, directory, name, "glob")
        return cls(path, directory, name, "exact")

    @property
    def key(self) -> str:
        return join_key(self.directory, self.match)


def put_directory(path: str) -> str:
    """Directory a PUT op writes into: sai3 appends `/obj_…` to the path, so a path is a directory; a glob's
    last component is dropped (it cannot name a new key)."""
    path = path.lstrip("/")
    if "*" in path:
        path = path.rsplit("/", 1)[0] if "/" in path else ""
    return path.rstrip("/")


# -- prepared pools and the §1.6 split --------------------------------------------------------------------

def op_name(op: Any) -> str:
    return str(getattr(getattr(op, "op", None), "value", getattr(op, "op", ""))).lower()


def needs_pool_split(workload: Iterable[Any]) -> bool:
    """True when the workload both reads (GET/STAT) and removes (DELETE/RMDIR): prepare then makes a
    `deletable-` pool next to `prepared-` so deletes never remove what GETs read (sai3 §1.6)."""
    names = {op_name(op) for op in workload}
    return bool(names & set(READ_OPS)) and bool(names & set(REMOVE_OPS))


def pools_for(workload: Iterable[Any]) -> tuple[str, ...]:
    return (PREPARED_POOL, DELETABLE_POOL) if needs_pool_split(workload) else (PREPARED_POOL,)


def delete_path(path: str, split: bool) -> str:
    """DELETE paths target the deletable pool when the pools are split (sai3 rewrites `prepared-`)."""
    return path.replace(f"{PREPARED_POOL}-", f"{DELETABLE_POOL}-") if split else path


def allowed_pools(op: str, split: bool) -> tuple[str, ...] | None:
    """The prepared pools an op may draw from: with the split, DELETE/RMDIR only `deletable-` and GET/STAT
    only `prepared-`, whatever the path's glob (`data/`, `data/*`, `data/**`...) selects; None (any key)
    without the split. So a DELETE never removes what a GET reads, and the two never share a pool."""
    if not split:
        return None
    return (DELETABLE_POOL,) if op in REMOVE_OPS else (PREPARED_POOL,)


def _allowed_key(key: str, allowed: tuple[str, ...]) -> bool:
    """False for a prepare name of a pool outside `allowed`; any other name (PUT keys, user files) is kept."""
    parsed = parse_prepared_key(key)
    return parsed is None or parsed[0] in allowed


@dataclass(frozen=True, slots=True)
class PreparedSet:
    """Objects a prepare entry guarantees: `count` of each pool under `directory` of a backend root."""

    root_uri: str
    directory: str
    pools: tuple[str, ...]
    count: int
    #: `prepare.key_prefix_shards`: names under `{idx % N:02x}/` (naming.prepared_key), None: flat
    shards: int | None = None
    #: False when prepare did not vouch for every object (e.g. --skip-prepare): the keys are then listed,
    #: which a sharded set needs because its names are not directly in its directory
    trusted: bool = True

    def covers(self, pattern: Pattern) -> tuple[str, ...] | None:
        """Pools a pattern selects in full when it lists exactly this prepared directory; None when the
        pattern could match other names (then it is listed like any other)."""
        if pattern.kind not in ("prefix", "glob"):
            return None
        if pattern.directory.strip("/") != self.directory.strip("/"):
            return None
        if pattern.kind == "prefix" or pattern.match in ("*", "*.dat"):
            return self.pools
        for pool in self.pools:
            if pattern.match in (f"{pool}-*", f"{pool}-*.dat"):
                return (pool,)
        return None

    def pool(self, pools: tuple[str, ...], *, label: str) -> KeyPool:
        directory, count, shards = self.directory, self.count, self.shards
        if len(pools) == 1 and not shards:  # the common case: one f-string per key
            head = join_key(directory, f"{pools[0]}-")
            return KeyPool(count, lambda i: f"{head}{i:08d}.dat", label=label)

        def base_key(i: int) -> str:
            pool_idx, index = divmod(i, count)
            return join_key(directory, prepared_key(pools[pool_idx], index, shards))

        return KeyPool(count * len(pools), base_key, label=label)

    def listed_pool(self, backend: Backend, pools: tuple[str, ...], *, label: str) -> KeyPool:
        """The pool from one recursive LIST of the set's directory: the names of `pools` found there, each in
        its own shard directory (an untrusted sharded set)."""
        prefix = self.directory.strip("/") + "/" if self.directory.strip("/") else ""
        keys = []
        largest = 0
        for key, size in backend.list(prefix, recursive=True):
            parsed = parse_prepared_path(key[len(prefix):] if key.startswith(prefix) else key, self.shards)
            if parsed is not None and parsed[0] in pools and parsed[1] < self.count:
                keys.append(key)
                largest = max(largest, size)
        pool = KeyPool.of_keys(keys, label=label)
        pool.largest = largest
        return pool


def list_pattern(backend: Backend, pattern: Pattern) -> tuple[list[str], int | None]:
    """Keys matching a pattern, streamed from one LIST (objects only, never directory entries), and the
    largest of their sizes (None for an exact key, which is not listed)."""
    if pattern.kind == "exact":
        return [pattern.key], None
    prefix = pattern.directory + "/" if pattern.directory else ""
    recursive = pattern.kind == "recursive"
    regex = pattern_regex(pattern.match) if pattern.kind in ("glob", "recursive") else None
    keys = []
    largest = 0
    for key, size in backend.list(prefix, recursive=recursive):
        if key.endswith("/"):
            continue
        rest = key[len(prefix):] if key.startswith(prefix) else key
        if regex is None or regex.match(rest):
            keys.append(key)
            largest = max(largest, size)
    return keys, largest


_POOL_LISTING = threading.local()


def listing_a_pool() -> bool:
    """True on a thread inside resolve_pool's LIST: a shared-listing backend (cluster.listing) shares these
    LISTs between agents, never the LIST ops of a workload, whose measurements must be real."""
    return bool(getattr(_POOL_LISTING, "active", False))


def resolve_pool(backend: Backend, path: str, *, op: str, prepared: Sequence[PreparedSet] = (),
                 allow_empty: bool = False, allowed: tuple[str, ...] | None = None) -> KeyPool:
    """The pool of keys an op with this relative path draws from; ConfigError when nothing matches.

    `allowed` (see allowed_pools) limits which prepared pools the op sees, for arithmetic pools and listed
    ones alike."""
    pattern = Pattern.parse(path)
    for ps in prepared:
        if ps.root_uri.rstrip("/") != backend.root_uri.rstrip("/"):
            continue
        pools = ps.covers(pattern)
        if pools and allowed is not None:
            pools = tuple(p for p in pools if p in allowed)
        if pools and not ps.trusted:
            listed = ps.listed_pool(backend, pools, label=f"{op} {path}")
            if len(listed) or allow_empty:
                return listed
        elif pools:
            return ps.pool(pools, label=f"{op} {path}")
    _POOL_LISTING.active = True
    try:
        keys, largest = list_pattern(backend, pattern)
    finally:
        _POOL_LISTING.active = False
    if allowed is not None:
        keys = [key for key in keys if _allowed_key(key, allowed)]
    if not keys and not allow_empty:
        only = f"; {op.upper()} draws only from the {allowed[0]}- pool here" if allowed else ""
        raise ConfigError(
            f"workload {op.upper()} path {path!r} matches no object under {backend.root_uri} "
            f"(listed {pattern.directory or '/'!r}{only}). Run a prepare that creates them, or fix the path.")
    pool = KeyPool.of_keys(keys, label=f"{op} {path}")
    pool.largest = largest  # of every listed key, those `allowed` leaves out too: an upper bound
    return pool


# -- tree selection ----------------------------------------------------------------------------------------

PATH_SELECTIONS = ("random", "partitioned", "exclusive", "weighted")
#: share of picks that stay in the agent's own dirs under `partitioned` (sai3 PathSelector)
PARTITIONED_OWN_SHARE = 0.7


def _owned_count(n: int, index: int, count: int) -> int:
    """How many of 0..n-1 satisfy i % count == index."""
    return 0 if index >= n else (n - 1 - index) // count + 1


class TreeSelector:
    """sai3's PathSelector with the REAL agent index (sai3 always used agent 0, §1.8 / seed item 14).

    Candidates (dirs that hold files for file ops, every dir for MKDIR/RMDIR) are assigned round-robin:
    candidate k belongs to agent k % agent_count. `random` picks any candidate; `partitioned` picks an own
    one 70 % of the time; `exclusive` only own ones; `weighted` own ones with probability 1 - overlap and
    others otherwise. Everything is arithmetic over candidate ordinals.
    """

    def __init__(self, layout: TreeLayout, strategy: str = "random", *, agent_index: int = 0,
                 agent_count: int = 1, partition_overlap: float = 0.3) -> None:
        if strategy not in PATH_SELECTIONS:
            raise ConfigError(f"distributed.path_selection {strategy!r} is not one of "
                              f"{', '.join(PATH_SELECTIONS)}")
        self.layout = layout
        self.strategy = strategy
        self.index = agent_index
        self.count = max(1, agent_count)
        self.own_share = {"random": 0.0, "partitioned": PARTITIONED_OWN_SHARE, "exclusive": 1.0,
                          "weighted": 1.0 - partition_overlap}[strategy]

    def _candidate(self, n: int, rng: random.Random) -> int:
        count, index = self.count, self.index
        if self.strategy == "random" or count == 1:
            return int(rng.random() * n)
        owned = _owned_count(n, index, count)
        others = n - owned
        use_own = owned > 0 and (others == 0 or rng.random() < self.own_share)
        if use_own:
            return index + int(rng.random() * owned) * count
        if self.strategy == "partitioned":
            return int(rng.random() * n)
        j = int(rng.random() * others)  # the j-th candidate NOT owned by this agent
        block, offset = divmod(j, count - 1)
        return block * count + offset + (1 if offset >= index else 0)

    def select_file(self, rng: random.Random) -> int:
        """A file index: a candidate dir by strategy, then a uniform file in it."""
        layout = self.layout
        ordinal = self._candidate(layout.file_dirs, rng)
        return ordinal * layout.files_per_dir + int(rng.random() * layout.files_per_dir)

    def select_dir(self, rng: random.Random) -> int:
        """A dir index (any level) for MKDIR/RMDIR."""
        return self._candidate(self.layout.total_dirs, rng)

    def delete_pool(self) -> KeyPool:
        """Tree files a DELETE may remove, without replacement. Unless selection is `random`, an agent only
        deletes files of its own dirs, so agents never delete the same file twice either."""
        layout = self.layout
        if self.strategy == "random" or self.count == 1:
            return KeyPool(layout.total_files, layout.file_path, label="delete tree files")
        fpd, index, count = layout.files_per_dir, self.index, self.count
        owned = _owned_count(layout.file_dirs, index, count)

        def own_file(i: int) -> str:
            k, within = divmod(i, fpd)
            return layout.file_path((index + k * count) * fpd + within)

        return KeyPool(owned * fpd, own_file, label="delete own tree files")
