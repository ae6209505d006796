"""Where each agent runs: the Ray node picked by an agent's address, or N agents on every node.

`address: host:port` picks the node whose IP (or node name) is `host`; localhost means the driver's node,
and several agents may share a node. `agents_per_node: N` with `nodes: all` reserves one bundle per alive
node in a STRICT_SPREAD placement group, so each node gets exactly N agents; `nodes: [ip, ...]` pins to the
listed nodes. A cluster that cannot hold the placement ends with a clear error, never a silent hang.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import (
    NodeAffinitySchedulingStrategy,
    PlacementGroupSchedulingStrategy,
)

from sbench.config.models import Config, DistributedConfig
from sbench.errors import ConfigError, RunFailed
from sbench.plan.agents import AgentSlot, block_slots, is_local_host

#: CPU share each placement-group bundle reserves: agents are I/O processes, the bundle only pins the node.
BUNDLE_CPU = 0.01


@dataclass(frozen=True, slots=True)
class PlacedSlot:
    slot: AgentSlot
    node_id: str
    node_ip: str
    strategy: Any
    num_cpus: float


@dataclass
class Placement:
    slots: list[PlacedSlot]
    placement_group: PlacementGroup | None = None

    def release(self) -> None:
        """Free the placement group (called on every exit path of the driver)."""
        if self.placement_group is not None:
            remove_placement_group(self.placement_group)
            self.placement_group = None


def alive_nodes() -> list[dict[str, Any]]:
    return [n for n in ray.nodes() if n.get("Alive")]


def _describe(nodes: list[dict[str, Any]]) -> str:
    return ", ".join(sorted({n["NodeManagerAddress"] for n in nodes})) or "none"


def node_for_host(host: str, nodes: list[dict[str, Any]], driver_node: str) -> dict[str, Any] | None:
    """The alive node an agent address points at (first match by IP, then by node name)."""
    if is_local_host(host):
        return next((n for n in nodes if n["NodeID"] == driver_node), None)
    for key in ("NodeManagerAddress", "NodeManagerHostname", "NodeName"):
        for node in nodes:
            if str(node.get(key, "")).lower() == host.lower():
                return node
    return None


def plan_placement(config: Config, timeout_s: float, run_id: str = "") -> Placement:
    """Resolve every agent of the config's `distributed` block to a node (see `place_agents`)."""
    dist = config.distributed
    if dist is None:
        raise ConfigError("a distributed run needs a `distributed:` block with agents or agents_per_node")
    return place_agents(dist, timeout_s, run_id)


def place_agents(dist: DistributedConfig, timeout_s: float, run_id: str = "") -> Placement:
    """Resolve every agent of a `distributed` block to a node (explicit agents first, then agents_per_node
    slots); a replay's block goes through here too."""
    nodes = alive_nodes()
    driver_node = ray.get_runtime_context().get_node_id()
    placed: list[PlacedSlot] = []
    for slot in block_slots(dist):
        node = node_for_host(slot.host, nodes, driver_node)
        if node is None:
            raise ConfigError(
                f"distributed.agents[{slot.position}] (address host {slot.host!r}) matches no alive Ray "
                f"node; the cluster's nodes are: {_describe(nodes)}",
                hint="start a Ray worker on that host (`ray start --address=HEAD:6379`) or use one of the "
                "listed IPs (localhost = the driver's node)",
            )
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        placed.append(PlacedSlot(slot, node["NodeID"], node["NodeManagerAddress"], strategy, 0))
    placement = Placement(placed)
    per_node = dist.agents_per_node
    if per_node:
        if dist.nodes is None or dist.nodes == "all":
            _spread_over_all(placement, nodes, per_node, timeout_s, len(placed), run_id)
        else:
            _pin_to_listed(placement, list(dist.nodes), nodes, per_node, start=len(placed))
    if not placement.slots:
        raise ConfigError(
            "distributed: no agents to run; list `agents:` or set `agents_per_node:` (with `nodes: all`)"
        )
    return placement


def _per_node_slots(start: int, per_node: int, node_idx: int) -> list[AgentSlot]:
    return [
        AgentSlot(declared_id=None, host="", entry=None, position=start + node_idx * per_node + k)
        for k in range(per_node)
    ]


def _spread_over_all(
    placement: Placement,
    nodes: list[dict[str, Any]],
    per_node: int,
    timeout_s: float,
    start: int,
    run_id: str,
) -> None:
    bundles = [{"CPU": BUNDLE_CPU} for _ in nodes]
    pg = placement_group(bundles, strategy="STRICT_SPREAD", name=f"sbench-agents-{run_id}")
    if not pg.wait(timeout_seconds=timeout_s):
        remove_placement_group(pg)
        raise RunFailed(
            f"agents_per_node: could not place one bundle on each of the {len(nodes)} alive Ray nodes "
            f"(STRICT_SPREAD) within {timeout_s:g}s; the cluster is too small or a node is full or gone "
            f"(nodes: {_describe(nodes)})",
            hint="check `ray status`; every node needs 0.01 free CPU; raise distributed.agent_ready_timeout "
            "if nodes are still joining",
        )
    placement.placement_group = pg
    table = ray.util.placement_group_table(pg)
    by_id = {n["NodeID"]: n for n in nodes}
    share = BUNDLE_CPU / per_node
    for bundle_idx in range(len(nodes)):
        node_id = table["bundles_to_node_id"][bundle_idx]
        strategy = PlacementGroupSchedulingStrategy(
            placement_group=pg, placement_group_bundle_index=bundle_idx
        )
        ip = by_id.get(node_id, {}).get("NodeManagerAddress", "?")
        for slot in _per_node_slots(start, per_node, bundle_idx):
            placement.slots.append(PlacedSlot(slot, node_id, ip, strategy, share))


def _pin_to_listed(
    placement: Placement, wanted: list[str], nodes: list[dict[str, Any]], per_node: int, start: int
) -> None:
    chosen: list[dict[str, Any]] = []
    for host in wanted:
        matches = [n for n in nodes if host.lower() in (n["NodeManagerAddress"], str(n.get("NodeName", "")))]
        if not matches:
            raise RunFailed(
                f"distributed.nodes lists {host!r}, but no alive Ray node has that address "
                f"(nodes: {_describe(nodes)}); the cluster is smaller than the placement asks for",
                hint="start Ray on that host or remove it from `nodes:`",
            )
        chosen.extend(m for m in matches if m not in chosen)
    for node_idx, node in enumerate(chosen):
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        for slot in _per_node_slots(start, per_node, node_idx):
            placement.slots.append(PlacedSlot(slot, node["NodeID"], node["NodeManagerAddress"], strategy, 0))
