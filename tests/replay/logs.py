"""Writing small op-logs for replay tests: rows at given offsets (seconds) from a fixed start."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from sbench.oplog.format import NS, TimeFormat
from sbench.oplog.writer import LogWriter

T0 = 1_772_359_200 * NS  # 2026-03-01T10:00:00Z


def write_log(path: Path, rows: Iterable[tuple[float, str, str, int]], endpoint: str = "s3://bench") -> Path:
    """`rows`: (offset s, op, file column, bytes); a metadata op has no first_byte."""
    times = TimeFormat()
    with LogWriter(path) as writer:
        for at, op, file, nbytes in rows:
            start = T0 + int(at * NS)
            first = times.text(start) if op in ("GET", "PUT", "GET_RANGE") else ""
            writer.add(f"0\t{op}\thost-a\t1\t{nbytes}\t{endpoint}\t{file}\t\t{times.text(start)}\t{first}\t"
                       f"{times.text(start + 1000)}\t1000\n")
    return path
