"""Object names sbench writes, and their parsers, in one place.

Prepare, gap fill, `--cleanup-only` and `--verify` all derive names from these functions, so they can never
disagree (sai3's cleanup-only rebuilt different names than prepare wrote, reference §7.13). Workload PUT keys
carry the run id, the agent id and a per-worker sequence number: cleanup finds exactly this run's objects by
listing the PUT prefix and matching the run id, without ever keeping a list of written keys.
"""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass

PREPARED_POOL = "prepared"
DELETABLE_POOL = "deletable"

_PREPARED_RE = re.compile(r"(prepared|deletable)-(\d{8,})\.dat\Z")
_TREE_FILE_RE = re.compile(r"file_(\d{8,})\.dat\Z")
_PUT_RE = re.compile(r"put_([A-Za-z0-9-]+)_([A-Za-z0-9-]+)_(\d+)_(\d+)\.dat\Z")
_UNSAFE = re.compile(r"[^A-Za-z0-9-]+")


def shard_dir(index: int, shards: int | None) -> str:
    """The `key_prefix_shards` directory of an index (`{idx % N:02x}`, sai3 HEAD v0.8.97), "" unsharded."""
    return f"{index % shards:02x}" if shards else ""


def prepared_key(pool: str, index: int, shards: int | None = None) -> str:
    """`prepared-00000042.dat` / `deletable-00000042.dat` (sai3's flat prepare names); with
    `prepare.key_prefix_shards: N` under a shard directory, `0a/prepared-00000042.dat` (N = 16), which
    spreads an S3 bucket's load over N key prefixes. Prepare, workload pools, cleanup and verify all name
    objects here."""
    name = f"{pool}-{index:08d}.dat"
    return f"{shard_dir(index, shards)}/{name}" if shards else name


def parse_prepared_key(key: str) -> tuple[str, int] | None:
    """(pool, index) of a flat prepare name, looking at the last path component only; None otherwise."""
    m = _PREPARED_RE.match(key.rsplit("/", 1)[-1])
    return (m.group(1), int(m.group(2))) if m else None


def parse_prepared_path(key: str, shards: int | None = None) -> tuple[str, int] | None:
    """(pool, index) when `key` (relative to the pool's directory) is exactly the name prepare gives that
    index: directly in the directory, or with shards in the index's own shard directory; None otherwise."""
    parsed = parse_prepared_key(key)
    if parsed is None or key.strip("/") != prepared_key(parsed[0], parsed[1], shards):
        return None
    return parsed


def tree_file_name(index: int) -> str:
    """`file_00000042.dat`, the file name of tree index 42."""
    return f"file_{index:08d}.dat"


def parse_tree_file(key: str) -> int | None:
    """Tree file index from a key's last component; None when the name is not a tree file."""
    m = _TREE_FILE_RE.match(key.rsplit("/", 1)[-1])
    return int(m.group(1)) if m else None


def safe_token(text: str) -> str:
    """A run or agent id reduced to `[A-Za-z0-9-]`, so `_` stays an unambiguous separator in PUT keys."""
    return _UNSAFE.sub("-", text).strip("-") or "x"


def new_run_id() -> str:
    """Short, sortable, unique enough to tell runs apart under one prefix: `20250101-120000-3f9a`."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


@dataclass(frozen=True, slots=True)
class PutKey:
    run_id: str
    agent_id: str
    worker: int
    seq: int


def put_key_prefix(run_id: str, agent_id: str | None = None) -> str:
    """Basename prefix shared by every PUT key of a run (and of one agent when given)."""
    prefix = f"put_{safe_token(run_id)}_"
    return prefix if agent_id is None else prefix + safe_token(agent_id) + "_"


def put_key(run_id: str, agent_id: str, worker: int, seq: int) -> str:
    """Basename of a workload PUT object: `put_<run>_<agent>_<worker>_<seq>.dat`."""
    return f"{put_key_prefix(run_id, agent_id)}{worker}_{seq}.dat"


def parse_put_key(key: str) -> PutKey | None:
    """The parts of a workload PUT key (last path component); None for anything else."""
    m = _PUT_RE.match(key.rsplit("/", 1)[-1])
    if not m:
        return None
    return PutKey(m.group(1), m.group(2), int(m.group(3)), int(m.group(4)))


def is_run_put_key(key: str, run_id: str) -> bool:
    """True only for PUT keys written by this run (any agent); the test cleanup uses to spare foreign keys."""
    parsed = parse_put_key(key)
    return parsed is not None and parsed.run_id == safe_token(run_id)
