"""`sbench compare --html OUT`: the comparison as one self-contained page. Per stage: the table of figures
and changes, the changes as bars with the noise band as error bars, and the runs' throughput and p99
overlaid on the stage's own time axis (seconds since the stage began), so their shapes line up."""

from __future__ import annotations

import math
from pathlib import Path

from sbench.report.compare import (
    METRIC_TITLES,
    Comparison,
    Row,
    format_change,
    format_figure,
    verdict,
)
from sbench.report.htmlreport import run_status
from sbench.report.latency import stage_latency
from sbench.report.page import Page
from sbench.report.plotting import Chart, line, palette
from sbench.report.series import ops_rate, span
from sbench.report.stages import Stage
from sbench.results.atomic import write_text_atomic
from sbench.ui.tables import describe_load

_STAGE_AXIS = "seconds since the stage began"


def _changes_figure(rows: list[Row], names: list[str]) -> Chart | None:
    labels = [f"{r.cls} {METRIC_TITLES[r.metric]}" for r in rows]
    chart = Chart("Change against the base (error bars: the noise band)")
    for i, (name, color) in enumerate(zip(names, palette(len(names)), strict=True)):
        changes = [r.others[i].change for r in rows]
        finite = [c if c is not None and not math.isinf(c) else None for c in changes]
        if not any(c is not None for c in finite):
            continue
        chart.add(
            {
                "type": "bar",
                "x": labels,
                "y": finite,
                "name": name,
                "marker": {"color": color},
                "error_y": {"type": "data", "array": [r.others[i].band or 0 for r in rows], "visible": True},
            }
        )
    if not chart.data:
        return None
    chart.layout.update(barmode="group", hovermode="closest")
    chart.y(title={"text": "change against the base, %"})
    return chart


def _overlay_figure(stages: list[tuple[str, Stage | None]]) -> Chart | None:
    """ops/s (all classes) and p99 per class of every run, from each stage's start."""
    chart = Chart("Throughput and p99 over the stage, runs overlaid", rows=2, height=560)
    for (name, stage), color in zip(stages, palette(len(stages)), strict=True):
        if stage is None or not stage.perf:
            continue
        start = (span(stage.perf) or (0.0, 0.0))[0]
        ops = ops_rate(stage.perf, "ALL", name)
        chart.add(line([x - start for x in ops.x], ops.y, name, color), row=1)
        if stage.hlog is None:
            continue
        for tag, lat in stage_latency(stage.hlog).items():
            if not lat.service:
                dash = {"GET": "solid", "PUT": "dash", "META": "dot"}.get(tag, "solid")
                xs = [x - start for x in lat.x]
                chart.add(line(xs, lat.values[99.0], f"{name} {tag} p99", color, line={"dash": dash}), row=2)
    if not chart.data:
        return None
    chart.y(1, title={"text": "ops/s"}, rangemode="tozero")
    chart.y(2, title={"text": "p99 µs (GET solid, PUT dashed, META dotted)"}, type="log")
    chart.x(title={"text": _STAGE_AXIS})
    return chart


def build_compare_page(comparison: Comparison) -> str:
    base = comparison.base.run
    others = [o.run for o in comparison.others]
    page = Page(f"sbench compare: {base.name}")
    page.heading(f"{base.name} against {', '.join(o.name for o in others)}", 1)
    page.table(
        ("role", "run", "written by", "status", "load model", "directory"),
        [
            [
                role,
                r.name,
                r.kind,
                run_status(r)[0],
                describe_load(r.load_model) if r.load_model else "",
                str(r.path.resolve()),
            ]
            for role, r in [("base", base), *(("other", o) for o in others)]
        ],
    )
    page.paragraph(
        "A change is within noise when it is smaller than twice the larger of the two runs' variation from "
        "one perf-log interval to the next (coefficient of variation); `?` marks a change whose runs give no "
        "noise estimate."
    )
    for note in comparison.notes:
        page.paragraph(note, "note")
    names = [o.name for o in others]
    for stage, matches in comparison.pairs:
        rows = [r for r in comparison.rows if r.stage == stage.name]
        page.heading(f"Stage {stage.name} ({stage.type})")
        columns = ["class", "figure", base.name]
        for name in names:
            columns += [name, "change", "noise ±", "verdict"]
        table, css = [], []
        for row in rows:
            cells: list[object] = [row.cls, METRIC_TITLES[row.metric], format_figure(row.metric, row.base)]
            words = []
            for delta in row.others:
                word = verdict(row.metric, delta)
                words.append(word)
                band = "n/a" if delta.band is None else f"{delta.band:.1f}%"
                cells += [format_figure(row.metric, delta.value), format_change(delta.change), band, word]
            table.append(cells)
            css.append(
                "worse"
                if any(w.startswith("worse") for w in words)
                else "better"
                if any(w.startswith("better") for w in words)
                else "within"
            )
        page.table(columns, table, css)
        page.chart(_changes_figure(rows, names), "no change to draw")
        runs = [(base.name, stage), *zip(names, matches, strict=True)]
        page.chart(_overlay_figure(runs), "no perf-log intervals in these runs")
    return page.html()


def write_compare_page(comparison: Comparison, out: Path) -> Path:
    return write_text_atomic(out, build_compare_page(comparison))
