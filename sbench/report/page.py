"""One self-contained HTML page: text, tables and charts, with plotly.js inlined once in its head, so the
file opens from disk with no network and no server. Every text that comes from a results file is escaped.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from sbench.report.plotting import Chart, plotly_js

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em auto; max-width: 1240px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 0.2em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: 0.6em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f8f8f8; padding: 0.8em; overflow-x: auto; font-size: 0.85em; }
.badge { display: inline-block; padding: 0.15em 0.7em; border-radius: 0.3em; color: #fff; font-weight: bold; }
.SUCCESS { background: #2ca02c; } .FAILURE { background: #d62728; } .ABORTED { background: #ff7f0e; }
.UNKNOWN { background: #7f7f7f; } .note { color: #666; font-style: italic; }
.within { color: #666; } .worse { color: #d62728; font-weight: bold; }
.better { color: #2ca02c; font-weight: bold; }
"""


class Page:
    """Parts are added in reading order; `html()` gives the whole document."""

    def __init__(self, title: str) -> None:
        self.title = title
        self.parts: list[str] = []

    def heading(self, text: str, level: int = 2) -> None:
        self.parts.append(f"<h{level}>{escape(text)}</h{level}>")

    def raw(self, html: str) -> None:
        """HTML built by the caller (its texts already escaped)."""
        self.parts.append(html)

    def paragraph(self, text: str, css: str = "") -> None:
        cls = f' class="{css}"' if css else ""
        self.parts.append(f"<p{cls}>{escape(text)}</p>")

    def table(
        self, columns: Sequence[str], rows: Sequence[Sequence[object]], css: Sequence[str] = ()
    ) -> None:
        """Numbers right-aligned; `css` optionally gives one class per row (e.g. a comparison verdict)."""
        head = "".join(f"<th>{escape(c)}</th>" for c in columns)
        body = []
        for i, row in enumerate(rows):
            cells = "".join(
                f'<td class="num">{escape(_fmt(v))}</td>'
                if isinstance(v, int | float)
                else f"<td>{escape(str(v))}</td>"
                for v in row
            )
            cls = f' class="{css[i]}"' if i < len(css) and css[i] else ""
            body.append(f"<tr{cls}>{cells}</tr>")
        self.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def pre(self, text: str, summary: str | None = None) -> None:
        block = f"<pre>{escape(text)}</pre>"
        self.parts.append(
            f"<details><summary>{escape(summary)}</summary>{block}</details>" if summary else block
        )

    def chart(self, fig: Chart | None, missing: str) -> None:
        """The chart, or `missing` as a note when there is nothing to draw."""
        if fig is None:
            self.paragraph(missing, "note")
        else:
            self.parts.append(fig.html())

    def html(self) -> str:
        return (
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>{escape(self.title)}</title><style>{_STYLE}</style>"
            f'<script type="text/javascript">{plotly_js()}</script></head><body>\n'
            + "\n".join(self.parts)
            + "\n</body></html>\n"
        )


def _fmt(value: object) -> str:
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    return str(value)
