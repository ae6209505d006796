"""The replay's two YAML files, as pydantic models: `--remap` rules and `--config` backpressure settings.

Both are read by the config loader (sbench.config.loader.load_model_file), so a typo gets the same message
as in a workload file: file, line, key path, did-you-mean, exit 2.

Remap (sai3's remap.rs): `rules:` is an ordered list, first match wins. sai3 tells its four rule kinds apart
by which keys a rule has (an untagged union); here one model holds every key and says which kind it is, so
an unknown key in a rule is named with the rule's keys as the did-you-mean candidates:

- simple      `{match: {host?, bucket?, prefix?}, map_to: {bucket, prefix: ""}}`
- fan-out     `{match, map_to_many: {targets: [...], strategy: round_robin | random | sticky_key}}`
- consolidate `{match_any: [match, ...], map_to}`
- regex       `{regex, replace}` (`$1` captures, as sai3 writes them)

Backpressure (sai3's config.rs, top-level keys, no `replay:` wrapper): `lag_threshold` (strict -> best
effort), `recovery_threshold` (back to strict), `max_flaps_per_minute` (more transitions in a minute: drain
and stop), `drain_timeout`, `max_concurrent`; sbench adds `stall_timeout` (a run's rule: no op succeeded
for that long while ops were due fails the replay). Next to them, the replay's fleet: `distributed:`, the
block of a workload file (the same model, rules and messages as `sbench run`; replay.fleetblock says which
of its keys a replay honours), so a sai3-style config describes a replay's agents as it describes a run's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from sbench.config.loader import load_model_file, load_model_source
from sbench.config.models import STALL_TIMEOUT_S, DistributedConfig, StrictModel
from sbench.config.problems import config_error
from sbench.config.units import Count, Duration
from sbench.config.validation import check_distributed_block
from sbench.replay.fleetblock import fleet_problems


class MatchSpec(StrictModel):
    """What a rule matches: every given part must match (an empty spec matches everything)."""

    host: str | None = Field(None, description="The URI's host (an S3 endpoint's host:port); any if unset.")
    bucket: str | None = Field(None, description="The bucket (container; first path part on file://).")
    prefix: str | None = Field(None, description="The key's directory part must start with this.")


class TargetSpec(StrictModel):
    """Where a matched URI goes: another bucket, and a prefix replacing the key's directory ("" keeps it)."""

    bucket: str = Field(description="The target bucket (container; first path part on file://).")
    prefix: str = Field("", description="Replaces the key's directory part; empty keeps it.")


class Strategy(StrEnum):
    ROUND_ROBIN = "round_robin"
    RANDOM = "random"
    STICKY_KEY = "sticky_key"


class ManyTargets(StrictModel):
    """A fan-out: one of several targets per op, chosen by `strategy`."""

    targets: list[TargetSpec] = Field(min_length=1, description="The targets to spread ops over.")
    strategy: Strategy = Field(Strategy.ROUND_ROBIN, description="round_robin, random or sticky_key.")


class RuleKind(StrEnum):
    SIMPLE = "simple"
    FANOUT = "fanout"
    CONSOLIDATE = "consolidate"
    REGEX = "regex"


class RemapRule(StrictModel):
    """One rule; its kind follows from its keys (see the module docstring)."""

    match: MatchSpec | None = Field(None, description="simple and fan-out: what the rule matches.")
    map_to: TargetSpec | None = Field(None, description="simple and consolidate: the one target.")
    map_to_many: ManyTargets | None = Field(None, description="fan-out: the targets and the strategy.")
    match_any: list[MatchSpec] | None = Field(None, min_length=1, description="consolidate: any of these.")
    regex: str | None = Field(None, description="regex: a pattern over the whole source URI.")
    replace: str | None = Field(None, description="regex: the new URI, `$1`.. for the captures.")

    @field_validator("regex")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"not a valid regular expression ({exc})") from None
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RemapRule:
        given = {k for k in ("match", "map_to", "map_to_many", "match_any", "regex", "replace")
                 if getattr(self, k) is not None}
        for keys in ({"match", "map_to"}, {"match", "map_to_many"}, {"match_any", "map_to"},
                     {"regex", "replace"}):
            if given == keys:
                return self
        raise ValueError(
            f"a rule has the keys {', '.join(sorted(given)) or '(none)'}; it must be one of: "
            "{match, map_to} (simple), {match, map_to_many} (fan-out), {match_any, map_to} (consolidate), "
            "{regex, replace} (regex)"
        )

    @property
    def kind(self) -> RuleKind:
        if self.regex is not None:
            return RuleKind.REGEX
        if self.match_any is not None:
            return RuleKind.CONSOLIDATE
        return RuleKind.FANOUT if self.map_to_many is not None else RuleKind.SIMPLE


