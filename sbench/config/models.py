"""Pydantic v2 models of the sai3-bench v0.8.60 YAML, plus the sbench additions.

Attribute names equal the YAML keys so users, docs and code speak the same words. Every model forbids unknown
keys (sai3 silently ignored them, which hid typos for years); the loader turns those errors into messages with
the key path, the YAML line and a did-you-mean. Units are normalised here: durations are float seconds, sizes
int bytes, counts int. Cross-field rules that need the whole document live in `validation.py`.

Every count, size and duration has a sanity bound, stated once below ("Sanity limits") with its reason: an
absurd value (`concurrency: 1000000000`, `object_size: 1000000TiB`, `perf_log.interval: 1ns`) is a config
error naming the key, the value and the bound, never a MemoryError or a run that quietly does nothing.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Annotated, Any, Literal

import psutil
from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from sbench.config.units import Count as _Count
from sbench.config.units import Duration as _Duration
from sbench.config.units import Limit, format_size, parse_size
from sbench.config.units import Size as _Size
from sbench.storage.options import Driver, PageCacheMode

__all__ = [
    "AgentConfig",
    "BackendConfig",
    "BarrierSyncConfig",
    "BarrierType",
    "CleanupMode",
    "Completion",
    "Config",
    "DeleteOp",
    "DirectoryStructure",
    "DistributedConfig",
    "EnsureSpec",
    "ErrorHandlingConfig",
    "FillPattern",
    "FixedSize",
    "GetOp",
    "IoRateConfig",
    "ListOp",
    "LognormalSize",
    "MkdirOp",
    "MultiEndpointConfig",
    "OpSpec",
    "PerfLogConfig",
    "PhaseBarrierConfig",
    "PrepareConfig",
    "PutOp",
    "RangeEngineConfig",
    "RmdirOp",
    "SizeSpec",
    "StageConfig",
    "StageType",
    "StatOp",
    "UniformSize",
]

DEFAULT_OBJECT_SIZE = 1024 * 1024  # sai3 default for ensure_objects min_size/max_size and PUT without a size


class StrictModel(BaseModel):
    """Base of every YAML model: unknown keys are errors, and defaults are validated like user input."""

    model_config = ConfigDict(extra="forbid", validate_default=True, populate_by_name=True, frozen=False)


# ----------------------------------------------------------------------------------------------------
# Environment expansion in URIs

_ENV_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: Any) -> Any:
    """Expand `${VAR}` and `${VAR:-default}` so one workload file works on every host and in temp dirs."""
    if not isinstance(value, str) or "${" not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        found = os.environ.get(name)
        if found:
            return found
        if default is not None:
            return default
        raise ValueError(
            f"environment variable {name} is not set; export it or write ${{{name}:-fallback}} in the YAML"
        )

    return _ENV_RE.sub(substitute, value)


Uri = Annotated[str, BeforeValidator(expand_env)]


# ----------------------------------------------------------------------------------------------------
# Sanity limits: each bound once, with why. Every count, size and duration below carries one.

#: Any count (objects, weights, errors, tasks): object indices are picked as int(random() * count) and rates
#: are computed in float64, both exact only below 2^53 (~9 x 10^15; billions of objects are fine).
COUNT_LIMIT = Limit(2**53, "counts are exact in float64 only below 2^53")
#: Any object size: 5 TiB is the largest single object S3 and GCS accept (Azure block blobs go to ~190.7
#: TiB, but sbench writes a blob in one call); sbench also builds each object in memory before writing it,
#: so validation refuses an object larger than the memory of the machine that runs it (see validation.py).
SIZE_LIMIT = Limit(5 * 2**40, "5 TiB is the largest object S3 and GCS store", kind="size")
#: Any duration or timeout: a year. Longer waits overflow the thread-wait primitives (OverflowError), and no
#: benchmark stage runs longer; a soak test of weeks fits.
DURATION_LIMIT = Limit(31_557_600.0, "1 year; longer waits overflow timers", kind="duration")
#: Workers of one agent (`concurrency`, per-op `concurrency`, overrides, cleanup): each is a thread (sync
#: drivers) or an asyncio task (native drivers) with ~12 KB of its own state and, as a thread, a stack. 10^9
#: workers ran out of memory; 16,384 is beyond what one interpreter lock keeps busy and near common OS thread
#: limits (ulimit -u); use `processes` or more agents for more load.
WORKER_LIMIT = Limit(16_384, "workers per agent: threads or tasks of one process; add processes or agents")
#: Periodic work (perf-log rows, live snapshots, heartbeats): each tick merges every worker's histograms and,
#: on Ray, sends a snapshot per agent; below 100 ms that work alone takes a large share of a core.
TICK_MINIMUM = Limit(0.1, "each tick merges every worker's histograms", kind="duration", maximum=False)
#: Open-loop rate: intended start times are float64 nanoseconds on the monotonic clock, whose spacing after
#: months of uptime is a few ns, so gaps below ~10 ns (10^8 ops/s) vanish; no agent issues more than ~10^5.
IOPS_LIMIT = Limit(1e8, "the schedule's float64 nanoseconds cannot space ops closer", kind="rate")
#: Retries of one op: the delay grows as multiplier^attempt (a float, finite up to ~10^308 = 10^100 at the
#: largest multiplier), and more than 100 tries turn one failure into minutes of retrying.
RETRY_LIMIT = Limit(100, "more tries only hide a failure")
#: A retry delay or its cap, in milliseconds: one hour.
RETRY_DELAY_LIMIT = Limit(3_600_000, "one hour, in milliseconds")
#: Growth of the retry delay per try (see RETRY_LIMIT for why it must stay small).
BACKOFF_MULTIPLIER_LIMIT = Limit(10, "the delay grows as multiplier^attempt", kind="number")
#: compress_factor N keeps 4096/N random bytes per 4 KiB block: above 4096 nothing changes.
COMPRESS_LIMIT = Limit(4096, "a 4 KiB block keeps at least one random byte")
#: prepare.key_prefix_shards: S3 partitions by key prefix; more prefixes than this only cost LISTs
KEY_SHARDS_LIMIT = Limit(65_536, "each shard is a key prefix a gap-fill LIST walks")
#: Ranges of one GET run concurrently, each a request (a connection) of its own.
RANGES_LIMIT = Limit(1024, "each range of a GET is a request in flight")
#: Agents per node: each is a Ray actor process of ~250 MB.
AGENTS_PER_NODE_LIMIT = Limit(256, "each agent is a process of ~250 MB")
#: `processes: N` starts N agent processes on this machine, each a Ray worker of about this much memory.
PROCESS_MEMORY = 256 * 2**20

Count = Annotated[_Count, AfterValidator(COUNT_LIMIT)]
Size = Annotated[_Size, AfterValidator(SIZE_LIMIT)]
Duration = Annotated[_Duration, AfterValidator(DURATION_LIMIT)]
PositiveCount = Annotated[Count, Field(ge=1)]
NonNegativeCount = Annotated[Count, Field(ge=0)]
Workers = Annotated[_Count, Field(ge=1), AfterValidator(WORKER_LIMIT)]
Tick = Annotated[Duration, AfterValidator(TICK_MINIMUM)]


def max_processes() -> int:
    """How many agent processes this machine can hold (`processes`): its memory over PROCESS_MEMORY."""
    return max(1, psutil.virtual_memory().total // PROCESS_MEMORY)


# ----------------------------------------------------------------------------------------------------
# Enumerations


class FillPattern(StrEnum):
    ZERO = "zero"
    RANDOM = "random"
    PRAND = "prand"


class CleanupMode(StrEnum):
    STRICT = "strict"
    TOLERANT = "tolerant"
    BESTEFFORT = "besteffort"

    @classmethod
    def _missing_(cls, value: object) -> CleanupMode | None:
        # sai3's YAML value is `besteffort`; its docs say `best_effort`. Accept both spellings.
        if isinstance(value, str) and value.replace("_", "").replace("-", "").lower() == "besteffort":
            return cls.BESTEFFORT
        return None


class BarrierType(StrEnum):
    ALL_OR_NOTHING = "all_or_nothing"
    MAJORITY = "majority"
    BEST_EFFORT = "best_effort"


class StageType(StrEnum):
    EXECUTE = "execute"
    PREPARE = "prepare"
    CLEANUP = "cleanup"
    CUSTOM = "custom"
    HYBRID = "hybrid"
    VALIDATION = "validation"


class Completion(StrEnum):
    DURATION = "duration"
    TASKS_DONE = "tasks_done"
    SCRIPT_EXIT = "script_exit"
    VALIDATION_PASSED = "validation_passed"
    DURATION_OR_TASKS = "duration_or_tasks"


# ----------------------------------------------------------------------------------------------------
# Size specifications


class FixedSize(StrictModel):
    """Every object has the same size (YAML: a bare integer or size string, e.g. `size_spec: 1MiB`)."""

    kind: Literal["fixed"] = Field("fixed", description="Discriminator: always `fixed`.")
    value: Size = Field(gt=0, description="Object size in bytes (size strings accepted; 0 is rejected).")


class UniformSize(StrictModel):
    """Sizes drawn uniformly from [min, max], both inclusive (YAML: `{type: uniform, min, max}`)."""

    kind: Literal["uniform"] = Field("uniform", description="Discriminator: always `uniform`.")
    min: Size = Field(1024, gt=0, description="Smallest size in bytes, inclusive (sai3 default 1024).")
    max: Size = Field(1048576, gt=0, description="Largest size in bytes, inclusive (sai3 default 1 MiB).")

    @model_validator(mode="after")
    def _check_bounds(self) -> UniformSize:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); swap them")
        return self


class LognormalSize(StrictModel):
    """Lognormal sizes with a linear-space mean and std_dev, rejection-sampled into [min, max]."""

    kind: Literal["lognormal"] = Field("lognormal", description="Discriminator: always `lognormal`.")
    mean: Size = Field(gt=0, description="Mean object size in bytes (linear space, not log space).")
    std_dev: Size = Field(gt=0, description="Standard deviation in bytes (linear space).")
    min: Size = Field(1, gt=0, description="Smallest size in bytes; draws below are rejected (default 1).")
    max: Size = Field(
        SIZE_LIMIT.bound, gt=0, description="Largest size in bytes; draws above are rejected (default 5 TiB)."
    )

    @model_validator(mode="after")
    def _check_bounds(self) -> LognormalSize:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is larger than max ({self.max}); swap them")
        return self


def _normalise_size_spec(value: Any) -> Any:
    """Turn the YAML forms (bare size, `{type: ...}`) into the tagged form the union validates."""
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return {"kind": "fixed", "value": parse_size(value)}
    if isinstance(value, dict) and "type" in value and "kind" not in value:
        body = {k: v for k, v in value.items() if k != "type"}
        kind = value["type"]
        if kind == "fixed":
            raise ValueError(
                "`type: fixed` is not a size spec (sai3 rejects it too); write the size itself, "
                "e.g. `size_spec: 1MiB`"
            )
        return {"kind": kind, **body}
    if isinstance(value, dict) and "kind" not in value:
        raise ValueError(
            "a size distribution needs `type: uniform` or `type: lognormal`; "
            "a fixed size is written as a bare value, e.g. `size_spec: 1MiB`"
        )
    return value


SizeSpec = Annotated[
    FixedSize | UniformSize | LognormalSize,
    BeforeValidator(_normalise_size_spec),
    Discriminator("kind"),
]

_SIZE_SPEC_ALIAS = AliasChoices("size_spec", "size_distribution")


# ----------------------------------------------------------------------------------------------------
# Workload operations


class _OpBase(StrictModel):
    weight: Count = Field(
        ge=0, description="Relative weight for the per-op random choice (0 = never chosen)."
    )
    concurrency: Workers | None = Field(
        None,
        description="Cap on in-flight ops of this kind (sbench honours values above the global one too).",
    )


class _PathOp(_OpBase):
    path: Uri = Field(
        description="Key, prefix ending in `/`, glob with `*`, or a full URI; relative to `target`. "
        "Ignored in directory-tree mode, where the tree picks the file."
    )
    use_multi_endpoint: bool = Field(
        False,
        description="sai3 v0.8.22's opt-in; with a `multi_endpoint` block every relative path goes through "
        "it anyway (sai3 HEAD), so only `true` without a block matters (refused).",
    )


class GetOp(_PathOp):
    """Read one object chosen from what `path` matches."""

    op: Literal["get"] = Field(description="Operation name.")


class PutOp(_PathOp):
    """Write a new object under `path`; the size comes from `object_size` or `size_spec`."""

    op: Literal["put"] = Field(description="Operation name.")
    object_size: Size | None = Field(
        None, gt=0, description="Fixed object size; takes precedence over size_spec."
    )
    size_spec: SizeSpec | None = Field(
        None,
        validation_alias=_SIZE_SPEC_ALIAS,
        description="Object size: bare size (fixed), `{type: uniform, min, max}` or "
        "`{type: lognormal, mean, std_dev, min, max}`. Alias: size_distribution. "
        "After loading it is always set (object_size, or 1 MiB when neither is given).",
    )
    dedup_factor: PositiveCount = Field(1, description="About 1/N of the blocks are unique (1 = all unique).")
    compress_factor: Annotated[PositiveCount, AfterValidator(COMPRESS_LIMIT)] = Field(
        1, description="About (N-1)/N of each block is zeros (N:1)."
    )

    @model_validator(mode="after")
    def _resolve_size(self) -> PutOp:
        if self.object_size is not None:
            self.size_spec = FixedSize(value=self.object_size)
        elif self.size_spec is None:
            self.size_spec = FixedSize(value=DEFAULT_OBJECT_SIZE)
        return self


class ListOp(_PathOp):
    """Recursive listing of `path`; the result is counted and dropped."""

    op: Literal["list"] = Field(description="Operation name.")


class StatOp(_PathOp):
    """HEAD/stat of one object chosen from what `path` matches."""

    op: Literal["stat"] = Field(description="Operation name.")


class DeleteOp(_PathOp):
    """Delete one object chosen from what `path` matches (sbench never re-deletes the same key)."""

    op: Literal["delete"] = Field(description="Operation name.")


class MkdirOp(_OpBase):
    """mkdir -p of a directory picked from `prepare.directory_structure`."""

    op: Literal["mkdir"] = Field(description="Operation name.")
    path: Uri = Field(description="Kept for sai3 compatibility; the tree picks the directory.")


class RmdirOp(_OpBase):
    """Remove a directory picked from `prepare.directory_structure`."""

    op: Literal["rmdir"] = Field(description="Operation name.")
    path: Uri = Field(description="Kept for sai3 compatibility; the tree picks the directory.")
    recursive: bool = Field(False, description="Remove the directory's contents too.")


OpSpec = Annotated[
    GetOp | PutOp | ListOp | StatOp | DeleteOp | MkdirOp | RmdirOp,
    Discriminator("op"),
]


# ----------------------------------------------------------------------------------------------------
# Prepare


class DirectoryStructure(StrictModel):
    """A width^depth directory tree; file paths are computed from indices, never listed in memory."""

    width: PositiveCount = Field(description="Subdirectories per directory (>= 1; separators accepted).")
    depth: PositiveCount = Field(le=64, description="Levels of directories below the base (1..64).")
    files_per_dir: NonNegativeCount = Field(0, description="Files per directory that holds files.")
    distribution: Literal["bottom", "all"] = Field(
        "bottom", description="`bottom`: only the deepest level holds files; `all`: every directory does."
    )
    dir_mask: str = Field(
        "sai3bench.d%d_w%d.dir",
        description="Directory name pattern: first %d = level (1-based), second = index within the parent.",
    )

    @model_validator(mode="after")
    def _bounded_totals(self) -> DirectoryStructure:
        """The tree's directory and file totals are counts too (width 1000 at depth 64 is 10^192 files)."""
        dirs = sum(self.width**level for level in range(1, self.depth + 1))
        holders = self.width**self.depth if self.distribution == "bottom" else dirs
        for what, total in (("directories", dirs), ("files", holders * self.files_per_dir)):
            if total > COUNT_LIMIT.bound:
                raise ValueError(
                    f"width {self.width:,} and depth {self.depth} make more than {COUNT_LIMIT.bound:,} "
                    f"{what} ({COUNT_LIMIT.why}); use a smaller width, depth or files_per_dir"
                )
        return self

    @field_validator("dir_mask")
    @classmethod
    def _two_placeholders(cls, mask: str) -> str:
        if mask.count("%d") != 2 or "/" in mask:
            raise ValueError(
                f"{mask!r} must contain exactly two %d (level, then index) and no '/', "
                "e.g. 'sai3bench.d%d_w%d.dir'"
            )
        return mask


