"""The points of a sweep and the sbench config each one runs.

Loop order is sai3-bench's: sizes x threads x range on/off x range threshold, except that a threshold only
varies while ranged GETs are on (with them off every threshold is the same run). Each op of each trial of a
point is one sbench run with a fresh prefix under the sweep's URI, so a run never reads what another wrote
and its cleanup deletes only its own objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sbench.config.models import (
    AutotuneConfig,
    Config,
    EnsureSpec,
    ErrorHandlingConfig,
    FixedSize,
    GetOp,
    PrepareConfig,
    PutOp,
    RangeEngineConfig,
)
from sbench.config.units import format_size

MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class Point:
    """One setting of the sweep."""

    number: int
    size: int
    threads: int
    range_enabled: bool
    range_threshold_mb: int

    @property
    def label(self) -> str:
        ranged = f"range>={self.range_threshold_mb}MiB" if self.range_enabled else "no-range"
        return f"{format_size(self.size)} x {self.threads} threads, {ranged}"

    @property
    def slug(self) -> str:
        ranged = f"r{self.range_threshold_mb}" if self.range_enabled else "r0"
        return f"{self.number:03d}-{self.size}b-{self.threads}t-{ranged}"


def points(spec: AutotuneConfig) -> list[Point]:
    out: list[Point] = []
    for size in spec.size_points():
        for threads in dict.fromkeys(spec.threads):
            for enabled in dict.fromkeys(spec.range_enabled):
                thresholds = dict.fromkeys(spec.range_thresholds_mb) if enabled else [0]
                for threshold in thresholds:
                    out.append(Point(len(out) + 1, size, threads, enabled, threshold))
    return out


def base_prefix(uri: str) -> str:
    """The sweep's directory: sai3's `.../obj*.dat` pattern tail is dropped, a trailing `/` ensured."""
    head, _, tail = uri.rpartition("/")
    if "*" in tail or "?" in tail:
        return head + "/"
    return uri if uri.endswith("/") else uri + "/"


def point_config(base: Config, spec: AutotuneConfig, point: Point, op: str, subdir: str) -> Config:
    """The user's config with the point's target, objects, threads and ranged-GET setting, running `op`
    (PUT or GET) alone for `duration`: a fixed time, so a short trial is not dominated by the run's set-up.

    GET reads a pool of `objects` objects that prepare creates first; a PUT run prepares one object, so that
    its cleanup stage exists and deletes what the PUTs wrote too. The target is the sweep's directory (the
    preflight checks it); the objects go under `subdir` of it. The error budget is `max_error_rate` of
    `objects`: past it the stage stops early and the point fails."""
    target = base_prefix(spec.uri)
    size = FixedSize(value=point.size)
    pool = EnsureSpec(base_uri=target + subdir, count=spec.objects if op == "GET" else 1, size_spec=size)
    prepare = PrepareConfig(ensure_objects=[pool], force_overwrite=True, cleanup=True)  # fresh: no LIST
    if op == "GET":
        workload = [GetOp(op="get", path=subdir, weight=100)]
    else:
        workload = [PutOp(op="put", path=f"{subdir}puts/", object_size=point.size, weight=100)]
    ranged = RangeEngineConfig(
        **{
            **base.range_engine.model_dump(),
            "enabled": point.range_enabled,
            "min_split_size": max(1, point.range_threshold_mb) * MIB,
        }
    )
    budget = max(1, math.floor(spec.objects * spec.max_error_rate))
    errors = ErrorHandlingConfig(**{**base.error_handling.model_dump(), "max_total_errors": budget})
    return base.model_copy(
        update={
            "target": target,
            "concurrency": point.threads,
            "duration": spec.duration,
            "prepare": prepare,
            "workload": workload,
            "range_engine": ranged,
            "error_handling": errors,
            "multi_endpoint": None,
            "autotune": None,
        }
    )
