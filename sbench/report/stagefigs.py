"""The report's charts per stage: the percentile spectrum of the merged histograms, latency by size bucket,
agents and endpoints side by side, and the stage timeline with the time agents waited at barriers.

Each function returns a figure, or None when the stage has nothing to draw for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from sbench.report.latency import TagLatency
from sbench.report.plotting import CLASS_COLORS, palette, styled
from sbench.report.stages import Stage

#: the spectrum's x axis: 1 / (1 - percentile), labelled as percentiles
_TICKS = {
    1: "0%",
    2: "50%",
    10: "90%",
    100: "99%",
    1e3: "99.9%",
    1e4: "99.99%",
    1e5: "99.999%",
    1e6: "99.9999%",
}
_PCT_COLORS = {"p50_us": "#9ecae1", "p99_us": "#3182bd", "p999_us": "#08519c"}


def spectrum_figure(stage: Stage, tags: dict[str, TagLatency]) -> go.Figure | None:
    """Latency at every percentile of the stage's merged histograms, per op class (service time dashed)."""
    fig = go.Figure()
    for tag in sorted(tags, key=lambda t: (list(CLASS_COLORS).index(tags[t].op), t)):
        lat = tags[tag]
        pcts, values = lat.spectrum()
        if not pcts:
            continue
        fig.add_trace(
            go.Scatter(
                x=[100.0 / (100.0 - p) for p in pcts],
                y=values,
                name=f"{tag} ({lat.total.count:,} ops)",
                mode="lines+markers",
                marker={"size": 4},
                line={"color": CLASS_COLORS[lat.op], "dash": "dash" if lat.service else "solid"},
                customdata=pcts,
                hovertemplate="p%{customdata:.4f}: %{y:,} µs",
            )
        )
    if not fig.data:
        return None
    fig.update_xaxes(
        type="log", tickvals=list(_TICKS), ticktext=list(_TICKS.values()), title_text="percentile"
    )
    fig.update_yaxes(type="log", title_text="µs")
    fig.update_layout(hovermode="closest")
    return styled(fig, f"Percentile spectrum: stage {stage.name}")


def buckets_figure(stage: Stage) -> go.Figure | None:
    """p50 / p99 / p99.9 per op class and size bucket (summary.json), with the op counts."""
    operations = (stage.entry or {}).get("operations") or {}
    labels, counts, values = [], [], {key: [] for key in _PCT_COLORS}
    for op in CLASS_COLORS:
        for bucket in (operations.get(op) or {}).get("buckets") or []:
            labels.append(f"{op} {bucket['size_bucket']}")
            counts.append(bucket.get("ops", 0))
            for key in _PCT_COLORS:
                values[key].append((bucket.get("latency_us") or {}).get(key, 0))
    if not labels:
        return None
    fig = go.Figure(
        [
            go.Bar(
                x=labels,
                y=values[key],
                name=key.removesuffix("_us").replace("p999", "p99.9"),
                marker_color=color,
                customdata=counts,
                hovertemplate="%{y:,} µs (%{customdata:,} ops)",
            )
            for key, color in _PCT_COLORS.items()
        ]
    )
    fig.update_layout(barmode="group", yaxis_type="log", yaxis_title="µs", hovermode="closest")
    return styled(fig, f"Latency by size bucket: stage {stage.name}")


def agents_compare_figure(stage: Stage) -> go.Figure | None:
    """Each agent's ops/s over its own time in the stage, and its errors (distributed stages)."""
    agents = [a for a in stage.agents if a.get("duration_s")]
    if len(agents) < 2:
        return None
    names = [str(a["agent_id"]) for a in agents]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=names,
            y=[a["ops"] / a["duration_s"] for a in agents],
            name="ops/s",
            marker_color=palette(len(agents)),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[a.get("errors", 0) for a in agents],
            name="errors",
            mode="markers",
            marker={"color": "#d62728", "size": 10, "symbol": "x"},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="ops/s", secondary_y=False)
    fig.update_yaxes(title_text="errors", secondary_y=True, rangemode="tozero")
    fig.update_layout(hovermode="closest")
    return styled(fig, f"Agents side by side: stage {stage.name}")


def endpoints_figure(stage: Stage) -> go.Figure | None:
    """Requests, errors and p99 per endpoint (multi-endpoint stages)."""
    endpoints = (stage.entry or {}).get("endpoints") or []
    if len(endpoints) < 2:
        return None
    names = [str(e.get("uri", "")) for e in endpoints]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(
        go.Bar(
            x=names,
            y=[e.get("requests", 0) for e in endpoints],
            name="requests",
            marker_color=palette(len(endpoints)),
        ),
        secondary_y=False,
    )
    fig.add_trace(
        go.Bar(x=names, y=[e.get("errors", 0) for e in endpoints], name="errors", marker_color="#d62728"),
        secondary_y=False,
    )
    fig.add_trace(
        go.Scatter(
            x=names,
            y=[(e.get("latency_us") or {}).get("p99_us", 0) for e in endpoints],
            name="p99 µs",
            mode="markers",
            marker={"size": 10, "color": "#444444"},
        ),
        secondary_y=True,
    )
    fig.update_yaxes(title_text="requests", secondary_y=False)
    fig.update_yaxes(title_text="p99 µs", secondary_y=True, rangemode="tozero")
    fig.update_layout(barmode="group", hovermode="closest")
    return styled(fig, f"Endpoints side by side: stage {stage.name}")


def timeline_figure(stages: Sequence[Stage], run_start_ms: int) -> go.Figure | None:
    """One bar per stage from its first op to its end; in distributed stages one bar per agent for its own
    time, followed in grey by the time it then waited for the slowest agent (the barrier)."""
    timed = [s for s in stages if s.start_ms and run_start_ms]
    if not timed:
        return None
    rows, bases, lengths, colors, texts = [], [], [], [], []

    def bar(label: str, base: float, length: float, color: str, text: str) -> None:
        rows.append(label)
        bases.append(base)
        lengths.append(max(length, 0.0))
        colors.append(color)
        texts.append(text)

    for stage, color in zip(timed, palette(len(timed)), strict=True):
        start = (stage.start_ms - run_start_ms) / 1000
        skew = (stage.entry or {}).get("start_skew_ms")
        bar(
            stage.name,
            start,
            stage.wall_s,
            color,
            f"{stage.name}: {stage.wall_s:.2f} s, {stage.status}"
            + (f", start skew {skew} ms" if skew is not None else ""),
        )
        if len(stage.agents) > 1:
            for agent in stage.agents:
                own = float(agent.get("duration_s") or 0.0)
                label = f"{stage.name} · {agent['agent_id']}"
                bar(label, start, own, color, f"{agent['agent_id']}: {own:.2f} s of work")
                bar(
                    label,
                    start + own,
                    stage.wall_s - own,
                    "#bbbbbb",
                    f"{agent['agent_id']}: {stage.wall_s - own:.2f} s waiting at the barrier",
                )
    fig = go.Figure(
        go.Bar(
            y=rows,
            x=lengths,
            base=bases,
            orientation="h",
            marker_color=colors,
            text=texts,
            hovertemplate="%{text}<extra></extra>",
            textposition="none",
            showlegend=False,
        )
    )
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(xaxis_title="seconds since the run started", hovermode="closest")
    return styled(
        fig,
        "Stage timeline (grey: waiting at the barrier for the slowest agent)",
        height=max(240, 36 * len(set(rows)) + 120),
        legend=False,
    )
