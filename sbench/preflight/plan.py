"""What one agent's preflight must look at: every storage root the run touches, and what the run does there.

A root is a directory or bucket prefix: the target, each multi-endpoint, prepare base URIs outside them, and
absolute op URIs (the agent's `target_override` / `multi_endpoint` replace the global ones, as in sai3). For
each root the plan says whether the run writes there, which GET/STAT paths must already hold objects, and how
many bytes and files prepare and PUTs will add (see need.py for how the volume is counted).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sbench.config.models import (
    AgentConfig,
    Config,
    DeleteOp,
    EnsureSpec,
    FixedSize,
    GetOp,
    LognormalSize,
    MkdirOp,
    PutOp,
    RmdirOp,
    StatOp,
    UniformSize,
)
from sbench.config.tree_math import tree_counts
from sbench.layout.paths import Pattern, pools_for
from sbench.plan.agents import AgentIdentity
from sbench.plan.stages import stage_plan
from sbench.preflight.need import NeedPart, SpaceNeed, human_bytes
from sbench.storage.uri import LOCAL_SCHEMES, canonical, parse_uri, relative_to

#: Illustration only, never counted: the PUT rate used to show what an unbounded closed loop could write.
ASSUMED_CLOSED_LOOP_PUT_RATE = 1000.0
WRITE_OPS = (PutOp, DeleteOp, MkdirOp, RmdirOp)
READ_OPS = (GetOp, StatOp)


@dataclass(frozen=True, slots=True)
class ReadTarget:
    """A GET/STAT path whose objects must exist when the workload starts."""

    source: str  # config key, e.g. "workload[0].path"
    op: str
    pattern: str  # relative to the root: exact key, `dir/` prefix or glob
    prepared: bool  # this run's prepare creates what the pattern selects


@dataclass(frozen=True, slots=True)
class RootPlan:
    """One storage root and what the run does there."""

    uri: str
    source: str
    #: False for roots prepare or a PUT creates (a prepare base_uri below the target need not exist yet).
    must_exist: bool = True
    write: bool = False
    need: SpaceNeed = field(default_factory=SpaceNeed)
    reads: tuple[ReadTarget, ...] = ()

    @property
    def scheme(self) -> str:
        return parse_uri(self.uri).scheme

    @property
    def is_local(self) -> bool:
        return self.scheme in LOCAL_SCHEMES


def agent_config(config: Config, identity: AgentIdentity) -> tuple[AgentConfig | None, str]:
    """The `distributed.agents` entry of this agent (by id, else by index) and its key path prefix."""
    dist = config.distributed
    if dist is None or not dist.agents:
        return None, ""
    for i, agent in enumerate(dist.agents):
        if (agent.id or f"agent-{i + 1}") == identity.agent_id:
            return agent, f"distributed.agents[{i}]."
    if 0 <= identity.index < len(dist.agents):
        return dist.agents[identity.index], f"distributed.agents[{identity.index}]."
    return None, ""


def workload_writes(config: Config) -> bool:
    """sai3 probed writes only when a prepare block existed; PUT/DELETE/MKDIR/RMDIR ops write too."""
    return config.has_prepare or any(isinstance(op, WRITE_OPS) for op in config.workload)


def mean_size(spec: object) -> int:
    """Mean object size of a size spec. Lognormal uses its mean clamped to [min, max]; the rejection
    sampling shifts the true mean a little, which is noise next to the free-space margins involved."""
    if isinstance(spec, FixedSize):
        return spec.value
    if isinstance(spec, UniformSize):
        return (spec.min + spec.max) // 2
    if isinstance(spec, LognormalSize):
        return min(max(spec.mean, spec.min), spec.max)
    raise TypeError(f"unknown size spec {spec!r}")


def execute_seconds(config: Config) -> float:
    """Seconds of workload the stages run (execute durations + hybrid max_durations)."""
    return sum(stage.run_for_s or 0.0 for stage in stage_plan(config))


class _Roots:
    """Roots in insertion order, deduplicated by canonical URI."""

    def __init__(self) -> None:
        self.items: dict[str, RootPlan] = {}

    def add(self, uri: str, source: str, *, must_exist: bool, write: bool) -> str:
        key = canonical(uri)
        current = self.items.get(key)
        if current is None:
            self.items[key] = RootPlan(uri=uri, source=source, must_exist=must_exist, write=write)
        else:
            self.items[key] = replace(
                current, must_exist=current.must_exist or must_exist, write=current.write or write
            )
        return key

    def containing(self, uri: str) -> tuple[str, str] | None:
        """(root key, relative path) of the first root `uri` lies under."""
        norm = canonical(uri)
        for key in self.items:
            rel = relative_to(key, norm)
            if rel is not None:
                return key, rel
        return None

    def update(self, key: str, **changes: object) -> None:
        self.items[key] = replace(self.items[key], **changes)  # type: ignore[arg-type]


def agent_plan(config: Config, identity: AgentIdentity | None = None) -> list[RootPlan]:
    """Every root this agent's run touches, with writes, reads and space needs filled in.

    `config` may be the run's config or the per-agent config the cluster layer derives (overrides applied,
    isolated prefix appended); both give the same roots.
    """
    identity = identity or AgentIdentity()
    agent, akey = agent_config(config, identity)
    writes = workload_writes(config)
    roots = _Roots()
    own_me = agent is not None and agent.multi_endpoint is not None
    me = agent.multi_endpoint if own_me and agent is not None else config.multi_endpoint
    me_key = f"{akey}multi_endpoint" if own_me else "multi_endpoint"
    own_target = agent is not None and bool(agent.target_override)
    target = agent.target_override if own_target and agent is not None else config.target
    target_key = f"{akey}target_override" if own_target else "target"
    # Isolated agents work under `target/<path_template>/`, which their own prepare or PUTs create.
    isolated = config.distributed is not None and not config.distributed.shared_filesystem and not own_target
    endpoints = list(me.endpoints) if me is not None else []
    endpoint_keys = [
        roots.add(ep, f"{me_key}.endpoints[{i}]", must_exist=True, write=writes)
        for i, ep in enumerate(endpoints)
    ]
    target_root = roots.add(target, target_key, must_exist=not isolated, write=writes) if target else None
    # Relative op paths go through the multi-endpoint block when there is one (sbench engine semantics).
    relative_roots = endpoint_keys or ([target_root] if target_root else [])
    prepared_dirs = _add_prepare(config, roots, target, endpoints)
    _add_ops(config, roots, relative_roots, prepared_dirs, identity)
    return list(roots.items.values())


def _spread(roots: _Roots, keys: list[str], part: NeedPart) -> None:
    """Add `part` spread evenly over `keys` (prepare and routed PUTs go round-robin over endpoints)."""
    if not keys:
        return
    share = -(-part.count // len(keys))
    for key in keys:
        current = roots.items[key]
        extra = SpaceNeed((NeedPart(part.label, share, part.mean_size),))
        roots.update(key, need=current.need.plus(extra), write=True)


def prepare_uris(spec: EnsureSpec, target: str | None, endpoints: list[str]) -> list[str]:
    """Where one ensure_objects entry writes, as the engine's prepare decides it: base_uri, else target, else
    the first endpoint; with use_multi_endpoint the same relative path under every endpoint."""
    base = spec.base_uri or target or (endpoints[0] if endpoints else None)
    if base is None:
        return []
    if not (spec.use_multi_endpoint and endpoints):
        return [base]
    first = endpoints[0].rstrip("/")
    rel = base.rstrip("/")[len(first) :].strip("/") if base.rstrip("/").startswith(first) else ""
    return [ep.rstrip("/") + ("/" + rel if rel else "") for ep in endpoints]


def _add_prepare(config: Config, roots: _Roots, target: str | None, endpoints: list[str]) -> set[str]:
    """Add prepare's writes to the roots; returns the canonical directories prepare fills."""
    prep = config.prepare
    if prep is None:
        return set()
    pools = pools_for(config.workload)
    tree = prep.directory_structure
    filled: set[str] = set()
    for i, spec in enumerate(prep.ensure_objects):
        key_path = f"prepare.ensure_objects[{i}]"
        keys = []
        for uri in prepare_uris(spec, target, endpoints):
            filled.add(canonical(uri))
            found = roots.containing(uri)
            keys.append(
                found[0] if found else roots.add(uri, f"{key_path}.base_uri", must_exist=False, write=True)
            )
        mean = mean_size(spec.size_spec)
        if tree is not None and i == 0:
            counts = tree_counts(tree)
            _spread(roots, keys, NeedPart(f"{key_path} (tree files)", counts.total_files, mean))
            _spread(roots, keys, NeedPart(f"{key_path} (tree directories)", counts.total_dirs, 0))
            continue
        label = key_path if len(pools) == 1 else f"{key_path} ({' + '.join(pools)} pools)"
        _spread(roots, keys, NeedPart(label, spec.count * len(pools), mean))
    return filled


