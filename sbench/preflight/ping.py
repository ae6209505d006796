"""`sbench ping`'s storage half: is every storage root of a config reachable, and how long is a round trip.

Each root of every agent's plan (preflight.plan) is probed read-only: an object store through the preflight's
own checks (credentials by name, DNS, TCP/TLS connect, one LIST of at most one key; never the write probe),
then `probes` more one-key LISTs timed for the round trip; a local path (file://, direct://) by `stat` of the
root, or of its nearest existing parent when the run creates the root. null:// has nothing to reach.
"""

from __future__ import annotations

import itertools
import os
import statistics
import time
from dataclasses import dataclass, replace

from sbench.config.models import Config
from sbench.errors import ConfigError, RunFailed
from sbench.plan.objectspaces import storage_options
from sbench.preflight.object_storage import check_object_root
from sbench.preflight.plan import RootPlan, agent_config, agent_plan
from sbench.preflight.result import CheckList
from sbench.preflight.retry import Tries
from sbench.preflight.suite import agent_identities
from sbench.storage.base import StorageError
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend
from sbench.storage.uri import NULL_SCHEME, parse_uri

#: A ping is a quick look: one try per step, so a dead endpoint answers in seconds.
PING_TRIES = 1


@dataclass(frozen=True, slots=True)
class StoragePing:
    """One root's answer: round trips in ms (empty when unreachable) and the error that stopped it."""

    uri: str
    source: str
    kind: str  # "list" | "stat" | "none"
    rtts_ms: tuple[float, ...] = ()
    connect_ms: float | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return not self.error

    def describe(self) -> str:
        if self.error:
            return f"FAILED: {self.error}"
        if self.kind == "none":
            return "in memory (null://), nothing to reach"
        best, median = min(self.rtts_ms), statistics.median(self.rtts_ms)
        connect = f"connect {self.connect_ms:.2f} ms, " if self.connect_ms is not None else ""
        n = len(self.rtts_ms)
        return f"{connect}{self.kind} round trip min {best:.3f} ms, median {median:.3f} ms ({n} probes)"


def storage_roots(config: Config) -> list[tuple[RootPlan, BackendOptions]]:
    """Every root any agent of the config touches, once, with the options its agent opens it with."""
    seen: dict[str, tuple[RootPlan, BackendOptions]] = {}
    for identity in agent_identities(config):
        agent, _ = agent_config(config, identity)
        for root in agent_plan(config, identity):
            if root.uri not in seen:
                seen[root.uri] = (root, storage_options(config, root.uri, agent=agent))
    return list(seen.values())


def ping_root(root: RootPlan, options: BackendOptions, probes: int) -> StoragePing:
    """Probe one root read-only (see the module docstring)."""
    if root.scheme == NULL_SCHEME:
        return StoragePing(root.uri, root.source, "none")
    if root.is_local:
        return _ping_local(root, probes)
    checks = CheckList(endpoint=root.uri)
    check_object_root(replace(root, write=False, reads=()), options, checks, Tries(attempts=PING_TRIES))
    errors = checks.result().errors
    if errors:
        first = errors[0]
        fix = f" ({first.suggestion})" if first.suggestion else ""
        return StoragePing(root.uri, root.source, "list", error=f"{first.message}{fix}")
    connect = next((c.details.get("connect_ms") for c in checks.checks if "connect_ms" in c.details), None)
    try:
        backend = open_backend(parse_uri(root.uri, https=options.https), options)
    except (ConfigError, RunFailed) as exc:
        return StoragePing(root.uri, root.source, "list", error=exc.message)
    try:
        rtts = []
        for _ in range(max(1, probes)):
            start = time.perf_counter()
            next(itertools.islice(backend.list("", recursive=False), 1), None)
            rtts.append((time.perf_counter() - start) * 1000)
    except StorageError as exc:
        return StoragePing(root.uri, root.source, "list", error=str(exc))
    finally:
        backend.close()
    return StoragePing(root.uri, root.source, "list", tuple(rtts), connect)


def _ping_local(root: RootPlan, probes: int) -> StoragePing:
    path = parse_uri(root.uri).prefix.rstrip("/") or "/"
    probe = path
    if not root.must_exist:  # the run creates it: its nearest existing parent must be there
        while not os.path.isdir(probe) and probe != "/":
            probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return StoragePing(root.uri, root.source, "stat", error=f"directory {path} does not exist")
    rtts = []
    for _ in range(max(1, probes)):
        start = time.perf_counter()
        os.stat(probe)
        rtts.append((time.perf_counter() - start) * 1000)
    return StoragePing(root.uri, root.source, "stat", tuple(rtts))
