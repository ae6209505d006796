"""Which keys of a run's `distributed` block a replay honours, and what it says about the others.

A replay's `--config` may hold the `distributed` block of a workload file (replay.settings), so a user
describes the replay's agents as a run's. The block is validated by the same model and the same agent
rules as `sbench run`'s (config.validation.check_distributed_block); this module adds the replay's view:

- honoured: `agents[]` (`address` picks the node, `id`, `env`, `concurrency_override` = that agent's
  `max_concurrent`), `agents_per_node` with `nodes`, `agent_ready_timeout`, `start_delay` (the common
  epoch is this long after the first batches are sent);
- refused (exit 2): `agents[].target_override` and `agents[].multi_endpoint`: a replay sends every op where
  the log, `--target` or `--remap` say, and ops are split over agents by key hash, so a per-agent target
  would send a key's ops somewhere no rule names (`--remap` does that on purpose);
- without effect (a warning naming the key): the run-only keys (stages, barriers, path selection,
  per-agent prefixes, the metadata cache, stuck detection), and `shared_filesystem: false` (every op of a
  key goes to one agent, so agents never need each other's objects).
"""

from __future__ import annotations

from sbench.config.models import DistributedConfig
from sbench.config.problems import KeyPath, Problem
from sbench.config.yamlsource import YamlSource

#: block keys a replay has no use for -> why
NO_EFFECT: dict[str, str] = {
    "path_selection": "directory-tree path selection is a run's; a replay's paths come from the log",
    "partition_overlap": "directory-tree path selection is a run's; a replay's paths come from the log",
    "path_template": "per-agent prefixes are a run's; a replay's paths come from the log",
    "stuck_intervals": "a replay's agents are timed by the log's schedule, not checked for progress",
    "kv_cache_dir": "a replay keeps no metadata cache",
    "barrier_sync": "a replay is one stage; its agents start at one common epoch",
    "stages": "a replay is one stage (`replay`)",
}
#: per-agent keys a replay refuses -> why
REFUSED: dict[str, str] = {
    "target_override": "a replay sends every op where the log, --target or --remap say (ops are split over "
    "agents by key hash); use --remap to send ops elsewhere",
    "multi_endpoint": "a replay sends every op where the log, --target or --remap say (ops are split over "
    "agents by key hash); use --remap fan-out rules to spread ops over endpoints",
}


def fleet_problems(dist: DistributedConfig, parsed: YamlSource) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of a replay's `distributed` block (see the module docstring)."""
    errors: list[Problem] = []
    notes: list[Problem] = []

    def note(path: KeyPath, why: str) -> None:
        notes.append(Problem(path, parsed.line_of(path), f"has no effect on a replay ({why})"))

    for key in sorted(dist.model_fields_set & NO_EFFECT.keys()):
        note(("distributed", key), NO_EFFECT[key])
    if not dist.shared_filesystem:
        note(("distributed", "shared_filesystem"),
             "every op of a key goes to one agent, so agents never need each other's objects")
    for i, agent in enumerate(dist.agents):
        if "path_template" in agent.model_fields_set:
            note(("distributed", "agents", i, "path_template"), NO_EFFECT["path_template"])
        for key in sorted(agent.model_fields_set & REFUSED.keys()):
            path: KeyPath = ("distributed", "agents", i, key)
            errors.append(Problem(path, parsed.line_of(path), f"not for a replay: {REFUSED[key]}"))
    return errors, notes