class RemapFile(StrictModel):
    """A `--remap` file."""

    rules: list[RemapRule] = Field(min_length=1, description="Ordered rules; the first match wins.")


class Backpressure(StrictModel):
    """A `--config` file of the replay (sai3's defaults)."""

    lag_threshold: Duration = Field(5.0, gt=0, description="Lag that switches to best effort (drops timing).")
    recovery_threshold: Duration = Field(1.0, ge=0, description="Lag under which timing is kept again.")
    max_flaps_per_minute: Count = Field(3, ge=0, description="More transitions in a minute: drain and stop.")
    drain_timeout: Duration = Field(10.0, ge=0, description="How long a drain waits for ops in flight.")
    max_concurrent: Count = Field(1000, ge=1, le=100_000, description="Ops in flight at most.")
    stall_timeout: Duration = Field(
        STALL_TIMEOUT_S,
        ge=0,
        description="sbench: ops are due or in flight and none succeeded for this long: the replay stops and "
        "fails as stalled (a store that stopped answering, or answers only errors); a gap in the log, with "
        "nothing due, is not a stall; 0 turns it off. As a run's `stall_timeout`.",
    )
    distributed: DistributedConfig | None = Field(
        None, description="sbench: replay over Ray agents placed as a run's (`sbench run`'s block)."
    )

    @model_validator(mode="before")
    @classmethod
    def _namespace_moot(cls, data: Any) -> Any:
        """A run's block must say whether agents share a namespace; a replay sends every op of one key to
        one agent, so no agent needs another's objects and the key may be left out (true)."""
        if isinstance(data, dict) and isinstance(data.get("distributed"), dict):
            data = {**data, "distributed": {"shared_filesystem": True, **data["distributed"]}}
        return data

    @model_validator(mode="after")
    def _hysteresis(self) -> Backpressure:
        if self.recovery_threshold >= self.lag_threshold:
            raise ValueError(
                f"recovery_threshold ({self.recovery_threshold:g} s) must be below lag_threshold "
                f"({self.lag_threshold:g} s), or the mode would flip back at once"
            )
        return self


def load_remap(path: Path) -> RemapFile:
    return load_model_file(path, RemapFile, "remap file")


@dataclass
class ReplayConfig:
    """A replay's `--config`, checked: the settings, warnings for keys without effect, and where its
    `distributed` block is (for messages)."""

    settings: Backpressure
    warnings: list[str] = field(default_factory=list)
    #: `file:line` of the `distributed` key ("" without one)
    distributed_at: str = ""


def load_replay_config(path: Path | None) -> ReplayConfig:
    """Validate the file (file, line, key path, did-you-mean; exit 2), then its `distributed` block by
    `sbench run`'s rules and the replay's own (replay.fleetblock)."""
    if path is None:
        return ReplayConfig(Backpressure())
    settings, parsed = load_model_source(path, Backpressure, "replay config")
    dist = settings.distributed
    if dist is None:
        return ReplayConfig(settings)
    problems, notes = check_distributed_block(dist, parsed)
    more, more_notes = fleet_problems(dist, parsed)
    if problems or more:
        raise config_error([*problems, *more], path, what="replay config")
    line = parsed.line_of(("distributed",))
    ordered = sorted((*notes, *more_notes), key=lambda n: n.line or 0)
    return ReplayConfig(settings, [n.render(path) for n in ordered],
                        f"{path}:{line}" if line else str(path))


def load_backpressure(path: Path | None) -> Backpressure:
    return load_replay_config(path).settings
