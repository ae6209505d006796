"""The HdrHistogram interval log: what hdrh's own reader gets back is what the snapshots held."""

from __future__ import annotations

from pathlib import Path

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.results.hlog import HistogramLog


def _interval(start_ms: int, gets: list[int], puts: list[int]) -> Snapshot:
    rec = Recorder()
    for us in gets:
        rec.record(OpClass.GET, 4096, us)
    for us in puts:
        rec.record(OpClass.PUT, 4096, us)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = start_ms, start_ms + 1000
    return snap


def _read(path: Path) -> list[tuple[str, float, HdrHistogram]]:
    reader = HistogramLogReader(str(path), HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))
    out = []
    while (hist := reader.get_next_interval_histogram()) is not None:
        out.append((hist.get_tag(), hist.get_start_time_stamp() / 1000, hist))
    return out


def test_hdrh_reads_back_every_interval_and_tag_exactly(tmp_path: Path) -> None:
    base = 1_700_000_000_000
    snaps = [
        _interval(base + 1000, [100 + i for i in range(500)], [900] * 20),
        _interval(base + 2000, [5000] * 10, []),
        _interval(base + 3000, [], []),  # an interval without ops has no line
    ]
    log = HistogramLog(tmp_path / "03_execute.hlog", base, service_time=False)
    for snap in snaps:
        log.write(snap)
    log.close()
    text = (tmp_path / "03_execute.hlog").read_text()
    assert text.startswith("#[Histogram log format version 1.3]\n")
    assert '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"' in text
    read = _read(tmp_path / "03_execute.hlog")
    assert [(tag, start) for tag, start, _ in read] == [
        ("GET", base / 1000 + 1.0),
        ("PUT", base / 1000 + 1.0),
        ("GET", base / 1000 + 2.0),
    ]
    first_get = read[0][2]
    assert first_get.get_total_count() == 500
    assert first_get.get_value_at_percentile(99) == snaps[0].histogram(OpClass.GET).percentile(99)
    assert read[1][2].get_total_count() == 20 and read[2][2].get_max_value() >= 5000
    assert "Tag=GET,2.000,1.000,5.0" in text  # start after BaseTime, length, max in milliseconds


def test_open_loop_adds_service_time_and_an_empty_stage_writes_no_file(tmp_path: Path) -> None:
    rec = Recorder()
    rec.record(OpClass.GET, 4096, 800, service_us=300)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = 1000, 2000
    log = HistogramLog(tmp_path / "a.hlog", 0, service_time=True)
    log.write(snap)
    log.close()
    tags = [tag for tag, _, _ in _read(tmp_path / "a.hlog")]
    assert tags == ["GET", "GET-service"]
    empty = HistogramLog(tmp_path / "b.hlog", 0, service_time=False)
    empty.write(Snapshot(start_ms=1000, end_ms=2000))
    empty.close()
    assert not (tmp_path / "b.hlog").exists()
