"""Who the agents are and what each one runs: identities, ids, indices, hosts and the per-agent view of the
config.

sai3 parsed `agents[].id`, `target_override`, `concurrency_override` and `path_template` but ignored most of
them (reference §1.11, §7.5). Here each one changes what that agent does, computed once on the driver and
shipped to the agent as its own `Config`, so the engine never needs to know it runs distributed.
"""

from __future__ import annotations

from dataclasses import dataclass

from sbench.config.models import AgentConfig, Config, DistributedConfig
from sbench.errors import ConfigError
from sbench.storage.confine import dotdot_problem


@dataclass(frozen=True, slots=True)
class AgentIdentity:
    """An agent's id, 0-based index and the agent count; path selection and sharding use the real index."""

    agent_id: str = "standalone"
    index: int = 0
    count: int = 1
    #: Short id of this run; workload PUT keys carry it so cleanup finds what the run wrote.
    run_id: str = "run"



LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})


@dataclass(frozen=True, slots=True)
class AgentSlot:
    """One agent before it exists: where it goes and what it was declared as."""

    #: the id from the YAML (None: generated, or taken from SBENCH_AGENT_ID on its node)
    declared_id: str | None
    #: host part of `address` ("" for agents_per_node slots)
    host: str
    #: the YAML entry, None for agents_per_node slots
    entry: AgentConfig | None
    #: position in the YAML list / placement order; the agent index follows it
    position: int


def address_host(address: str) -> str:
    """The host part of `host:port`, `[v6]:port` or a bare host."""
    address = address.strip()
    if address.startswith("["):
        return address[1 : address.index("]")] if "]" in address else address.strip("[]")
    if address.count(":") == 1:
        return address.split(":", 1)[0]
    return address


def is_local_host(host: str) -> bool:
    return host.lower() in LOCAL_HOSTS


def declared_slots(config: Config) -> list[AgentSlot]:
    """The explicit `distributed.agents` entries, in YAML order."""
    return block_slots(config.distributed) if config.distributed is not None else []


def block_slots(dist: DistributedConfig) -> list[AgentSlot]:
    """The explicit `agents` entries of a `distributed` block, in YAML order."""
    return [
        AgentSlot(declared_id=entry.id, host=address_host(entry.address), entry=entry, position=i)
        for i, entry in enumerate(dist.agents)
    ]


def assign_ids(declared: list[str | None], env_ids: list[str | None]) -> list[str]:
    """Final agent ids: the YAML id, else the node's SBENCH_AGENT_ID, else `agent-N` (1-based position).

    Several agents on a node that sets SBENCH_AGENT_ID get `-1`, `-2`... suffixes; a YAML id used twice is a
    config error (results would overwrite each other).
    """
    seen: dict[str, int] = {}
    for ident in declared:
        if ident is not None:
            seen[ident] = seen.get(ident, 0) + 1
    dupes = sorted(i for i, n in seen.items() if n > 1)
    if dupes:
        raise ConfigError(
            f"distributed.agents: id {dupes[0]!r} is used by more than one agent; agent ids must be unique "
            "(they name the agents/<id>/ result folders)"
        )
    env_counts: dict[str, int] = {}
    for declared_id, env_id in zip(declared, env_ids, strict=True):
        if declared_id is None and env_id:
            env_counts[env_id] = env_counts.get(env_id, 0) + 1
    env_seen: dict[str, int] = {}
    out: list[str] = []
    taken = {i for i in declared if i is not None}
    for pos, (declared_id, env_id) in enumerate(zip(declared, env_ids, strict=True)):
        if declared_id is not None:
            ident = declared_id
        elif env_id:
            env_seen[env_id] = env_seen.get(env_id, 0) + 1
            ident = env_id if env_counts[env_id] == 1 else f"{env_id}-{env_seen[env_id]}"
        else:
            ident = f"agent-{pos + 1}"
        base, n = ident, 1
        while ident in out or (ident in taken and ident != declared_id):
            n += 1
            ident = f"{base}-{n}"
        out.append(ident)
    return out


