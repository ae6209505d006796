"""sai3-bench keys that sbench accepts but does not act on: each gets a one-line warning, never an error.

sai3 configs in the wild carry these keys; refusing them would break compatibility, and accepting them
silently would let users believe they changed something. Patterns use `*` for any list index.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sbench.config.problems import KeyPath


@dataclass(frozen=True, slots=True)
class InertKey:
    pattern: tuple[str, ...]
    why: str


INERT_KEYS: tuple[InertKey, ...] = (
    InertKey(("version",), "not a sai3-bench key either; it was always ignored"),
    InertKey(
        ("processing_mode",),
        "`processes` always runs separate processes in sbench (Python threads would share one GIL)",
    ),
    InertKey(
        ("cache_checkpoint_interval_secs",),
        "the metadata cache lives in a Ray actor, not in tar.zst checkpoints",
    ),
    InertKey(("live_stats_tracker",), "runtime-only field in sai3"),
    InertKey(("distributed", "ssh"), "Ray places the agents; no SSH deployment"),
    InertKey(("distributed", "deployment"), "Ray places the agents; no container deployment"),
    InertKey(("distributed", "grpc_keepalive_interval"), "agents talk through Ray, not gRPC streams"),
    InertKey(("distributed", "grpc_keepalive_timeout"), "agents talk through Ray, not gRPC streams"),
    InertKey(
        ("distributed", "agents", "*", "listen_port"), "agents are Ray actors; there is no port to listen on"
    ),
    InertKey(("distributed", "agents", "*", "volumes"), "Ray places the agents; no container volumes"),
    InertKey(
        ("distributed", "agents", "*", "kv_cache_dir"),
        "the metadata cache is one shared actor; use distributed.kv_cache_dir",
    ),
    InertKey(("distributed", "tree_creation_mode"), "sbench shards tree creation over agents itself"),
)


def strip_inert(data: Any) -> list[tuple[KeyPath, str]]:
    """Remove the inert keys from `data` in place (no model has them); return (path, reason) of each."""
    found: list[tuple[KeyPath, str]] = []
    for inert in INERT_KEYS:
        for parent in _parents(data, inert.pattern[:-1], ()):
            node, parent_path = parent
            key = inert.pattern[-1]
            if isinstance(node, dict) and key in node:
                found.append(((*parent_path, key), inert.why))
                del node[key]
    return found


def _parents(node: Any, pattern: tuple[str, ...], path: KeyPath) -> list[tuple[Any, KeyPath]]:
    if not pattern:
        return [(node, path)]
    head, rest = pattern[0], pattern[1:]
    if head == "*":
        if not isinstance(node, list):
            return []
        return [hit for i, item in enumerate(node) for hit in _parents(item, rest, (*path, i))]
    if isinstance(node, dict) and head in node:
        return _parents(node[head], rest, (*path, head))
    return []
