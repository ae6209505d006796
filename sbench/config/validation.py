"""Cross-field checks that need the whole document (each model only sees its own keys).

Returns located problems (errors, the run must not start) and notes (warnings printed before the run).
"""

from __future__ import annotations

import glob
import itertools
from pathlib import Path
from typing import Any

import psutil

from sbench.config.backend import backend_options
from sbench.config.clientcheck import backend_problems
from sbench.config.confinement import lexical_problems, symlink_problems
from sbench.config.models import (
    Config,
    DeleteOp,
    DistributedConfig,
    FixedSize,
    GetOp,
    LognormalSize,
    MkdirOp,
    PhaseBarrierConfig,
    RmdirOp,
    StageType,
    StatOp,
    UniformSize,
    WorkerMode,
)
from sbench.config.problems import KeyPath, Problem
from sbench.config.units import format_size
from sbench.config.yamlsource import YamlSource
from sbench.errors import ConfigError
from sbench.layout.tree import TreeLayout
from sbench.storage.options import Driver
from sbench.storage.uri import LOCAL_SCHEMES, parse_uri


class _Collector:
    def __init__(self, parsed: YamlSource) -> None:
        self.parsed = parsed
        self.problems: list[Problem] = []
        self.notes: list[Problem] = []

    def error(self, path: KeyPath, message: str) -> None:
        self.problems.append(Problem(path, self.parsed.line_of(path), message))

    def warn(self, path: KeyPath, message: str) -> None:
        self.notes.append(Problem(path, self.parsed.line_of(path), message))


def cross_check(
    config: Config, parsed: YamlSource, *, workload_used: bool = True
) -> tuple[list[Problem], list[Problem]]:
    """All document-level rules; mutates `config` only to apply tree counts (sai3 v0.8.62 semantics)."""
    out = _Collector(parsed)
    _check_weights(config, out)
    _check_uris(config, out)
    for path, message in backend_problems(config, _uri_fields(config)):
        out.error(path, message)
    _check_locations(config, out)
    _check_worker_mode(config, out)
    _check_confinement(config, out)
    _check_tree(config, out)
    if workload_used:
        _check_objects_exist(config, out)
    _check_sizes(config, out)
    _check_distributed(config, out)
    _check_barriers(config, out)
    return out.problems, out.notes


def _check_weights(config: Config, out: _Collector) -> None:
    total = sum(op.weight for op in config.workload)
    if total <= 0:
        weights = ", ".join(f"{op.op}={op.weight}" for op in config.workload)
        out.error(
            ("workload",),
            f"the op weights sum to 0 ({weights}), so no op could ever run; "
            "give at least one op a weight above 0",
        )
        return
    for i, op in enumerate(config.workload):
        if op.weight == 0:
            out.warn(("workload", i, "weight"), f"weight 0: this {op.op} op will never run")


def _uri_fields(config: Config) -> list[tuple[KeyPath, str]]:
    fields: list[tuple[KeyPath, str]] = []
    if config.target:
        fields.append((("target",), config.target))
    if config.multi_endpoint:
        fields += [
            (("multi_endpoint", "endpoints", i), ep) for i, ep in enumerate(config.multi_endpoint.endpoints)
        ]
    if config.prepare:
        fields += [
            (("prepare", "ensure_objects", i, "base_uri"), spec.base_uri)
            for i, spec in enumerate(config.prepare.ensure_objects)
            if spec.base_uri
        ]
    if config.distributed:
        for i, agent in enumerate(config.distributed.agents):
            if agent.target_override:
                fields.append((("distributed", "agents", i, "target_override"), agent.target_override))
            if agent.multi_endpoint:
                fields += [
                    (("distributed", "agents", i, "multi_endpoint", "endpoints", j), ep)
                    for j, ep in enumerate(agent.multi_endpoint.endpoints)
                ]
    for i, op in enumerate(config.workload):
        if "://" in op.path:
            fields.append((("workload", i, "path"), op.path.split("*", 1)[0]))
    return fields


def _check_uris(config: Config, out: _Collector) -> None:
    for path, uri in _uri_fields(config):
        try:
            parse_uri(uri)
        except ConfigError as exc:
            out.error(path, str(exc).replace("\n  hint: ", " "))


