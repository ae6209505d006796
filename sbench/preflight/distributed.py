"""Controller-side checks: consistency of the config across agents, before any agent touches storage.

These need the whole config rather than one agent's view: agent ids, agent placement, whether the storage is
really shared when the config says so, and whether the endpoint sets agents get describe one namespace.
Agent-side checks (run_preflight) run on every node; these run once, on the driver.
"""

from __future__ import annotations

import ipaddress
import os

from sbench.config.models import Config, MultiEndpointConfig
from sbench.preflight.mounts import mount_of
from sbench.preflight.net import resolve_host
from sbench.preflight.result import CheckList, ErrorType, PreflightResult
from sbench.storage.uri import LOCAL_SCHEMES, NULL_SCHEME, parse_uri, uri_under

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0", ""})


def controller_check_names(config: Config) -> list[str]:
    """What controller_checks looks at, for --dry-run."""
    names = ["endpoint namespaces", "prepare base_uri vs target/multi_endpoint"]
    if config.distributed is not None:
        names = [
            "agent ids unique",
            "agents vs agents_per_node",
            "agent hosts resolvable",
            "shared vs isolated storage",
            "per-agent endpoint sets",
            *names,
        ]
    return names


def controller_checks(config: Config) -> PreflightResult:
    checks = CheckList(agent_id=None, endpoint="")
    if config.distributed is not None:
        _check_agents(config, checks)
        _check_hosts(config, checks)
        _check_storage_mode(config, checks)
        _check_agent_endpoint_sets(config, checks)
    _check_namespaces(config.multi_endpoint, "multi_endpoint", checks)
    _check_prepare_locations(config, checks)
    return checks.result()


def _check_agents(config: Config, checks: CheckList) -> None:
    dist = config.distributed
    assert dist is not None
    if dist.agents and dist.agents_per_node is not None:
        checks.error(
            "config.agents",
            "both `agents` and `agents_per_node` are set",
            ErrorType.CONFIGURATION,
            "keep one: an explicit `distributed.agents` list, or `agents_per_node` with `nodes`",
        )
        return
    if not dist.agents and dist.agents_per_node is None:
        checks.error(
            "config.agents",
            "no agents: neither `agents` nor `agents_per_node` is set",
            ErrorType.CONFIGURATION,
            "add `distributed.agents` (each with `address`) or `distributed.agents_per_node: N`",
        )
        return
    if dist.agents_per_node is not None:
        nodes = dist.nodes if isinstance(dist.nodes, list) else "every alive Ray node"
        checks.info(
            "config.agents",
            f"{dist.agents_per_node} agent(s) on each of {nodes}",
            details={"agents_per_node": dist.agents_per_node, "nodes": dist.nodes},
        )
        return
    seen: dict[str, int] = {}
    for i, agent in enumerate(dist.agents):
        agent_id = agent.id or f"agent-{i + 1}"
        if agent_id in seen:
            checks.error(
                "config.agent_ids",
                f"agent id {agent_id!r} is used by agents[{seen[agent_id]}] and agents[{i}]",
                ErrorType.CONFIGURATION,
                f"give distributed.agents[{i}].id a unique value",
            )
            return
        seen[agent_id] = i
    checks.success("config.agent_ids", f"{len(seen)} agent ids are unique", details={"agent_ids": list(seen)})


def _host_of(address: str) -> str:
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


def _check_hosts(config: Config, checks: CheckList) -> None:
    dist = config.distributed
    assert dist is not None
    hosts: list[tuple[str, str]] = [
        (_host_of(a.address), f"distributed.agents[{i}].address") for i, a in enumerate(dist.agents)
    ]
    if isinstance(dist.nodes, list):
        hosts += [(n, f"distributed.nodes[{i}]") for i, n in enumerate(dist.nodes)]
    bad = 0
    for host, key in hosts:
        if host in _LOCAL_HOSTS:
            continue
        try:
            ipaddress.ip_address(host)
            continue
        except ValueError:
            pass
        try:
            resolve_host(host, 0)
        except (OSError, TimeoutError) as exc:
            bad += 1
            checks.error(
                "config.agent_hosts",
                f"host {host!r} does not resolve: {exc}",
                ErrorType.NETWORK,
                f"fix `{key}` (an IP or a resolvable name of a Ray node) or this host's DNS",
            )
    if hosts and not bad:
        checks.success("config.agent_hosts", f"{len(hosts)} agent/node host(s) resolve")


def _namespace(uri: str) -> tuple[str, str, str, str]:
    """(scheme, account, bucket, prefix) of a URI: what must match for two endpoints to share objects."""
    p = parse_uri(uri)
    return p.scheme, p.account or "", p.bucket, p.prefix.strip("/")


