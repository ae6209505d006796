"""The look shared by every chart (colours, axes, size) and the HTML of one chart without plotly.js, which a
page embeds once (page.py)."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

#: one colour per op class, used on every chart of a report or comparison
CLASS_COLORS = {"GET": "#1f77b4", "PUT": "#d62728", "META": "#2ca02c", "ALL": "#444444"}
#: agents, endpoints, error classes, runs: in this order
PALETTE: tuple[str, ...] = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
)
TIME_AXIS = "seconds since the run started"
_CONFIG = {"displaylogo": False, "responsive": True}
_ids = itertools.count(1)


def palette(n: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def styled(fig: go.Figure, title: str, *, height: int = 380, legend: bool = True) -> go.Figure:
    fig.update_layout(
        title={"text": title, "x": 0.01},
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 20, "t": 50, "b": 50},
        showlegend=legend,
        legend={"orientation": "h", "y": -0.18},
        hovermode="x unified",
    )
    return fig


def shade_stages(fig: go.Figure, spans: Sequence[tuple[str, float, float]]) -> None:
    """A light band and a label for each stage (name, start, end in run seconds) behind the lines."""
    for i, (name, start, end) in enumerate(spans):
        fig.add_vrect(
            x0=start,
            x1=end,
            fillcolor="#888888" if i % 2 else "#bbbbbb",
            opacity=0.12,
            line_width=0,
            layer="below",
            annotation_text=name,
            annotation_position="top left",
            annotation_font_size=10,
        )


def chart_html(fig: go.Figure) -> str:
    """The chart's div and the script that draws it (plotly.js itself is in the page's head)."""
    return pio.to_html(
        fig, full_html=False, include_plotlyjs=False, div_id=f"chart-{next(_ids)}", config=_CONFIG
    )


def plotly_js() -> str:
    """plotly.js as shipped with the plotly package: inlined, the page needs no network."""
    return get_plotlyjs()