class EnsureSpec(StrictModel):
    """One pool of objects that prepare makes sure exists before the workload."""

    base_uri: Uri | None = Field(
        None, description="Where the objects go; default: `target` (or the first multi-endpoint)."
    )
    use_multi_endpoint: bool = Field(False, description="Spread the objects over the multi-endpoint block.")
    count: NonNegativeCount = Field(description="Number of objects (separators accepted: '64,032,768').")
    min_size: Size | None = Field(None, gt=0, description="Legacy: smallest size (min == max means fixed).")
    max_size: Size | None = Field(None, gt=0, description="Legacy: largest size.")
    size_spec: SizeSpec | None = Field(
        None,
        validation_alias=_SIZE_SPEC_ALIAS,
        description="Object sizes (alias size_distribution). After loading it is always set, from size_spec, "
        "`size`, legacy min_size/max_size, or 1 MiB.",
    )
    size: Size | None = Field(
        None, gt=0, description="sbench alias for a fixed size_spec (sai3 silently ignored this key)."
    )
    fill: FillPattern = Field(FillPattern.RANDOM, description="Payload: zero, random or prand.")
    dedup_factor: PositiveCount = Field(1, description="About 1/N of the blocks are unique (1 = all unique).")
    compress_factor: Annotated[PositiveCount, AfterValidator(COMPRESS_LIMIT)] = Field(
        1, description="About (N-1)/N of each block is zeros (N:1)."
    )

    @model_validator(mode="after")
    def _resolve_size(self) -> EnsureSpec:
        given = [name for name in ("size_spec", "size") if getattr(self, name) is not None]
        legacy = [name for name in ("min_size", "max_size") if getattr(self, name) is not None]
        if len(given) + (1 if legacy else 0) > 1:
            raise ValueError(
                f"give the object size once: {', '.join(given + legacy)} are all set; keep one of "
                "size_spec, size or min_size/max_size"
            )
        if self.size is not None:
            self.size_spec = FixedSize(value=self.size)
        elif legacy:
            low = self.min_size if self.min_size is not None else DEFAULT_OBJECT_SIZE
            high = self.max_size if self.max_size is not None else DEFAULT_OBJECT_SIZE
            if low > high:
                raise ValueError(f"min_size ({low}) is larger than max_size ({high}); swap them")
            self.size_spec = FixedSize(value=low) if low == high else UniformSize(min=low, max=high)
        elif self.size_spec is None:
            self.size_spec = FixedSize(value=DEFAULT_OBJECT_SIZE)
        # size_spec is now the one canonical size; the legacy spellings are cleared so a dumped config
        # validates again to the same model.
        self.size = self.min_size = self.max_size = None
        return self


