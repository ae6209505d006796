"""Live progress of a run: a rich display on a terminal, plain periodic lines otherwise (CI logs, pipes).

Either way every status line also lands in console_log.txt through the ConsoleLog, so the transcript shows
the progress a user saw. Figures come from the interval snapshots the engine emits: ops/s and MiB/s of the
last interval, p50/p99 of the last interval (exact, from its histograms), errors since the stage started.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from sbench.metrics.snapshot import Snapshot
from sbench.results.console import ConsoleLog

MIB = 1024 * 1024
#: a plain line at most this often (a live display refreshes every interval)
PLAIN_EVERY_S = 5.0


def fmt_us(value: float) -> str:
    """Latency for humans: µs below 1 ms, ms below 10 s, else s."""
    if value < 1000:
        return f"{value:.0f}µs"
    if value < 10_000_000:
        return f"{value / 1000:.2f}ms"
    return f"{value / 1e6:.1f}s"


def fmt_s(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


@dataclass
class StageView:
    """What the display knows about the running stage."""

    name: str
    type: str
    started: float
    expected_s: float | None = None
    errors: int = 0
    ops: int = 0
    ops_s: float = 0.0
    mib_s: float = 0.0
    p50: int = 0
    p99: int = 0
    done: int = 0
    total: int = 0
    late: int = 0

    def line(self) -> str:
        elapsed = time.monotonic() - self.started
        when = fmt_s(elapsed)
        if self.expected_s:
            when += f"/{fmt_s(self.expected_s)} (left {fmt_s(self.expected_s - elapsed)})"
        parts = [
            f"[{self.name}] {when}",
            f"{self.ops_s:,.0f} ops/s",
            f"{self.mib_s:,.2f} MiB/s",
            f"p50 {fmt_us(self.p50)}",
            f"p99 {fmt_us(self.p99)}",
            f"errors {self.errors:,}",
        ]
        if self.total:
            parts.append(f"objects {self.done:,}/{self.total:,}")
        elif self.ops:
            parts.append(f"ops {self.ops:,}")
        if self.late:
            parts.append(f"late {self.late:,}")
        return "  ".join(parts)


class LiveProgress:
    """Call `stage_started`, then `interval` for each snapshot, then `stage_ended`; `close()` at the end."""

    def __init__(self, log: ConsoleLog, *, tty: bool | None = None, stream: Any = None) -> None:
        self.log = log
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        # a pipe or CI log has no width; give tables room instead of rich's 80-column fallback
        self.console = Console(file=self.stream, force_terminal=self.tty, width=None if self.tty else 132)
        self.view: StageView | None = None
        self._live: Live | None = None
        self._last_plain = 0.0

    def _render(self) -> Table:
        view = self.view
        table = Table.grid(padding=(0, 2))
        if view is None:
            return table
        elapsed = time.monotonic() - view.started
        table.add_row(Text(f"stage {view.name}", style="bold cyan"), Text(view.type, style="dim"))
        remaining = f"  remaining {fmt_s(view.expected_s - elapsed)}" if view.expected_s else ""
        table.add_row("elapsed", f"{fmt_s(elapsed)}{remaining}")
        table.add_row("throughput", f"{view.ops_s:,.0f} ops/s   {view.mib_s:,.2f} MiB/s")
        table.add_row("latency", f"p50 {fmt_us(view.p50)}   p99 {fmt_us(view.p99)}")
        table.add_row("errors", Text(f"{view.errors:,}", style="red" if view.errors else "green"))
        if view.total:
            table.add_row("objects", f"{view.done:,} / {view.total:,}")
        elif view.ops:
            table.add_row("ops", f"{view.ops:,}")
        if view.late:
            table.add_row("late (open loop)", f"{view.late:,}")
        return table

    def stage_started(self, name: str, stage_type: str, expected_s: float | None, where: str = "") -> None:
        """`where`: what the line adds after "started" (the agents and barrier of a multi-agent stage)."""
        self.view = StageView(name, stage_type, time.monotonic(), expected_s)
        self.log.print(f"== stage {name} ({stage_type}) started{where}")
        if self.tty:
            self._live = Live(self._render(), console=self.console, refresh_per_second=4, transient=True)
            self._live.start()

    def interval(self, snap: Snapshot) -> None:
        view = self.view
        if view is None:
            return
        seconds = snap.duration_s or 1.0
        hist = snap.latency()
        view.ops += snap.total_ops()
        view.errors += snap.errors_total()
        view.late += snap.late_ops
        view.ops_s = snap.total_ops() / seconds
        view.mib_s = snap.total_bytes() / MIB / seconds
        view.p50, view.p99 = hist.p50, hist.p99
        progress = snap.progress_for()
        view.done, view.total = progress.objects_done, progress.objects_total
        if self._live is not None:
            self._live.update(self._render())
            self.log.record(view.line())
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self.log.print(view.line())

    def stage_ended(self, name: str, status: str, reason: str, elapsed_s: float) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
        view = self.view
        if view is not None:
            self.log.record(view.line())
        self.view = None
        self._last_plain = 0.0
        tail = f": {reason}" if reason else ""
        self.log.print(f"== stage {name} {status} after {elapsed_s:.1f}s{tail}")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
