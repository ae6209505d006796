"""Merging op-logs into one log sorted by start.

Two ways, one result: `merge_logs` takes any logs, sorted or not (an external sort of all their rows,
oplog.sort), for `sbench oplog merge`; `merge_sorted` takes streams that are each sorted already (the
agents' logs of a distributed run, which every agent sorts on its own node) and merges them with a heap,
holding one buffered chunk per stream, so the driver's memory does not grow with the run. A stream found
out of order fails the merge with its name and line rather than writing a log that is not sorted.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from sbench.oplog.reader import OpLogFormatError, RowParser, iter_lines
from sbench.oplog.sort import DEFAULT_WINDOW, sort_logs
from sbench.oplog.writer import LogWriter


def merge_logs(
    sources: list[Path], out: Path, *, window: int = DEFAULT_WINDOW, tmp_dir: Path | None = None
) -> int:
    """Every row of `sources` in one log `out`, sorted by start and numbered afresh; the row count."""
    return sort_logs(sources, out, window=window, tmp_dir=tmp_dir)


def _sorted_rows(name: str, stream: BinaryIO) -> Iterator[tuple[int, str]]:
    """(start ns, row after its idx) of a stream that must be sorted by start."""
    parser = RowParser(name)
    last = -1
    for lineno, line in iter_lines(name, stream):
        start = parser.start_ns(lineno, line)
        if start < last:
            raise OpLogFormatError(name, lineno, "rows are not sorted by start (a merge input must be)")
        last = start
        yield start, line[line.index("\t") + 1 :] + "\n"


def merge_sorted(streams: dict[str, BinaryIO], out: Path) -> int:
    """Merge sorted logs given as decompressed byte streams by name into `out`; the row count."""
    inputs = [_sorted_rows(name, stream) for name, stream in streams.items()]
    with LogWriter(out) as writer:
        for _start, rest in heapq.merge(*inputs, key=lambda item: item[0]):
            writer.add(rest)
    return writer.rows
