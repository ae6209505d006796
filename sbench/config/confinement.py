"""Config-level half of "no key leaves its root": which YAML keys would lead a run out of its storage roots.

The primitive rules (no `..` segment, URI containment, real-path containment) live in
sbench.storage.confine; this module applies them to a whole config and names the YAML key of each problem.
Two passes, because they need different places to run:

- `lexical_problems`: `..` in relative op paths and in `path_template` (with every agent id filled in),
  unsafe agent ids, and full-URI op paths or prepare `base_uri`s that do not lie under a root (the target, a
  multi-endpoint endpoint, or an agent's `target_override` / endpoints). Pure string work: config validation
  runs it (exit 2 with the key and line).
- `symlink_problems`: for file:// and direct:// roots that exist, the real path of every directory the run
  addresses (op directories, PUT directories, prepare base URIs) must lie under the root's real path. It
  reads the local file system, so it runs where the storage is: in config validation for a run on this host
  (exit 2), and in each agent's preflight (the `fs.confined` check) for runs on Ray.

URIs with a `..` segment are refused by parse_uri itself (validation reports them with the key).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

from sbench.config.models import Config, MkdirOp, PutOp, RmdirOp
from sbench.config.problems import KeyPath, format_path
from sbench.errors import ConfigError
from sbench.layout.paths import Pattern, put_directory
from sbench.storage.confine import DOTDOT_WHY, dotdot_problem, has_dotdot, real_inside
from sbench.storage.uri import LOCAL_SCHEMES, glob_head, parse_uri, uri_under

Found = tuple[KeyPath, str]


def roots_of(config: Config) -> list[tuple[KeyPath, str]]:
    """Every storage root a config declares, with its key: target, endpoints, agents' overrides."""
    roots: list[tuple[KeyPath, str]] = []
    if config.target:
        roots.append((("target",), config.target))
    if config.multi_endpoint is not None:
        endpoints = config.multi_endpoint.endpoints
        roots += [(("multi_endpoint", "endpoints", i), ep) for i, ep in enumerate(endpoints)]
    for i, agent in enumerate(config.distributed.agents if config.distributed else []):
        if agent.target_override:
            roots.append((("distributed", "agents", i, "target_override"), agent.target_override))
        if agent.multi_endpoint is not None:
            roots += [
                (("distributed", "agents", i, "multi_endpoint", "endpoints", j), ep)
                for j, ep in enumerate(agent.multi_endpoint.endpoints)
            ]
    return [(path, uri) for path, uri in roots if _parses(uri)]


def _parses(uri: str) -> bool:
    try:
        parse_uri(uri)
    except ConfigError:
        return False  # validation's URI check reports it
    return True


def lexical_problems(config: Config) -> list[Found]:
    """`..` segments, unsafe agent ids, and full URIs outside every root (see the module docstring)."""
    found: list[Found] = []
    for i, op in enumerate(config.workload):
        if "://" not in op.path and (why := dotdot_problem(op.path)):
            found.append((("workload", i, "path"), why))
    roots = roots_of(config)
    names = ", ".join(uri for _, uri in roots)
    for path, uri in _absolute_paths(config):
        if roots and _parses(uri.split("*", 1)[0]) and not any(uri_under(root, uri) for _, root in roots):
            found.append((path, f"{uri} is outside the run's storage root ({names}); a full URI must lie "
                          "under `target` or a multi_endpoint endpoint, so write it relative to the target"))
    found += _agent_problems(config)
    return found


def _absolute_paths(config: Config) -> Iterator[tuple[KeyPath, str]]:
    for i, op in enumerate(config.workload):
        if "://" in op.path and not has_dotdot(op.path):
            yield ("workload", i, "path"), op.path
    for i, spec in enumerate(config.prepare.ensure_objects if config.prepare else []):
        if spec.base_uri and not has_dotdot(spec.base_uri):
            yield ("prepare", "ensure_objects", i, "base_uri"), spec.base_uri


def _agent_problems(config: Config) -> list[Found]:
    dist = config.distributed
    if dist is None:
        return []
    found: list[Found] = []
    ids = []
    for i, agent in enumerate(dist.agents):
        ident = agent.id or f"agent-{i + 1}"
        ids.append((i, ident))
        if agent.id is not None and ("/" in agent.id or "\\" in agent.id or agent.id in (".", "..")):
            found.append((("distributed", "agents", i, "id"), f"{agent.id!r} cannot name a folder (it names "
                          "agents/<id>/ in the results); use letters, digits, '-' and '_'"))
    templates: list[tuple[KeyPath, str]] = [(("distributed", "path_template"), dist.path_template)]
    templates += [
        (("distributed", "agents", i, "path_template"), a.path_template)
        for i, a in enumerate(dist.agents)
        if a.path_template
    ]
    for path, template in templates:
        for index, ident in ids or [(0, "agent-1")]:
            prefix = template.replace("{agent_id}", ident).replace("{id}", str(index + 1))
            if has_dotdot(prefix):
                found.append((path, f"{template!r} becomes {prefix!r} for agent {ident!r}, which has a `..` "
                              f"segment ({DOTDOT_WHY}); write the template without it"))
                break
    return found


def symlink_problems(config: Config) -> list[Found]:
    """Directories of file:// and direct:// roots that resolve (through symlinks) outside the root's real
    path. Roots that do not exist yet are skipped: the run creates them, and the file driver's RootGuard
    checks every directory it uses."""
    found: list[Found] = []
    roots = [(path, uri) for path, uri in roots_of(config) if parse_uri(uri).scheme in LOCAL_SCHEMES]
    for root_path, root in roots:
        base = parse_uri(root).prefix.rstrip("/") or "/"
        if not os.path.isdir(base):
            continue
        root_real = os.path.realpath(base)
        for key_path, rel_dir in _directories(config, root):
            inside, real = real_inside(root_real, os.path.join(base, rel_dir))
            if not inside:
                where, owner = os.path.join(base, rel_dir), format_path(root_path)
                found.append((key_path, f"{where} resolves to {real} (through a symlink), outside the real "
                              f"path {root_real} of `{owner}`; sbench never follows a path out of its root: "
                              "point it at a directory inside, or remove the symlink"))
    return found


def _directories(config: Config, root: str) -> Iterator[tuple[KeyPath, str]]:
    """(key, directory relative to `root`) of every op and prepare pool that addresses `root`."""
    for i, op in enumerate(config.workload):
        if isinstance(op, MkdirOp | RmdirOp):
            continue  # the tree picks their directories under ensure_objects[0].base_uri (checked below)
        path = op.path
        if "://" in path:
            if has_dotdot(path) or not uri_under(root, path):
                continue
            path = _relative_to(root, path)
        elif has_dotdot(path):
            continue
        try:
            directory = put_directory(path) if isinstance(op, PutOp) else Pattern.parse(path).directory
        except ConfigError:
            continue  # a bad pattern is reported where the pattern is resolved
        yield ("workload", i, "path"), directory
    for i, spec in enumerate(config.prepare.ensure_objects if config.prepare else []):
        base = spec.base_uri
        if base and not has_dotdot(base) and uri_under(root, base):
            yield ("prepare", "ensure_objects", i, "base_uri"), _relative_to(root, base).strip("/")


def _relative_to(root: str, uri: str) -> str:
    """The path of a local `uri` (glob tail kept) relative to the local `root` it lies under."""
    head = glob_head(uri)
    root_path = parse_uri(root).prefix.rstrip("/")
    return parse_uri(head).prefix[len(root_path):].lstrip("/") + uri[len(head):]