def _check_worker_mode(config: Config, out: _Collector) -> None:
    """`workers.mode: asyncio` needs async calls on every store the workload opens (the native cloud drivers,
    null:// with `driver: native`): refused here rather than when the execute stage starts after a prepare."""
    if config.workers.mode is not WorkerMode.ASYNCIO:
        return
    for path, uri in _uri_fields(config):
        if path[0] == "prepare":
            continue  # prepare runs its own way, whatever the workers are
        scheme = uri.split("://", 1)[0].lower()
        try:
            driver = backend_options(config, uri).driver
        except ConfigError:
            continue  # a URI that does not parse has its own error from _check_uris
        native_null = scheme != "null" or driver is Driver.NATIVE
        if scheme in LOCAL_SCHEMES or driver is Driver.SDK or not native_null:
            out.error(
                ("workers", "mode"),
                f"asyncio needs async calls, which {uri} has not (driver {driver.value}); asyncio tasks run "
                "on the native cloud drivers and on null:// with `driver: native`: use `auto` or `threads`",
            )
            return


def _has_endpoints(config: Config) -> bool:
    if config.multi_endpoint is not None:
        return True
    agents = config.distributed.agents if config.distributed else []
    return bool(agents) and all(a.multi_endpoint is not None for a in agents)


def _every_agent_has_target(config: Config) -> bool:
    agents = config.distributed.agents if config.distributed else []
    return bool(agents) and all(a.target_override or a.multi_endpoint for a in agents)


def _check_locations(config: Config, out: _Collector) -> None:
    """Relative paths need a base: `target`, a multi-endpoint block, or a target per agent."""
    has_base = config.target is not None or _has_endpoints(config) or _every_agent_has_target(config)
    for i, op in enumerate(config.workload):
        if "://" not in op.path and not has_base:
            out.error(
                ("workload", i, "path"),
                f"{op.path!r} is relative but there is no `target` to resolve it against; add "
                "`target: <URI>` at the top level (or write a full URI such as file:///data/ here)",
            )
        if getattr(op, "use_multi_endpoint", False) and not _has_endpoints(config):
            out.error(
                ("workload", i, "use_multi_endpoint"),
                "is true but there is no `multi_endpoint` block (top level or per agent); add one "
                "or remove this key",
            )
        elif _set_false(op, "use_multi_endpoint") and _has_endpoints(config):
            out.warn(
                ("workload", i, "use_multi_endpoint"),
                "false has no effect: with a `multi_endpoint` block every relative op path goes through it "
                "(sai3-bench HEAD's rule); give this op a full URI to bypass the block",
            )
    if config.prepare is None:
        return
    for i, spec in enumerate(config.prepare.ensure_objects):
        if spec.use_multi_endpoint and not _has_endpoints(config):
            out.error(
                ("prepare", "ensure_objects", i, "use_multi_endpoint"),
                "is true but there is no `multi_endpoint` block (top level or per agent); add one "
                "or remove this key",
            )
        if spec.base_uri is None and not has_base:
            out.error(
                ("prepare", "ensure_objects", i),
                "has no `base_uri` and there is no `target` or multi-endpoint block to default to; "
                "add `base_uri: <URI>`",
            )


def _check_confinement(config: Config, out: _Collector) -> None:
    """No key leaves its root (sbench.config.confinement). Symlinks are resolved here only when the run's
    storage is this host's (no `distributed` block); agents on Ray check them in their preflight."""
    found = lexical_problems(config)
    if config.distributed is None:
        found += symlink_problems(config)
    for path, message in found:
        out.error(path, message)


def _check_tree(config: Config, out: _Collector) -> None:
    tree_ops = [(i, op) for i, op in enumerate(config.workload) if isinstance(op, MkdirOp | RmdirOp)]
    tree = config.prepare.directory_structure if config.prepare else None
    for i, op in tree_ops:
        if tree is None:
            out.error(
                ("workload", i, "op"),
                f"`{op.op}` works on a directory tree, but `prepare.directory_structure` is not set; "
                "add it (width, depth, files_per_dir) or remove this op",
            )
    if tree is None or config.prepare is None:
        return
    if not config.prepare.ensure_objects:
        out.error(
            ("prepare", "directory_structure"),
            "needs an `ensure_objects` entry: its base_uri roots the tree and its size_spec sizes the "
            "files; add `ensure_objects: [{base_uri: <URI>, count: 0, size_spec: 4KiB}]`",
        )
        return
    total = TreeLayout(tree).total_files
    first = config.prepare.ensure_objects[0]
    if first.count != total:
        out.warn(
            ("prepare", "ensure_objects", 0, "count"),
            f"is {first.count:,} but the directory tree holds {total:,} files; sbench creates all "
            f"{total:,} tree files (as sai3 v0.8.62+), so count is set to {total:,}",
        )
        first.count = total


