"""The report's charts per stage: the percentile spectrum of the merged histograms, latency by size bucket,
agents and endpoints side by side, and the stage timeline with the time agents waited at barriers.

Each function returns a chart, or None when the stage has nothing to draw for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sbench.report.latency import TagLatency
from sbench.report.plotting import CLASS_COLORS, Chart, palette
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


def spectrum_figure(stage: Stage, tags: dict[str, TagLatency]) -> Chart | None:
    """Latency at every percentile of the stage's merged histograms, per op class (service time dashed)."""
    chart = Chart(f"Percentile spectrum: stage {stage.name}")
    for tag in sorted(tags, key=lambda t: (list(CLASS_COLORS).index(tags[t].op), t)):
        lat = tags[tag]
        pcts, values = lat.spectrum()
        if not pcts:
            continue
        chart.add(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "x": [100.0 / (100.0 - p) for p in pcts],
                "y": values,
                "name": f"{tag} ({lat.total.count:,} ops)",
                "marker": {"size": 4},
                "line": {"color": CLASS_COLORS[lat.op], "dash": "dash" if lat.service else "solid"},
                "customdata": pcts,
                "hovertemplate": "p%{customdata:.4f}: %{y:,} µs",
            }
        )
    if not chart.data:
        return None
    chart.x(type="log", tickvals=list(_TICKS), ticktext=list(_TICKS.values()), title={"text": "percentile"})
    chart.y(type="log", title={"text": "µs"})
    chart.layout["hovermode"] = "closest"
    return chart


def buckets_figure(stage: Stage) -> Chart | None:
    """p50 / p99 / p99.9 per op class and size bucket (summary.json), with the op counts."""
    operations = (stage.entry or {}).get("operations") or {}
    labels: list[str] = []
    counts: list[int] = []
    values: dict[str, list[Any]] = {key: [] for key in _PCT_COLORS}
    for op in CLASS_COLORS:
        for bucket in (operations.get(op) or {}).get("buckets") or []:
            labels.append(f"{op} {bucket['size_bucket']}")
            counts.append(bucket.get("ops", 0))
            for key in _PCT_COLORS:
                values[key].append((bucket.get("latency_us") or {}).get(key, 0))
    if not labels:
        return None
    chart = Chart(f"Latency by size bucket: stage {stage.name}")
    for key, color in _PCT_COLORS.items():
        chart.add(
            {
                "type": "bar",
                "x": labels,
                "y": values[key],
                "name": key.removesuffix("_us").replace("p999", "p99.9"),
                "marker": {"color": color},
                "customdata": counts,
                "hovertemplate": "%{y:,} µs (%{customdata:,} ops)",
            }
        )
    chart.layout.update(barmode="group", hovermode="closest")
    chart.y(type="log", title={"text": "µs"})
    return chart


def agents_compare_figure(stage: Stage) -> Chart | None:
    """Each agent's ops/s over its own time in the stage, and its errors (distributed stages)."""
    agents = [a for a in stage.agents if a.get("duration_s")]
    if len(agents) < 2:
        return None
    names = [str(a["agent_id"]) for a in agents]
    chart = Chart(f"Agents side by side: stage {stage.name}", secondary_y=True)
    chart.add(
        {
            "type": "bar",
            "x": names,
            "y": [a["ops"] / a["duration_s"] for a in agents],
            "name": "ops/s",
            "marker": {"color": palette(len(agents))},
        }
    )
    chart.add(
        {
            "type": "scatter",
            "mode": "markers",
            "x": names,
            "y": [a.get("errors", 0) for a in agents],
            "name": "errors",
            "marker": {"color": "#d62728", "size": 10, "symbol": "x"},
        },
        secondary=True,
    )
    chart.y(title={"text": "ops/s"})
    chart.y(secondary=True, title={"text": "errors"}, rangemode="tozero")
    chart.layout["hovermode"] = "closest"
    return chart


def endpoints_figure(stage: Stage) -> Chart | None:
    """Requests, errors and p99 per endpoint (multi-endpoint stages)."""
    endpoints = (stage.entry or {}).get("endpoints") or []
    if len(endpoints) < 2:
        return None
    names = [str(e.get("uri", "")) for e in endpoints]
    chart = Chart(f"Endpoints side by side: stage {stage.name}", secondary_y=True)
    chart.add(
        {
            "type": "bar",
            "x": names,
            "y": [e.get("requests", 0) for e in endpoints],
            "name": "requests",
            "marker": {"color": palette(len(endpoints))},
        }
    )
    chart.add(
        {
            "type": "bar",
            "x": names,
            "y": [e.get("errors", 0) for e in endpoints],
            "name": "errors",
            "marker": {"color": "#d62728"},
        }
    )
    chart.add(
        {
            "type": "scatter",
            "mode": "markers",
            "x": names,
            "name": "p99 µs",
            "y": [(e.get("latency_us") or {}).get("p99_us", 0) for e in endpoints],
            "marker": {"size": 10, "color": "#444444"},
        },
        secondary=True,
    )
    chart.y(title={"text": "requests"})
    chart.y(secondary=True, title={"text": "p99 µs"}, rangemode="tozero")
    chart.layout.update(barmode="group", hovermode="closest")
    return chart


def timeline_figure(stages: Sequence[Stage], run_start_ms: int) -> Chart | None:
    """One bar per stage from its first op to its end; in distributed stages one bar per agent for its own
    time, followed in grey by the time it then waited for the slowest agent (the barrier)."""
    timed = [s for s in stages if s.start_ms and run_start_ms]
    if not timed:
        return None
    rows: list[str] = []
    bases: list[float] = []
    lengths: list[float] = []
    colors: list[str] = []
    texts: list[str] = []

    def bar(label: str, base: float, length: float, color: str, text: str) -> None:
        rows.append(label)
        bases.append(base)
        lengths.append(max(length, 0.0))
        colors.append(color)
        texts.append(text)

    for stage, color in zip(timed, palette(len(timed)), strict=True):
        start = (stage.start_ms - run_start_ms) / 1000
        skew = (stage.entry or {}).get("start_skew_ms")
        skew_text = f", start skew {skew} ms" if skew is not None else ""
        bar(
            stage.name,
            start,
            stage.wall_s,
            color,
            f"{stage.name}: {stage.wall_s:.2f} s, {stage.status}{skew_text}",
        )
        if len(stage.agents) > 1:
            for agent in stage.agents:
                own = float(agent.get("duration_s") or 0.0)
                label = f"{stage.name} · {agent['agent_id']}"
                bar(label, start, own, color, f"{agent['agent_id']}: {own:.2f} s of work")
                wait = stage.wall_s - own
                bar(
                    label,
                    start + own,
                    wait,
                    "#bbbbbb",
                    f"{agent['agent_id']}: {wait:.2f} s waiting at the barrier",
                )
    chart = Chart(
        "Stage timeline (grey: waiting at the barrier for the slowest agent)",
        height=max(240, 36 * len(set(rows)) + 120),
        legend=False,
    )
    chart.add(
        {
            "type": "bar",
            "orientation": "h",
            "y": rows,
            "x": lengths,
            "base": bases,
            "marker": {"color": colors},
            "text": texts,
            "textposition": "none",
            "hovertemplate": "%{text}<extra></extra>",
        }
    )
    chart.y(autorange="reversed", type="category")
    chart.x(title={"text": "seconds since the run started"})
    chart.layout["hovermode"] = "closest"
    return chart
