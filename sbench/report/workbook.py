"""`sbench analyze`: results directories into one xlsx workbook, as sai3-analyze makes it (one worksheet per
TSV, tab names of at most 31 characters `{run}-{file}`), plus a first sheet with the runs side by side.

Every line of a TSV is one row of its sheet, cells that are numbers are stored as numbers, and the header
row of the (first) table is bold and frozen, so the sheet scrolls under it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter

from sbench.report.htmlreport import run_status
from sbench.report.rundir import RunDir
from sbench.report.stages import CLASSES, run_stages
from sbench.report.tsvfile import Cell, read_lines
from sbench.results.atomic import replace_atomic
from sbench.results.resultsdir import AGENTS_DIR
from sbench.ui.tables import describe_load

MAX_SHEET_NAME = 31
#: what Excel refuses in a sheet name
_BAD = re.compile(r"[\[\]:*?/\\]")
#: sbench's and sai3-bench's default directory names: prefix, date, time (HHMMSS or HHMM), config stem
_STAMPED = re.compile(r"^(?:sbench|sai3)-\d{4}(\d{4})-(\d{4})\d{0,2}-(.+)$")
SUMMARY_SHEET = "runs"
#: the side-by-side sheet: per stage and op class, these figures (attribute of ClassFigures, title)
_FIGURES = (
    ("ops_per_sec", "ops/s"),
    ("mib_per_sec", "MiB/s"),
    ("p50", "p50 µs"),
    ("p99", "p99 µs"),
    ("p999", "p99.9 µs"),
    ("errors", "errors"),
)
_BOLD = Font(bold=True)


def run_tag(name: str) -> str:
    """A short name for a run: `MMDD-HHMM-<config>` for default directory names (as sai3-analyze, which
    also drops a `sai3-` prefix of the config's name), else the directory name."""
    match = _STAMPED.match(name)
    if not match:
        return name
    config = match.group(3).removeprefix("sai3-").removeprefix("sbench-")
    return f"{match.group(1)}-{match.group(2)}-{config}"


def file_tag(run: RunDir, path: Path) -> str:
    """`workload`, `prepare`, `03_execute`, `perf_log`; `<agent>-<file>` under agents/."""
    stem = path.stem.removesuffix("_results")
    if path.parent.parent.name == AGENTS_DIR and path.parent.parent.parent == run.path:
        return f"{path.parent.name}-{stem}"
    return stem


class SheetNames:
    """Unique sheet names of at most 31 characters; the file part is kept, the run part shortened."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def make(self, run: str, file: str) -> str:
        run, file = _BAD.sub("_", run), _BAD.sub("_", file)[:16]
        name = f"{run[: MAX_SHEET_NAME - len(file) - 1].rstrip('-_')}-{file}"
        candidate, n = name, 2
        while candidate.lower() in self.used:
            suffix = f"~{n}"
            candidate = name[: MAX_SHEET_NAME - len(suffix)] + suffix
            n += 1
        self.used.add(candidate.lower())
        return candidate


def _row(ws: Any, cells: Iterable[Cell], bold: bool = False) -> list[Any]:
    if not bold:
        return list(cells)
    out = []
    for value in cells:
        cell = WriteOnlyCell(ws, value=value)
        cell.font = _BOLD
        out.append(cell)
    return out


def _tsv_sheet(wb: Workbook, name: str, path: Path) -> None:
    lines = read_lines(path)
    header = next((i for i, line in enumerate(lines) if line and not str(line[0]).startswith("#")), None)
    ws = wb.create_sheet(name)
    if header is not None:
        ws.freeze_panes = f"A{header + 2}"
        for i, title in enumerate(lines[header], start=1):
            ws.column_dimensions[get_column_letter(i)].width = max(10, min(40, len(str(title)) + 2))
    for i, line in enumerate(lines):
        ws.append(_row(ws, line, bold=i == header))


def side_by_side(runs: list[RunDir]) -> list[list[Cell]]:
    """The first sheet: one column per run, one row per fact and per stage, op class and figure."""
    stages = [run_stages(run) for run in runs]
    rows: list[list[Cell]] = [_row_of("run", [r.name for r in runs])]
    rows.append(_row_of("written by", [r.kind for r in runs]))
    rows.append(_row_of("status", [run_status(r)[0] for r in runs]))
    rows.append(_row_of("started", [str(r.metadata.get("start_time") or "") for r in runs]))
    rows.append(_row_of("duration s", [r.metadata.get("duration_secs") or "" for r in runs]))
    rows.append(_row_of("load model", [describe_load(r.load_model) if r.load_model else "" for r in runs]))
    names = list(dict.fromkeys(s.name for per_run in stages for s in per_run if s.did_io))
    for stage_name in names:
        found = [next((s for s in per_run if s.name == stage_name), None) for per_run in stages]
        for cls in CLASSES:
            figures = [s.classes.get(cls) if s else None for s in found]
            if not any(figures):
                continue
            for attr, title in _FIGURES:
                values = [getattr(f, attr) if f else None for f in figures]
                rows.append(_row_of(f"{stage_name} {cls} {title}", ["" if v is None else v for v in values]))
    return rows


def _row_of(label: str, values: list[Any]) -> list[Cell]:
    return [label, *values]


def write_workbook(runs: list[RunDir], out: Path, *, include_agents: bool = False) -> list[str]:
    """Write the workbook (atomically); returns the sheet names in order."""
    wb = Workbook(write_only=True)
    names = SheetNames()
    first = wb.create_sheet(SUMMARY_SHEET)
    names.used.add(SUMMARY_SHEET)
    first.freeze_panes = "B2"
    first.column_dimensions["A"].width = 34
    for i, row in enumerate(side_by_side(runs)):
        first.append(_row(first, row, bold=i == 0))
    for run in runs:
        tag = run_tag(run.name)
        for path in run.tsv_files(include_agents):
            _tsv_sheet(wb, names.make(tag, file_tag(run, path)), path)
    replace_atomic(out, lambda tmp: wb.save(tmp))
    return wb.sheetnames
