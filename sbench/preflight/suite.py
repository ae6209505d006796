"""One agent's preflight: walk the roots of its plan and run the filesystem or object-storage checks.

Runs on the agent's own host (in-process for a single-agent run, in a Ray task per agent otherwise), because
mounts, free space, quotas, DNS and credentials are all per host.
"""

from __future__ import annotations

import os

from sbench.config.confinement import symlink_problems
from sbench.config.models import Config
from sbench.config.problems import format_path
from sbench.control import RunControl
from sbench.errors import ConfigError, RunFailed
from sbench.plan.agents import AgentIdentity
from sbench.plan.objectspaces import storage_options
from sbench.preflight.distributed import controller_check_names, controller_checks
from sbench.preflight.filesystem import FsTarget, check_filesystem, check_identity, protected_reason
from sbench.preflight.need import human_bytes
from sbench.preflight.null_target import PLANNED as NULL_PLANNED
from sbench.preflight.null_target import check_null_root
from sbench.preflight.object_storage import check_object_root, check_read_target
from sbench.preflight.plan import RootPlan, agent_config, agent_plan
from sbench.preflight.result import CheckList, ErrorType, Level, PreflightResult
from sbench.preflight.retry import Tries
from sbench.storage.registry import open_backend
from sbench.storage.uri import NULL_SCHEME, parse_uri


def run_preflight(
    config: Config,
    identity: AgentIdentity | None = None,
    control: RunControl | None = None,
    checks: CheckList | None = None,
) -> PreflightResult:
    """Every check of one agent, before any benchmark I/O; `result.passed` is False when the run must stop.

    A single-agent run (no `distributed` block) has no separate controller, so its config checks
    (controller_checks) are included here; distributed runs call controller_checks once on the driver.
    Storage calls are retried on transient errors; the waits between tries end at once when `control` stops.
    `checks`: the caller's list, so the checks done before one that never returns are not lost.
    """
    identity = identity or AgentIdentity()
    tries = Tries(control.wait if control is not None else None)
    agent, _ = agent_config(config, identity)
    if checks is None:
        checks = CheckList(agent_id=identity.agent_id)
    roots = agent_plan(config, identity)
    if any(root.is_local for root in roots):
        check_identity(checks)
    for root in roots:
        checks.endpoint = root.uri
        options = storage_options(config, root.uri, agent=agent)
        if root.is_local:
            _check_local_root(root, checks)
        elif root.scheme == NULL_SCHEME:
            check_null_root(root, options, checks)
        else:
            check_object_root(root, options, checks, tries)
    _check_confined(config, checks)
    result = checks.result()
    if config.distributed is None:
        result = result.merge(controller_checks(config))
    return result


def _check_confined(config: Config, checks: CheckList) -> None:
    """Every directory the run addresses under a file:// or direct:// root resolves inside it, on this host
    (symlinks differ between hosts, so each agent looks at its own)."""
    for path, message in symlink_problems(config):
        checks.endpoint = ""
        checks.error(
            "fs.confined",
            f"{format_path(path)}: {message}",
            ErrorType.CONFIGURATION,
            f"fix `{format_path(path)}` or the symlink it goes through",
            details={"key": format_path(path)},
        )


def _errors(checks: CheckList) -> int:
    return sum(1 for c in checks.checks if c.level is Level.ERROR)


def _check_local_root(root: RootPlan, checks: CheckList) -> None:
    parsed = parse_uri(root.uri)
    path = parsed.prefix.rstrip("/") or "/"
    if not root.must_exist and not os.path.isdir(path):
        parent = path
        while not os.path.isdir(parent) and parent != "/":
            parent = os.path.dirname(parent)
        if protected_reason(parent) is not None:
            checks.error(
                "fs.stat",
                f"directory {path} does not exist, and the nearest existing parent is the "
                f"system directory {parent}",
                ErrorType.CONFIGURATION,
                f"create it (mkdir -p {path}) or fix `{root.source}`",
                details={"path": path},
            )
            return
        checks.info(
            "fs.created_by_run",
            f"{path} does not exist yet; the run creates it, so {parent} is checked instead",
            details={"path": path, "checked": parent},
        )
        path = parent
    before = _errors(checks)
    target = FsTarget(
        uri=root.uri,
        path=path,
        source=root.source,
        direct=parsed.scheme == "direct",
        write=root.write,
        need=root.need,
    )
    check_filesystem(target, checks)
    if _errors(checks) > before or not root.reads or path != (parsed.prefix.rstrip("/") or "/"):
        return
    try:
        backend = open_backend(parsed)
    except (ConfigError, RunFailed) as exc:
        checks.error("fs.open", exc.message, ErrorType.CONFIGURATION, exc.hint or f"fix `{root.source}`")
        return
    try:
        for read in root.reads:
            check_read_target("fs", backend, read, checks)
    finally:
        backend.close()


def planned_checks(config: Config) -> list[str]:
    """One line per storage root (and per group of agents seeing it), for `--dry-run`: what preflight does."""
    lines: dict[str, list[str]] = {}
    for identity in agent_identities(config):
        for root in agent_plan(config, identity):
            lines.setdefault(_describe(root), []).append(identity.agent_id)
    out = []
    many = len(list(agent_identities(config))) > 1
    for text, agents in lines.items():
        # No square brackets: callers print these lines through rich, which reads [..] as markup.
        out.append(f"{', '.join(agents)}: {text}" if many else text)
    out.append("controller: " + ", ".join(controller_check_names(config)))
    return out


def agent_identities(config: Config) -> list[AgentIdentity]:
    dist = config.distributed
    if dist is None or not dist.agents:
        return [AgentIdentity()]
    n = len(dist.agents)
    return [
        AgentIdentity(agent_id=a.id or f"agent-{i + 1}", index=i, count=n) for i, a in enumerate(dist.agents)
    ]


def _describe(root: RootPlan) -> str:
    parts: list[str] = []
    if root.is_local:
        parts.append("identity, protected path, stat, mount and fs type, ownership, list, read")
        if root.scheme == "direct":
            parts.append("O_DIRECT probe")
        if root.write:
            need = root.need
            sized = (
                f"free space and inodes for {human_bytes(need.nbytes)} in {need.files:,} files"
                if need.parts
                else "free space (no sized writes)"
            )
            parts.append(f"write/mkdir/delete probes, {sized}, user/group/project quotas")
    elif root.scheme == NULL_SCHEME:
        parts.append(NULL_PLANNED)
    else:
        word = "container" if root.scheme == "az" else "bucket"
        parts.append(f"credential source, endpoint DNS/TCP/TLS, {word} exists, LIST (max 1)")
        if root.write:
            parts.append("PUT/GET/DELETE probe object")
    parts.extend(
        f"STAT of {r.op} target {r.source} ({r.pattern or '/'})"
        + (", skipped: prepared by this run" if r.prepared else "")
        for r in root.reads
    )
    if root.need.unbounded:
        parts.append("note: PUT volume unbounded by config")
    exist = "" if root.must_exist else ", created by the run"
    return f"{root.uri} ({root.source}{exist}): " + "; ".join(parts)
