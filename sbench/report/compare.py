"""Comparing runs: per stage and op class, each figure of every run, its change against the base in %, and
whether the change lies within the noise band (report.noise).

Stages are matched by name (`execute`, `prepare`, a custom stage's name), else by type when each run has
exactly one stage of that type; stages that did no I/O are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from sbench.report.noise import band, stage_band
from sbench.report.rundir import RunDir
from sbench.report.stages import CLASSES, Stage, run_stages

METRICS: tuple[str, ...] = ("ops_per_sec", "mib_per_sec", "p50", "p99", "p999", "error_rate")
#: for which figures a rise is good (the others: a rise is a regression)
HIGHER_IS_BETTER = frozenset({"ops_per_sec", "mib_per_sec"})
METRIC_TITLES = {
    "ops_per_sec": "ops/s",
    "mib_per_sec": "MiB/s",
    "p50": "p50 µs",
    "p99": "p99 µs",
    "p999": "p99.9 µs",
    "error_rate": "error rate",
}


def change_pct(base: float | None, other: float | None) -> float | None:
    """(other - base) / base in %; from a base of zero any rise is +inf; None when either is unknown."""
    if base is None or other is None:
        return None
    if base == 0:
        return 0.0 if other == 0 else math.copysign(math.inf, other)
    return (other - base) / abs(base) * 100.0


@dataclass
class Delta:
    """One other run's figure against the base."""

    value: float | None
    change: float | None
    band: float | None

    @property
    def within_noise(self) -> bool | None:
        if self.change is None or self.band is None:
            return None
        return abs(self.change) <= self.band


def format_figure(metric: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if metric == "error_rate":
        return f"{value:.4%}"
    return f"{value:,.2f}" if metric.endswith("sec") else f"{value:,.0f}"


def format_change(change: float | None) -> str:
    if change is None:
        return "n/a"
    if math.isinf(change):
        return f"{'+' if change > 0 else '-'}inf %"
    return f"{change:+.1f}%"


def verdict(metric: str, delta: Delta) -> str:
    """`within noise`, `better` or `worse` (with `?` when the runs give no noise estimate), or ``."""
    if delta.change is None:
        return ""
    if delta.change == 0 or delta.within_noise:
        return "within noise"
    good = (delta.change > 0) == (metric in HIGHER_IS_BETTER)
    return ("better" if good else "worse") + ("" if delta.band is not None else "?")


@dataclass
class Row:
    stage: str
    cls: str
    metric: str
    base: float | None
    others: list[Delta]


@dataclass
class RunStages:
    run: RunDir
    stages: list[Stage]

    def find(self, like: Stage) -> Stage | None:
        """This run's stage that corresponds to `like` (see the module docstring)."""
        for stage in self.stages:
            if stage.name == like.name:
                return stage
        same = [s for s in self.stages if s.type == like.type]
        return same[0] if len(same) == 1 else None


@dataclass
class Comparison:
    base: RunStages
    others: list[RunStages]
    rows: list[Row] = field(default_factory=list)
    #: stages compared: (base stage, the matching stage of each other run or None)
    pairs: list[tuple[Stage, list[Stage | None]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def row(self, stage: str, cls: str, metric: str) -> Row | None:
        for row in self.rows:
            if (row.stage, row.cls, row.metric) == (stage, cls, metric):
                return row
        return None


def io_stages(run: RunDir) -> RunStages:
    return RunStages(run, [s for s in run_stages(run) if s.did_io])


def _band(stage: Stage, run: RunDir, cls: str, metric: str) -> float | None:
    return stage_band(stage, cls, metric, cumulative_latency=run.kind == "sai3")


def compare_runs(base: RunDir, others: list[RunDir]) -> Comparison:
    comparison = Comparison(io_stages(base), [io_stages(o) for o in others])
    for stage in comparison.base.stages:
        matches = [o.find(stage) for o in comparison.others]
        comparison.pairs.append((stage, matches))
        for other, match in zip(comparison.others, matches, strict=True):
            if match is None:
                comparison.notes.append(
                    f"stage {stage.name!r} of {base.name} has no match in {other.run.name}"
                )
        classes = [c for c in CLASSES if c in stage.classes or any(m and c in m.classes for m in matches)]
        for cls in classes:
            mine = stage.classes.get(cls)
            for metric in METRICS:
                base_value = mine.metric(metric) if mine else None
                base_band = _band(stage, base, cls, metric) if mine else None
                deltas = []
                for other, match in zip(comparison.others, matches, strict=True):
                    figures = match.classes.get(cls) if match else None
                    value = figures.metric(metric) if figures else None
                    if match is not None and figures is None and metric in ("ops_per_sec", "mib_per_sec"):
                        value = 0.0  # the class did not run there at all
                    other_band = _band(match, other.run, cls, metric) if figures and match else None
                    deltas.append(Delta(value, change_pct(base_value, value), band([base_band, other_band])))
                comparison.rows.append(Row(stage.name, cls, metric, base_value, deltas))
    for other in comparison.others:
        for stage in other.stages:
            if comparison.base.find(stage) is None:
                comparison.notes.append(
                    f"stage {stage.name!r} of {other.run.name} has no match in {base.name}"
                )
    return comparison