def _check_storage_mode(config: Config, checks: CheckList) -> None:
    dist = config.distributed
    assert dist is not None
    targets = {a.target_override or config.target for a in dist.agents} if dist.agents else {config.target}
    targets.discard(None)
    if not dist.shared_filesystem:
        checks.info(
            "config.storage_mode",
            f"isolated storage: each agent works under its own prefix "
            f"({dist.path_template!r}) and prepares its own objects",
        )
        return
    spaces = {_namespace(t) for t in targets if t}
    if len(spaces) > 1:
        checks.warning(
            "config.storage_mode",
            f"shared_filesystem is true but agents use {len(spaces)} different "
            f"targets ({', '.join(sorted(t for t in targets if t))})",
            ErrorType.CONFIGURATION,
            "with shared storage prepare splits the objects by index across agents, so every agent "
            "must see the same namespace: give all agents the same target, or set "
            "`distributed.shared_filesystem: false`",
        )
    for uri in sorted(t for t in targets if t):
        parsed = parse_uri(uri)
        if parsed.scheme not in LOCAL_SCHEMES:
            continue
        _check_local_shared(parsed.prefix, uri, checks)
    schemes = {parse_uri(t).scheme for t in targets if t}
    if NULL_SCHEME in schemes:
        checks.info(
            "config.storage_mode",
            "null target: each agent process keeps its own null index, so an object is listed only where it "
            "was written; the objects prepare declares are answered in every process",
        )
    if not schemes & (LOCAL_SCHEMES | {NULL_SCHEME}):
        checks.success("config.storage_mode", "shared storage: all agents use one object-store namespace")


def _check_local_shared(path: str, uri: str, checks: CheckList) -> None:
    probe = path
    while not os.path.exists(probe) and probe not in ("/", ""):
        probe = os.path.dirname(probe)
    mount = mount_of(probe or "/")
    if mount is None:
        return
    if mount.is_network:
        checks.success(
            "config.storage_mode",
            f"{uri} is on {mount.fs_type} ({mount.source}) here: a shared "
            "file system, as shared_filesystem: true expects",
            endpoint=uri,
        )
        return
    checks.warning(
        "config.storage_mode",
        f"shared_filesystem is true, but {path} is on a local {mount.fs_type} "
        f"({mount.source}) on the controller host",
        ErrorType.CONFIGURATION,
        "unless every node mounts the same shared file system at this path, set "
        "`distributed.shared_filesystem: false` (each node then prepares its own objects)",
        endpoint=uri,
        details=mount.to_details(),
    )


def _check_namespaces(block: MultiEndpointConfig | None, key: str, checks: CheckList) -> None:
    if block is None:
        return
    spaces = {_namespace(ep) for ep in block.endpoints}
    dupes = sorted({ep for ep in block.endpoints if block.endpoints.count(ep) > 1})
    if dupes:
        checks.warning(
            "config.endpoints",
            f"{key} lists {', '.join(dupes)} more than once",
            ErrorType.CONFIGURATION,
            f"remove the duplicate from `{key}.endpoints` (it gets a double share of the load)",
        )
    if len(spaces) > 1:
        checks.warning(
            "config.endpoints",
            f"{key} endpoints expose {len(spaces)} different namespaces (scheme/bucket/prefix)",
            ErrorType.CONFIGURATION,
            f"every endpoint in `{key}.endpoints` must serve the same bucket and prefix; objects "
            "prepared through one endpoint are read through another",
            details={"namespaces": sorted("/".join(s) for s in spaces)},
        )
    else:
        checks.success("config.endpoints", f"{key}: {len(block.endpoints)} endpoint(s), one namespace")


def _check_agent_endpoint_sets(config: Config, checks: CheckList) -> None:
    dist = config.distributed
    assert dist is not None
    blocks = [(i, a.multi_endpoint) for i, a in enumerate(dist.agents) if a.multi_endpoint is not None]
    for i, block in blocks:
        _check_namespaces(block, f"distributed.agents[{i}].multi_endpoint", checks)
    if not blocks or not dist.shared_filesystem:
        return
    spaces = {_namespace(b.endpoints[0]) for _, b in blocks}
    if config.multi_endpoint is not None:
        spaces.add(_namespace(config.multi_endpoint.endpoints[0]))
    if len(spaces) > 1:
        checks.warning(
            "config.endpoint_sets",
            f"with shared storage, agents' multi_endpoint blocks point at {len(spaces)} different namespaces",
            ErrorType.CONFIGURATION,
            "per-agent endpoint sets may differ in hosts but must serve the same bucket/prefix, or set "
            "`distributed.shared_filesystem: false`",
            details={"namespaces": sorted("/".join(s) for s in spaces)},
        )
    else:
        checks.success("config.endpoint_sets", f"{len(blocks)} per-agent endpoint set(s) share one namespace")


def _check_prepare_locations(config: Config, checks: CheckList) -> None:
    prep = config.prepare
    if prep is None:
        return
    endpoints = list(config.multi_endpoint.endpoints) if config.multi_endpoint is not None else []
    # A base_uri outside target and endpoints is a config error (sbench.config.confinement), so what is
    # left to warn about is a base_uri under another endpoint than the first one.
    for i, spec in enumerate(prep.ensure_objects):
        key = f"prepare.ensure_objects[{i}]"
        if (
            spec.base_uri
            and spec.use_multi_endpoint
            and endpoints
            and not uri_under(endpoints[0], spec.base_uri)
        ):
            # The engine keeps only the part of base_uri below endpoints[0] and repeats it on every endpoint.
            checks.warning(
                "config.base_uri",
                f"{key} sets use_multi_endpoint and a base_uri ({spec.base_uri}) that is not under the first "
                f"endpoint ({endpoints[0]}), so the objects go to the endpoint roots and base_uri is ignored",
                ErrorType.CONFIGURATION,
                f"write `{key}.base_uri` under {endpoints[0]} (its sub-path is used on every endpoint), or "
                "drop `use_multi_endpoint`",
            )
            continue
