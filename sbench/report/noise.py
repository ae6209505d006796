"""How much a figure moves on its own within a run: the noise band of a comparison.

A stage's figure (its ops/s, its p99) is one number, but the stage is made of intervals, and a figure that
swings by 20 % from one interval to the next cannot show a 5 % change between two runs as real. The band
is estimated from that swing: the coefficient of variation (standard deviation / mean) of the figure over
the stage's perf-log intervals, weighted (rates by interval length, latency percentiles by the interval's
op count, error rates by its attempts), and a change is "within noise" when it is smaller than twice the
larger of the two runs' variation: the range in which about 95 % of single intervals fall. The band is
wider than a confidence interval of the mean on purpose: two runs differ by more than their own intervals
do (load elsewhere, caches, the storage's state), and a regression gate that trips on that difference is a
gate that teams learn to ignore.

No band is given (None) for fewer than MIN_INTERVALS intervals, for a figure whose mean is zero, for the
latency of all classes together (no per-interval column; the comparison takes the widest class band), and
for sai3-bench's latency columns, which are cumulative since the stage began rather than per interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from sbench.report.series import RATE_COLUMNS, interval_lengths, num
from sbench.report.stages import Stage

MIN_INTERVALS = 3
#: how many standard deviations of one interval the band spans on each side
WIDTH = 2.0
LATENCY_METRICS = ("p50", "p99", "p999")


def _values(stage: Stage, cls: str, metric: str) -> tuple[list[float], list[float]] | None:
    """(value, weight) per interval of the stage, or None where the perf log cannot tell."""
    rows = stage.perf
    classes = list(RATE_COLUMNS) if cls == "ALL" else [cls]
    if metric in ("ops_per_sec", "mib_per_sec"):
        pick = 0 if metric == "ops_per_sec" else 1
        columns = [RATE_COLUMNS[c][pick] for c in classes]
        return [sum(num(r, c) for c in columns) for r in rows], interval_lengths(rows)
    if metric in LATENCY_METRICS:
        column = f"{cls.lower()}_{metric}_us"
        if cls == "ALL" or not rows or column not in rows[0]:
            return None
        counts = [num(r, f"{cls.lower()}_ops") for r in rows]
        return [num(r, column) for r in rows], counts
    if metric == "error_rate":
        if cls != "ALL":
            return None  # the perf log counts errors per error class, not per op class
        ops = [sum(num(r, f"{c.lower()}_ops") for c in RATE_COLUMNS) for r in rows]
        errors = [num(r, "errors") for r in rows]
        attempts = [o + e for o, e in zip(ops, errors, strict=True)]
        return [e / a if a else 0.0 for e, a in zip(errors, attempts, strict=True)], attempts
    return None


def variation(values: Sequence[float], weights: Sequence[float]) -> float | None:
    """Weighted standard deviation / weighted mean over the intervals with weight (None: cannot tell)."""
    pairs = [(v, w) for v, w in zip(values, weights, strict=True) if w > 0]
    total = sum(w for _, w in pairs)
    if len(pairs) < MIN_INTERVALS or total <= 0:
        return None
    mean = sum(v * w for v, w in pairs) / total
    if mean == 0:
        return None
    var = sum(w * (v - mean) ** 2 for v, w in pairs) / total
    return math.sqrt(var) / abs(mean)


def stage_band(stage: Stage, cls: str, metric: str, *, cumulative_latency: bool = False) -> float | None:
    """Half-width of one run's band in % of the figure (see the module docstring)."""
    if metric in LATENCY_METRICS and cumulative_latency:
        return None
    if metric in LATENCY_METRICS and cls == "ALL":
        bands = [stage_band(stage, c, metric) for c in RATE_COLUMNS if c in stage.classes]
        known = [b for b in bands if b is not None]
        return max(known) if known else None
    found = _values(stage, cls, metric)
    if found is None:
        return None
    cv = variation(*found)
    return None if cv is None else WIDTH * cv * 100.0


def band(bands: Sequence[float | None]) -> float | None:
    """The band of a comparison: the wider of the runs' own bands (None when neither is known)."""
    known = [b for b in bands if b is not None]
    return max(known) if known else None
