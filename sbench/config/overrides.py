"""sai3bench-ctl's flags for ad-hoc distributed runs, applied to the YAML before it is validated.

`sbench run CONFIG --agents 4 --shared-prepare false --path-template 'host-{id}/'` runs CONFIG as if its
`distributed:` block said so: the flags become keys of the document (`distributed.agents`,
`.agents[].id`, `.path_template`, `.start_delay`, `.shared_filesystem`), the document is then validated as
usual, and nothing after loading knows where a key came from. The one exception is metadata.json, which
records every key a flag set (`cli_overrides`, with the YAML's value when it had one).

The rule for a key both the YAML and a flag set: the flag wins (as sai3's `--path-template`, `--start-delay`
and `--agent-ids` beat the YAML there), and metadata.json says so. Except for the agent list itself:
`--agents` next to a YAML `distributed.agents` list or `agents_per_node` (or `processes`) is refused, because
the YAML's agents may carry their own targets and overrides that a bare list of hosts would silently drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sbench.config.units import parse_duration
from sbench.errors import UsageError

_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
#: `--agents N`: at most this many agents (each is a process of ~250 MB)
MAX_AGENTS = 4096


@dataclass(frozen=True, slots=True)
class ControllerFlags:
    """The raw flag values (None: not given)."""

    agents: str | None = None
    agent_ids: str | None = None
    path_template: str | None = None
    start_delay: str | None = None
    shared_prepare: str | None = None

    def given(self) -> bool:
        return any(v is not None for v in (self.agents, self.agent_ids, self.path_template,
                                            self.start_delay, self.shared_prepare))


def parse_bool(flag: str, value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise UsageError(f"sbench run {flag} {value!r}: give true or false")


def agent_entries(value: str) -> list[dict[str, str]]:
    """`--agents N` (N agents on the driver's node) or `--agents ip1,ip2,...` (one agent per address, on
    the Ray node with that IP or name; an address given twice gets two agents)."""
    text = value.strip()
    if text.isdigit():
        count = int(text)
        if not 1 <= count <= MAX_AGENTS:
            raise UsageError(f"sbench run --agents {value}: give 1 to {MAX_AGENTS} agents")
        return [{"address": "localhost"} for _ in range(count)]
    hosts = [h.strip() for h in text.split(",")]
    if not text or any(not h for h in hosts):
        raise UsageError(
            f"sbench run --agents {value!r}: give a count (--agents 4) or node addresses separated by commas "
            "(--agents 10.0.0.5,10.0.0.6)"
        )
    return [{"address": h} for h in hosts]


def _ids(value: str) -> list[str]:
    ids = [i.strip() for i in value.split(",")]
    if any(not i for i in ids):
        raise UsageError(f"sbench run --agent-ids {value!r}: an id is empty; separate ids with commas")
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise UsageError(f"sbench run --agent-ids: {dupes[0]!r} is given twice; agent ids must be unique")
    return ids


def apply_controller_flags(data: dict[str, Any], flags: ControllerFlags, label: str) -> dict[str, Any]:
    """Write the flags into the parsed YAML `data` (in place); returns what metadata.json records: per
    key path, the flag's value and the YAML's (None when the YAML did not set it). `label` names the file
    in messages."""
    if not flags.given():
        return {}
    record: dict[str, Any] = {}
    dist = data.get("distributed")
    if flags.agents is not None:
        entries = agent_entries(flags.agents)
        _refuse_second_agent_list(data, dist, flags.agents, label)
        if not isinstance(dist, dict):
            dist = data["distributed"] = {"shared_filesystem": True}
            record["distributed.shared_filesystem"] = {"cli": True, "yaml": None, "why": "--agents default"}
        dist["agents"] = entries
        record["distributed.agents"] = {"cli": flags.agents, "yaml": None}
    if not isinstance(dist, dict):
        given = next(f for f, v in _named(flags) if v is not None)
        raise UsageError(
            f"sbench run {given}: {label} has no `distributed` block, so there are no agents to apply it "
            "to; add --agents N (or a `distributed` block)"
        )
    if flags.agent_ids is not None:
        _set_ids(dist, _ids(flags.agent_ids), label, record)
    if flags.path_template is not None:
        _set(dist, "path_template", flags.path_template, record)
        for i, agent in enumerate(_agents(dist)):
            if "path_template" in agent:
                old = agent.pop("path_template")
                why = "--path-template applies to every agent"
                record[f"distributed.agents[{i}].path_template"] = {"cli": None, "yaml": old, "why": why}
    if flags.start_delay is not None:
        try:
            seconds = parse_duration(flags.start_delay)
        except ValueError as exc:
            raise UsageError(f"sbench run --start-delay: {exc}") from None
        _set(dist, "start_delay", seconds, record)
    if flags.shared_prepare is not None:
        _set(dist, "shared_filesystem", parse_bool("--shared-prepare", flags.shared_prepare), record)
    return record


def _named(flags: ControllerFlags) -> list[tuple[str, str | None]]:
    return [("--agents", flags.agents), ("--agent-ids", flags.agent_ids),
            ("--path-template", flags.path_template), ("--start-delay", flags.start_delay),
            ("--shared-prepare", flags.shared_prepare)]


def _agents(dist: dict[str, Any]) -> list[dict[str, Any]]:
    agents = dist.get("agents")
    return [a for a in agents if isinstance(a, dict)] if isinstance(agents, list) else []


def _refuse_second_agent_list(data: dict[str, Any], dist: Any, value: str, label: str) -> None:
    if isinstance(dist, dict):
        if dist.get("agents"):
            raise UsageError(
                f"sbench run --agents {value}: {label} lists its own agents (distributed.agents, "
                f"{len(dist['agents'])} of them); remove one of the two (the YAML's agents may carry targets "
                "and overrides a list of hosts would drop)"
            )
        if dist.get("agents_per_node") is not None:
            raise UsageError(
                f"sbench run --agents {value}: {label} places agents with distributed.agents_per_node; "
                "remove one of the two"
            )
    processes = data.get("processes")
    if processes not in (None, 1, "1"):
        raise UsageError(
            f"sbench run --agents {value}: {label} sets `processes: {processes}` (local agent processes); "
            "remove one of the two"
        )


def _set(dist: dict[str, Any], key: str, value: Any, record: dict[str, Any]) -> None:
    path = f"distributed.{key}"
    # a key --agents put there by default was not the YAML's
    yaml = record[path]["yaml"] if path in record else dist.get(key)
    record[path] = {"cli": value, "yaml": yaml}
    dist[key] = value


def _set_ids(dist: dict[str, Any], ids: list[str], label: str, record: dict[str, Any]) -> None:
    agents = _agents(dist)
    if dist.get("agents_per_node") is not None:
        raise UsageError(
            f"sbench run --agent-ids: {label} places agents with distributed.agents_per_node, whose number "
            "is known only on the cluster; name agents with distributed.agents[].id instead"
        )
    if len(ids) != len(agents):
        raise UsageError(
            f"sbench run --agent-ids: {len(ids)} ids for {len(agents)} agents; give one id per agent"
        )
    old = [a.get("id") for a in agents]
    for agent, ident in zip(agents, ids, strict=True):
        agent["id"] = ident
    record["distributed.agents[].id"] = {"cli": ids, "yaml": old if any(old) else None}
