"""Live progress of a run: a rich dashboard on a terminal (ui.dashboard), plain periodic lines otherwise (CI
logs, pipes).

Either way every status line also lands in console_log.txt through the ConsoleLog, so the transcript shows
the progress a user saw. Figures come from the interval snapshots the engine emits: ops/s and MiB/s of the
last interval, p50/p99 of the last interval (exact, from its histograms), errors since the stage started.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console, RenderableType
from rich.live import Live
from rich.text import Text

from sbench.metrics.progress import DEFAULT_STUCK_INTERVALS
from sbench.metrics.snapshot import Snapshot
from sbench.results.console import ConsoleLog
from sbench.ui.dashboard import Board, render
from sbench.ui.units import MIB, fmt_s, fmt_us

#: a plain line at most this often (a live display refreshes every interval)
PLAIN_EVERY_S = 5.0


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
    """Call `stage_started`, then `interval` for each merged snapshot (and `agent_intervals` with the agents'
    own), then `stage_ended`; `close()` at the end."""

    def __init__(
        self,
        log: ConsoleLog,
        *,
        tty: bool | None = None,
        stream: Any = None,
        stuck_intervals: int | None = None,
    ) -> None:
        """`stuck_intervals`: the run's `distributed.stuck_intervals` (None: its default), for the agents'
        stuck flags."""
        self.log = log
        self.stream = stream if stream is not None else sys.stdout
        self.tty = self.stream.isatty() if tty is None else tty
        # a pipe or CI log has no width; give tables room instead of rich's 80-column fallback
        self.console = Console(file=self.stream, force_terminal=self.tty, width=None if self.tty else 132)
        self.view: StageView | None = None
        self.board = Board()
        self.stuck_intervals = stuck_intervals or DEFAULT_STUCK_INTERVALS
        self._live: Live | None = None
        self._last_plain = 0.0

    def _render(self) -> RenderableType:
        view = self.view
        if view is None:
            return Text("")
        return render(
            self.board,
            name=view.name,
            kind=view.type,
            started=view.started,
            expected_s=view.expected_s,
            done=view.done,
            total=view.total,
            errors=view.errors,
            late=view.late,
        )

    def stage_started(self, name: str, stage_type: str, expected_s: float | None, where: str = "") -> None:
        """`where`: what the line adds after "started" (the agents and barrier of a multi-agent stage)."""
        self.view = StageView(name, stage_type, time.monotonic(), expected_s)
        self.board.reset()
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
        self.board.interval(snap)
        if self._live is not None:
            self._live.update(self._render())
            self.log.record(view.line())
        elif time.monotonic() - self._last_plain >= PLAIN_EVERY_S:
            self._last_plain = time.monotonic()
            self.log.print(view.line())

    def agent_intervals(self, per_agent: dict[str, list[Snapshot]]) -> None:
        """Each agent's own intervals, for its row on the dashboard (state, ops/s, share, stuck)."""
        if self.view is not None:
            self.board.agent_intervals(per_agent, self.stuck_intervals)

    def stage_ended(self, name: str, status: str, reason: str, elapsed_s: float) -> None:
        self.board.finished.append((name, str(status), elapsed_s))
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