def _add_ops(
    config: Config, roots: _Roots, relative_roots: list[str], prepared_dirs: set[str], identity: AgentIdentity
) -> None:
    tree_mode = config.prepare is not None and config.prepare.directory_structure is not None
    total_weight = sum(op.weight for op in config.workload) or 1
    seconds = execute_seconds(config)
    for i, op in enumerate(config.workload):
        key_path = f"workload[{i}].path"
        keys, rel = _op_roots(roots, op, key_path, relative_roots)
        if isinstance(op, PutOp) and op.weight > 0:
            _add_put(config, roots, keys, op, i, op.weight / total_weight, seconds, identity)
        if isinstance(op, READ_OPS) and not tree_mode:
            directory = Pattern.parse(rel).directory.strip("/")
            prepared = any(canonical(f"{k}/{directory}" if directory else k) in prepared_dirs for k in keys)
            read = ReadTarget(source=key_path, op=op.op, pattern=rel, prepared=prepared)
            for key in keys:
                roots.update(key, reads=(*roots.items[key].reads, read))


def _op_roots(roots: _Roots, op: object, key_path: str, relative_roots: list[str]) -> tuple[list[str], str]:
    """(root keys, pattern relative to them) an op path refers to."""
    path: str = getattr(op, "path", "")
    if "://" not in path:
        return relative_roots, path.lstrip("/")
    head, star, _ = path.partition("*")
    directory = head.rsplit("/", 1)[0] if (star or not path.endswith("/")) else head.rstrip("/")
    found = roots.containing(directory)
    if found is not None:
        key, rel_dir = found
        return [key], (rel_dir + "/" if rel_dir else "") + path[len(directory) :].lstrip("/")
    writes = isinstance(op, WRITE_OPS)
    key = roots.add(directory, key_path, must_exist=not writes, write=writes)
    return [key], path[len(directory) :].lstrip("/")


