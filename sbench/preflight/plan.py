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
    FixedSize,
    GetOp,
    LognormalSize,
    MkdirOp,
    PutOp,
    RmdirOp,
    StageType,
    StatOp,
    UniformSize,
)
from sbench.config.stages import stage_plan
from sbench.config.tree_math import tree_counts
from sbench.engine.context import AgentIdentity
from sbench.engine.paths import Pattern, pools_for
from sbench.preflight.need import NeedPart, SpaceNeed, human_bytes
from sbench.storage.uri import LOCAL_SCHEMES, parse_uri

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


def execute_seconds(config: Config) -> float | None:
    """Seconds of workload the stages run (execute durations + hybrid max_durations); None if unbounded."""
    total = 0.0
    for stage in stage_plan(config):
        if stage.type is StageType.EXECUTE:
            total += stage.duration or config.duration
        elif stage.type is StageType.HYBRID:
            if stage.max_duration is None:
                return None
            total += stage.max_duration
    return total


def _norm(uri: str) -> str:
    return parse_uri(uri).root.rstrip("/")


def _relative(root: str, uri: str) -> str | None:
    if uri == root:
        return ""
    if uri.startswith(root + "/"):
        return uri[len(root) + 1 :]
    return None


class _Roots:
    """Roots in insertion order, deduplicated by canonical URI."""

    def __init__(self) -> None:
        self.items: dict[str, RootPlan] = {}

    def add(self, uri: str, source: str, *, must_exist: bool, write: bool) -> str:
        key = _norm(uri)
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
        norm = _norm(uri)
        for key in self.items:
            rel = _relative(key, norm)
            if rel is not None:
                return key, rel
        return None

    def update(self, key: str, **changes: object) -> None:
        self.items[key] = replace(self.items[key], **changes)  # type: ignore[arg-type]


def agent_plan(config: Config, identity: AgentIdentity | None = None) -> list[RootPlan]:
    """Every root this agent's run touches, with writes, reads and space needs filled in."""
    identity = identity or AgentIdentity()
    agent, akey = agent_config(config, identity)
    writes = workload_writes(config)
    roots = _Roots()
    me = (
        agent.multi_endpoint
        if agent is not None and agent.multi_endpoint is not None
        else config.multi_endpoint
    )
    me_key = (
        f"{akey}multi_endpoint"
        if agent is not None and agent.multi_endpoint is not None
        else "multi_endpoint"
    )
    target = agent.target_override if agent is not None and agent.target_override else config.target
    target_key = f"{akey}target_override" if agent is not None and agent.target_override else "target"
    endpoint_keys = (
        [
            roots.add(ep, f"{me_key}.endpoints[{i}]", must_exist=True, write=writes)
            for i, ep in enumerate(me.endpoints)
        ]
        if me is not None
        else []
    )
    target_root = roots.add(target, target_key, must_exist=True, write=writes) if target else None
    # Relative op paths go through the multi-endpoint block when there is one (sbench engine semantics).
    relative_roots = endpoint_keys or ([target_root] if target_root else [])
    _add_prepare(config, roots, endpoint_keys, relative_roots)
    _add_ops(config, roots, relative_roots)
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


def _add_prepare(config: Config, roots: _Roots, endpoint_keys: list[str], relative_roots: list[str]) -> None:
    prep = config.prepare
    if prep is None:
        return
    pools = pools_for(config.workload)
    tree = prep.directory_structure
    for i, spec in enumerate(prep.ensure_objects):
        key_path = f"prepare.ensure_objects[{i}]"
        if spec.base_uri and not spec.use_multi_endpoint:
            found = roots.containing(spec.base_uri)
            keys = (
                [found[0]]
                if found
                else [roots.add(spec.base_uri, f"{key_path}.base_uri", must_exist=False, write=True)]
            )
        else:
            keys = endpoint_keys if (spec.use_multi_endpoint or not relative_roots) else relative_roots
            keys = keys or relative_roots
        mean = mean_size(spec.size_spec)
        if tree is not None and i == 0:
            counts = tree_counts(tree)
            _spread(roots, keys, NeedPart(f"{key_path} (tree files)", spec.count, mean))
            _spread(roots, keys, NeedPart(f"{key_path} (tree directories)", counts.total_dirs, 0))
            continue
        label = key_path if len(pools) == 1 else f"{key_path} ({' + '.join(pools)} pools)"
        _spread(roots, keys, NeedPart(label, spec.count * len(pools), mean))


def _add_ops(config: Config, roots: _Roots, relative_roots: list[str]) -> None:
    tree_mode = config.prepare is not None and config.prepare.directory_structure is not None
    total_weight = sum(op.weight for op in config.workload) or 1
    seconds = execute_seconds(config)
    for i, op in enumerate(config.workload):
        key_path = f"workload[{i}].path"
        keys, rel = _op_roots(roots, op, key_path, relative_roots)
        if isinstance(op, PutOp) and op.weight > 0:
            _add_put(config, roots, keys, op, i, op.weight / total_weight, seconds)
        if isinstance(op, READ_OPS) and not tree_mode:
            prepared = _prepared_by_run(config, roots, keys, rel)
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


def _prepared_by_run(config: Config, roots: _Roots, keys: list[str], pattern: str) -> bool:
    """True when prepare writes into the directory the pattern selects from (so it need not exist yet)."""
    prep = config.prepare
    if prep is None or not prep.ensure_objects:
        return False
    directory = Pattern.parse(pattern).directory.strip("/")
    for spec in prep.ensure_objects:
        if not spec.base_uri or spec.use_multi_endpoint:
            if directory == "":
                return True
            continue
        base = _norm(spec.base_uri)
        for key in keys:
            rel = _relative(key, base)
            if rel is not None and rel.strip("/") == directory:
                return True
    return False


def _add_put(
    config: Config, roots: _Roots, keys: list[str], op: PutOp, index: int, share: float, seconds: float | None
) -> None:
    mean = mean_size(op.size_spec)
    label = f"workload[{index}] put"
    iops = config.io_rate.iops if config.io_rate is not None else None
    if iops is not None and seconds is not None:
        count = int(iops * share * seconds + 0.5)
        _spread(roots, keys, NeedPart(f"{label} ({iops:g} op/s × {share:.0%} × {seconds:g} s)", count, mean))
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