class PrepareConfig(StrictModel):
    """Objects (and optionally a directory tree) created before the workload, and their cleanup."""

    ensure_objects: list[EnsureSpec] = Field(default_factory=list, description="Object pools to create.")
    prepare_strategy: Literal["sequential", "parallel"] = Field(
        "sequential", description="`sequential`: one pool at a time; `parallel`: all pools interleaved."
    )
    skip_verification: bool = Field(False, description="Do not LIST existing objects; assume they all exist.")
    force_overwrite: bool = Field(False, description="Create every object even if it exists.")
    cleanup: bool = Field(False, description="Delete what this run created after the workload.")
    cleanup_mode: CleanupMode = Field(
        CleanupMode.TOLERANT,
        description="strict (failures count), tolerant (not-found is fine), besteffort (ignore errors).",
    )
    cleanup_concurrency: Workers | None = Field(
        None, description="sbench: parallel deletes during cleanup; after loading: `concurrency` if unset."
    )
    post_prepare_delay: Duration = Field(0.0, description="Pause after prepare when it created objects.")
    cleanup_only: bool = Field(
        False,
        description="sai3: skip prepare and the workload and only clean up, as `sbench run --cleanup-only`.",
    )
    directory_structure: DirectoryStructure | None = Field(
        None, description="Directory tree rooted at ensure_objects[0]'s base URI."
    )
    key_prefix_shards: Annotated[PositiveCount, AfterValidator(KEY_SHARDS_LIMIT)] | None = Field(
        None,
        description="sai3 HEAD: flat names under N prefixes, `{idx % N:02x}/prepared-…` (spreads S3 load).",
    )

    @model_validator(mode="after")
    def _shards_are_flat(self) -> PrepareConfig:
        if self.key_prefix_shards is not None and self.directory_structure is not None:
            raise ValueError(
                "key_prefix_shards shards flat `prepared-` names; a directory_structure lays out its own "
                "directories (remove one of the two)"
            )
        return self


