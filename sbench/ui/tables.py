"""The final summary table (sai3's console summary: per class ops, ops/s, MiB/s and latency percentiles),
shown on the terminal with rich and kept as plain text in console_log.txt."""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.results.console import ConsoleLog
from sbench.ui.units import MIB, fmt_us


def phase_table(title: str, snap: Snapshot, wall_s: float, *, open_loop: bool = False) -> Table:
    """One phase: a row per op class with ops, rates, response-time percentiles (and service p99 in open
    loop) and errors, plus a total row."""
    table = Table(title=title, title_justify="left")
    for col in ("op", "ops", "ops/s", "MiB/s", "mean", "p50", "p95", "p99", "max", "errors"):
        table.add_column(col, justify="left" if col == "op" else "right")
    if open_loop:
        table.add_column("svc p99", justify="right")
    rows: list[tuple[str, OpClass | None]] = [
        (op.label, op) for op in OpClass if snap.total_ops(op) or snap.errors_total(op)
    ]
    rows.append(("ALL", None))
    for label, op in rows:
        ops = snap.total_ops(op)
        lat = snap.latency(op)
        cells = [
            label,
            f"{ops:,}",
            f"{ops / wall_s:,.1f}" if wall_s > 0 else "0",
            f"{snap.total_bytes(op) / MIB / wall_s:,.2f}" if wall_s > 0 else "0",
            fmt_us(lat.mean),
            fmt_us(lat.p50),
            fmt_us(lat.p95),
            fmt_us(lat.p99),
            fmt_us(lat.max),
            f"{snap.errors_total(op):,}",
        ]
        if open_loop:
            cells.append(fmt_us(snap.service_latency(op).p99))
        table.add_row(*cells, style="bold" if op is None else None)
    return table


def print_report(
    log: ConsoleLog, console: Console, tables: Sequence[Table], lines: Sequence[str], plain_width: int = 120
) -> None:
    """Show the tables (rich) and the closing lines; the transcript gets the same as plain text."""
    for table in tables:
        console.print(table)
        buf = io.StringIO()
        Console(file=buf, width=plain_width, force_terminal=False, color_system=None).print(table)
        log.record(buf.getvalue().rstrip("\n"))
    for line in lines:
        log.print(line)


def errors_line(snap: Snapshot) -> str | None:
    by_class = snap.errors_by_class()
    if not by_class:
        return None
    return "errors by class: " + ", ".join(f"{k.value}={n:,}" for k, n in sorted(by_class.items()))


def first_error_lines(snap: Snapshot) -> list[str]:
    """One line per error class the stage saw: how many ops failed with it and the first message (shown
    whether or not the stage failed, so a passing run still tells what the store answered)."""
    counts = snap.errors_by_class()
    return [
        f"   first {kind.value} error ({counts.get(kind, 0):,} failed ops): {message}"
        for kind, _at, message in snap.first_error_list()
    ]


def describe_load(model: dict[str, Any]) -> str:
    agents = model.get("agents") or 1
    concurrency = f"concurrency {model.get('concurrency')}" + (
        f" per agent x {agents} agents" if agents > 1 else ""
    )
    if model.get("kind") == "open":
        return (
            f"open loop: {model.get('iops'):,.0f} ops/s aggregate, {model.get('distribution')} arrivals, "
            f"{concurrency} (latency = response time from the intended start)"
        )
    return f"closed loop: {concurrency}"
