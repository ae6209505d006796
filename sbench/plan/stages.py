"""The ordered stage plan of a run, with defaults and per-stage barriers resolved once.

sbench is always stage-driven (sai3 §7.6): a config without `distributed.stages` gets v0.8.60's default
stages (preflight, prepare, execute, cleanup; prepare and cleanup only when configured). Each stage's barrier
comes from its own phase block (sai3 used the prepare block for every stage, §7.11).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sbench.config.models import (
    BarrierSyncConfig,
    BarrierType,
    Completion,
    Config,
    PhaseBarrierConfig,
    StageConfig,
    StageType,
)
from sbench.config.runoptions import RunOptions

DEFAULT_AGENT_BARRIER_TIMEOUT = 120.0
PREFLIGHT_TIMEOUT = 300.0
CLEANUP_TIMEOUT = 3600.0

#: Which barrier_sync phase block applies to each stage type (custom stages use the defaults).
_PHASE_OF: dict[StageType, str | None] = {
    StageType.VALIDATION: "validation",
    StageType.PREPARE: "prepare",
    StageType.EXECUTE: "execute",
    StageType.HYBRID: "execute",
    StageType.CLEANUP: "cleanup",
    StageType.CUSTOM: None,
}


@dataclass(frozen=True, slots=True)
class PhaseBarrier:
    """A fully resolved barrier: every timing key has a value (seconds)."""

    type: BarrierType = BarrierType.ALL_OR_NOTHING
    heartbeat_interval: float = 30.0
    missed_threshold: int = 3
    query_timeout: float = 10.0
    query_retries: int = 2
    agent_barrier_timeout: float = DEFAULT_AGENT_BARRIER_TIMEOUT
    #: Where the policy came from: "stage", "barrier_sync.<phase>" or "default" (for summaries).
    source: str = "default"


@dataclass(frozen=True, slots=True)
class StagePlan:
    """One stage as the fleets execute it: defaults applied, durations in seconds."""

    name: str
    order: int
    type: StageType
    completion: Completion
    barrier: PhaseBarrier
    #: 1-based position in the plan (the NN of NN_<name>_results.tsv).
    index: int = 1
    duration: float | None = None
    max_duration: float | None = None
    expected_objects: int | None = None
    expected_tasks: int | None = None
    command: str | None = None
    args: tuple[str, ...] = field(default_factory=tuple)
    timeout_s: float | None = None
    optional: bool = False

    @property
    def run_for_s(self) -> float | None:
        """How long a workload stage runs (execute: `duration`, hybrid: at most `max_duration`); None for
        every other stage type. The one place this rule is stated."""
        if self.type is StageType.EXECUTE:
            return self.duration
        if self.type is StageType.HYBRID:
            return self.max_duration
        return None

    @property
    def soft_limit_s(self) -> float | None:
        """When a prepare, cleanup or custom stage with `completion: duration_or_tasks` ends cleanly (a
        success) even if its work is not done: `duration`, else `max_duration`. The one place this rule is
        stated."""
        if self.completion == Completion.DURATION_OR_TASKS and self.type in _SOFT_LIMITED:
            return self.duration or self.max_duration
        return None


_SOFT_LIMITED = (StageType.PREPARE, StageType.CLEANUP, StageType.CUSTOM)


def resolve_barrier(
    sync: BarrierSyncConfig | None, stage_type: StageType, own: PhaseBarrierConfig | None = None
) -> PhaseBarrier:
    """Stage block > barrier_sync phase block > barrier_sync defaults > built-in defaults."""
    sync = sync or BarrierSyncConfig()
    phase = _PHASE_OF[stage_type]
    block, source = own, "stage"
    if block is None and phase is not None:
        block, source = getattr(sync, phase), f"barrier_sync.{phase}"
    if block is None:
        return PhaseBarrier(
            heartbeat_interval=sync.default_heartbeat_interval,
            missed_threshold=sync.default_missed_threshold,
            query_timeout=sync.default_query_timeout,
            query_retries=sync.default_query_retries,
        )
    return PhaseBarrier(
        type=block.type,
        heartbeat_interval=block.heartbeat_interval or sync.default_heartbeat_interval,
        missed_threshold=block.missed_threshold or sync.default_missed_threshold,
        query_timeout=block.query_timeout or sync.default_query_timeout,
        query_retries=block.query_retries if block.query_retries is not None else sync.default_query_retries,
        agent_barrier_timeout=block.agent_barrier_timeout or DEFAULT_AGENT_BARRIER_TIMEOUT,
        source=source,
    )


def stage_plan(config: Config, *, force_cleanup: bool = False) -> list[StagePlan]:
    """The stages of `config` in run order (explicit `distributed.stages`, else the defaults).

    `force_cleanup` adds the default cleanup stage even when `prepare.cleanup` is false (`--cleanup-only`).
    """
    sync = config.distributed.barrier_sync if config.distributed else None
    stages = config.distributed.stages if config.distributed and config.distributed.stages else None
    if stages is None:
        stages = _default_stages(config, force_cleanup=force_cleanup)
    plans = []
    for index, stage in enumerate(sorted(stages, key=lambda s: s.order), start=1):
        assert stage.completion is not None  # set by StageConfig's validator
        duration, max_duration = stage.duration, stage.max_duration
        if stage.type is StageType.EXECUTE and duration is None:
            duration = config.duration
        if stage.type is StageType.HYBRID and max_duration is None:
            max_duration = config.duration  # a hybrid stage without a limit runs the config's duration
        plans.append(
            StagePlan(
                name=stage.name,
                order=stage.order,
                type=stage.type,
                completion=stage.completion,
                barrier=resolve_barrier(sync, stage.type, stage.barrier),
                index=index,
                duration=duration,
                max_duration=max_duration,
                expected_objects=stage.expected_objects,
                expected_tasks=stage.expected_tasks,
                command=stage.command,
                args=tuple(stage.args),
                timeout_s=stage.timeout_secs,
                optional=stage.optional,
            )
        )
    return plans


def _default_stages(config: Config, *, force_cleanup: bool = False) -> list[StageConfig]:
    """sai3 v0.8.60's implicit stages (config.rs:1740-1860), keeping its order numbers; cleanup is not
    optional here."""
    stages = [
        StageConfig(name="preflight", order=1, type=StageType.VALIDATION, timeout_secs=PREFLIGHT_TIMEOUT)
    ]
    if config.has_prepare:
        stages.append(StageConfig(name="prepare", order=2, type=StageType.PREPARE))
    stages.append(StageConfig(name="execute", order=3, type=StageType.EXECUTE, duration=config.duration))
    if config.has_prepare and config.prepare is not None and (config.prepare.cleanup or force_cleanup):
        # Not optional (sai3's was): a cleanup that fails, i.e. leaves objects behind unless besteffort, or
        # any failed delete in strict mode, fails the run instead of hiding behind SUCCESS.
        stages.append(
            StageConfig(name="cleanup", order=4, type=StageType.CLEANUP, timeout_secs=CLEANUP_TIMEOUT)
        )
    return stages


def select_stages(
    plans: list[StagePlan],
    *,
    preflight_only: bool = False,
    prepare_only: bool = False,
    cleanup_only: bool = False,
    skip_prepare: bool = False,
    no_cleanup: bool = False,
) -> list[StagePlan]:
    """The stages a run executes once the CLI flags are applied (sai3 `run` flag semantics).

    `--cleanup-only` runs the cleanup stages even when `prepare.cleanup` is false (that is its purpose): the
    caller passes `stage_plan(config, force_cleanup=True)` for it. `--verify` is not a stage selection; the
    driver checks prepared objects instead of running stages.
    """
    if preflight_only:
        return [p for p in plans if p.type is StageType.VALIDATION]
    if cleanup_only:
        return [p for p in plans if p.type is StageType.CLEANUP]
    chosen = plans
    if prepare_only:
        chosen = [p for p in chosen if p.type in (StageType.VALIDATION, StageType.PREPARE)]
    if skip_prepare:
        chosen = [p for p in chosen if p.type is not StageType.PREPARE]
    if no_cleanup:
        chosen = [p for p in chosen if p.type is not StageType.CLEANUP]
    return chosen


def preflight_plan() -> StagePlan:
    """The preflight stage a plan without a validation stage starts with."""
    return StagePlan(
        name="preflight",
        order=0,
        type=StageType.VALIDATION,
        completion=Completion.VALIDATION_PASSED,
        barrier=PhaseBarrier(),
        index=0,
        timeout_s=PREFLIGHT_TIMEOUT,
    )


def flagged_stages(config: Config, options: RunOptions) -> list[StagePlan]:
    """The config's stages with the CLI flags applied (empty for --verify, which runs no stage)."""
    if options.verify:
        return []
    return select_stages(
        stage_plan(config, force_cleanup=options.cleanup_only),
        preflight_only=options.preflight_only,
        prepare_only=options.prepare_only,
        cleanup_only=options.cleanup_only,
        skip_prepare=options.skip_prepare,
        no_cleanup=options.no_cleanup,
    )


def run_stages(config: Config, options: RunOptions) -> list[StagePlan]:
    """The stages a run goes through: `flagged_stages`, and a preflight first when they have none (nothing
    touches storage before the checks)."""
    plans = flagged_stages(config, options)
    if plans and not any(p.type is StageType.VALIDATION for p in plans):
        plans.insert(0, preflight_plan())
    return plans