def _check_objects_exist(config: Config, out: _Collector) -> None:
    """GET/STAT/DELETE need objects: a prepare, or (file://) an existing path, or (cloud) a warning."""
    if config.has_prepare:
        return
    for i, op in enumerate(config.workload):
        if not isinstance(op, GetOp | StatOp | DeleteOp):
            continue
        uri = (
            op.path
            if "://" in op.path
            else (config.target.rstrip("/") + "/" + op.path.lstrip("/") if config.target else None)
        )
        if uri is None:
            continue
        scheme = uri.split("://", 1)[0].lower()
        if scheme in LOCAL_SCHEMES and config.distributed is None:
            local = uri.split("://", 1)[1]
            pattern = local if "*" in local else (local.rstrip("/") + "/*" if local.endswith("/") else local)
            if not glob.glob(pattern) and not Path(local).exists():
                out.error(
                    ("workload", i, "path"),
                    f"`{op.op}` needs existing objects, but nothing matches {uri} and there is no "
                    "`prepare` block; add `prepare.ensure_objects` or point the path at existing files",
                )
        else:
            out.warn(
                ("workload", i, "path"),
                f"`{op.op}` reads objects that no `prepare` block creates; {uri} must already hold them",
            )


def _check_sizes(config: Config, out: _Collector) -> None:
    specs: list[tuple[KeyPath, object]] = [
        (
            ("workload", i, "object_size" if getattr(op, "object_size", None) else "size_spec"),
            getattr(op, "size_spec", None),
        )
        for i, op in enumerate(config.workload)
    ]
    if config.prepare:
        specs += [
            (("prepare", "ensure_objects", i, "size_spec"), s.size_spec)
            for i, s in enumerate(config.prepare.ensure_objects)
        ]
        for i, s in enumerate(config.prepare.ensure_objects):
            if s.count == 0 and config.prepare.directory_structure is None:
                out.warn(("prepare", "ensure_objects", i, "count"), "is 0: this entry creates no objects")
    memory = psutil.virtual_memory().total
    for path, spec in specs:
        largest = largest_size(spec)
        if config.distributed is None and largest is not None and largest > memory:
            out.error(
                path,
                f"objects of up to {format_size(largest)} are larger than this machine's memory "
                f"({format_size(memory)}); sbench builds each object in memory before writing it, so use "
                "smaller objects",
            )
        if isinstance(spec, LognormalSize) and not spec.min <= spec.mean <= spec.max:
            out.warn(
                path,
                f"lognormal mean {spec.mean} lies outside [min {spec.min}, max {spec.max}]; "
                "most draws will be clamped to a bound",
            )


def largest_size(spec: object) -> int | None:
    """The largest object a size spec asks for: a lognormal's `max` only when given (its default, the 5 TiB
    bound, is a cut-off rather than a size anyone asks for), else its mean."""
    if isinstance(spec, FixedSize):
        return spec.value
    if isinstance(spec, UniformSize):
        return spec.max
    if isinstance(spec, LognormalSize):
        return spec.max if "max" in spec.model_fields_set else spec.mean
    return None


def _check_distributed(config: Config, out: _Collector) -> None:
    dist = config.distributed
    if dist is None:
        return
    if config.processes not in (None, 1, "single"):
        out.warn(
            ("processes",),
            "has no effect in a distributed run (sai3 ignored it there too); "
            "set distributed.agents_per_node for more agents per node",
        )
    _check_agents(dist, out)
    _check_stages(dist, config.has_prepare, out)


def check_distributed_block(
    dist: DistributedConfig, parsed: YamlSource
) -> tuple[list[Problem], list[Problem]]:
    """The agent rules of a `distributed` block in another file (a replay's --config): the same rules and
    messages as a workload's block; (errors, warnings)."""
    out = _Collector(parsed)
    _check_agents(dist, out)
    return out.problems, out.notes


