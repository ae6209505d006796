"""The live dashboard on a terminal: what ui.live knows about the run, laid out with rich.

Top to bottom: a progress bar per stage (elapsed against the duration for timed stages, objects done against
the total for prepare and cleanup, a full bar with its status for finished stages), a row per op class of
the last interval (ops/s, MiB/s, p50, p99) with the stage's errors so far, a row per agent in distributed
runs (state, ops/s, share of the ops, stuck flag) and a row per endpoint when the stage has several.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from rich.console import Group, RenderableType
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.progress import ProgressTracker
from sbench.metrics.snapshot import Snapshot
from sbench.ui.units import MIB, fmt_s, fmt_us

BAR_WIDTH = 36
#: an agent that sent nothing for this many intervals of the others is shown as silent
SILENT_AFTER = 3


@dataclass
class ClassRow:
    """One op class in the last interval, and its errors since the stage began."""

    ops_s: float = 0.0
    mib_s: float = 0.0
    p50: int = 0
    p99: int = 0
    errors: int = 0


@dataclass
class AgentRow:
    """One agent's last interval and its stuck flag (metrics.progress's rule, as the coordinator's)."""

    tracker: ProgressTracker
    ops_s: float = 0.0
    ops: int = 0
    active: bool = False
    silent_for: int = 0

    @property
    def state(self) -> str:
        if self.tracker.current.is_stuck:
            return "STUCK"
        if self.silent_for >= SILENT_AFTER:
            return "silent"
        return "running" if self.active else "idle"


@dataclass
class Board:
    """What the dashboard shows beyond the stage's own figures (ui.live.StageView)."""

    classes: dict[OpClass, ClassRow] = field(default_factory=dict)
    agents: dict[str, AgentRow] = field(default_factory=dict)
    #: uri -> (requests/s, errors, p99 µs) of the last interval
    endpoints: dict[str, tuple[float, int, int]] = field(default_factory=dict)
    #: stages that ended: (name, status, seconds)
    finished: list[tuple[str, str, float]] = field(default_factory=list)

    def reset(self) -> None:
        """A new stage: per-stage rows start over; finished stages stay."""
        self.classes.clear()
        self.agents.clear()
        self.endpoints.clear()

    def interval(self, snap: Snapshot) -> None:
        seconds = snap.duration_s or 1.0
        errors = snap.errors_by_op()
        for op in OpClass:
            ops = snap.total_ops(op)
            row = self.classes.get(op)
            if row is None and not ops and not errors.get(op):
                continue
            row = self.classes.setdefault(op, ClassRow())
            lat = snap.latency(op)
            row.ops_s, row.mib_s = ops / seconds, snap.total_bytes(op) / MIB / seconds
            row.p50, row.p99 = lat.p50, lat.p99
            row.errors += errors.get(op, 0)
        self.endpoints = {
            e["uri"]: (
                e["requests"] / seconds,
                e["errors"],
                LatencyHistogram.decode(e["latency"]).percentile(99) if e.get("latency") else 0,
            )
            for e in snap.endpoints
        }

    def agent_intervals(self, per_agent: dict[str, list[Snapshot]], stuck_intervals: int) -> None:
        for agent_id, snaps in per_agent.items():
            row = self.agents.get(agent_id)
            if row is None:
                row = self.agents[agent_id] = AgentRow(ProgressTracker(stuck_intervals, source=agent_id))
            for snap in snaps:
                progress = row.tracker.update(snap)
                row.ops = snap.total_ops()
                row.ops_s = progress.current_throughput
                row.active = bool(row.ops) or progress.progress_rate > 0
            row.silent_for = 0 if snaps else row.silent_for
        for agent_id, row in self.agents.items():
            if agent_id not in per_agent:
                row.silent_for += 1


