"""Time series from perf-log rows: throughput per op class, errors per class, CPU and schedule lag, on the
run's time axis (perf_log's `elapsed_s`: seconds since the run started, at the end of each interval).

A long run has thousands of intervals; a chart needs no more points than it has pixels. Above MAX_POINTS,
consecutive intervals are merged into windows: rates and gauges are averaged over the window's intervals,
counts are added, so every point still stands for measured operations, only over a longer window.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

from sbench.report.rundir import PerfRow
from sbench.storage.base import ErrorClass

#: the most points a series gets on a chart
MAX_POINTS = 720
#: perf-log columns per op class: ops/s, MiB/s (META moves no bytes)
RATE_COLUMNS = {"GET": ("get_iops", "get_mbps"), "PUT": ("put_iops", "put_mbps"), "META": ("meta_iops", None)}
ERROR_COLUMNS = {kind.value: f"err_{kind.value}" for kind in ErrorClass}


def num(row: PerfRow, column: str | None) -> float:
    """A numeric cell (0 when absent or not a number: sai3's perf log lacks sbench's columns)."""
    if column is None:
        return 0.0
    value = row.get(column)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return 0.0
        return value if math.isfinite(value) else 0.0
    return float(value) if isinstance(value, int | float) else 0.0


@dataclass
class Series:
    """x: seconds since the run started; y: one value per point."""

    name: str
    x: list[float]
    y: list[float]


def windows(count: int, max_points: int = MAX_POINTS) -> int:
    """How many consecutive intervals each point merges."""
    return max(1, -(-count // max_points))


def series(
    rows: Sequence[PerfRow],
    name: str,
    value: Callable[[PerfRow], float],
    *,
    add: bool = False,
    max_points: int = MAX_POINTS,
) -> Series:
    """One value per row, merged into windows as the module docstring says (`add`: counts, else means)."""
    size = windows(len(rows), max_points)
    xs, ys = [], []
    for start in range(0, len(rows), size):
        part = rows[start : start + size]
        values = [value(r) for r in part]
        xs.append(num(part[-1], "elapsed_s"))
        ys.append(sum(values) if add else sum(values) / len(values))
    return Series(name, xs, ys)


def column(rows: Sequence[PerfRow], name: str, col: str, *, add: bool = False) -> Series:
    return series(rows, name, lambda r: num(r, col), add=add)


def interval_lengths(rows: Sequence[PerfRow]) -> list[float]:
    """Each interval's length in seconds: the time since the row before; the first row's from its own op
    count and rate (or the median of the others when it had no ops)."""
    if not rows:
        return []
    lengths: list[float | None] = [None]
    lengths += [max(0.0, num(b, "elapsed_s") - num(a, "elapsed_s")) for a, b in pairwise(rows)]
    if rows:
        ops = sum(num(rows[0], f"{c.lower()}_ops") for c in RATE_COLUMNS)
        rate = sum(num(rows[0], r) for r, _ in RATE_COLUMNS.values())
        if ops and rate:
            lengths[0] = ops / rate
    known = sorted(x for x in lengths if x)
    median = known[len(known) // 2] if known else 1.0
    return [x if x else median for x in lengths]


def ops_rate(rows: Sequence[PerfRow], cls: str, name: str | None = None) -> Series:
    """ops/s of one class, or of all (`ALL`)."""
    cols = [c for c, _ in RATE_COLUMNS.values()] if cls == "ALL" else [RATE_COLUMNS[cls][0]]
    return series(rows, name or cls, lambda r: sum(num(r, c) for c in cols))


def mib_rate(rows: Sequence[PerfRow], cls: str, name: str | None = None) -> Series:
    """MiB/s of one class, or of all (`ALL`)."""
    cols = [m for _, m in RATE_COLUMNS.values() if m] if cls == "ALL" else [RATE_COLUMNS[cls][1]]
    return series(rows, name or cls, lambda r: sum(num(r, c) for c in cols))


def active_classes(rows: Sequence[PerfRow]) -> list[str]:
    """The op classes with any ops in these rows, in GET, PUT, META order."""
    return [cls for cls, (rate, _) in RATE_COLUMNS.items() if any(num(r, rate) for r in rows)]


def error_series(rows: Sequence[PerfRow]) -> list[Series]:
    """Failed ops per interval (window) by error class; only the classes that occurred. Rows without
    per-class columns (sai3-bench) give the `errors` total."""
    found = [
        column(rows, kind, col, add=True)
        for kind, col in ERROR_COLUMNS.items()
        if any(num(r, col) for r in rows)
    ]
    if not found and any(num(r, "errors") for r in rows):
        found.append(column(rows, "errors", "errors", add=True))
    return found


def span(rows: Sequence[PerfRow]) -> tuple[float, float] | None:
    """(start, end) in run seconds of the intervals of these rows."""
    if not rows:
        return None
    return num(rows[0], "elapsed_s") - interval_lengths(rows)[0], num(rows[-1], "elapsed_s")