def local_agents(config: Config) -> Config:
    """A config without a `distributed` block as the distributed run it becomes on Ray: `processes` agents
    (one unless set) on the driver's node, sharing the target's namespace, with `concurrency` split over them
    as sai3 split it over its worker processes (ceil(concurrency / N) each)."""
    count = config.process_count
    agents = [AgentConfig(address="localhost", id=f"agent-{i + 1}") for i in range(count)]
    return config.model_copy(
        update={
            "distributed": DistributedConfig(shared_filesystem=True, agents=agents),
            "concurrency": config.concurrency_per_process,
            "processes": None,
        }
    )


def share_io_rate(configs: list[Config]) -> list[Config]:
    """Open loop: `io_rate.iops` is the run's aggregate rate, so each agent schedules the share of it that
    its workers are of all workers (agents may have their own `concurrency_override`)."""
    if not configs or not all(c.open_loop for c in configs):
        return configs
    total = sum(c.concurrency for c in configs)
    return [_with_share(c, c.concurrency / total) for c in configs]


def _with_share(config: Config, share: float) -> Config:
    rate = config.io_rate
    assert rate is not None and rate.iops is not None  # open_loop
    return config.model_copy(update={"io_rate": rate.model_copy(update={"iops": rate.iops * share})})


def _join(uri: str, prefix: str) -> str:
    """`uri` + `prefix` as a directory URI (an empty prefix leaves `uri` as a directory)."""
    rest = prefix.strip("/")
    return uri.rstrip("/") + "/" + (rest + "/" if rest else "")


def agent_config(config: Config, slot: AgentSlot, agent_id: str, index: int) -> Config:
    """The config one agent runs: overrides applied, and in isolated mode its own path prefix.

    Isolated mode (`shared_filesystem: false`): `path_template` (agent entry, else distributed) is appended to
    `target` and to every prepare base_uri under the original target, as sai3's `apply_agent_prefix` did.
    `{id}` is the 1-based agent number (sai3's layout: agent-1/, agent-2/); `{agent_id}` is the agent's id.
    An agent with its own `target_override` already has a private target and gets no extra prefix.
    """
    dist = config.distributed
    entry = slot.entry
    update: dict[str, object] = {}
    target = config.target
    if entry is not None and entry.target_override:
        target = entry.target_override
        update["target"] = target
    if entry is not None and entry.concurrency_override:
        update["concurrency"] = entry.concurrency_override
    if entry is not None and entry.multi_endpoint is not None:
        update["multi_endpoint"] = entry.multi_endpoint
    prepare = config.prepare
    isolated = dist is not None and not dist.shared_filesystem
    if isolated and not (entry is not None and entry.target_override) and target:
        template = (entry.path_template if entry is not None else None) or dist.path_template
        prefix = template.replace("{agent_id}", agent_id).replace("{id}", str(index + 1))
        why = dotdot_problem(prefix)
        if why is not None:  # validation refuses it first; an id from SBENCH_AGENT_ID can still bring one
            raise ConfigError(f"distributed.path_template for agent {agent_id!r}: {why}")
        own_target = _join(target, prefix)
        update["target"] = own_target
        if prepare is not None:
            base = target.rstrip("/")
            pools = [
                pool.model_copy(
                    update={"base_uri": _join(own_target, pool.base_uri.rstrip("/")[len(base) :])}
                )
                if pool.base_uri and pool.base_uri.rstrip("/").startswith(base)
                else pool
                for pool in prepare.ensure_objects
            ]
            prepare = prepare.model_copy(update={"ensure_objects": pools})
            update["prepare"] = prepare
    elif entry is not None and entry.target_override and prepare is not None and config.target:
        # A pool under the shared target follows the agent to its own target.
        original = config.target.rstrip("/")
        own = entry.target_override.rstrip("/")
        pools = [
            pool.model_copy(update={"base_uri": own + pool.base_uri.rstrip("/")[len(original) :] + "/"})
            if pool.base_uri and pool.base_uri.rstrip("/").startswith(original)
            else pool
            for pool in prepare.ensure_objects
        ]
        update["prepare"] = prepare.model_copy(update={"ensure_objects": pools})
    return config.model_copy(update=update) if update else config
