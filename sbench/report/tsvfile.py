"""Reading the TSV files of a results directory back: sbench's and sai3-bench's share one shape (`#` comment
lines, a header line, tab-separated rows, a blank line between two tables in a stage file).

Cells become numbers where they are numbers, so a spreadsheet can compute with them and a chart can plot
them; everything else stays text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

Cell = int | float | str


def cell(text: str) -> Cell:
    """An int, a finite float, or the text as it is (`nan`, `inf`, labels, URIs). A perf log of an hour
    has millions of cells: one parse per cell, no exception for the common cases."""
    if text.isdigit():
        return int(text)
    try:
        value = float(text)
    except ValueError:
        return text
    if not math.isfinite(value):
        return text
    return int(text) if text.lstrip("+-").isdigit() else value


def read_lines(path: Path) -> list[list[Cell]]:
    """Every line of the file as cells (a blank line is an empty list), comments included as one cell."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    return [[cell(part) for part in line.split("\t")] if line.strip() else [] for line in lines]


@dataclass
class Table:
    """One table of a TSV file: the `#` lines just above it, its header and its rows as column -> cell."""

    comments: list[str]
    columns: list[str]
    rows: list[dict[str, Cell]] = field(default_factory=list)


def read_tables(path: Path, *, convert: bool = True) -> list[Table]:
    """The tables of a TSV file in order (a results TSV has one; a stage TSV has the results table and the
    per-agent table). A row shorter than its header gets empty cells. Without `convert` cells stay text
    (perf logs: millions of cells of which a chart reads a few columns)."""
    tables: list[Table] = []
    comments: list[str] = []
    current: Table | None = None
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        if not line.strip():
            current = None
            continue
        if line.startswith("#"):
            current = None
            comments.append(line.lstrip("#").strip())
            continue
        parts = line.split("\t")
        if current is None:
            current = Table(comments, parts)
            tables.append(current)
            comments = []
            continue
        parts += [""] * (len(current.columns) - len(parts))
        values = [cell(v) for v in parts] if convert else parts
        current.rows.append(dict(zip(current.columns, values, strict=False)))
    return tables


def read_table(path: Path, *, convert: bool = True) -> Table:
    """The first table of a TSV file (an empty one when the file has none)."""
    tables = read_tables(path, convert=convert)
    return tables[0] if tables else Table([], [])
