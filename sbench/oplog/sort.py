"""Sorting op-logs by start time in constant memory: an external merge sort.

Rows are read in windows of `window` rows; each window is sorted in memory and written to a temporary run
file (oplog.records: marshal in zstd); the runs are then merged with a heap, at most `FAN_IN` at a time
(more runs are merged in passes first). Memory is one window plus one small chunk per run, whatever the log's
length: a 10,000,000-row log sorts with well under 200 MB (bench/oplog_cost.py). The sort is stable: rows
with the same start keep their input order. Unlike sai3's windowed sort, the result is always exactly
sorted; `--window-size` only trades memory for the number of runs.

One engine sorts both the TSV rows of `sbench sort` and `oplog merge` and the raw calls a capture writes
(oplog.capture), each with its own key.
"""

from __future__ import annotations

import heapq
import itertools
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any

from sbench.oplog.reader import RowParser, iter_lines
from sbench.oplog.records import RecordWriter, read_records
from sbench.oplog.writer import LogWriter

#: rows per in-memory window (sai3's `--window-size` default is 10,000; more rows, fewer runs)
DEFAULT_WINDOW = 100_000
#: runs merged at once (each holds one chunk in memory while merged)
FAN_IN = 64
#: items per record of a run file: what a run holds in memory during the merge
RUN_CHUNK = 1_000
by_first = itemgetter(0)


def _write_run(items: list[Any], directory: Path, number: int) -> Path:
    path = directory / f"run-{number:06d}"
    writer = RecordWriter(path)
    try:
        for lo in range(0, len(items), RUN_CHUNK):
            writer.write(items[lo : lo + RUN_CHUNK])
    finally:
        writer.close()
    return path


def _read_run(path: Path) -> Iterator[Any]:
    for chunk in read_records(path):
        yield from chunk


@contextmanager
def _scratch(tmp_dir: Path | None) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix=".sbench-sort-", dir=tmp_dir))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def external_sort(
    items: Iterable[Any], key: Callable[[Any], Any], *, window: int, tmp_dir: Path | None = None
) -> Iterator[Any]:
    """`items` sorted by `key` (stable), holding at most `window` items (plus one chunk per run) in memory;
    runs go to a scratch directory under `tmp_dir` (the system's default when None), removed at the end.
    Items are what marshal stores: tuples of ints, strings and None."""
    window = max(1, int(window))
    it = iter(items)
    first = list(itertools.islice(it, window))
    first.sort(key=key)
    peek = list(itertools.islice(it, 1))
    if not peek:  # fits in one window: no file at all
        yield from first
        return
    with _scratch(tmp_dir) as scratch:
        counter = itertools.count()
        runs = [_write_run(first, scratch, next(counter))]
        del first
        it = itertools.chain(peek, it)
        while True:
            chunk = list(itertools.islice(it, window))
            if not chunk:
                break
            chunk.sort(key=key)
            runs.append(_write_run(chunk, scratch, next(counter)))
            del chunk
        while len(runs) > FAN_IN:  # merge passes until one heap can take every run
            merged = []
            for lo in range(0, len(runs), FAN_IN):
                group = runs[lo : lo + FAN_IN]
                merged.append(
                    _write_merged(heapq.merge(*map(_read_run, group), key=key), scratch, next(counter))
                )
                for path in group:
                    path.unlink()
            runs = merged
        yield from heapq.merge(*map(_read_run, runs), key=key)


def _write_merged(items: Iterator[Any], directory: Path, number: int) -> Path:
    path = directory / f"run-{number:06d}"
    writer = RecordWriter(path)
    try:
        while chunk := list(itertools.islice(items, RUN_CHUNK)):
            writer.write(chunk)
    finally:
        writer.close()
    return path


# -- TSV logs ---------------------------------------------------------------------------------------------


def keyed_rows(path: Path) -> Iterator[tuple[int, str]]:
    """(start ns, the row after its idx column with its newline) of every row of the log at `path`; a row
    that does not parse stops the read with the file and line."""
    parser = RowParser(path)
    for lineno, line in iter_lines(path):
        row = parser.row(lineno, line)  # the whole row is checked, not only its start
        yield row.start_ns, line[line.index("\t") + 1 :] + "\n"


def sort_logs(
    sources: list[Path], out: Path, *, window: int = DEFAULT_WINDOW, tmp_dir: Path | None = None
) -> int:
    """Write the rows of every log in `sources` to `out`, sorted by start and numbered afresh; the number
    of rows. `out` appears only when complete (it may be one of the sources: `--in-place`)."""
    rows = itertools.chain.from_iterable(keyed_rows(path) for path in sources)
    with LogWriter(out) as writer:
        for _start, rest in external_sort(rows, by_first, window=window, tmp_dir=tmp_dir or out.parent):
            writer.add(rest)
    return writer.rows


_LOG_EXTENSIONS = (".tsv.zst", ".tsv", ".zst")


def log_stem(path: Path) -> str:
    """A log's name without its extension: `x.tsv.zst` -> `x` (files that go with a log are named from it)."""
    name = path.name
    for ext in _LOG_EXTENSIONS:
        if name.endswith(ext):
            return name[: -len(ext)]
    return name


def sorted_name(path: Path) -> Path:
    """sai3's output name of `sort` without `--in-place`: `x.tsv.zst` -> `x.sorted.tsv.zst`."""
    stem = log_stem(path)
    ext = path.name[len(stem):] or ".tsv.zst"
    return path.with_name(stem + ".sorted" + ext)