# ----------------------------------------------------------------------------------------------------
# Top-level blocks


class IoRateConfig(StrictModel):
    """Open-loop arrivals: sbench delivers the aggregate `iops` (sai3 gave iops/concurrency for two modes)."""

    iops: float | None = Field(
        description="Target aggregate ops/s; 0 or `max` means unlimited (closed loop). Normalised to None "
        "when unlimited."
    )
    distribution: Literal["exponential", "uniform", "deterministic"] = Field(
        "exponential", description="Inter-arrival times: exponential (Poisson), uniform or deterministic."
    )

    @field_validator("iops", mode="before")
    @classmethod
    def _parse_iops(cls, value: Any) -> float | None:
        if isinstance(value, str):
            text = value.strip().lower()
            if text == "max":
                return None
            try:
                value = float(text.replace(",", "").replace("_", ""))
            except ValueError:
                raise ValueError(f"{value!r} is not a rate; use a number of ops/s, 0 or 'max'") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{value!r} is not a rate; use a number of ops/s, 0 or 'max'")
        if value < 0 or value != value:
            raise ValueError(f"{value} is not a rate; use a number of ops/s, 0 or 'max'")
        return IOPS_LIMIT(float(value)) if value > 0 else None


class ErrorHandlingConfig(StrictModel):
    """When the workload backs off, retries or aborts on errors."""

    max_total_errors: NonNegativeCount = Field(100, description="Abort the workload after this many errors.")
    error_rate_threshold: float = Field(
        5.0, ge=0, allow_inf_nan=False, description="Errors/s in the window that trigger backoff."
    )
    backoff_duration: Duration = Field(5.0, description="How long to back off once the threshold is hit.")
    error_rate_window: Duration = Field(1.0, gt=0, description="Window for the error rate, seconds.")
    retry_on_error: bool = Field(False, description="Retry failed ops up to max_retries times.")
    max_retries: Annotated[NonNegativeCount, AfterValidator(RETRY_LIMIT)] = Field(
        3, description="Retries per op when retry_on_error is set (at most 100)."
    )
    initial_retry_delay_ms: Annotated[NonNegativeCount, AfterValidator(RETRY_DELAY_LIMIT)] = Field(
        100, description="First retry delay, milliseconds (at most one hour)."
    )
    max_retry_delay_ms: Annotated[NonNegativeCount, AfterValidator(RETRY_DELAY_LIMIT)] = Field(
        5000, description="Retry delay cap, milliseconds (at most one hour)."
    )
    retry_backoff_multiplier: Annotated[float, AfterValidator(BACKOFF_MULTIPLIER_LIMIT)] = Field(
        2.0, ge=1.0, allow_inf_nan=False, description="Delay growth per retry (1 to 10)."
    )
    retry_jitter_factor: float = Field(0.25, ge=0.0, le=1.0, description="Random +/- share of each delay.")
    min_success_ratio: float = Field(
        0.95,
        ge=0.0,
        le=1.0,
        description=(
            "sbench: an execute, hybrid or prepare stage fails when fewer than this share of the ops it "
            "attempted succeeded (ops in flight at its end are not attempts). A benchmark whose failed ops "
            "are a large share measures the storage's error path, not its normal one; 0.95 still lets a "
            "healthy run ride out a short burst of errors. 0 disables the rule."
        ),
    )
    max_outage: Duration = Field(
        5.0,
        ge=0,
        description=(
            "sbench: an execute, hybrid or prepare stage fails when ops failed and none succeeded for "
            "longer than this (humantime or seconds), however few errors were counted: during an outage the "
            "error backoff and retry waits keep the failed-op count far below min_success_ratio's budget. "
            "Measured in whole perf_log intervals (it must be at least perf_log.interval); STATUS.txt names "
            "the outage's start, length and first error. 0 disables the rule."
        ),
    )


class PerfLogConfig(StrictModel):
    """The perf_log.tsv time series (sbench always writes it; the block sets the interval)."""

    interval: Tick = Field(
        1.0, gt=0, description="Seconds between perf-log rows and live-stat snapshots (at least 100 ms)."
    )
    path: str | None = Field(
        None,
        min_length=1,
        description="sai3: also put the run's perf_log.tsv here when the run ends (relative: from the "
        "current directory); the live file is always the results directory's.",
    )


class BackendConfig(StrictModel):
    """sbench: settings of the object-store clients. At the top level they apply to every cloud URI; in a
    `multi_endpoint` block each key set replaces the top-level one for those endpoints. A key the store or
    the chosen driver cannot honour is refused (config/clientcheck.py says which and why); `sbench run
    --dry-run` shows what each driver will use."""

    request_timeout: Duration | None = Field(
        None, gt=0, description="Time limit of one request (default: the top-level request_timeout)."
    )
    connect_timeout: Duration | None = Field(
        None, gt=0, description="Time limit of opening a connection (default: 10 s, at most request_timeout)."
    )
    multipart_threshold: Size | None = Field(
        None, gt=0, description="Objects of at least this size are uploaded in parts (default 64 MiB)."
    )
    multipart_part_size: Size | None = Field(
        None, gt=0, description="Size of each uploaded part (default 16 MiB; S3 needs at least 5 MiB)."
    )
    path_style: bool | None = Field(
        None, description="S3: path-style (true) or virtual-hosted (false) addressing (default: path-style "
        "for an explicit endpoint, virtual-hosted on AWS)."
    )
    max_connections: Annotated[PositiveCount, Field(le=65_536)] | None = Field(
        None, description="Connections each client pool keeps (default: concurrency x ranges per GET)."
    )
    region: str | None = Field(None, min_length=1, description="S3: signing region (default: AWS_REGION, "
                               "the profile, else us-east-1).")
    verify_tls: bool | None = Field(
        None, description="false accepts any TLS certificate (self-signed test endpoints); default true."
    )


