"""The stages of a results directory with their figures per op class (GET, PUT, META and ALL) and their
perf-log intervals: what the report plots and the comparison compares.

sbench directories give every figure exactly from summary.json; sai3-bench directories give what their
TSVs hold (NN_<stage>_results.tsv in distributed runs, prepare_results.tsv and workload_results.tsv or
results.tsv otherwise): no percentiles of all classes together and no error counts per class, which stay
None ("not known") rather than zero.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sbench.metrics.buckets import OpClass
from sbench.report.rundir import STAGE_TSV, PerfRow, RunDir
from sbench.report.tsvfile import Cell, Table, read_tables
from sbench.results.perf_log import stage_label

CLASSES: tuple[str, ...] = (*(op.label for op in OpClass), "ALL")
WORKLOAD_TYPES = ("execute", "hybrid", "workload")
_STAGE_HEADER = re.compile(r"^Stage (\d+) Results: (.+) \((\w+)\)$")
_DURATION = re.compile(r"^Duration: ([0-9.]+)s$")


@dataclass(frozen=True)
class ClassFigures:
    """One op class of one stage (None: the files do not tell)."""

    ops: int
    ops_per_sec: float
    mib_per_sec: float
    p50: float | None
    p99: float | None
    p999: float | None
    errors: int | None

    @property
    def error_rate(self) -> float | None:
        """Failed ops / attempted ops."""
        if self.errors is None:
            return None
        attempts = self.ops + self.errors
        return self.errors / attempts if attempts else 0.0

    def metric(self, name: str) -> float | None:
        return getattr(self, name)


@dataclass
class Stage:
    """One stage of a run (see the module docstring)."""

    number: int
    name: str
    type: str
    status: str = ""
    reason: str = ""
    start_ms: int = 0
    end_ms: int = 0
    wall_s: float = 0.0
    classes: dict[str, ClassFigures] = field(default_factory=dict)
    #: the stage's rows of perf_log.tsv, and of each agents/<id>/perf_log.tsv
    perf: list[PerfRow] = field(default_factory=list)
    agent_perf: dict[str, list[PerfRow]] = field(default_factory=dict)
    #: summary.json's entry (sbench) or None
    entry: dict[str, Any] | None = None
    #: per agent: agent_id, duration_s, ops, errors (summary.json or the stage TSV's per-agent table)
    agents: list[dict[str, Any]] = field(default_factory=list)
    hlog: Path | None = None

    @property
    def labels(self) -> set[str]:
        """The perf-log `stage` values this stage may carry (sai3's label or the stage's own name)."""
        return {stage_label(self.type), self.name}

    @property
    def is_workload(self) -> bool:
        return self.type in WORKLOAD_TYPES

    @property
    def did_io(self) -> bool:
        return any(f.ops or f.errors for f in self.classes.values())


def _figures_from_summary(section: dict[str, Any]) -> dict[str, ClassFigures]:
    def figures(part: dict[str, Any], errors: int) -> ClassFigures:
        lat = part.get("latency_us") or {}
        return ClassFigures(
            ops=int(part.get("ops", 0)),
            ops_per_sec=float(part.get("ops_per_sec", 0.0)),
            mib_per_sec=float(part.get("mib_per_sec", 0.0)),
            p50=lat.get("p50_us"),
            p99=lat.get("p99_us"),
            p999=lat.get("p999_us"),
            errors=errors,
        )

    out = {
        label: figures(part, int(part.get("errors", 0)))
        for label, part in (section.get("operations") or {}).items()
    }
    totals = section.get("totals") or {}
    out["ALL"] = figures(totals, int(totals.get("errors", 0)))
    return out


def _num(row: dict[str, Cell], name: str) -> float | None:
    value = row.get(name)
    return float(value) if isinstance(value, int | float) else None


def _figures_from_table(table: Table, agents: Table | None) -> dict[str, ClassFigures]:
    """sai3's 13-column table (+ sbench's p999_us): the `ALL` row of each class; ALL adds the classes up."""
    out: dict[str, ClassFigures] = {}
    for row in table.rows:
        if row.get("size_bucket") != "ALL" or row.get("operation") not in CLASSES:
            continue
        out[str(row["operation"])] = ClassFigures(
            ops=int(_num(row, "count") or 0),
            ops_per_sec=_num(row, "ops_per_sec") or 0.0,
            mib_per_sec=_num(row, "throughput_mibps") or 0.0,
            p50=_num(row, "p50_us"),
            p99=_num(row, "p99_us"),
            p999=_num(row, "p999_us"),
            errors=None,
        )
    errors = None
    if agents is not None and "errors" in agents.columns:
        errors = int(sum(_num(r, "errors") or 0 for r in agents.rows))
    if out:
        only = next(iter(out.values())) if len(out) == 1 else None
        out["ALL"] = ClassFigures(
            ops=sum(f.ops for f in out.values()),
            ops_per_sec=sum(f.ops_per_sec for f in out.values()),
            mib_per_sec=sum(f.mib_per_sec for f in out.values()),
            # percentiles of all classes together are in no TSV (unless there is one class)
            p50=only.p50 if only else None,
            p99=only.p99 if only else None,
            p999=only.p999 if only else None,
            errors=errors,
        )
    return out


def _stage_from_tsv(number: int, path: Path) -> Stage:
    tables = read_tables(path)
    match = STAGE_TSV.match(path.name)
    name, stype, wall = (match.group(2) if match else path.stem), "execute", 0.0
    for comment in tables[0].comments if tables else []:
        if header := _STAGE_HEADER.match(comment):
            name, stype = header.group(2), header.group(3)
        elif duration := _DURATION.match(comment):
            wall = float(duration.group(1))
    agents = tables[1] if len(tables) > 1 else None
    stage = Stage(number, name, stype, wall_s=wall)
    if tables:
        stage.classes = _figures_from_table(tables[0], agents)
    if agents is not None:
        stage.agents = [
            {
                "agent_id": str(r.get("agent_id", "")),
                "duration_s": _num(r, "duration_s") or 0.0,
                "ops": int(sum(_num(r, c) or 0 for c in ("get_ops", "put_ops", "meta_ops"))),
                "errors": int(_num(r, "errors") or 0),
            }
            for r in agents.rows
        ]
    return stage


def _legacy_stages(run: RunDir) -> list[Stage]:
    """sai3-bench without stage files: prepare_results.tsv, then workload_results.tsv (or results.tsv)."""
    stages = []
    for name, stype, files in (
        ("prepare", "prepare", ("prepare_results.tsv",)),
        ("execute", "execute", ("workload_results.tsv", "results.tsv")),
    ):
        path = next((run.path / f for f in files if (run.path / f).is_file()), None)
        if path is None:
            continue
        tables = read_tables(path)
        stage = Stage(len(stages) + 1, name, stype)
        stage.classes = _figures_from_table(tables[0], None) if tables else {}
        every = stage.classes.get("ALL")
        stage.wall_s = every.ops / every.ops_per_sec if every and every.ops_per_sec else 0.0
        stages.append(stage)
    return stages


def _stage_from_entry(entry: dict[str, Any], hlogs: dict[int, Path]) -> Stage:
    number = int(entry.get("number", 0))
    return Stage(
        number=number,
        name=str(entry.get("name", "")),
        type=str(entry.get("type", "")),
        status=str(entry.get("status", "")),
        reason=str(entry.get("reason", "")),
        start_ms=int(entry.get("start_ms") or 0),
        end_ms=int(entry.get("end_ms") or 0),
        wall_s=float(entry.get("wall_seconds") or 0.0),
        classes=_figures_from_summary(entry),
        entry=entry,
        agents=list(entry.get("agents") or []),
        hlog=hlogs.get(number),
    )


def _assign_perf(stages: list[Stage], rows: list[PerfRow]) -> list[list[PerfRow]]:
    """Each stage's rows: the perf log is in time order, one run of equal `stage` labels per stage that
    measured anything; a stage takes the next run when its label is one of the stage's."""
    runs: list[tuple[str, list[PerfRow]]] = []
    for row in rows:
        label = str(row.get("stage", ""))
        if runs and runs[-1][0] == label:
            runs[-1][1].append(row)
        else:
            runs.append((label, [row]))
    out: list[list[PerfRow]] = []
    pos = 0
    for stage in stages:
        if pos < len(runs) and runs[pos][0] in stage.labels:
            out.append(runs[pos][1])
            pos += 1
        else:
            out.append([])
    return out


def run_stages(run: RunDir) -> list[Stage]:
    """The run's stages in plan order, with figures and perf-log rows."""
    if run.summary is not None:
        stages = [_stage_from_entry(e, run.hlogs) for e in run.summary.get("stages") or []]
    elif run.stage_tsvs:
        stages = [_stage_from_tsv(n, p) for n, p in sorted(run.stage_tsvs.items())]
    else:
        stages = _legacy_stages(run)
    for stage, rows in zip(stages, _assign_perf(stages, run.perf), strict=True):
        stage.perf = rows
    for agent_id, agent_rows in run.agent_perf.items():
        for stage, rows in zip(stages, _assign_perf(stages, agent_rows), strict=True):
            if rows:
                stage.agent_perf[agent_id] = rows
    return stages
