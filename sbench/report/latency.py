"""Exact latency percentiles from a stage's HdrHistogram interval log (NN_<stage>.hlog).

Over time: the log's intervals are merged (histograms added, never percentiles averaged) into at most
MAX_POINTS windows per tag, so a one-hour stage still plots exact percentiles, each over a few seconds.
The spectrum: all of the stage's intervals of a tag merged, read at percentiles up to 99.9999.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from sbench.metrics.histogram import LatencyHistogram
from sbench.report.series import MAX_POINTS, windows
from sbench.results.hlog import read_intervals

#: the percentiles drawn over time
OVER_TIME = (50.0, 99.0, 99.9)
#: the spectrum's percentiles: halving the remaining tail each step (as HdrHistogram's own output)
SPECTRUM = (*(100.0 - 100.0 / 2 ** (k / 2) for k in range(41)), 99.9999)
SERVICE_SUFFIX = "-service"


@dataclass
class TagLatency:
    """One tag (`GET`, `GET-service`...): windows' end times and percentiles, and the merged histogram."""

    tag: str
    x: list[float] = field(default_factory=list)
    #: percentile -> one value (µs) per window
    values: dict[float, list[int]] = field(default_factory=dict)
    total: LatencyHistogram = field(default_factory=LatencyHistogram)

    @property
    def op(self) -> str:
        return self.tag.removesuffix(SERVICE_SUFFIX)

    @property
    def service(self) -> bool:
        return self.tag.endswith(SERVICE_SUFFIX)

    def spectrum(self) -> tuple[list[float], list[int]]:
        """(percentile, value µs) of the merged histogram, up to where its count still resolves."""
        count = self.total.count
        pcts = [p for p in SPECTRUM if count and 100.0 / (100.0 - p) <= count] if count else []
        pcts = pcts or ([50.0] if count else [])
        return pcts, self.total.percentiles(pcts)


def stage_latency(path: Path, max_points: int = MAX_POINTS) -> dict[str, TagLatency]:
    """Per tag of the log: percentiles over time (windows of consecutive intervals) and the merged total.

    Two passes over the file: the first counts the intervals (to size the windows), the second merges each
    window and reduces it to its percentiles as soon as the next one starts, so memory holds one window per
    tag (a decoded histogram is about 0.2 MB), however long the stage."""
    starts = sorted({line.start_s for line in read_intervals(path, payloads=False)})
    size = windows(len(starts), max_points)
    window_of = {start: i // size for i, start in enumerate(starts)}
    tags: dict[str, TagLatency] = {}
    open_windows: dict[str, tuple[int, float, LatencyHistogram]] = {}

    def close(tag: str) -> None:
        _, end, hist = open_windows.pop(tag)
        entry = tags.setdefault(tag, TagLatency(tag, values={p: [] for p in OVER_TIME}))
        entry.x.append(end)
        for pct, value in zip(OVER_TIME, hist.percentiles(OVER_TIME), strict=True):
            entry.values[pct].append(value)
        entry.total.add(hist)

    for line in read_intervals(path):
        w = window_of[line.start_s]
        current = open_windows.get(line.tag)
        if current is not None and current[0] != w:
            close(line.tag)
            current = None
        if current is None:
            current = open_windows[line.tag] = (w, 0.0, LatencyHistogram())
        current[2].add_encoded(line.payload)
        open_windows[line.tag] = (w, max(current[1], line.start_s + line.length_s), current[2])
    for tag in list(open_windows):
        close(tag)
    return dict(sorted(tags.items()))