#: default `stall_timeout` of a run's stages and of a replay: longer than the 120 s request timeout, so one
#: slow request that still answers in time never counts as a stall
STALL_TIMEOUT_S = 180.0


class WorkerMode(StrEnum):
    """How an agent runs its workload workers (engine/workload.py)."""

    #: engine.workermode decides: threads, or asyncio tasks where every op's backend has async calls and
    #: they measured cheaper (its docstring has the rule and the figures behind it)
    AUTO = "auto"
    #: one thread per worker on every backend (the native drivers' sync calls, which release the GIL)
    THREADS = "threads"
    #: asyncio tasks on one event loop; every op's backend must have async calls (native drivers, null://)
    ASYNCIO = "asyncio"


class EventLoop(StrEnum):
    """The event loop asyncio workers run on."""

    ASYNCIO = "asyncio"
    UVLOOP = "uvloop"


class WorkersConfig(StrictModel):
    """sbench: how one agent runs its workload workers. bench/native_path.py measures the choices on S3."""

    mode: WorkerMode = Field(
        WorkerMode.AUTO,
        description="auto: threads, or asyncio tasks where every store has async calls and threads are not "
        "measured cheaper (native S3: up to 256 workers, 1 MiB objects, 64 MiB in flight: "
        "engine/workermode.py); "
        "threads: threads everywhere; asyncio: asyncio tasks (native cloud drivers, null:// with driver "
        "native).",
    )
    event_loop: EventLoop = Field(
        EventLoop.ASYNCIO,
        description="Event loop of asyncio workers: asyncio, or uvloop (pip install 'sbench[uvloop]').",
    )
    native_file_io: bool = Field(
        True,
        description="file:// workers whose one op is a GET of prepared objects or a fixed-size PUT make "
        "their calls in native batches with the GIL released (storage/filebatch.py; closed loop, no per-op "
        "concurrency limit or expected_tasks); false: the Python loop, as on every other store.",
    )

    @field_validator("event_loop")
    @classmethod
    def _loop_installed(cls, value: EventLoop) -> EventLoop:
        import importlib.util

        if value is EventLoop.UVLOOP and importlib.util.find_spec("uvloop") is None:
            raise ValueError("uvloop is not installed: pip install 'sbench[uvloop]' (uvloop==0.23.0)")
        return value


#: What sbench sets itself in every agent (who it is) or what Ray reads when a worker starts: an `env` entry
#: of these names would be overwritten, or would change nothing, so it is refused.
RESERVED_ENV_PREFIXES = ("SBENCH_", "RAY_")


def _env_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"{name!r} is not an environment variable name (letters, digits and _)")
    if name.startswith(RESERVED_ENV_PREFIXES):
        raise ValueError(
            f"{name} is not settable here: sbench sets SBENCH_* in every agent itself, and Ray reads RAY_* "
            "only when its processes start"
        )
    return name


def _env_value(value: Any) -> Any:
    """A scalar as the text the process will see; `${VAR}` expanded, so a secret can stay out of the file."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    elif isinstance(value, int | float):
        value = str(value)
    return expand_env(value)


#: Environment variables for agents: values are secrets (credentials), held as SecretStr so that no repr,
#: log line or traceback shows them; the results directory records the names only.
AgentEnv = dict[Annotated[str, AfterValidator(_env_name)], Annotated[SecretStr, BeforeValidator(_env_value)]]


class MultiEndpointConfig(StrictModel):
    """Several endpoints exposing the same namespace; ops and prepared objects are spread over them."""

    strategy: Literal["round_robin", "least_connections"] = Field(
        "round_robin", description="How ops pick an endpoint."
    )
    endpoints: list[Uri] = Field(min_length=1, description="Endpoint URIs (same namespace behind each).")
    driver: Driver | None = Field(
        None, description="sbench: client driver for these endpoints (auto|sdk|native)."
    )
    backend_options: BackendConfig | None = Field(
        None, description="sbench: client settings for these endpoints (each key set replaces the top-level "
        "`backend_options` key)."
    )


class RangeEngineConfig(StrictModel):
    """Concurrent ranged GETs for large objects (sbench applies it to every cloud backend)."""

    enabled: bool = Field(False, description="Split large GETs into concurrent ranges.")
    chunk_size: Size = Field(64 * 1024 * 1024, gt=0, description="Bytes per range request.")
    max_concurrent_ranges: Annotated[PositiveCount, AfterValidator(RANGES_LIMIT)] = Field(
        16, description="Ranges in flight per GET (at most 1024)."
    )
    min_split_size: Size = Field(
        16 * 1024 * 1024, gt=0, description="Objects smaller than this are not split."
    )
    range_timeout_secs: Duration = Field(30.0, gt=0, description="Timeout per range request.")


# ----------------------------------------------------------------------------------------------------
# Distributed


class PhaseBarrierConfig(StrictModel):
    """Barrier policy of one phase; unset timing keys fall back to barrier_sync's `default_*` values."""

    type: BarrierType = Field(description="all_or_nothing, majority or best_effort.")
    heartbeat_interval: Tick | None = Field(None, gt=0, description="Seconds between agent heartbeats.")
    missed_threshold: PositiveCount | None = Field(
        None, description="Missed heartbeats before a liveness query."
    )
    query_timeout: Duration | None = Field(None, gt=0, description="Timeout of one liveness query.")
    query_retries: NonNegativeCount | None = Field(None, description="Liveness query retries before failing.")
    agent_barrier_timeout: Duration | None = Field(
        None, gt=0, description="How long the barrier waits for agents (default 120 s)."
    )


class BarrierSyncConfig(StrictModel):
    """Stage barriers across agents; per-phase blocks override the defaults."""

    enabled: bool = Field(False, description="sai3 needed this for stage sync; sbench always syncs stages.")
    default_heartbeat_interval: Tick = Field(
        30.0, gt=0, description="Default heartbeat interval, seconds."
    )
    default_missed_threshold: PositiveCount = Field(
        3, description="Default missed heartbeats before a query."
    )
    default_query_timeout: Duration = Field(
        10.0, gt=0, description="Default liveness query timeout, seconds."
    )
    default_query_retries: NonNegativeCount = Field(2, description="Default liveness query retries.")
    validation: PhaseBarrierConfig | None = Field(None, description="Barrier of preflight/validation stages.")
    prepare: PhaseBarrierConfig | None = Field(None, description="Barrier of prepare stages.")
    execute: PhaseBarrierConfig | None = Field(None, description="Barrier of execute and hybrid stages.")
    cleanup: PhaseBarrierConfig | None = Field(None, description="Barrier of cleanup stages.")


