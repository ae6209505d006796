"""`sbench ping`'s Ray half: reach every node of the cluster, time the round trip, measure its clock.

On each alive node a tiny actor (no CPU reserved, pinned to the node) answers `time.time_ns()`; the offset of
the node's clock against the driver's comes from oplog.clock's NTP-style probes (the shortest round trip
wins; its half is the uncertainty), the same measurement the op-log merge uses to align agents' logs. Dead
nodes Ray still lists are reported, not probed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import ray
from ray.exceptions import GetTimeoutError, RayError
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sbench.oplog.clock import measure_offset

#: how long a node may take to start the probe actor and answer
NODE_TIMEOUT_S = 60.0


@ray.remote(num_cpus=0)
class _Clock:
    """Answers the node's wall clock."""

    def now_ns(self) -> int:
        return time.time_ns()


@dataclass(frozen=True, slots=True)
class NodePing:
    """One node's answer; `error` set when it did not answer (or is dead)."""

    node_ip: str
    node_id: str
    alive: bool
    rtts_ms: tuple[float, ...] = ()
    offset_ms: float | None = None
    uncertainty_ms: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.alive and not self.error

    def describe(self) -> str:
        if not self.alive:
            return "dead (listed by Ray, not probed)"
        if self.error:
            return f"FAILED: {self.error}"
        best = min(self.rtts_ms)
        return (
            f"round trip min {best:.2f} ms ({len(self.rtts_ms)} probes), clock offset "
            f"{self.offset_ms:+.2f} ms ± {self.uncertainty_ms:.2f} ms"
        )


def ping_nodes(probes: int, timeout_s: float = NODE_TIMEOUT_S) -> list[NodePing]:
    """Every node Ray lists, alive ones probed (see the module docstring)."""
    out = []
    for node in sorted(ray.nodes(), key=lambda n: n["NodeManagerAddress"]):
        ip, node_id = node["NodeManagerAddress"], node["NodeID"]
        if not node.get("Alive"):
            out.append(NodePing(ip, node_id, alive=False))
            continue
        out.append(_ping_node(ip, node_id, probes, timeout_s))
    return out


def _ping_node(ip: str, node_id: str, probes: int, timeout_s: float) -> NodePing:
    strategy = NodeAffinitySchedulingStrategy(node_id, soft=False)
    actor = _Clock.options(scheduling_strategy=strategy).remote()  # type: ignore[attr-defined]
    rtts: list[float] = []

    def remote_now_ns() -> int:
        start = time.perf_counter()
        value = ray.get(actor.now_ns.remote(), timeout=timeout_s)
        rtts.append((time.perf_counter() - start) * 1000)
        return int(value)

    try:
        ray.get(actor.now_ns.remote(), timeout=timeout_s)  # the actor's start is not a round trip
        offset_ns, uncertainty_ns = measure_offset(remote_now_ns, probes)
    except GetTimeoutError:
        return NodePing(ip, node_id, True, error=f"no answer within {timeout_s:g} s")
    except RayError as exc:
        return NodePing(ip, node_id, True, error=f"{type(exc).__name__}: {exc}".splitlines()[0])
    finally:
        ray.kill(actor)
    return NodePing(ip, node_id, True, tuple(rtts), offset_ns / 1e6, uncertainty_ns / 1e6)
