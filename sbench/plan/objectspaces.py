"""What one prepare (or cleanup) shard needs to know about one `ensure_objects` entry, built once from the
config: its roots, pools, count, sizes, fill, tree and this agent's share. Prepare, cleanup, `--verify` and
the Ray task stages all work from these picklable records (sai3 passed eleven positional arguments, seed
item 12), so they can never disagree on names, sizes or shares.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from sbench.config.backend import backend_options
from sbench.config.models import AgentConfig, Config
from sbench.data.sizes import SizeSampler, index_hash, sampler_from_spec, seed_for_uri
from sbench.errors import ConfigError
from sbench.layout.naming import PREPARED_POOL
from sbench.layout.paths import pools_for
from sbench.layout.tree import TreeLayout, TreeSpec
from sbench.plan.agents import AgentIdentity
from sbench.storage.declared import DeclaredSpace
from sbench.storage.options import BackendOptions
from sbench.storage.uri import NULL_SCHEME, parse_uri

#: sai3's prepare error budget (DEFAULT_PREPARE_MAX_ERRORS): more objects than this failing ends the shard
DEFAULT_MAX_ERRORS = 100
_PAYLOAD_SALT = 0x5EED_0F_DA7A


@dataclass(frozen=True)
class PrepareParams:
    """Everything a prepare (or cleanup) shard of one `ensure_objects` entry needs; picklable for Ray."""

    entry: int
    #: where the objects live; with multi-endpoint, one root per endpoint and object i goes to roots[i % n]
    roots: tuple[str, ...]
    #: objects per pool (tree: the tree's file count)
    count: int
    sampler: SizeSampler
    size_seed: int
    payload_seed: int
    fill: str = "random"
    dedup_factor: int = 1
    compress_factor: int = 1
    pools: tuple[str, ...] = (PREPARED_POOL,)
    tree: TreeSpec | None = None
    #: `prepare.key_prefix_shards`: flat names under `{idx % N:02x}/` (layout.naming.prepared_key)
    key_shards: int | None = None
    skip_verification: bool = False
    force_overwrite: bool = False
    concurrency: int = 16
    #: shared storage in a distributed run: this agent handles indices i with i % agent_count == agent_index
    agent_index: int = 0
    agent_count: int = 1
    options: BackendOptions = field(default_factory=BackendOptions)
    max_errors: int = DEFAULT_MAX_ERRORS
    #: fail the shard (and its stage) after this long without progress (`stall_timeout`); None: never
    stall_timeout_s: float | None = None

    @property
    def base_uri(self) -> str:
        return self.roots[0]

    @property
    def total(self) -> int:
        """Size of the global index space: pool p, index i -> p * count + i."""
        return self.count * (1 if self.tree else len(self.pools))

    def layout(self) -> TreeLayout | None:
        return TreeLayout(self.tree) if self.tree else None

    def owned_total(self) -> int:
        """How many indices of the whole space this agent handles."""
        if self.agent_count <= 1:
            return self.total
        per_pool = (
            0
            if self.agent_index >= self.count
            else (self.count - 1 - self.agent_index) // self.agent_count + 1
        )
        return per_pool * (self.total // self.count if self.count else 0)

    def mine(self, g: int) -> bool:
        return (
            self.agent_count <= 1
            or (g % self.count if self.count else g) % self.agent_count == self.agent_index
        )

    def size_of(self, g: int) -> int:
        return self.sampler.size_for_index(g % self.count if self.count else g, self.size_seed)

    def root_of(self, g: int) -> int:
        return (g % self.count) % len(self.roots) if self.count else 0


def prepare_params(
    config: Config, identity: AgentIdentity, *, concurrency: int | None = None
) -> list[PrepareParams]:
    """One PrepareParams per `ensure_objects` entry (entry 0 carries the tree when one is configured)."""
    prep = config.prepare
    if prep is None:
        return []
    dist = config.distributed
    shared = bool(dist.shared_filesystem) if dist is not None else False
    split = identity.count > 1 and shared
    pools = pools_for(config.workload)
    me = config.multi_endpoint
    out = []
    entries = list(prep.ensure_objects)
    if not entries and prep.directory_structure is not None:
        raise ConfigError(
            "prepare.directory_structure needs an ensure_objects entry (its base_uri roots the "
            "tree, its size_spec sizes the files)"
        )
    for i, entry in enumerate(entries):
        base = (
            entry.base_uri or config.target or (me.endpoints[0] if me is not None and me.endpoints else None)
        )
        if base is None:
            raise ConfigError(
                f"prepare.ensure_objects[{i}] has no base_uri and there is no `target`",
                hint="Set base_uri on the entry, or a top-level target.",
            )
        roots: tuple[str, ...] = (base,)
        if entry.use_multi_endpoint and me is not None and me.endpoints:
            first = me.endpoints[0].rstrip("/")
            rel = base.rstrip("/")[len(first) :].strip("/") if base.rstrip("/").startswith(first) else ""
            roots = tuple(ep.rstrip("/") + ("/" + rel if rel else "") for ep in me.endpoints)
        tree = TreeSpec.from_config(prep.directory_structure) if i == 0 and prep.directory_structure else None
        count = TreeLayout(tree).total_files if tree else int(entry.count)
        size_seed = seed_for_uri(base)
        out.append(
            PrepareParams(
                entry=i,
                roots=roots,
                count=count,
                sampler=sampler_from_spec(entry.size_spec),
                size_seed=size_seed,
                payload_seed=index_hash(size_seed, _PAYLOAD_SALT),
                fill=str(getattr(entry.fill, "value", entry.fill)),
                dedup_factor=int(entry.dedup_factor),
                compress_factor=int(entry.compress_factor),
                pools=(PREPARED_POOL,) if tree else pools,
                tree=tree,
                key_shards=prep.key_prefix_shards,
                skip_verification=bool(prep.skip_verification),
                force_overwrite=bool(prep.force_overwrite),
                concurrency=int(concurrency or config.concurrency),
                agent_index=identity.index if split else 0,
                agent_count=identity.count if split else 1,
                options=backend_options(config, roots[0]),  # a multi_endpoint block's own settings
                stall_timeout_s=config.stall_timeout,
            )
        )
    declared = declared_spaces(out)
    if not declared:
        return out
    return [
        replace(p, options=replace(p.options, declared=declared)) if _is_null(p.base_uri) else p for p in out
    ]


def _is_null(uri: str) -> bool:
    return parse_uri(uri).scheme == NULL_SCHEME


def declared_spaces(params: Sequence[PrepareParams]) -> tuple[DeclaredSpace, ...]:
    """What prepare makes on every null:// root, by name and size (storage.declared says why a null store
    needs it): one space per entry and root, object i on root i % n as `root_of` places it."""
    return tuple(
        DeclaredSpace(
            root, p.pools, p.count, p.sampler, p.size_seed, p.tree, part, len(p.roots), p.key_shards
        )
        for p in params
        for part, root in enumerate(p.roots)
        if _is_null(root)
    )


def storage_options(config: Config, uri: str, *, agent: AgentConfig | None = None) -> BackendOptions:
    """The options to open `uri` with for a run of `config`: config.backend_options, plus, for a null://
    URI, what the config's prepare declares (every backend of a run that may read prepared objects opens
    through here)."""
    options = backend_options(config, uri, agent=agent)
    if config.prepare is None or not _is_null(uri):
        return options
    return replace(options, declared=declared_spaces(prepare_params(config, AgentIdentity())))
