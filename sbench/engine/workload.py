"""The workload loop of one agent: `concurrency` workers picking weighted ops until the stage ends.

Workers are threads for sync backends (file, direct, SDK drivers) and asyncio tasks on one event-loop thread
when every backend the ops use is an AsyncBackend (native obstore drivers). Each iteration: pick an op by
weight (cumulative weights + bisect on the worker's own `random.Random`), wait for its slot when the load is
open loop, take the op's limiter when it has one, resolve its key, run it, record it in the worker's own
Recorder. Nothing else is shared on the success path, so the engine's cost per op stays a small fraction of
the client's (bench/engine_overhead.py measures it against a bare loop).

Differences from sai3 on purpose (reference §7): every PUT draws its own size from the distribution with the
worker's generator (§7.1); DELETE removes keys from its pool and never deletes one twice (§7.3); a per-op
`concurrency` above the global value gets extra workers dedicated to that op, so its in-flight count can
reach the limit (§7.4), while a lower one caps that op's in-flight count with a semaphore; tree selection
uses the real agent index (§7.5); open-loop rates are aggregate (§7.9).
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sbench.config.models import Config
from sbench.data.payload import PayloadGenerator, SliceWindow
from sbench.data.sizes import index_hash, sampler_for, sampler_from_spec, seed_for_uri
from sbench.engine.backends import BackendSet, canonical
from sbench.engine.bounded import GRACE_S, POLL_S, Abandoned, call_bounded
from sbench.engine.context import AgentIdentity, RunControl
from sbench.engine.errorpolicy import ErrorHandling, ErrorPolicy
from sbench.engine.gil import worker_switch_interval
from sbench.engine.loops import LoopShape, loop_for, pool_call_maker
from sbench.engine.ratecontrol import OpenLoopSchedule, schedule_from_config
from sbench.engine.stall import StallWatch
from sbench.engine.state import RunState
from sbench.errors import ConfigError
from sbench.layout.naming import put_key_prefix
from sbench.layout.paths import (
    KeyPool,
    Pattern,
    PreparedSet,
    TreeSelector,
    allowed_pools,
    delete_path,
    join_key,
    needs_pool_split,
    op_name,
    pattern_regex,
    put_directory,
    resolve_pool,
)
from sbench.layout.tree import TreeLayout
from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.cpu import CpuSampler
from sbench.metrics.recorder import Recorder, slot_for
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.storage.base import Backend, ErrorClass, StorageError

OP_CLASS = {
    "get": OpClass.GET,
    "put": OpClass.PUT,
    "list": OpClass.META,
    "stat": OpClass.META,
    "delete": OpClass.META,
    "mkdir": OpClass.META,
    "rmdir": OpClass.META,
}
#: how long a stage that reached its end (duration, expected tasks, stop) lets in-flight ops finish
DRAIN_S = 10.0
DEFAULT_PUT_SIZE = 1024 * 1024


@dataclass
class WorkloadResult:
    """What a workload stage measured and why it ended."""

    snapshot: Snapshot
    elapsed_s: float
    #: "duration" | "tasks" | "exhausted" | "stopped" | "aborted"
    ended_by: str
    reason: str = ""
    #: the first failure message seen, for the console and STATUS.txt
    first_error: str = ""
    deleted: int = 0
    workers: int = 0
    #: one line per condition the user should see once (an op whose pool ran dry), for console and summary
    notes: list[str] = field(default_factory=list)
    open_loop: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class _Worker:
    """Per-worker state: nothing in here is shared with another worker."""

    __slots__ = ("cum", "data", "index", "key", "ops", "recorder", "rnd", "rng", "seq", "tag", "total")

    def __init__(self, index: int, seed: int, ops: list[_Op]) -> None:
        self.index = index
        #: the worker's part of its PUT keys, formatted once
        self.tag = f"{index}_"
        self.rng = random.Random(seed)
        self.rnd = self.rng.random
        self.recorder = Recorder()
        self.seq = 0
        self.ops = ops
        acc, cum = 0.0, []
        for op in ops:
            acc += op.weight
            cum.append(acc)
        self.cum = cum
        self.total = acc
        #: the key (and payload) of the op in progress, so a retry repeats exactly the same call
        self.key = ""
        self.data: Any = None


class _Op:
    """One workload entry, bound to its backend, key source and limiter."""

    __slots__ = (
        "acall",
        "aredo",
        "backend",
        "base_slot",
        "call",
        "cls",
        "exhausted",
        "fixed_put",
        "kind",
        "label",
        "limit",
        "pool",
        "redo",
        "sem",
        "slot",
        "static_get",
        "uri_of",
        "weight",
    )

    def __init__(self, kind: str, weight: float, label: str, backend: Backend) -> None:
        self.kind = kind
        self.backend = backend
        # A plain int, not the IntEnum: Recorder.record indexes and multiplies with it on every op, and
        # IntEnum arithmetic costs about 0.2 µs per call there.
        self.cls = int(OP_CLASS[kind])
        #: the recorder slot of every op when it does not depend on the bytes moved (META, fixed-size PUT),
        #: else None and the loop buckets each op by its bytes from `base_slot`
        self.base_slot = slot_for(self.cls, 0)
        self.slot: int | None = self.base_slot if self.cls == OpClass.META else None
        self.weight = weight
        self.label = label
        self.uri_of = backend.uri_of
        self.call: Callable[[_Worker], int] = _unset
        self.redo: Callable[[_Worker], int] = _unset
        self.acall: Any = None
        self.aredo: Any = None
        self.limit: int | None = None
        self.sem: threading.Semaphore | None = None
        self.exhausted = False
        self.pool: KeyPool | None = None
        #: set for a fixed-size PUT whose payload is a plain buffer slice: `_fixed_put_loop` can run it
        self.fixed_put: _FixedPut | None = None
        #: set for a GET from a pool nothing changes during the run: `_static_get_loop` can run it
        self.static_get: _StaticGet | None = None


def _unset(w: _Worker) -> int:
    raise RuntimeError("op used before it was bound")


@dataclass(frozen=True, slots=True)
class _StaticGet:
    """What `_static_get_loop` needs of a GET from an unchanging pool: its call, key names and size."""

    get: Callable[[str], Any]
    key_of: Callable[[int], str]
    count: int


@dataclass(frozen=True, slots=True)
class _FixedPut:
    """What `_fixed_put_loop` needs of a fixed-size PUT: its call, key head, size and payload window."""

    put: Callable[[str, Any], Any]
    head: str
    size: int
    window: SliceWindow


# -- building ops ------------------------------------------------------------------------------------------


@dataclass
class _Context:
    config: Config
    identity: AgentIdentity
    backends: BackendSet
    prepared: list[PreparedSet]
    split: bool
    layout: TreeLayout | None
    tree_backend: Backend | None
    tree_prefix: str
    selector: TreeSelector | None
    payload_seed: int
    pools: dict[tuple[str, str, tuple[str, ...] | None], KeyPool] = field(default_factory=dict)
    #: ids of pools that change during the run (DELETE takes from them, dynamic PUTs add to them)
    mutable: set[int] = field(default_factory=set)


def prepared_sets(config: Config, backends: BackendSet, state: RunState | None) -> list[PreparedSet]:
    """Pools this run can address by index instead of listing: prepared by this run without failures, or
    declared present with `skip_verification`."""
    prep = config.prepare
    if prep is None or prep.directory_structure is not None:
        return []
    out = []
    pools = ("prepared", "deletable") if needs_pool_split(config.workload) else ("prepared",)
    for i, entry in enumerate(prep.ensure_objects):
        record = state.prepared.get(i) if state is not None else None
        trusted = (record is not None and record.complete) or (
            prep.skip_verification and not prep.force_overwrite
        )
        base = entry.base_uri or backends.target_uri
        if not trusted or base is None or entry.count <= 0:
            continue
        backend, directory = backends.locate_dir(base)
        out.append(PreparedSet(backend.root_uri, directory, record.pools if record else pools, entry.count))
    return out


def _pool(ctx: _Context, backend: Backend, rel: str, kind: str) -> KeyPool:
    """The op's pool, shared by ops of the same path and the same allowed prepared pools (two DELETEs of one
    path share one, so a key is never deleted twice; a GET and a DELETE never share one when split)."""
    allowed = allowed_pools(kind, ctx.split)
    key = (canonical(backend.root_uri), rel, allowed)
    pool = ctx.pools.get(key)
    if pool is None:
        pool = ctx.pools[key] = resolve_pool(backend, rel, op=kind, prepared=ctx.prepared, allowed=allowed)
    return pool


def _put_sampler(op: Any) -> Any:
    if getattr(op, "object_size", None):
        return sampler_for("fixed", value=op.object_size)
    if getattr(op, "size_spec", None) is not None:
        return sampler_from_spec(op.size_spec)
    return sampler_for("fixed", value=DEFAULT_PUT_SIZE)


def _bind(op_cfg: Any, ctx: _Context, index: int) -> _Op:
    kind = op_name(op_cfg)
    if kind not in OP_CLASS:
        raise ConfigError(f"workload[{index}]: unknown op {kind!r}")
    path = str(getattr(op_cfg, "path", "") or "")
    tree = ctx.layout is not None
    if tree and kind in ("get", "put", "stat", "delete", "mkdir", "rmdir"):
        return _bind_tree(op_cfg, kind, ctx, index)
    if kind in ("mkdir", "rmdir"):
        raise ConfigError(
            f"workload[{index}]: {kind} needs prepare.directory_structure (the tree picks the directory)",
            hint="Add a directory_structure block under prepare, or drop the op.",
        )
    if kind == "delete":
        path = delete_path(path, ctx.split)
    backend, rel = ctx.backends.locate(path)
    op = _Op(kind, float(op_cfg.weight), f"{kind.upper()} {path}", backend)
    if kind in ("get", "stat", "delete"):
        pool = op.pool = _pool(ctx, backend, rel, kind)
        if kind == "delete":
            ctx.mutable.add(id(pool))
        _bind_pool_op(op, kind, backend, pool)
    elif kind == "put":
        _bind_put(op, op_cfg, ctx, backend, put_directory(rel))
    else:
        _bind_list(op, backend, rel)
    return op


def _bind_pool_op(op: _Op, kind: str, backend: Backend, pool: KeyPool) -> None:
    """GET, STAT and DELETE of a pool's keys: DELETE takes its key out of the pool, the others pick one; a
    GET's result is its bytes, the others' nothing."""
    choose = pool.take if kind == "delete" else pool.pick
    action = {"get": backend.get, "stat": backend.stat, "delete": backend.delete}[kind]
    reads = kind == "get"
    op.call = pool_call_maker(reads=reads, asynchronous=False)(op, choose, action)
    op.redo = (_redo_read if reads else _redo_void)(action)
    if backend.is_async:
        aaction = getattr(backend, f"{kind}_async")
        op.acall = pool_call_maker(reads=reads, asynchronous=True)(op, choose, aaction)
        op.aredo = (_aredo_read if reads else _aredo_void)(aaction)


# A retry repeats the failed call on the worker's current key (and payload). Retries are off the hot path,
# so these shared builders cost nothing per op; the first calls stay written out in full per op kind.


def _redo_read(read: Callable[[str], Any]) -> Callable[[_Worker], int]:
    return lambda w: len(read(w.key))


def _redo_void(action: Callable[[str], Any]) -> Callable[[_Worker], int]:
    def redo(w: _Worker) -> int:
        action(w.key)
        return 0

    return redo


def _aredo_read(aread: Callable[[str], Any]) -> Callable[[_Worker], Any]:
    async def aredo(w: _Worker) -> int:
        return len(await aread(w.key))

    return aredo


def _aredo_void(aaction: Callable[[str], Any]) -> Callable[[_Worker], Any]:
    async def aredo(w: _Worker) -> int:
        await aaction(w.key)
        return 0

    return aredo


def _redo_put(put: Callable[[str, Any], Any], dyn: Sequence[KeyPool]) -> Callable[[_Worker], int]:
    def redo(w: _Worker) -> int:
        put(w.key, w.data)
        for pool in dyn:
            pool.add(w.key)
        return len(w.data)

    return redo


def _bind_static(op: _Op) -> None:
    """Sync fast path for a GET/STAT pool nothing changes during the run: one index, one key lookup."""
    assert op.pool is not None
    n, base_key = len(op.pool), op.pool.base_key
    if n == 0:
        return
    if op.kind == "get":
        get = op.backend.get
        op.static_get = _StaticGet(get, base_key, n)

        def call(w: _Worker) -> int:
            key = w.key = base_key(int(w.rnd() * n))
            return len(get(key))
    else:
        stat = op.backend.stat

        def call(w: _Worker) -> int:
            key = w.key = base_key(int(w.rnd() * n))
            stat(key)
            return 0

    op.call = call


def _dynamic_pools(ctx: _Context, backend: Backend, directory: str) -> list[KeyPool]:
    """GET/STAT pools a PUT into `directory` feeds with `dynamic_put_pool`: those listing the same
    directory of the same backend (any GET pool when none does, as sai3 HEAD has a single GET pool)."""
    if not ctx.config.dynamic_put_pool:
        return []
    root = canonical(backend.root_uri)
    read_pools = []
    for op_cfg in ctx.config.workload:
        if op_name(op_cfg) not in ("get", "stat") or float(op_cfg.weight) <= 0:
            continue
        b, rel = ctx.backends.locate(str(op_cfg.path))
        pool = _pool(ctx, b, rel, op_name(op_cfg))
        pat = Pattern.parse(rel)
        same = canonical(b.root_uri) == root and pat.directory.strip("/") == directory.strip("/")
        matches = pat.kind == "prefix" or (pat.kind == "glob" and pattern_regex(pat.match).match("put_x.dat"))
        read_pools.append((pool, same and matches))
    chosen = [p for p, ok in read_pools if ok]
    return chosen or [p for p, _ in read_pools]


def _warm(payload: PayloadGenerator, sampler: Any) -> None:
    """Build the payload buffer now: generating 32 MiB of random bytes takes ~0.5 s, which must not land
    in the first PUT's latency."""
    payload.payload(max(1, min(int(sampler.max_size), payload.buffer_size // 2)), 0)


def _put_source(op_cfg: Any, ctx: _Context) -> tuple[Any, PayloadGenerator]:
    """A PUT's size sampler and payload generator, the payload buffer already built."""
    sampler = _put_sampler(op_cfg)
    fill = str(getattr(getattr(op_cfg, "fill", None), "value", getattr(op_cfg, "fill", None)) or "random")
    payload = PayloadGenerator(
        fill,
        int(getattr(op_cfg, "dedup_factor", 1) or 1),
        int(getattr(op_cfg, "compress_factor", 1) or 1),
        ctx.payload_seed,
    )
    _warm(payload, sampler)
    return sampler, payload


def _bind_put(op: _Op, op_cfg: Any, ctx: _Context, backend: Backend, directory: str) -> None:
    sampler, payload = _put_source(op_cfg, ctx)
    make = payload.payload
    sample = sampler.sample
    put = backend.put
    ident = ctx.identity
    # keys: put_<run>_<agent>_<worker>_<seq>.dat (naming.put_key), built here from pre-formatted parts
    head = join_key(directory, put_key_prefix(ident.run_id, ident.agent_id))
    dyn = _dynamic_pools(ctx, backend, directory)
    ctx.mutable.update(id(p) for p in dyn)

    if sampler.kind == "fixed" and not dyn:
        # The common benchmark case, with nothing per op but the key, the payload view and the call.
        size = int(sampler.max_size)
        make_fixed = payload.maker(size)
        op.slot = slot_for(op.cls, size)
        window = payload.slice_window(size)
        if window is not None:
            op.fixed_put = _FixedPut(put, head, size, window)

        def call(w: _Worker) -> int:
            seq = w.seq
            w.seq = seq + 1
            key = w.key = f"{head}{w.tag}{seq}.dat"
            data = w.data = make_fixed((w.index << 40) | seq)
            put(key, data)
            return size

    else:

        def call(w: _Worker) -> int:
            size = sample(w.rng)
            seq = w.seq
            w.seq = seq + 1
            key = w.key = f"{head}{w.tag}{seq}.dat"
            data = w.data = make(size, (w.index << 40) | seq)
            put(key, data)
            for pool in dyn:
                pool.add(key)
            return size

    op.call, op.redo = call, _redo_put(put, dyn)
    if backend.is_async:
        aput = backend.put_async  # type: ignore[attr-defined]

        async def acall(w: _Worker) -> int:
            size = sample(w.rng)
            seq = w.seq
            w.seq = seq + 1
            key = w.key = f"{head}{w.tag}{seq}.dat"
            data = w.data = make(size, (w.index << 40) | seq)
            await aput(key, data)
            for pool in dyn:
                pool.add(key)
            return size

        async def aredo(w: _Worker) -> int:
            await aput(w.key, w.data)
            for pool in dyn:
                pool.add(w.key)
            return len(w.data)

        op.acall, op.aredo = acall, aredo


def _bind_list(op: _Op, backend: Backend, rel: str) -> None:
    pat = Pattern.parse(rel)
    prefix = rel if pat.kind == "prefix" else (pat.directory + "/" if pat.directory else "")
    if pat.kind == "exact":
        prefix = rel
    lister = backend.list

    def call(w: _Worker) -> int:
        for _ in lister(prefix, recursive=True):
            pass
        return 0

    op.call = op.redo = call
    if backend.is_async:
        alister = backend.list_async  # type: ignore[attr-defined]

        async def acall(w: _Worker) -> int:
            async for _ in alister(prefix, recursive=True):
                pass
            return 0

        op.acall = op.aredo = acall


def _bind_tree(op_cfg: Any, kind: str, ctx: _Context, index: int) -> _Op:
    layout, selector, backend = ctx.layout, ctx.selector, ctx.tree_backend
    assert layout is not None and selector is not None and backend is not None
    base = ctx.tree_prefix
    op = _Op(kind, float(op_cfg.weight), f"{kind.upper()} (tree)", backend)
    file_path, dir_path = layout.file_path, layout.dir_path
    select_file, select_dir = selector.select_file, selector.select_dir
    if kind in ("get", "stat", "put") and layout.total_files == 0:
        raise ConfigError(
            f"workload[{index}]: {kind} in tree mode needs files "
            "(prepare.directory_structure.files_per_dir > 0)"
        )
    if kind == "put":
        sampler, payload = _put_source(op_cfg, ctx)
        put = backend.put

        def call(w: _Worker) -> int:
            size = sampler.sample(w.rng)
            idx = select_file(w.rng)
            key = w.key = join_key(base, file_path(idx))
            seq = w.seq
            w.seq = seq + 1
            w.data = payload.payload(size, (w.index << 40) | seq)
            put(key, w.data)
            return size

        op.call, op.redo = call, _redo_put(put, ())
        return op

    def a_file(rng: random.Random) -> str:
        return join_key(base, file_path(select_file(rng)))

    def a_dir(rng: random.Random) -> str:
        return join_key(base, dir_path(select_dir(rng)))

    choose: Callable[[random.Random], str | None]
    if kind == "delete":
        pool = op.pool = selector.delete_pool()
        take = pool.take

        def choose(rng: random.Random) -> str | None:
            rel_key = take(rng)
            return None if rel_key is None else join_key(base, rel_key)

    else:
        choose = a_file if kind in ("get", "stat") else a_dir
    recursive = bool(getattr(op_cfg, "recursive", False))
    action = {
        "get": backend.get,
        "stat": backend.stat,
        "delete": backend.delete,
        "mkdir": backend.mkdir,
        "rmdir": lambda key: backend.rmdir(key, recursive),
    }[kind]
    reads = kind == "get"
    op.call = pool_call_maker(reads=reads, asynchronous=False)(op, choose, action)
    op.redo = (_redo_read if reads else _redo_void)(action)
    return op


def tree_root(config: Config, backends: BackendSet) -> tuple[Backend, str]:
    """Where the directory tree lives: ensure_objects[0]'s base_uri, else the target (sai3 §1.8)."""
    prep = config.prepare
    base = (
        prep.ensure_objects[0].base_uri if prep.ensure_objects and prep.ensure_objects[0].base_uri else None
    )
    if base is None:
        base = backends.target_uri
    if base is None:
        raise ConfigError(
            "prepare.directory_structure needs a place for the tree: set `target` or "
            "ensure_objects[0].base_uri"
        )
    return backends.locate_dir(base)


def build_ops(
    config: Config, identity: AgentIdentity, backends: BackendSet, state: RunState | None, payload_seed: int
) -> list[_Op]:
    """Bind every workload entry with weight > 0 to its backend and key source; resolves patterns (LIST)."""
    prep = config.prepare
    layout = selector = tree_backend = None
    tree_prefix = ""
    if prep is not None and prep.directory_structure is not None:
        layout = TreeLayout(prep.directory_structure)
        dist = config.distributed
        strategy = str(dist.path_selection) if dist else "random"
        overlap = float(dist.partition_overlap) if dist else 0.3
        selector = TreeSelector(
            layout,
            strategy,
            agent_index=identity.index,
            agent_count=identity.count,
            partition_overlap=overlap,
        )
        tree_backend, tree_prefix = tree_root(config, backends)
    ctx = _Context(
        config,
        identity,
        backends,
        prepared_sets(config, backends, state),
        needs_pool_split(config.workload),
        layout,
        tree_backend,
        tree_prefix,
        selector,
        payload_seed,
    )
    ops = [_bind(op_cfg, ctx, i) for i, op_cfg in enumerate(config.workload) if float(op_cfg.weight) > 0]
    for op in ops:
        if op.kind in ("get", "stat") and op.pool is not None and id(op.pool) not in ctx.mutable:
            _bind_static(op)
    if not ops:
        raise ConfigError("every workload op has weight 0; give at least one op a positive weight")
    return ops


# -- the run -----------------------------------------------------------------------------------------------


def _seed(identity: AgentIdentity) -> int:
    return index_hash(seed_for_uri(identity.run_id), identity.index)


class WorkloadRun:
    """One execution of the workload loop (a stage); `run()` blocks until it ends and returns the result."""

    def __init__(
        self,
        config: Config,
        identity: AgentIdentity,
        control: RunControl,
        on_interval: Callable[[Snapshot], None] | None,
        *,
        duration_s: float | None,
        max_ops: int | None = None,
        stage_name: str = "Workload",
        state: RunState | None = None,
        concurrency: int | None = None,
        interval_s: float | None = None,
        warmup_s: float | None = None,
        backends: BackendSet | None = None,
    ) -> None:
        self.config = config
        self.identity = identity
        #: backends opened by the caller (kept open after the stage) or None to open and close our own
        self.given_backends = backends
        self.parent_control = control
        #: the stage's own control: exhausted pools, expected tasks and the error budget stop this stage,
        #: while a run-wide abort (Ctrl-C) still reaches it through the parent
        self.control = control.child()
        self.on_interval = on_interval
        self.duration_s = duration_s
        self.max_ops = max_ops
        self.stage_name = stage_name
        self.state = state
        self.concurrency = int(concurrency or config.concurrency)
        self.interval_s = float(interval_s or config.perf_log.interval)
        self.warmup_s = float(warmup_s if warmup_s is not None else (config.warmup_period or 0))
        self.policy = ErrorPolicy(ErrorHandling.from_config(config.error_handling), self.control)
        self.schedule: OpenLoopSchedule | None = None
        self.workers: list[_Worker] = []
        self.ops: list[_Op] = []
        self.first_error = ""
        self.ended_by = ""
        self._ended_reason = ""
        self._counter = itertools.count(1)
        self.notes: list[str] = []
        self._notes_lock = threading.Lock()
        #: workers still in their loop; when the stage ends, the ones left are inside an op (in flight)
        self._alive = 0
        self._alive_lock = threading.Lock()
        self._done = threading.Event()
        self.deadline_ns = 0
        #: when the first worker started and the last finished worker left its loop (the measured window)
        self._first_op_ns = 0
        self._last_exit_ns = 0
        #: ops cut off by the stop while they waited to retry (unfinished, like those left in flight)
        self._cut = 0
        #: successful ops so far (stall detection's progress count, fed once per interval)
        self._progress_units = 0

    # -- setup -------------------------------------------------------------------------------------------
    def _make_workers(self, ops: list[_Op], seed: int) -> list[_Worker]:
        n = self.concurrency
        workers = [_Worker(i, index_hash(seed, i), ops) for i in range(n)]
        limits = []
        for op_cfg, op in zip((c for c in self.config.workload if float(c.weight) > 0), ops, strict=True):
            limit = getattr(op_cfg, "concurrency", None)
            if limit is None:
                continue
            op.limit = int(limit)
            if op.limit < n:
                limits.append(op)
            else:
                for _ in range(op.limit - n):
                    workers.append(_Worker(len(workers), index_hash(seed, len(workers)), [op]))
        for op in limits:
            op.sem = threading.BoundedSemaphore(op.limit)
        return workers

    def _stop_stage(self, ended_by: str, reason: str) -> None:
        if not self.ended_by:
            self.ended_by, self._ended_reason = ended_by, reason
        self.control.stop(reason)

    def _crashed(self, who: str, exc: BaseException) -> None:
        """A bug in sbench: end the stage and the run, naming it, instead of hanging."""
        message = f"{who} crashed: {type(exc).__name__}: {exc}"
        self._stop_stage("aborted", message)
        self.control.abort(message)

    # -- worker loops ------------------------------------------------------------------------------------
    def _retryable(self, op: _Op, w: _Worker, exc: BaseException, attempt: int) -> StorageError | None:
        """The failure of try number `attempt` as a StorageError, counted as a retry, when the policy allows
        another try; None when it does not (the op's final failure, recorded) or when the stage has stopped
        (the op is unfinished: counted with the ops in flight at the end)."""
        err = (
            exc
            if isinstance(exc, StorageError)
            else StorageError(
                ErrorClass.OTHER, f"{type(exc).__name__}: {exc}", uri=op.uri_of(w.key) if w.key else None
            )
        )
        if not self.policy.should_retry(err.kind, attempt):
            self._final_failure(op, w, err)
            return None
        if self.control.stopping:
            self._cut_short()  # the stage ended before the retry could run: unfinished, not failed
            return None
        self.policy.on_error(err.kind, final=False)
        w.recorder.record_retry(op.cls)
        return err

    def _cut_short(self) -> None:
        """An op that was waiting to retry when the stage stopped: unfinished (neither a success nor a final
        failure), counted with the ops still in flight at the end."""
        with self._alive_lock:
            self._cut += 1

    def _final_failure(self, op: _Op, w: _Worker, err: StorageError) -> None:
        message = f"{op.label}: {err}"
        w.recorder.record_error(op.cls, err.kind, message)
        where = err.uri or (op.uri_of(w.key) if w.key else op.label)
        if not self.first_error:
            self.first_error = message
        self.policy.on_error(err.kind, final=True, where=where)

    def _exhausted(self, op: _Op, ops: Sequence[_Op]) -> bool:
        """Mark an op whose pool ran dry (said once, in the stage's notes); True when this worker has nothing
        left to do."""
        with self._notes_lock:
            if not op.exhausted:
                op.exhausted = True
                taken = op.pool.taken if op.pool is not None else 0
                done = f" after {taken:,} deletes" if op.kind == "delete" else ""
                self.notes.append(f"{op.label}: its pool of keys is empty{done}; this op stopped")
        if all(o.exhausted for o in self.ops):
            self._stop_stage("exhausted", "every op's pool of keys is empty (nothing left to read or delete)")
        return all(o.exhausted for o in ops)

    def _shape(self, w: _Worker, *, asynchronous: bool) -> LoopShape:
        """The steps this worker's loop needs (engine.loops): the inline fixed-size PUT or static GET when
        its one op is one of those, a schedule wait only in an open loop, limiters and a task budget only
        when configured."""
        single = w.ops[0] if len(w.ops) == 1 else None
        pick = "mixed"
        if single is not None and not asynchronous:
            pick = "fixed_put" if single.fixed_put else "static_get" if single.static_get else "mixed"
        return LoopShape(
            asynchronous=asynchronous,
            pick=pick,
            open_loop=self.schedule is not None,
            limited=any(op.sem is not None for op in w.ops),
            counted=bool(self.max_ops),
        )

    def _sync_worker(self, w: _Worker) -> None:
        if not self._first_op_ns:
            self._first_op_ns = time.monotonic_ns()
        try:
            with worker_switch_interval():
                loop_for(self._shape(w, asynchronous=False))(self, w)
        except BaseException as exc:
            self._crashed(f"worker {w.index}", exc)
            raise
        finally:
            self._worker_done()

    async def _asleep(self, seconds: float) -> bool:
        """Sleep up to `seconds` on the event loop, waking within 0.1 s of a stop (the duration's end is one);
        True when stopping, as RunControl.wait."""
        end = time.monotonic() + seconds
        stopping = self.control.stop_flag()
        while not stopping():
            left = end - time.monotonic()
            if left <= 0:
                return False
            await asyncio.sleep(min(left, 0.1))
        return True

    def _run_async(self) -> None:
        async def worker(w: _Worker, sems: dict[int, asyncio.Semaphore]) -> None:
            try:
                await loop_for(self._shape(w, asynchronous=True))(self, w, sems)
            finally:
                self._worker_done()

        async def main() -> None:
            self._first_op_ns = time.monotonic_ns()
            sems = {id(op): asyncio.Semaphore(op.limit) for op in self.ops if op.sem is not None}
            await asyncio.gather(*(worker(w, sems) for w in self.workers))

        try:
            with worker_switch_interval():
                asyncio.run(main())
        except BaseException as exc:
            self._crashed("worker loop", exc)
            raise
        finally:
            with self._alive_lock:
                self._alive = 0
            self._done.set()

    def _worker_done(self) -> None:
        """A worker left its loop (once per worker): its last op, if any, ended just before."""
        now = time.monotonic_ns()
        with self._alive_lock:
            self._alive -= 1
            self._last_exit_ns = max(self._last_exit_ns, now)
            if self._alive <= 0:
                self._done.set()

    # -- intervals ---------------------------------------------------------------------------------------
    def _collect(
        self,
        acc: SnapshotAccumulator,
        cpu: CpuSampler,
        backends: BackendSet,
        start_ms: int,
        *,
        emit: bool = True,
        unfinished: int = 0,
    ) -> None:
        snap = Snapshot.merge_all(w.recorder.take_interval() for w in self.workers)
        self._progress_units += snap.total_ops()
        if not emit:
            return
        snap.unfinished_ops = unfinished
        agent = self.identity.agent_id
        snap.set_cpu(agent, *cpu.sample())
        endpoints = backends.endpoint_interval()
        if endpoints:
            snap.set_endpoints(endpoints)
        progress = ProgressCounters(
            objects_done=sum(acc.ops.values()) + snap.total_ops(),
            objects_total=self.max_ops or 0,
            objects_deleted=self._deleted(),
            phase_start_ms=start_ms,
            at_ms=time.time_ns() // 1_000_000,
            stage=self.stage_name,
        )
        snap.set_progress(agent, progress)
        acc.add(snap)
        if self.on_interval is not None:
            self.on_interval(snap)

    def _deleted(self) -> int:
        return sum(op.pool.taken for op in self.ops if op.kind == "delete" and op.pool is not None)

    def _check_stall(self, stall: StallWatch, now_ns: int) -> None:
        """Fail the stage when no op succeeded for stall_timeout (an open loop waiting for its next slot is
        idle by design, not stalled)."""
        if self.schedule is not None and self.schedule.next_ns > now_ns:
            stall.reset()
            return
        reason = stall.check(self._progress_units)
        if reason is not None:
            self._stop_stage("stalled", reason)
            self.control.abort(reason)

    # -- run ---------------------------------------------------------------------------------------------
    def run(self) -> WorkloadResult:
        seed = _seed(self.identity)
        backends = self.given_backends or BackendSet(self.config)
        try:
            try:
                # resolving the pools may LIST a store that does not answer: never block a stop on it
                self.ops = call_bounded(
                    lambda: build_ops(self.config, self.identity, backends, self.state, seed),
                    self.control,
                    name="sbench-resolve-pools",
                )
            except Abandoned as exc:
                return WorkloadResult(
                    Snapshot(unfinished_ops=1), 0.0, "aborted", f"{self.control.reason} ({exc})"
                )
            return self._run(backends, seed)
        finally:
            self.parent_control.release(self.control)
            if self.given_backends is None:
                backends.close()

    def _run(self, backends: BackendSet, seed: int) -> WorkloadResult:
        self.workers = self._make_workers(self.ops, seed)
        use_async = all(op.acall is not None for op in self.ops)
        start_ns = time.monotonic_ns()
        start_ms = time.time_ns() // 1_000_000
        warmup_ns = int(self.warmup_s * 1e9)
        duration_ns = int(self.duration_s * 1e9) if self.duration_s else 10**18
        self.deadline_ns = start_ns + warmup_ns + duration_ns
        self.schedule = schedule_from_config(
            self.config.io_rate, seed=seed, start_ns=start_ns
        )
        cpu = CpuSampler()
        acc = SnapshotAccumulator()
        stall = StallWatch(f"stage {self.stage_name!r}", self.config.stall_timeout)
        threads: list[threading.Thread] = []
        self._alive = len(self.workers)
        if use_async:
            threads.append(threading.Thread(target=self._run_async, name="sbench-async-workers", daemon=True))
        else:
            threads.extend(
                threading.Thread(
                    target=self._sync_worker, args=(w,), name=f"sbench-worker-{w.index}", daemon=True
                )
                for w in self.workers
            )
        for t in threads:
            t.start()
        measure_from = start_ns + warmup_ns
        in_warmup = warmup_ns > 0
        next_tick = measure_from if in_warmup else start_ns + int(self.interval_s * 1e9)
        stop_deadline = None
        while not self._done.is_set():
            now = time.monotonic_ns()
            if now >= self.deadline_ns and not self.control.stopping:
                # wakes every worker asleep in a retry wait or an error backoff: none starts an op after this
                self._stop_stage("duration", f"duration {self.duration_s:g} s reached")
            if self.control.aborted:
                # also while draining after the duration ended: an abort never waits the full drain window
                grace_end = self.control.halted_at_ns + int(GRACE_S * 1e9)
                if stop_deadline is None or stop_deadline > grace_end:
                    stop_deadline = grace_end
            elif stop_deadline is None and self.control.stopping:
                stop_deadline = now + int(DRAIN_S * 1e9)
            wake = min(next_tick, self.deadline_ns if stop_deadline is None else stop_deadline)
            wake = min(wake, now + int(POLL_S * 1e9))  # a stop is seen within POLL_S, whatever the interval
            if self._done.wait(max(0.0, (wake - now) / 1e9)):
                break
            now = time.monotonic_ns()
            if stop_deadline is not None and now >= stop_deadline:
                break  # in-flight ops that outlive the grace period are left behind (daemon threads)
            if now >= next_tick:
                self._collect(acc, cpu, backends, start_ms, emit=not in_warmup)
                in_warmup = False
                next_tick = max(next_tick + int(self.interval_s * 1e9), now + 1)
                if not self.control.stopping:
                    self._check_stall(stall, now)
        end_ns = time.monotonic_ns()
        with self._alive_lock:
            unfinished = max(0, self._alive) + self._cut
            last_exit = self._last_exit_ns
        self._collect(acc, cpu, backends, start_ms, emit=not in_warmup, unfinished=unfinished)
        window_start = max(start_ns if in_warmup else measure_from, self._first_op_ns)
        elapsed = (self._window_end(end_ns, last_exit) - window_start) / 1e9
        if self.ended_by == "stalled":
            ended_by, reason = "stalled", self._ended_reason
        elif self.control.aborted:
            ended_by, reason = "aborted", self.control.reason
        elif self.ended_by:
            ended_by, reason = self.ended_by, self._ended_reason
        elif self.control.stopping:
            ended_by, reason = "stopped", self.control.reason
        else:
            ended_by, reason = "duration", ""
        snapshot = acc.snapshot()
        return WorkloadResult(
            snapshot=snapshot,
            elapsed_s=max(0.0, elapsed),
            ended_by=ended_by,
            reason=reason,
            first_error=self.first_error,
            deleted=self._deleted(),
            workers=len(self.workers),
            notes=list(self.notes),
            open_loop=self.schedule is not None,
            extra={
                "async": use_async,
                "retries": self.policy.retries,
                "backoffs": self.policy.backoffs,
                "unfinished_ops": unfinished,
            },
        )

    def _window_end(self, end_ns: int, last_exit_ns: int) -> int:
        """The end of the measured window: the moment the stage stopped (its deadline, or the stop or abort
        that came first), or the end of the last op finished after it, whichever is later. Ops abandoned in
        flight do not extend it; they are counted as unfinished."""
        halted = self.control.halted_at_ns or end_ns
        return max(min(self.deadline_ns, halted, end_ns), last_exit_ns)


def run_workload(
    config: Config,
    identity: AgentIdentity,
    control: RunControl,
    on_interval: Callable[[Snapshot], None] | None = None,
    **kwargs: Any,
) -> WorkloadResult:
    """Run the workload loop once; see WorkloadRun for the keyword arguments."""
    return WorkloadRun(config, identity, control, on_interval, **kwargs).run()
