"""What a sweep writes: every trial (autotune.tsv), each point over its trials with their spread
(autotune_summary.tsv), the best setting per size and op (autotune_best.tsv), and autotune.html with a chart
of the figure optimized for against threads, one line per size and ranged-GET setting.

A point's figure is the median over its successful trials; the spread is (max - min) / median of those
trials, so a "best" that won by less than its own spread is visibly a tie. A point with a failed trial is
reported but never chosen as best.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sbench.autotune.runner import Trial
from sbench.autotune.sweep import Point
from sbench.config.units import format_size
from sbench.report.page import Page
from sbench.report.plotting import Chart, line, palette
from sbench.results.atomic import write_text_atomic


@dataclass(frozen=True, slots=True)
class PointFigures:
    """One point's op over its trials."""

    point: Point
    op: str
    trials_ok: int
    trials: int
    mib_per_s: float
    ops_per_s: float
    p99_us: float
    spread: float
    #: why a trial failed (empty: every trial succeeded)
    failure: str

    def score(self, optimize_for: str) -> float:
        """Higher is better: MiB/s, or minus the p99 latency."""
        return self.mib_per_s if optimize_for == "throughput" else -self.p99_us


def summarize(trials: Sequence[Trial]) -> list[PointFigures]:
    groups: dict[tuple[int, str], list[Trial]] = {}
    for t in trials:
        groups.setdefault((t.point.number, t.op), []).append(t)
    out = []
    for (_, op), group in groups.items():
        good = [t for t in group if t.ok]
        mib = [t.mib_per_s for t in good]
        median = statistics.median(mib) if mib else 0.0
        bad = next((t for t in group if not t.ok), None)
        out.append(
            PointFigures(
                point=group[0].point,
                op=op,
                trials_ok=len(good),
                trials=len(group),
                mib_per_s=median,
                ops_per_s=statistics.median([t.ops_per_s for t in good]) if good else 0.0,
                p99_us=statistics.median([t.p99_us for t in good]) if good else 0.0,
                spread=(max(mib) - min(mib)) / median if len(mib) > 1 and median else 0.0,
                failure=f"trial {bad.trial}: {bad.status} ({bad.reason})" if bad else "",
            )
        )
    return out


def best_per_size(figures: Sequence[PointFigures], optimize_for: str) -> list[PointFigures]:
    """Per (size, op), the point with the best score among those whose every trial succeeded."""
    best: dict[tuple[int, str], PointFigures] = {}
    for f in figures:
        if f.failure or not f.trials_ok:
            continue
        key = (f.point.size, f.op)
        if key not in best or f.score(optimize_for) > best[key].score(optimize_for):
            best[key] = f
    return [best[k] for k in sorted(best)]


TRIAL_COLUMNS = [
    "point", "size_bytes", "size", "threads", "range_enabled", "range_threshold_mib", "trial", "op",
    "status", "ops", "errors", "ops_per_s", "mib_per_s", "p50_us", "p99_us", "results_dir", "reason",
]
SUMMARY_COLUMNS = [
    "point", "size_bytes", "size", "threads", "range_enabled", "range_threshold_mib", "op", "trials_ok",
    "trials", "median_mib_per_s", "median_ops_per_s", "median_p99_us", "spread", "failure",
]


def _point_cells(p: Point) -> list[object]:
    return [p.number, p.size, format_size(p.size), p.threads, p.range_enabled, p.range_threshold_mb]


def _tsv(columns: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def cell(v: object) -> str:
        text = f"{v:.3f}" if isinstance(v, float) else str(v)
        return text.replace("\t", " ").replace("\n", " ")

    return "\t".join(columns) + "\n" + "".join("\t".join(cell(v) for v in row) + "\n" for row in rows)


def _summary_row(f: PointFigures) -> list[object]:
    return [
        *_point_cells(f.point),
        f.op,
        f.trials_ok,
        f.trials,
        f.mib_per_s,
        f.ops_per_s,
        f.p99_us,
        f.spread,
        f.failure,
    ]


def write_outputs(
    out_dir: Path, trials: Sequence[Trial], optimize_for: str, title: str
) -> tuple[list[PointFigures], list[PointFigures]]:
    """Write the three TSVs and autotune.html; returns (every point's figures, the best per size)."""
    rows = [
        [
            *_point_cells(t.point),
            t.trial,
            t.op,
            t.status,
            t.ops,
            t.errors,
            t.ops_per_s,
            t.mib_per_s,
            t.p50_us,
            t.p99_us,
            str(t.results_dir.relative_to(out_dir))
            if t.results_dir.is_relative_to(out_dir)
            else t.results_dir,
            t.reason,
        ]
        for t in trials
    ]
    write_text_atomic(out_dir / "autotune.tsv", _tsv(TRIAL_COLUMNS, rows))
    figures = summarize(trials)
    write_text_atomic(
        out_dir / "autotune_summary.tsv", _tsv(SUMMARY_COLUMNS, [_summary_row(f) for f in figures])
    )
    best = best_per_size(figures, optimize_for)
    write_text_atomic(out_dir / "autotune_best.tsv", _tsv(SUMMARY_COLUMNS, [_summary_row(f) for f in best]))
    write_text_atomic(out_dir / "autotune.html", _page(figures, best, optimize_for, title))
    return figures, best


def _page(
    figures: Sequence[PointFigures], best: Sequence[PointFigures], optimize_for: str, title: str
) -> str:
    page = Page(title)
    page.heading(title, 1)
    goal = "highest median MiB/s" if optimize_for == "throughput" else "lowest median p99 latency"
    page.paragraph(f"Best per size: {goal} among points whose every trial succeeded.")
    page.table(
        ["op", "size", "threads", "ranged GETs", "MiB/s", "ops/s", "p99 µs", "spread"],
        [
            [
                f.op,
                format_size(f.point.size),
                f.point.threads,
                _ranged(f.point),
                f.mib_per_s,
                f.ops_per_s,
                f.p99_us,
                f"{f.spread:.0%}",
            ]
            for f in best
        ],
    )
    for op in dict.fromkeys(f.op for f in figures):
        page.chart(_chart([f for f in figures if f.op == op], op, optimize_for), f"{op}: nothing measured")
    failed = [f for f in figures if f.failure]
    if failed:
        page.heading("Points with a failed trial")
        page.table(["op", "point", "failure"], [[f.op, f.point.label, f.failure] for f in failed])
    return page.html()


def _ranged(p: Point) -> str:
    return f"on, objects >= {p.range_threshold_mb} MiB" if p.range_enabled else "off"


def _chart(figures: Sequence[PointFigures], op: str, optimize_for: str) -> Chart | None:
    if not figures:
        return None
    throughput = optimize_for == "throughput"
    chart = Chart(f"{op}: {'median MiB/s' if throughput else 'median p99 latency (µs)'} by threads")
    series: dict[tuple[int, bool, int], list[PointFigures]] = {}
    for f in figures:
        series.setdefault((f.point.size, f.point.range_enabled, f.point.range_threshold_mb), []).append(f)
    for color, (key, group) in zip(palette(len(series)), sorted(series.items()), strict=True):
        group.sort(key=lambda f: f.point.threads)
        size, _, _ = key
        name = f"{format_size(size)}, ranged GETs {_ranged(group[0].point)}"
        y = [(f.mib_per_s if throughput else f.p99_us) if f.trials_ok else None for f in group]
        chart.add(line([f.point.threads for f in group], y, name, color, mode="lines+markers"))
    chart.x(title={"text": "threads per agent"}, type="log")
    chart.y(title={"text": "MiB/s" if throughput else "p99 µs"}, rangemode="tozero")
    return chart