def _add_put(
    config: Config,
    roots: _Roots,
    keys: list[str],
    op: PutOp,
    index: int,
    share: float,
    seconds: float | None,
    identity: AgentIdentity,
) -> None:
    """Open loop bounds the PUT volume: rate × PUT share × execute seconds, times the agents that write into
    the same namespace (io_rate is per agent; with shared storage every agent's PUTs land here)."""
    mean = mean_size(op.size_spec)
    label = f"workload[{index}] put"
    iops = config.io_rate.iops if config.io_rate is not None else None
    if iops is not None and seconds is not None:
        shared = config.distributed is not None and config.distributed.shared_filesystem
        agents = identity.count if shared else 1
        count = int(iops * share * seconds * agents + 0.5)
        who = f" × {agents} agents" if agents > 1 else ""
        text = f"{label} ({iops:g} op/s × {share:.0%} × {seconds:g} s{who})"
        _spread(roots, keys, NeedPart(text, count, mean))
        return
    why = "closed loop, no io_rate.iops" if iops is None else "a hybrid stage has no max_duration"
    span = f"{seconds:g} s" if seconds is not None else "an unbounded time"
    example = ASSUMED_CLOSED_LOOP_PUT_RATE * share * (seconds or config.duration) * mean
    note = (
        f"PUT volume unbounded by config ({label}: {why}); at an assumed "
        f"{ASSUMED_CLOSED_LOOP_PUT_RATE:,.0f} op/s × {share:.0%} PUT share of {human_bytes(mean)} objects "
        f"for {span} it would write {human_bytes(example)} (not counted; set io_rate.iops to bound it)"
    )
    for key in keys:
        current = roots.items[key]
        roots.update(key, need=current.need.plus(SpaceNeed(unbounded=(note,))), write=True)
