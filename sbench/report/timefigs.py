"""The report's charts over the run's time axis: throughput per op class and per agent, latency percentiles
(exact, from the .hlog files), errors by error class, CPU and the open-loop schedule lag.

Each function returns a figure, or None when the run has nothing to draw for it (the page then says so).
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbench.report.latency import OVER_TIME, TagLatency
from sbench.report.plotting import CLASS_COLORS, TIME_AXIS, palette, shade_stages, styled
from sbench.report.rundir import PerfRow
from sbench.report.series import (
    Series,
    active_classes,
    column,
    error_series,
    mib_rate,
    num,
    ops_rate,
    series,
    span,
)
from sbench.report.stages import Stage

_DASH = {50.0: "dot", 99.0: "solid", 99.9: "dash"}


def stage_spans(stages: Sequence[Stage]) -> list[tuple[str, float, float]]:
    return [(s.name, *found) for s in stages if (found := span(s.perf))]


def _line(s: Series, color: str, **kw: object) -> go.Scatter:
    return go.Scatter(x=s.x, y=s.y, name=s.name, mode="lines", line={"color": color}, **kw)


def throughput_figure(rows: Sequence[PerfRow], spans: list[tuple[str, float, float]]) -> go.Figure | None:
    """ops/s (top) and MiB/s (bottom) per op class over the whole run."""
    classes = active_classes(rows)
    if not classes:
        return None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for cls in classes:
        color = CLASS_COLORS[cls]
        fig.add_trace(_line(ops_rate(rows, cls), color, legendgroup=cls), row=1, col=1)
        if cls != "META":
            fig.add_trace(_line(mib_rate(rows, cls), color, legendgroup=cls, showlegend=False), row=2, col=1)
    fig.update_yaxes(title_text="ops/s", row=1, col=1, rangemode="tozero")
    fig.update_yaxes(title_text="MiB/s", row=2, col=1, rangemode="tozero")
    fig.update_xaxes(title_text=TIME_AXIS, row=2, col=1)
    shade_stages(fig, spans)
    return styled(fig, "Throughput per op class", height=520)


def agents_figure(
    agent_perf: dict[str, list[PerfRow]], spans: list[tuple[str, float, float]]
) -> go.Figure | None:
    """Each agent's ops/s and MiB/s, stacked (the top line is the run's total); distributed runs only."""
    if len(agent_perf) < 2:
        return None
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08)
    for (agent, rows), color in zip(agent_perf.items(), palette(len(agent_perf)), strict=True):
        ops = ops_rate(rows, "ALL", agent)
        mib = mib_rate(rows, "ALL", agent)
        style = {"line": {"color": color, "width": 0.5}, "mode": "lines", "legendgroup": agent}
        fig.add_trace(go.Scatter(x=ops.x, y=ops.y, name=agent, stackgroup="ops", **style), row=1, col=1)
        fig.add_trace(
            go.Scatter(x=mib.x, y=mib.y, name=agent, stackgroup="mib", showlegend=False, **style),
            row=2,
            col=1,
        )
    fig.update_yaxes(title_text="ops/s", row=1, col=1)
    fig.update_yaxes(title_text="MiB/s", row=2, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=2, col=1)
    shade_stages(fig, spans)
    return styled(fig, "Throughput per agent (stacked)", height=520)


def latency_figure(
    per_stage: Sequence[dict[str, TagLatency]], spans: list[tuple[str, float, float]]
) -> go.Figure | None:
    """p50 / p99 / p99.9 per op class over time; in open loop the service time (dashed, lighter) next to
    the response time."""
    tags: dict[str, list[TagLatency]] = {}
    for stage in per_stage:
        for lat in stage.values():
            tags.setdefault(lat.op, []).append(lat)
    ops = [op for op in CLASS_COLORS if op in tags]
    if not ops:
        return None
    fig = make_subplots(rows=len(ops), cols=1, shared_xaxes=True, subplot_titles=ops, vertical_spacing=0.07)
    for row, op in enumerate(ops, start=1):
        for lat in tags[op]:
            for pct in OVER_TIME:
                name = f"{op} {'service' if lat.service else 'response'} p{pct:g}"
                fig.add_trace(
                    go.Scatter(
                        x=lat.x,
                        y=lat.values[pct],
                        name=name,
                        mode="lines",
                        legendgroup=name,
                        showlegend=lat is next(t for t in tags[op] if t.tag == lat.tag),
                        opacity=0.55 if lat.service else 1.0,
                        line={"color": CLASS_COLORS[op], "dash": _DASH[pct], "width": 1.5},
                    ),
                    row=row,
                    col=1,
                )
        fig.update_yaxes(title_text="µs", type="log", row=row, col=1)
    fig.update_xaxes(title_text=TIME_AXIS, row=len(ops), col=1)
    shade_stages(fig, spans)
    return styled(
        fig,
        "Latency percentiles over time (dotted p50, solid p99, dashed p99.9)",
        height=260 * len(ops) + 120,
    )


def errors_figure(rows: Sequence[PerfRow], spans: list[tuple[str, float, float]]) -> go.Figure | None:
    found = error_series(rows)
    if not found:
        return None
    fig = go.Figure(
        [
            go.Bar(x=s.x, y=s.y, name=s.name, marker_color=c)
            for s, c in zip(found, palette(len(found)), strict=True)
        ]
    )
    fig.update_layout(barmode="stack", xaxis_title=TIME_AXIS, yaxis_title="failed ops per interval")
    shade_stages(fig, spans)
    return styled(fig, "Errors over time by error class")


def cpu_figure(
    rows: Sequence[PerfRow], agent_perf: dict[str, list[PerfRow]], spans: list[tuple[str, float, float]]
) -> go.Figure | None:
    """user / system / iowait % (mean over the agents' hosts), plus user+system per agent when several."""
    if not rows or not any(num(r, "cpu_user_pct") or num(r, "cpu_system_pct") for r in rows):
        return None
    fig = go.Figure()
    for col, name, color in (
        ("cpu_user_pct", "user", "#1f77b4"),
        ("cpu_system_pct", "system", "#ff7f0e"),
        ("cpu_iowait_pct", "iowait", "#7f7f7f"),
    ):
        s = column(rows, name, col)
        fig.add_trace(
            go.Scatter(x=s.x, y=s.y, name=name, stackgroup="cpu", mode="lines", line={"color": color})
        )
    if len(agent_perf) > 1:
        for (agent, agent_rows), color in zip(agent_perf.items(), palette(len(agent_perf)), strict=True):
            s = series(agent_rows, agent, lambda r: num(r, "cpu_user_pct") + num(r, "cpu_system_pct"))
            fig.add_trace(_line(s, color, line_dash="dot", name=f"{agent} user+system"))
    fig.update_layout(xaxis_title=TIME_AXIS, yaxis_title="% of the host's CPUs", yaxis_range=[0, 100])
    shade_stages(fig, spans)
    return styled(fig, "CPU over time")


def lag_figure(rows: Sequence[PerfRow], spans: list[tuple[str, float, float]]) -> go.Figure | None:
    """Open loop: how far behind the schedule ops started (p99 per interval) and how many started late."""
    if not any(num(r, "sched_lag_p99_us") or num(r, "late_ops") for r in rows):
        return None
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    lag = column(rows, "schedule lag p99 (µs)", "sched_lag_p99_us")
    late = column(rows, "late ops (started > 1 ms late)", "late_ops", add=True)
    fig.add_trace(_line(lag, "#9467bd"), secondary_y=False)
    fig.add_trace(
        go.Bar(x=late.x, y=late.y, name=late.name, marker_color="#ff7f0e", opacity=0.5), secondary_y=True
    )
    fig.update_yaxes(title_text="µs", secondary_y=False, rangemode="tozero")
    fig.update_yaxes(title_text="late ops per interval", secondary_y=True, rangemode="tozero")
    fig.update_xaxes(title_text=TIME_AXIS)
    shade_stages(fig, spans)
    return styled(fig, "Open-loop schedule lag")
