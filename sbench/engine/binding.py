"""A workload's ops bound to their backends, key sources and limiters, and each worker's own state.

`build_ops` turns the config's workload entries (weight > 0) into `WorkloadOp`s once per stage: the backend
and path of each, its key pool (resolved with a LIST, shared by ops of the same path), its PUT payload
generator, and its calls, generated per op kind by engine.opcalls. The worker loop (engine.loops) then
reads only what it needs per op from these objects; `WorkerState` is what one worker keeps to itself.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from sbench.config.models import Config, OpSpec, PutOp, RmdirOp
from sbench.data.payload import PayloadGenerator, SliceWindow
from sbench.data.sizes import SizeSampler, sampler_from_spec
from sbench.engine.backends import BackendSet, canonical
from sbench.engine.opcalls import CallShape, op_calls
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
from sbench.metrics.recorder import Recorder, slot_for
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import Backend

OP_CLASS = {
    "get": OpClass.GET,
    "put": OpClass.PUT,
    "list": OpClass.META,
    "stat": OpClass.META,
    "delete": OpClass.META,
    "mkdir": OpClass.META,
    "rmdir": OpClass.META,
}


class WorkerState:
    """Per-worker state: nothing in here is shared with another worker."""

    __slots__ = ("cum", "data", "index", "key", "ops", "recorder", "rnd", "rng", "seq", "tag", "total")

    def __init__(self, index: int, seed: int, ops: list[WorkloadOp]) -> None:
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


class WorkloadOp:
    """One workload entry, bound to its backend, key source and limiter."""

    __slots__ = (
        "acall",
        "aredo",
        "backend",
        "base_slot",
        "call",
        "cls",
        "exhausted",
        "inline",
        "kind",
        "label",
        "limit",
        "pool",
        "redo",
        "sem",
        "slot",
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
        #: the op's call and its retry (engine.opcalls), and their asyncio versions when the backend has them
        self.call: Callable[[WorkerState], int] = _unset
        self.redo: Callable[[WorkerState], int] = _unset
        self.acall: Any = None
        self.aredo: Any = None
        self.limit: int | None = None
        self.sem: threading.Semaphore | None = None
        self.exhausted = False
        self.pool: KeyPool | None = None
        #: what a worker whose only op this is can run inline in its loop instead of calling `call` (a
        #: fixed-size PUT whose payload is a plain buffer slice, a GET from a pool nothing changes)
        self.inline: FixedPut | StaticGet | None = None


def _unset(w: WorkerState) -> int:
    raise RuntimeError("op used before it was bound")


@dataclass(frozen=True, slots=True)
class StaticGet:
    """What the loop's inline GET from an unchanging pool needs: its call, key names and size."""

    pick: ClassVar[str] = "static_get"
    get: Callable[[str], Any]
    key_of: Callable[[int], str]
    count: int


