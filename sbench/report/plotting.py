"""Charts as plotly figures in plain data (traces and layout as dicts), the look they all share, and the
HTML of one chart without plotly.js, which a page embeds once (page.py).

Plain data rather than plotly's validated Python objects: building a chart through them costs about 0.1 s
(property validation and deep copies), which a report written at the end of every run cannot afford;
plotly.js draws the same dicts. Rows of a chart share one time axis; an optional second y axis sits on the
right of the first row.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

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
_GAP = 0.08
#: plotly's "plotly_white" look, without loading its template
_AXIS = {"gridcolor": "#ebf0f8", "zerolinecolor": "#ebf0f8", "linecolor": "#ebf0f8", "automargin": True}
_ids = itertools.count(1)


def palette(n: int) -> list[str]:
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def _key(axis: str, n: int) -> str:
    return axis if n == 1 else f"{axis}{n}"


class Chart:
    """One figure: `rows` stacked plots over one shared x axis (see the module docstring)."""

    def __init__(
        self,
        title: str,
        *,
        rows: int = 1,
        height: int = 380,
        legend: bool = True,
        secondary_y: bool = False,
        row_titles: Sequence[str] = (),
    ) -> None:
        self.rows = rows
        self.data: list[dict[str, Any]] = []
        self.layout: dict[str, Any] = {
            "title": {"text": title, "x": 0.01},
            "paper_bgcolor": "white",
            "plot_bgcolor": "white",
            "font": {"color": "#2a3f5f"},
            "colorway": list(PALETTE),
            "height": height,
            "margin": {"l": 70, "r": 70 if secondary_y else 20, "t": 60, "b": 90},
            "showlegend": legend,
            "legend": {"orientation": "h", "y": -0.2, "yanchor": "top"},
            "hovermode": "x unified",
            "shapes": [],
            "annotations": [],
        }
        size = (1.0 - _GAP * (rows - 1)) / rows
        for row in range(1, rows + 1):
            top = 1.0 - (row - 1) * (size + _GAP)
            self.layout[_key("yaxis", row)] = {
                **_AXIS,
                "domain": [max(0.0, top - size), top],
                "anchor": _key("x", row),
            }
            xaxis: dict[str, Any] = {**_AXIS, "anchor": _key("y", row), "showticklabels": row == rows}
            if row > 1:
                xaxis["matches"] = "x"
            self.layout[_key("xaxis", row)] = xaxis
            if row <= len(row_titles):
                self.layout["annotations"].append(
                    {
                        "text": row_titles[row - 1],
                        "xref": "paper",
                        "yref": "paper",
                        "x": 0.5,
                        "y": top,
                        "xanchor": "center",
                        "yanchor": "bottom",
                        "showarrow": False,
                    }
                )
        self.secondary = _key("yaxis", rows + 1) if secondary_y else None
        if self.secondary:
            self.layout[self.secondary] = {
                "overlaying": "y",
                "side": "right",
                "anchor": "x",
                "showgrid": False,
            }

    def add(self, trace: dict[str, Any], *, row: int = 1, secondary: bool = False) -> None:
        """A trace (a plotly.js trace dict) on a row, or on the first row's right-hand axis."""
        if secondary and self.secondary:
            trace = {**trace, "xaxis": "x", "yaxis": self.secondary.replace("axis", "")}
        else:
            trace = {**trace, "xaxis": _key("x", row), "yaxis": _key("y", row)}
        self.data.append(trace)

    def x(self, row: int | None = None, **props: Any) -> None:
        """Properties of a row's x axis (default: the bottom row's, which shows the ticks)."""
        self.layout[_key("xaxis", row or self.rows)].update(props)

    def y(self, row: int = 1, *, secondary: bool = False, **props: Any) -> None:
        key = self.secondary if secondary and self.secondary else _key("yaxis", row)
        self.layout[key].update(props)

    def shade(self, spans: Sequence[tuple[str, float, float]]) -> None:
        """A light band and a label for each stage (name, start, end in run seconds) behind every row."""
        for i, (name, start, end) in enumerate(spans):
            self.layout["shapes"].append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": start,
                    "x1": end,
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": "#888888" if i % 2 else "#bbbbbb",
                    "opacity": 0.12,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
            self.layout["annotations"].append(
                {
                    "text": name,
                    "xref": "x",
                    "yref": "paper",
                    "x": start,
                    "y": 1,
                    "xanchor": "left",
                    "yanchor": "bottom",
                    "showarrow": False,
                    "font": {"size": 10},
                }
            )

    def html(self) -> str:
        """The chart's div and the script that draws it (plotly.js itself is in the page's head)."""
        figure = {"data": self.data, "layout": self.layout}
        return pio.to_html(
            figure,
            full_html=False,
            include_plotlyjs=False,
            div_id=f"chart-{next(_ids)}",
            config=_CONFIG,
            validate=False,
        )


def line(x: Sequence[float], y: Sequence[float | None], name: str, color: str, **kw: Any) -> dict[str, Any]:
    """A line trace."""
    return {
        "type": "scatter",
        "mode": "lines",
        "x": list(x),
        "y": list(y),
        "name": name,
        "line": {"color": color, **kw.pop("line", {})},
        **kw,
    }


def plotly_js() -> str:
    """plotly.js as shipped with the plotly package: inlined, the page needs no network."""
    return get_plotlyjs()
