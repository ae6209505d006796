"""HdrHistogram interval logs: each stage's latency histograms per interval, in HdrHistogram's log format.

The format is the one HdrHistogram's own log writers produce (format version 1.3: `#[StartTime: ...]` and
`#[BaseTime: ...]` comments, the CSV legend, then `Tag=<tag>,<start>,<length>,<max>,<histogram>` lines with
the histogram compressed and base64-encoded), so HistogramLogAnalyzer, HdrHistogram's log processors and
`hdrh.log.HistogramLogReader` open the files and can recompute any percentile of any time range exactly.

One file per stage, `NN_<stage>.hlog`, written as the stage runs from the same merged interval snapshots as
perf_log.tsv (on Ray the exact merge over agents). Each interval has one line per op class that ran in it,
tagged `GET`, `PUT` or `META` (response time: from the intended start in open loop), and in open loop also
the service time (`GET-service`...). Values are microseconds, the histograms' unit; `Interval_Max` is in
milliseconds (the writers' usual max-value unit ratio of 1000 per unit); start times are seconds after the
run's start (`BaseTime`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.snapshot import Snapshot
from sbench.results.growingfile import GrowingFile

FORMAT_VERSION = "1.3"
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'
#: microseconds per millisecond: Interval_Max is written in milliseconds
MAX_VALUE_UNIT_RATIO = 1000.0


def hlog_header(base_ms: int) -> list[str]:
    """The comment lines and legend a log starts with. StartTime and BaseTime are both the run's start:
    readers measure time ranges from StartTime, so no interval may start before it."""
    start = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime(base_ms / 1000))
    return [
        f"#[Histogram log format version {FORMAT_VERSION}]",
        "#[Latency values in microseconds; Interval_Max in milliseconds]",
        f"#[StartTime: {base_ms / 1000:.3f} (seconds since epoch), {start}]",
        f"#[BaseTime: {base_ms / 1000:.3f} (seconds since epoch)]",
        LEGEND,
    ]


def interval_line(tag: str, start_s: float, length_s: float, hist: LatencyHistogram) -> str:
    """One tagged interval line."""
    payload = hist.encode().decode("ascii")
    return f"Tag={tag},{start_s:.3f},{length_s:.3f},{hist.max / MAX_VALUE_UNIT_RATIO:.3f},{payload}"


@dataclass(frozen=True, slots=True)
class LoggedInterval:
    """One line of a log read back: its tag, start (seconds after BaseTime), length and encoded histogram."""

    tag: str
    start_s: float
    length_s: float
    payload: bytes


def read_intervals(path: Path, *, payloads: bool = True) -> Iterator[LoggedInterval]:
    """The interval lines of a log this module wrote, in file order (comments and the legend skipped); a
    line that is not `Tag=<tag>,<start>,<length>,<max>,<histogram>` is skipped (a log cut mid-line).
    Without `payloads` the histograms are left out (empty), for a pass that only needs the times."""
    with path.open(encoding="ascii", errors="replace") as fh:
        for line in fh:
            if not line.startswith("Tag="):
                continue
            parts = line.rstrip("\n").split(",")
            if len(parts) != 5 or not parts[4]:
                continue
            try:
                start, length = float(parts[1]), float(parts[2])
            except ValueError:
                continue
            yield LoggedInterval(parts[0][4:], start, length, parts[4].encode("ascii") if payloads else b"")


class HistogramLog:
    """The interval log of one stage (see the module docstring)."""

    def __init__(
        self,
        path: Path,
        base_ms: int,
        *,
        service_time: bool,
        on_error: Callable[[Path, OSError], None] | None = None,
    ) -> None:
        self.path = path
        self.base_ms = base_ms
        self.service_time = service_time
        self._file: GrowingFile | None = None
        self._on_error = on_error

    def write(self, snap: Snapshot) -> None:
        """The lines of one merged interval (nothing for an interval without ops)."""
        if not snap.end_ms:
            return
        # never before StartTime (an agent's clock a little behind the driver's): readers would skip it
        start_s = max(0.0, (snap.start_ms - self.base_ms) / 1000)
        length_s = max(0.0, (snap.end_ms - snap.start_ms) / 1000)
        lines = []
        for op in OpClass:
            hist = snap.histogram(op)
            if hist.count:
                lines.append(interval_line(op.label, start_s, length_s, hist))
            service = snap.service_histogram(op) if self.service_time else None
            if service is not None and service.count:
                lines.append(interval_line(f"{op.label}-service", start_s, length_s, service))
        if not lines:
            return
        if self._file is None:  # created with the first interval that has ops: no empty logs
            self._file = GrowingFile(self.path, hlog_header(self.base_ms), self._on_error)
        self._file.append(lines)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