@dataclass(frozen=True, slots=True)
class FixedPut:
    """What the loop's inline fixed-size PUT needs: its call, key head, size and payload window."""

    pick: ClassVar[str] = "fixed_put"
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
    declared present with `skip_verification`. A `key_prefix_shards` entry is always given, untrusted ones
    to be listed: a plain LIST of its directory would not see names that sit in shard directories."""
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
        if base is None or entry.count <= 0 or not (trusted or prep.key_prefix_shards):
            continue
        backend, directory = backends.locate_dir(base)
        out.append(
            PreparedSet(
                backend.root_uri,
                directory,
                record.pools if record else pools,
                entry.count,
                prep.key_prefix_shards,
                trusted,
            )
        )
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


def _put_sampler(op: PutOp) -> SizeSampler:
    assert op.size_spec is not None  # the model always resolves it (object_size, or its default size)
    return sampler_from_spec(op.size_spec)


def _bind(op_cfg: OpSpec, ctx: _Context, index: int) -> WorkloadOp:
    kind = op_name(op_cfg)
    if kind not in OP_CLASS:
        raise ConfigError(f"workload[{index}]: unknown op {kind!r}")
    path = str(op_cfg.path)
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
    op = WorkloadOp(kind, float(op_cfg.weight), f"{kind.upper()} {path}", backend)
    if kind in ("get", "stat", "delete"):
        pool = op.pool = _pool(ctx, backend, rel, kind)
        if kind == "delete":
            ctx.mutable.add(id(pool))
        bind_pool_op(op, kind, backend, pool)
    elif isinstance(op_cfg, PutOp):
        _bind_put(op, op_cfg, ctx, backend, put_directory(rel))
    else:
        _bind_list(op, backend, rel)
    return op


def _set_calls(op: WorkloadOp, shape: CallShape, backend: Backend, kind: str, **parts: Any) -> None:
    """The op's call and retry around the backend's `kind` method, and their asyncio versions when the
    backend is an AsyncBackend (its `<kind>_async` method)."""
    op.call, op.redo = op_calls(shape, op, getattr(backend, kind), **parts)
    if backend.is_async:
        aaction = getattr(backend, f"{kind}_async")
        op.acall, op.aredo = op_calls(replace(shape, asynchronous=True), op, aaction, **parts)


def bind_pool_op(op: WorkloadOp, kind: str, backend: Backend, pool: KeyPool) -> None:
    """GET, STAT and DELETE of a pool's keys: DELETE takes its key out of the pool, the others pick one; a
    GET's result is its bytes, the others' nothing."""
    choose = pool.take if kind == "delete" else pool.pick
    _set_calls(op, CallShape("pool", "read" if kind == "get" else "void"), backend, kind, choose=choose)


def _bind_static(op: WorkloadOp) -> None:
    """Sync fast path for a GET/STAT pool nothing changes during the run: one index, one key lookup."""
    assert op.pool is not None
    n, base_key = len(op.pool), op.pool.base_key
    if n == 0:
        return
    reads = op.kind == "get"
    action = op.backend.get if reads else op.backend.stat
    if reads:
        op.inline = StaticGet(action, base_key, n)
    shape = CallShape("index", "read" if reads else "void")
    op.call, op.redo = op_calls(shape, op, action, key_of=base_key, count=n)


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


def _put_source(op_cfg: PutOp, ctx: _Context) -> tuple[SizeSampler, PayloadGenerator]:
    """A PUT's size sampler and payload generator (random data, with the op's dedup and compress
    factors), the payload buffer already built."""
    sampler = _put_sampler(op_cfg)
    payload = PayloadGenerator("random", op_cfg.dedup_factor, op_cfg.compress_factor, ctx.payload_seed)
    _warm(payload, sampler)
    return sampler, payload


def _bind_put(op: WorkloadOp, op_cfg: PutOp, ctx: _Context, backend: Backend, directory: str) -> None:
    sampler, payload = _put_source(op_cfg, ctx)
    ident = ctx.identity
    # keys: put_<run>_<agent>_<worker>_<seq>.dat (naming.put_key), built from pre-formatted parts
    head = join_key(directory, put_key_prefix(ident.run_id, ident.agent_id))
    dyn = tuple(_dynamic_pools(ctx, backend, directory))
    ctx.mutable.update(id(p) for p in dyn)
    if sampler.kind == "fixed" and not dyn:
        # The common benchmark case, with nothing per op but the key, the payload view and the call.
        size = int(sampler.max_size)
        op.slot = slot_for(op.cls, size)
        window = payload.slice_window(size)
        if window is not None:
            op.inline = FixedPut(backend.put, head, size, window)
        fixed = CallShape("seq", "put", "fixed")
        _set_calls(op, fixed, backend, "put", head=head, size=size, payload=payload.maker(size))
    else:
        sampled = CallShape("seq", "put", "sampled", feeds=bool(dyn))
        parts = {"head": head, "dyn": dyn, "sample": sampler.sample, "payload": payload.payload}
        _set_calls(op, sampled, backend, "put", **parts)


def _bind_list(op: WorkloadOp, backend: Backend, rel: str) -> None:
    pat = Pattern.parse(rel)
    prefix = rel if pat.kind == "prefix" else (pat.directory + "/" if pat.directory else "")
    if pat.kind == "exact":
        prefix = rel
    _set_calls(op, CallShape("none", "list"), backend, "list", prefix=prefix)


def _bind_tree(op_cfg: OpSpec, kind: str, ctx: _Context, index: int) -> WorkloadOp:
    layout, selector, backend = ctx.layout, ctx.selector, ctx.tree_backend
    assert layout is not None and selector is not None and backend is not None
    base = ctx.tree_prefix
    op = WorkloadOp(kind, float(op_cfg.weight), f"{kind.upper()} (tree)", backend)
    file_path, dir_path = layout.file_path, layout.dir_path
    select_file, select_dir = selector.select_file, selector.select_dir
    if kind in ("get", "stat", "put") and layout.total_files == 0:
        raise ConfigError(
            f"workload[{index}]: {kind} in tree mode needs files "
            "(prepare.directory_structure.files_per_dir > 0)"
        )

    def a_file(rng: random.Random) -> str:
        return join_key(base, file_path(select_file(rng)))

    def a_dir(rng: random.Random) -> str:
        return join_key(base, dir_path(select_dir(rng)))

    if isinstance(op_cfg, PutOp):
        sampler, payload = _put_source(op_cfg, ctx)
        shape = CallShape("pool", "put", "sampled")
        parts = {"choose": a_file, "sample": sampler.sample, "payload": payload.payload}
        op.call, op.redo = op_calls(shape, op, backend.put, **parts)
        return op

    choose: Callable[[random.Random], str | None]
    if kind == "delete":
        pool = op.pool = selector.delete_pool()
        take = pool.take

        def choose(rng: random.Random) -> str | None:
            rel_key = take(rng)
            return None if rel_key is None else join_key(base, rel_key)

    else:
        choose = a_file if kind in ("get", "stat") else a_dir
    recursive = isinstance(op_cfg, RmdirOp) and op_cfg.recursive
    action = {
        "get": backend.get,
        "stat": backend.stat,
        "delete": backend.delete,
        "mkdir": backend.mkdir,
        "rmdir": lambda key: backend.rmdir(key, recursive),
    }[kind]
    shape = CallShape("pool", "read" if kind == "get" else "void")
    op.call, op.redo = op_calls(shape, op, action, choose=choose)
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
) -> list[WorkloadOp]:
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