def _bar(label: str, fraction: float, detail: str, style: str = "cyan") -> Table:
    grid = Table.grid(padding=(0, 1))
    grid.add_row(
        Text(f"{label:<14}", style="bold"),
        ProgressBar(total=1.0, completed=max(0.0, min(1.0, fraction)), width=BAR_WIDTH, complete_style=style),
        Text(detail),
    )
    return grid


def _stage_bars(
    board: Board, name: str, kind: str, started: float, expected_s: float | None, done: int, total: int
) -> list[RenderableType]:
    bars: list[RenderableType] = []
    for old, status, seconds in board.finished:
        style = "green" if status == "ok" else "red"
        bars.append(_bar(old, 1.0, f"{status} after {fmt_s(seconds)}", style))
    elapsed = time.monotonic() - started
    if total:
        bars.append(_bar(name, done / total, f"{kind}: {done:,} / {total:,} objects, {fmt_s(elapsed)}"))
    elif expected_s:
        left = f", {fmt_s(expected_s - elapsed)} left"
        bars.append(_bar(name, elapsed / expected_s, f"{kind}: {fmt_s(elapsed)} / {fmt_s(expected_s)}{left}"))
    else:
        bars.append(_bar(name, 0.0, f"{kind}: {fmt_s(elapsed)}"))
    return bars


def _classes_table(board: Board) -> Table:
    table = Table(title="op classes (last interval)", title_justify="left", expand=False)
    for col in ("op", "ops/s", "MiB/s", "p50", "p99", "errors"):
        table.add_column(col, justify="left" if col == "op" else "right")
    for op, row in sorted(board.classes.items()):
        table.add_row(
            op.label,
            f"{row.ops_s:,.0f}",
            f"{row.mib_s:,.2f}",
            fmt_us(row.p50),
            fmt_us(row.p99),
            Text(f"{row.errors:,}", style="red" if row.errors else "green"),
        )
    return table


def _agents_table(board: Board) -> Table:
    table = Table(title="agents", title_justify="left")
    for col in ("agent", "state", "ops/s", "share", "stuck"):
        table.add_column(col, justify="right" if col in ("ops/s", "share") else "left")
    total = sum(a.ops for a in board.agents.values())
    for agent_id, row in board.agents.items():
        stuck = row.tracker.current.stuck_reason if row.tracker.current.is_stuck else ""
        style = "red" if row.state == "STUCK" else "yellow" if row.state == "silent" else None
        table.add_row(
            agent_id,
            Text(row.state, style=style or ""),
            f"{row.ops_s:,.0f}",
            f"{100 * row.ops / total:.0f}%" if total else "-",
            Text(stuck, style="red"),
        )
    return table


def _endpoints_table(board: Board) -> Table:
    table = Table(title="endpoints (last interval)", title_justify="left")
    for col in ("endpoint", "req/s", "share", "errors", "p99"):
        table.add_column(col, justify="left" if col == "endpoint" else "right")
    total = sum(r for r, _, _ in board.endpoints.values())
    for uri, (rate, errors, p99) in board.endpoints.items():
        share = f"{100 * rate / total:.0f}%" if total else "-"
        table.add_row(uri, f"{rate:,.0f}", share, f"{errors:,}", fmt_us(p99))
    return table


def render(
    board: Board,
    *,
    name: str,
    kind: str,
    started: float,
    expected_s: float | None,
    done: int,
    total: int,
    errors: int,
    late: int,
) -> RenderableType:
    """The whole dashboard of the running stage."""
    parts: list[RenderableType] = _stage_bars(board, name, kind, started, expected_s, done, total)
    if board.classes:
        parts.append(_classes_table(board))
    if len(board.agents) > 1:
        parts.append(_agents_table(board))
    if len(board.endpoints) > 1:
        parts.append(_endpoints_table(board))
    footer = Text(f"errors {errors:,}", style="red" if errors else "green")
    if late:
        footer.append(f"   late (open loop) {late:,}", style="yellow")
    parts.append(footer)
    return Group(*parts)
