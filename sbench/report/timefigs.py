"""The report's charts over the run's time axis: throughput per op class and per agent, latency percentiles
(exact, from the .hlog files), errors by error class, CPU and the open-loop schedule lag.

Each function returns a chart, or None when the run has nothing to draw for it (the page then says so).
"""

from __future__ import annotations

from collections.abc import Sequence

from sbench.report.latency import OVER_TIME, TagLatency
from sbench.report.plotting import CLASS_COLORS, TIME_AXIS, Chart, line, palette
from sbench.report.rundir import PerfRow
from sbench.report.series import active_classes, column, error_series, mib_rate, num, ops_rate, series, span
from sbench.report.stages import Stage

_DASH = {50.0: "dot", 99.0: "solid", 99.9: "dash"}
Spans = list[tuple[str, float, float]]


def stage_spans(stages: Sequence[Stage]) -> Spans:
    return [(s.name, *found) for s in stages if (found := span(s.perf))]


def throughput_figure(rows: Sequence[PerfRow], spans: Spans) -> Chart | None:
    """ops/s (top) and MiB/s (bottom) per op class over the whole run."""
    classes = active_classes(rows)
    if not classes:
        return None
    chart = Chart("Throughput per op class", rows=2, height=520)
    for cls in classes:
        ops = ops_rate(rows, cls)
        chart.add(line(ops.x, ops.y, cls, CLASS_COLORS[cls], legendgroup=cls), row=1)
        if cls != "META":
            mib = mib_rate(rows, cls)
            chart.add(line(mib.x, mib.y, cls, CLASS_COLORS[cls], legendgroup=cls, showlegend=False), row=2)
    chart.y(1, title={"text": "ops/s"}, rangemode="tozero")
    chart.y(2, title={"text": "MiB/s"}, rangemode="tozero")
    chart.x(title={"text": TIME_AXIS})
    chart.shade(spans)
    return chart


def agents_figure(agent_perf: dict[str, list[PerfRow]], spans: Spans) -> Chart | None:
    """Each agent's ops/s and MiB/s, stacked (the top line is the run's total); distributed runs only."""
    if len(agent_perf) < 2:
        return None
    chart = Chart("Throughput per agent (stacked)", rows=2, height=520)
    for (agent, rows), color in zip(agent_perf.items(), palette(len(agent_perf)), strict=True):
        ops, mib = ops_rate(rows, "ALL", agent), mib_rate(rows, "ALL", agent)
        style = {"line": {"width": 0.5}, "legendgroup": agent}
        chart.add(line(ops.x, ops.y, agent, color, stackgroup="ops", **style), row=1)
        chart.add(line(mib.x, mib.y, agent, color, stackgroup="mib", showlegend=False, **style), row=2)
    chart.y(1, title={"text": "ops/s"})
    chart.y(2, title={"text": "MiB/s"})
    chart.x(title={"text": TIME_AXIS})
    chart.shade(spans)
    return chart


def latency_figure(per_stage: Sequence[dict[str, TagLatency]], spans: Spans) -> Chart | None:
    """p50 / p99 / p99.9 per op class over time; in open loop the service time (lighter) next to the
    response time."""
    tags: dict[str, list[TagLatency]] = {}
    for stage in per_stage:
        for lat in stage.values():
            tags.setdefault(lat.op, []).append(lat)
    ops = [op for op in CLASS_COLORS if op in tags]
    if not ops:
        return None
    chart = Chart(
        "Latency percentiles over time (dotted p50, solid p99, dashed p99.9)",
        rows=len(ops),
        height=260 * len(ops) + 120,
        row_titles=ops,
    )
    for row, op in enumerate(ops, start=1):
        shown: set[str] = set()
        for lat in tags[op]:
            for pct in OVER_TIME:
                name = f"{op} {'service' if lat.service else 'response'} p{pct:g}"
                chart.add(
                    line(
                        lat.x,
                        lat.values[pct],
                        name,
                        CLASS_COLORS[op],
                        legendgroup=name,
                        showlegend=name not in shown,
                        opacity=0.55 if lat.service else 1.0,
                        line={"dash": _DASH[pct], "width": 1.5},
                    ),
                    row=row,
                )
                shown.add(name)
        chart.y(row, title={"text": "µs"}, type="log")
    chart.x(title={"text": TIME_AXIS})
    chart.shade(spans)
    return chart


def errors_figure(rows: Sequence[PerfRow], spans: Spans) -> Chart | None:
    found = error_series(rows)
    if not found:
        return None
    chart = Chart("Errors over time by error class")
    for s, color in zip(found, palette(len(found)), strict=True):
        chart.add({"type": "bar", "x": s.x, "y": s.y, "name": s.name, "marker": {"color": color}})
    chart.layout["barmode"] = "stack"
    chart.x(title={"text": TIME_AXIS})
    chart.y(title={"text": "failed ops per interval"})
    chart.shade(spans)
    return chart


def cpu_figure(rows: Sequence[PerfRow], agent_perf: dict[str, list[PerfRow]], spans: Spans) -> Chart | None:
    """user / system / iowait % (mean over the agents' hosts), plus user+system per agent when several."""
    if not rows or not any(num(r, "cpu_user_pct") or num(r, "cpu_system_pct") for r in rows):
        return None
    chart = Chart("CPU over time")
    for col, name, color in (
        ("cpu_user_pct", "user", "#1f77b4"),
        ("cpu_system_pct", "system", "#ff7f0e"),
        ("cpu_iowait_pct", "iowait", "#7f7f7f"),
    ):
        s = column(rows, name, col)
        chart.add(line(s.x, s.y, name, color, stackgroup="cpu"))
    if len(agent_perf) > 1:
        for (agent, agent_rows), color in zip(agent_perf.items(), palette(len(agent_perf)), strict=True):
            s = series(agent_rows, agent, lambda r: num(r, "cpu_user_pct") + num(r, "cpu_system_pct"))
            chart.add(line(s.x, s.y, f"{agent} user+system", color, line={"dash": "dot"}))
    chart.x(title={"text": TIME_AXIS})
    chart.y(title={"text": "% of the host's CPUs"}, range=[0, 100])
    chart.shade(spans)
    return chart


def lag_figure(rows: Sequence[PerfRow], spans: Spans) -> Chart | None:
    """Open loop: how far behind the schedule ops started (p99 per interval) and how many started late."""
    if not any(num(r, "sched_lag_p99_us") or num(r, "late_ops") for r in rows):
        return None
    chart = Chart("Open-loop schedule lag", secondary_y=True)
    lag = column(rows, "schedule lag p99 (µs)", "sched_lag_p99_us")
    late = column(rows, "late ops (started > 1 ms late)", "late_ops", add=True)
    chart.add(line(lag.x, lag.y, lag.name, "#9467bd"))
    chart.add(
        {
            "type": "bar",
            "x": late.x,
            "y": late.y,
            "name": late.name,
            "marker": {"color": "#ff7f0e"},
            "opacity": 0.5,
        },
        secondary=True,
    )
    chart.y(title={"text": "µs"}, rangemode="tozero")
    chart.y(secondary=True, title={"text": "late ops per interval"}, rangemode="tozero")
    chart.x(title={"text": TIME_AXIS})
    chart.shade(spans)
    return chart