_STAGE_BODY_KEYS: dict[StageType, frozenset[str]] = {
    StageType.EXECUTE: frozenset({"duration"}),
    StageType.PREPARE: frozenset({"expected_objects"}),
    StageType.CLEANUP: frozenset({"expected_objects"}),
    StageType.CUSTOM: frozenset({"command", "args"}),
    StageType.HYBRID: frozenset({"max_duration", "expected_tasks"}),
    StageType.VALIDATION: frozenset(),
}

_COMPLETIONS: dict[StageType, tuple[Completion, ...]] = {
    StageType.EXECUTE: (Completion.DURATION, Completion.DURATION_OR_TASKS),
    StageType.PREPARE: (Completion.TASKS_DONE, Completion.DURATION_OR_TASKS),
    StageType.CLEANUP: (Completion.TASKS_DONE, Completion.DURATION_OR_TASKS),
    StageType.CUSTOM: (Completion.SCRIPT_EXIT, Completion.DURATION_OR_TASKS),
    StageType.HYBRID: (Completion.DURATION_OR_TASKS,),
    StageType.VALIDATION: (Completion.VALIDATION_PASSED,),
}


class StageConfig(StrictModel):
    """One stage; its type-specific body is flattened (sai3 code) or nested under `config:` (sai3 docs)."""

    name: str = Field(min_length=1, description="Unique stage name (used in NN_<name>_results.tsv).")
    order: int = Field(description="Position in the run; unique; stages run in ascending order.")
    type: StageType = Field(description="execute, prepare, cleanup, custom, hybrid or validation.")
    completion: Completion | None = Field(
        None,
        description="When the stage is done; default by type (execute: duration, prepare/cleanup: "
        "tasks_done, "
        "custom: script_exit, hybrid: duration_or_tasks, validation: validation_passed).",
    )
    barrier: PhaseBarrierConfig | None = Field(None, description="Barrier for this stage only.")
    timeout_secs: Duration | None = Field(None, gt=0, description="Stage time limit (units accepted).")
    optional: bool = Field(False, description="A failure of this stage does not fail the run.")
    duration: Duration | None = Field(
        None, gt=0, description="execute: run time (default: top-level duration)."
    )
    expected_objects: NonNegativeCount | None = Field(None, description="prepare/cleanup: objects expected.")
    command: str | None = Field(None, min_length=1, description="custom: program run on every agent.")
    args: list[str] = Field(default_factory=list, description="custom: arguments of `command`.")
    max_duration: Duration | None = Field(None, gt=0, description="hybrid: time limit of the workload.")
    expected_tasks: NonNegativeCount | None = Field(None, description="hybrid: ops after which it ends.")

    @model_validator(mode="before")
    @classmethod
    def _flatten_nested(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "config" not in data:
            return data
        nested = data["config"]
        if not isinstance(nested, dict):
            raise ValueError("`config:` must be a mapping with the stage body (e.g. `type: execute`)")
        clash = sorted(set(nested) & (set(data) - {"config"}))
        if clash:
            raise ValueError(f"{', '.join(clash)} given both at stage level and under `config:`; keep one")
        return {**{k: v for k, v in data.items() if k != "config"}, **nested}

    @model_validator(mode="after")
    def _check_body(self) -> StageConfig:
        allowed = _STAGE_BODY_KEYS[self.type]
        body_keys = {"duration", "expected_objects", "command", "args", "max_duration", "expected_tasks"}
        stray = sorted(k for k in body_keys & self.model_fields_set if k not in allowed)
        if stray:
            raise ValueError(
                f"a {self.type.value} stage does not take {', '.join(stray)}"
                + (f" (it takes: {', '.join(sorted(allowed))})" if allowed else "")
            )
        if self.type is StageType.CUSTOM and not self.command:
            raise ValueError("a custom stage needs `command` (and optionally `args`)")
        valid = _COMPLETIONS[self.type]
        if self.completion is None:
            self.completion = valid[0]
        elif self.completion not in valid:
            raise ValueError(
                f"completion `{self.completion.value}` does not fit a {self.type.value} stage; "
                f"use {' or '.join(c.value for c in valid)}"
            )
        return self


class AgentConfig(StrictModel):
    """One agent; its address picks the Ray node by IP (localhost = the driver's node)."""

    address: str = Field(
        min_length=1, description="host:port; the host picks the Ray node (port is ignored)."
    )
    id: str | None = Field(None, min_length=1, description="Agent id (sbench honours it; default agent-N).")
    target_override: Uri | None = Field(None, description="Replaces `target` for this agent.")
    concurrency_override: Workers | None = Field(
        None, description="Replaces `concurrency` for this agent."
    )
    path_template: str | None = Field(
        None, description="Per-agent prefix in isolated mode ({id} = agent id)."
    )
    multi_endpoint: MultiEndpointConfig | None = Field(
        None, description="Replaces `multi_endpoint` for this agent."
    )
    env: AgentEnv = Field(
        default_factory=dict,
        description="Environment of this agent (over `distributed_env`); names recorded, values never "
        "written.",
    )


class DistributedConfig(StrictModel):
    """Several agents (Ray actors) running the stages in lockstep."""

    agents: list[AgentConfig] = Field(
        default_factory=list, description="Explicit agents; may be empty when agents_per_node is set."
    )
    agents_per_node: Annotated[PositiveCount, AfterValidator(AGENTS_PER_NODE_LIMIT)] | None = Field(
        None, description="sbench: place N agents on every node of `nodes` (STRICT_SPREAD placement group)."
    )
    nodes: Literal["all"] | list[str] | None = Field(
        None, description="sbench: `all` alive Ray nodes or a list of node IPs (with agents_per_node)."
    )
    shared_filesystem: bool = Field(
        description="True: agents share one namespace (prepare is split by index); false: per-agent prefixes."
    )
    path_selection: Literal["random", "partitioned", "exclusive", "weighted"] = Field(
        "random", description="How tree-mode agents pick directories (uses the real agent index)."
    )
    partition_overlap: float = Field(
        0.3, ge=0.0, le=1.0, description="weighted: share of non-assigned picks."
    )
    path_template: str = Field(
        "agent-{id}/", description="Per-agent prefix in isolated mode ({id} = agent id)."
    )
    agent_ready_timeout: Duration = Field(120.0, gt=0, description="How long to wait for agents to start.")
    start_delay: Duration | None = Field(
        None,
        description="sai3: the first stage starts this long after every agent is ready (default: at once).",
    )
    stuck_intervals: PositiveCount = Field(
        10, description="sbench: flag an agent stuck after this many intervals without progress."
    )
    kv_cache_dir: str | None = Field(
        None,
        description="Directory of the persistent metadata cache (default: inside the results directory).",
    )
    barrier_sync: BarrierSyncConfig = Field(
        default_factory=BarrierSyncConfig, description="Stage barrier policy."
    )
    stages: list[StageConfig] | None = Field(
        None, description="Explicit stages; default: preflight, prepare (if configured), execute, cleanup."
    )

    @field_validator("nodes", mode="before")
    @classmethod
    def _nodes_all(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "all":
            return "all"
        return value


# ----------------------------------------------------------------------------------------------------
# autotune (used by `sbench autotune`, ignored by `sbench run`)


def _listed(value: Any) -> Any:
    """sai3 writes a sweep as one comma-separated string ("16,32"); a YAML list or a single value works too.
    Split before parsing: sbench's counts read "64,032" as sixty-four thousand and thirty-two."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value if isinstance(value, list) else [value]


def _no_channels(value: Any) -> Any:
    if value is not None:
        raise ValueError(
            "sbench's GCS drivers use the JSON API over HTTP, so there are no gRPC subchannels to tune "
            "(s3dlio's RAPID transport has them); remove the key"
        )
    return value


Sweep = BeforeValidator(_listed)
Refused = AfterValidator(_no_channels)


class AutotuneConfig(StrictModel):
    """A sweep of object size x threads x ranged-GET settings, each point run like a short workload."""

    uri: Uri = Field(
        description="Where the sweep writes and reads (a directory or prefix; sai3's `obj*.dat` glob tail is "
        "dropped): every point uses its own fresh prefix under it and deletes it afterwards."
    )
    sizes: Annotated[list[Size], Sweep, Field(min_length=1)] | None = Field(
        None, description="Object sizes to try (`32MiB,64MiB`), or size_range + size_steps."
    )
    size_range: str | None = Field(
        None, description="`LO-HI` (e.g. `32MiB-64MiB`), log-spaced over size_steps."
    )
    size_steps: PositiveCount = Field(3, description="Points in size_range (rounded to whole KiB).")
    threads: Annotated[list[Workers], Sweep, Field(min_length=1)] = Field(
        default_factory=lambda: [16], description="Worker counts per agent to try (`16,32`)."
    )
    channels: Annotated[list[int], Sweep, Refused] | None = Field(
        None, description="s3dlio gRPC channels: refused, see the message."
    )
    channels_per_thread: Annotated[list[int], Sweep, Refused] | None = Field(
        None, description="s3dlio gRPC channels per thread: refused, see the message."
    )
    range_enabled: Annotated[list[bool], Sweep, Field(min_length=1)] = Field(
        default_factory=lambda: [False], description="Ranged GETs off/on (`false,true`): range_engine."
    )
    range_thresholds_mb: Annotated[list[PositiveCount], Sweep, Field(min_length=1)] = Field(
        default_factory=lambda: [32], description="Objects at least this many MiB are split (range_engine)."
    )
    gcs_write_chunk_sizes: Annotated[list[Size], Sweep] | None = Field(
        None, description="s3dlio GCS write chunks: refused (sbench's GCS drivers upload in one request)."
    )
    gcs_rapid_mode: Literal["auto", "on", "off"] = Field(
        "auto", description="s3dlio RAPID transport: only `auto` (sbench has no RAPID transport to force)."
    )
    objects: PositiveCount = Field(64, description="Objects each PUT trial creates (the PUT op count).")
    trials: PositiveCount = Field(1, description="Repetitions of every point (their spread is reported).")
    optimize_for: Literal["throughput", "latency"] = Field(
        "throughput", description="Best = highest MiB/s, or lowest p99 latency."
    )
    ops: Literal["put", "get", "both"] = Field("both", description="Which ops each point measures.")
    duration: Duration = Field(
        5.0, gt=0, description="sbench: how long each point's GETs run (PUTs are counted by `objects`)."
    )
    max_error_rate: float = Field(
        0.05, ge=0, le=1, description="sbench: a point stops once its errors pass this share of `objects`."
    )

    @field_validator("gcs_write_chunk_sizes")
    @classmethod
    def _no_chunks(cls, value: Any) -> Any:
        if value is not None:
            raise ValueError(
                "sbench's GCS drivers send each object in one request, so there is no write chunk to tune; "
                "remove the key"
            )
        return value

    @field_validator("gcs_rapid_mode", mode="before")
    @classmethod
    def _rapid(cls, value: Any) -> Any:
        if isinstance(value, bool):  # YAML 1.1 reads a bare on/off as a boolean; sai3's YAML 1.2 did not
            value = "on" if value else "off"
        if value != "auto":
            raise ValueError(
                f"`{value}` forces s3dlio's RAPID gRPC transport, which sbench does not have (its GCS "
                "drivers use HTTP); use `auto` or remove the key"
            )
        return value

    @model_validator(mode="after")
    def _one_size_source(self) -> AutotuneConfig:
        if self.sizes is not None and self.size_range is not None:
            raise ValueError("give either `sizes` or `size_range` (with `size_steps`), not both")
        if self.sizes is None and self.size_range is None:
            raise ValueError("needs `sizes` (e.g. `4KiB,1MiB`) or `size_range` (e.g. `32MiB-64MiB`)")
        if self.size_range is not None:
            self.size_points()  # a bad range fails here, at load time
        return self

    def size_points(self) -> list[int]:
        """The sizes of the sweep; a range is log-spaced (sai3: lo * (hi/lo)^(i/(steps-1)), whole KiB)."""
        if self.sizes is not None:
            return list(dict.fromkeys(self.sizes))
        lo_text, sep, hi_text = (self.size_range or "").partition("-")
        if not sep:
            raise ValueError(f"size_range {self.size_range!r} is not `LO-HI` (e.g. `32MiB-64MiB`)")
        lo, hi = parse_size(lo_text.strip()), parse_size(hi_text.strip())
        if not 0 < lo <= hi:
            raise ValueError(f"size_range {self.size_range!r}: needs 0 < LO <= HI")
        steps = self.size_steps
        if steps == 1 or lo == hi:
            return [lo]
        points = [lo * (hi / lo) ** (i / (steps - 1)) for i in range(steps)]
        rounded = (max(1024, round(p / 1024) * 1024) if p >= 1024 else round(p) for p in points)
        return list(dict.fromkeys(rounded))


# ----------------------------------------------------------------------------------------------------
# Top level


class Config(StrictModel):
    """A whole workload file."""

    duration: Duration = Field(60.0, gt=0, description="Workload run time (humantime or seconds).")
    concurrency: Workers = Field(16, description="Worker count per agent (at most 16,384).")
    target: Uri | None = Field(None, description="Base URI; relative op paths are joined to it.")
    workload: list[OpSpec] = Field(min_length=1, description="Weighted operations (op: get|put|list|stat|…).")
    prepare: PrepareConfig | None = Field(None, description="Objects to create before, and clean up after.")
    range_engine: RangeEngineConfig = Field(
        default_factory=RangeEngineConfig, description="Concurrent ranged GETs for large objects."
    )
    page_cache_mode: PageCacheMode | None = Field(
        None,
        description="posix_fadvise hint for file:// and direct:// (auto|sequential|random|dontneed|normal).",
    )
    distributed: DistributedConfig | None = Field(None, description="Multi-agent run on Ray.")
    io_rate: IoRateConfig | None = Field(None, description="Open-loop rate; absent = closed loop.")
    error_handling: ErrorHandlingConfig = Field(
        default_factory=ErrorHandlingConfig, description="Error budget, backoff and retries."
    )
    perf_log: PerfLogConfig = Field(default_factory=PerfLogConfig, description="perf_log.tsv interval.")
    multi_endpoint: MultiEndpointConfig | None = Field(None, description="Several endpoints, one namespace.")
    warmup_period: Duration | None = Field(None, description="Initial period excluded from the results.")
    dynamic_put_pool: bool = Field(False, description="Objects PUT during execute join the GET pool.")
    driver: Driver = Field(
        Driver.AUTO, description="sbench: client for cloud URIs: auto (native), sdk, native."
    )
    backend_options: BackendConfig = Field(
        default_factory=BackendConfig, description="sbench: object-store client settings (see BackendConfig)."
    )
    workers: WorkersConfig = Field(
        default_factory=WorkersConfig, description="sbench: threads or asyncio tasks, and the event loop."
    )
    distributed_env: AgentEnv = Field(
        default_factory=dict,
        description="sai3 (HEAD): environment for every agent (on Ray, handed to each agent in memory; in "
        "process, set for the run); names recorded in metadata.json, values never written anywhere.",
    )
    request_timeout: Duration = Field(
        120.0,
        gt=0,
        description="sbench: time limit of one object-store request (s3, az, gs; both drivers; connecting "
        "gets at most 10 s of it); a call that takes longer fails as a `timeout` error. sai3-bench HEAD's "
        "fixed op timeout is 120 s. Not applicable to file:// and direct://: a blocked system call cannot be "
        "interrupted (stall_timeout catches a hung mount).",
    )
    stall_timeout: Duration = Field(
        STALL_TIMEOUT_S,
        ge=0,
        description="sbench: a stage (preflight excepted) that makes no progress for this long fails as "
        "stalled: no op succeeded and no object was created, found or deleted. Longer than request_timeout "
        "by default, so one slow request that still answers in time never counts as a stall; 0 turns it off.",
    )
    autotune: AutotuneConfig | None = Field(
        None, description="A parameter sweep for `sbench autotune`; `sbench run` does not use it."
    )
    op_log_path: str | None = Field(
        None,
        description="sai3: write every storage call to this op-log (s3dlio's TSV, zstd when it ends in "
        ".zst); `sbench run --op-log PATH` wins; a relative path goes into the results directory.",
    )
    enable_metadata_cache: bool = Field(
        True,
        description="sai3 (HEAD): false runs without the metadata cache (no cache actor, no database): the "
        "driver keeps what prepare created in memory for this run's cleanup, agents list for themselves, "
        "and nothing is left to resume from. For runs where the cache is not wanted; sai3 recommends it "
        "above ~1 B objects.",
    )
    processes: PositiveCount | Literal["auto", "single"] | None = Field(
        None,
        description="sai3: run a standalone config as N local agent processes (one GIL each), splitting "
        "`concurrency` over them as sai3 did (ceil(concurrency/N) workers each); `auto` = physical cores, "
        "`single` = 1. More than one goes through a local Ray instance.",
    )

    @field_validator("processes", mode="before")
    @classmethod
    def _processes_word(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("auto", "single"):
            return value.strip().lower()
        return value

    @field_validator("processes")
    @classmethod
    def _processes_fit(cls, value: Any) -> Any:
        """`processes: N` runs N agent processes on THIS machine, so its memory bounds N."""
        limit = max_processes()
        if isinstance(value, int) and value > limit:
            memory = format_size(psutil.virtual_memory().total)
            raise ValueError(
                f"{value:,} is above this machine's limit of {limit:,} agent processes (each is a Ray "
                f"worker of about {format_size(PROCESS_MEMORY)} and this machine has {memory} of memory); "
                f"use at most {limit:,}, or `auto` for one per physical core"
            )
        return value

    @model_validator(mode="after")
    def _outage_measurable(self) -> Config:
        """An outage is measured in perf-log intervals: one shorter than an interval cannot be seen. The
        default follows a longer interval (the shortest outage it can see); a value the config sets must
        be at least one interval."""
        outage, interval = self.error_handling.max_outage, self.perf_log.interval
        if 0 < outage < interval and "max_outage" not in self.error_handling.model_fields_set:
            self.error_handling.max_outage = interval
        elif 0 < outage < interval:
            raise ValueError(
                f"error_handling.max_outage {outage:g} s is shorter than perf_log.interval {interval:g} s: "
                "outages are measured in whole perf-log intervals; set max_outage to at least "
                f"{interval:g} s, or 0 to turn the outage rule off"
            )
        return self

    @model_validator(mode="after")
    def _cache_wanted_for_kv_dir(self) -> Config:
        if not self.enable_metadata_cache and self.distributed is not None and self.distributed.kv_cache_dir:
            raise ValueError(
                "distributed.kv_cache_dir keeps the metadata cache across runs, but enable_metadata_cache is "
                "false: remove one of the two"
            )
        return self

    @model_validator(mode="after")
    def _fill_cross_defaults(self) -> Config:
        if self.prepare is not None and self.prepare.cleanup_concurrency is None:
            self.prepare.cleanup_concurrency = self.concurrency
        return self

    @property
    def process_count(self) -> int:
        """How many local agent processes a standalone run uses (`processes`, resolved; a distributed run
        places its agents with `distributed` instead, as sai3 ignored `processes` there)."""
        if self.processes is None or self.processes == "single" or self.distributed is not None:
            return 1
        if self.processes == "auto":
            return max(1, psutil.cpu_count(logical=False) or os.cpu_count() or 1)
        return int(self.processes)

    @property
    def concurrency_per_process(self) -> int:
        """Workers of each local agent process: `concurrency` split as sai3 split it (rounded up)."""
        return -(-self.concurrency // self.process_count)

    @property
    def open_loop(self) -> bool:
        """True when io_rate sets a finite rate; every output labels the load model with this."""
        return self.io_rate is not None and self.io_rate.iops is not None

    @property
    def has_prepare(self) -> bool:
        """True when the prepare block creates something (objects or a tree)."""
        return self.prepare is not None and (
            bool(self.prepare.ensure_objects) or self.prepare.directory_structure is not None
        )