def _check_agents(dist: DistributedConfig, out: _Collector) -> None:
    if not dist.agents and dist.agents_per_node is None:
        out.error(
            ("distributed",),
            "needs agents: list them under `agents:` (each with `address:`) or set "
            "`agents_per_node: N` to place N agents on every Ray node",
        )
    if dist.nodes is not None and dist.agents_per_node is None:
        out.error(("distributed", "nodes"), "only applies with `agents_per_node`; add it or remove `nodes`")
    if dist.agents_per_node is not None and dist.nodes is None:
        dist.nodes = "all"
    ids: dict[str, int] = {}
    for i, agent in enumerate(dist.agents):
        agent_id = agent.id or f"agent-{i + 1}"
        if agent_id in ids:
            out.error(
                ("distributed", "agents", i, "id"),
                f"agent id {agent_id!r} is already used by agents[{ids[agent_id]}]; ids must be unique",
            )
        ids.setdefault(agent_id, i)


def _check_stages(dist: DistributedConfig, has_prepare: bool, out: _Collector) -> None:
    if dist.stages is None:
        return
    names: dict[str, int] = {}
    orders: dict[int, int] = {}
    for i, stage in enumerate(dist.stages):
        if stage.name in names:
            out.error(
                ("distributed", "stages", i, "name"),
                f"stage name {stage.name!r} is already used by stages[{names[stage.name]}]; "
                "stage names must be unique",
            )
        names.setdefault(stage.name, i)
        if stage.order in orders:
            out.error(
                ("distributed", "stages", i, "order"),
                f"order {stage.order} is already used by stages[{orders[stage.order]}]; "
                "give every stage its own order",
            )
        orders.setdefault(stage.order, i)
        if stage.type in (StageType.PREPARE, StageType.CLEANUP) and not has_prepare:
            out.error(
                ("distributed", "stages", i, "type"),
                f"a {stage.type.value} stage needs a `prepare:` block with `ensure_objects` "
                "(it defines what to create or delete); add one",
            )
    ordered = sorted(orders)
    gaps = [f"{a}->{b}" for a, b in itertools.pairwise(ordered) if b - a > 1]
    if gaps:
        out.warn(
            ("distributed", "stages"),
            f"stage orders have gaps ({', '.join(gaps)}); they still run in ascending order",
        )


def _set_false(model: Any, key: str) -> bool:
    """The YAML says `key: false` (not just the default)."""
    return key in model.model_fields_set and getattr(model, key) is False


def _check_barriers(config: Config, out: _Collector) -> None:
    dist = config.distributed
    if dist is None:
        return
    sync = dist.barrier_sync
    if _set_false(sync, "enabled"):
        out.warn(
            ("distributed", "barrier_sync", "enabled"),
            "false has no effect: sbench starts and ends every stage on all agents together (the barriers "
            "it needs); to let a stage go on without slow agents use `type: majority` or `best_effort`",
        )
    blocks: list[tuple[KeyPath, PhaseBarrierConfig]] = [
        (("distributed", "barrier_sync", phase), block)
        for phase in ("validation", "prepare", "execute", "cleanup")
        if (block := getattr(sync, phase)) is not None
    ]
    blocks += [
        (("distributed", "stages", i, "barrier"), s.barrier)
        for i, s in enumerate(dist.stages or [])
        if s.barrier is not None
    ]
    for path, block in blocks:
        heartbeat = block.heartbeat_interval or sync.default_heartbeat_interval
        missed = block.missed_threshold or sync.default_missed_threshold
        query = block.query_timeout or sync.default_query_timeout
        retries = block.query_retries if block.query_retries is not None else sync.default_query_retries
        timeout = block.agent_barrier_timeout or 120.0
        detect = heartbeat * missed + query * retries
        if timeout <= detect:
            out.warn(
                path,
                f"agent_barrier_timeout ({timeout:g}s) is not larger than the time to detect a dead "
                f"agent (heartbeat {heartbeat:g}s x {missed} missed + query {query:g}s x {retries} "
                f"retries = {detect:g}s); the barrier may time out before liveness checks finish",
            )
