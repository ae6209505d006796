"""A replay's plan: the log checked and scanned once, then streamed as ops with their due times.

1. `scan_log` reads every row (oplog.reader: a malformed line stops everything with the file and line,
   exit 2, before any op touches storage) and counts ops per name, the time span, and whether the rows
   are in start order.
2. An unsorted log (sai3 and s3dlio capture unsorted) is sorted first into a temporary file (oplog.sort,
   bounded memory) and the user is told so; the temporary file is removed when the replay ends.
3. `batches()` streams the ops in start order, BATCH_ROWS at a time, as plain tuples in `ReplayOp`'s field
   order (a NamedTuple costs ten times a tuple to build, and a replay makes one per op): op i is due
   `(start_i - start_0) / speed` after the replay's epoch, its URI is where the mapper (remap.retarget or a
   Remapper) sends it. A batch is parsed by columns (one split of the whole batch, C-level maps for the
   numbers and times; the scan checked every row's 13 columns), so a row costs a fraction of a row-by-row
   parse. Memory is constant: one batch at a time, whatever the log's length.

Op names map to backend calls (`CALLS`): GET, GET_RANGE (the logged byte count from offset 0: the log has
no offset), PUT (the logged size), HEAD/STAT, LIST, DELETE, MKDIR, RMDIR, and DELETE_PREFIX (a recursive
RMDIR). s3dlio's DELETE_BATCH, CREATE_CONTAINER and DELETE_CONTAINER name no object sbench can repeat: they
are counted as skipped by name (console, summary.json), never silently dropped.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from operator import add, itemgetter
from pathlib import Path
from typing import Any, NamedTuple

from sbench.oplog.format import COLUMNS, NS, TimeFormat
from sbench.oplog.reader import open_binary, read_rows
from sbench.oplog.sort import sort_logs
from sbench.replay.remap import map_column

#: log op name -> the replay's call (executor.calls_for has one function per call)
CALLS: dict[str, str] = {
    "GET": "get",
    "GET_RANGE": "get_range",
    "PUT": "put",
    "HEAD": "stat",
    "STAT": "stat",
    "LIST": "list",
    "DELETE": "delete",
    "MKDIR": "mkdir",
    "RMDIR": "rmdir",
    "DELETE_PREFIX": "rmdir_recursive",
}

#: mapper: (endpoint, file) of a row -> the URI the replay uses
Mapper = Callable[[str, str], str]


#: rows per batch of `ReplayPlan.batches` (about: batches are read by bytes, _ROW_BYTES a row)
BATCH_ROWS = 2_000
_ROW_BYTES = 160
_WIDTH = len(COLUMNS)
_HEAD, _NANOS, _LEN, _SEP, _ZONE = itemgetter(slice(0, 19)), itemgetter(slice(20, 29)), 30, itemgetter(19), \
    itemgetter(29)


#: where a plan row (a batch's tuple) holds its due time and URI
DUE, URI = 1, 4


class ReplayOp(NamedTuple):
    """One op to replay: its place in the log, due time (ns after the epoch), call, URI and byte count.
    Batches hold plain tuples in this order; the names are for readers (`ReplayOp(*op).uri`)."""

    seq: int
    due_ns: int
    call: str
    op: str
    uri: str
    nbytes: int


@dataclass
class LogScan:
    """What one pass over the log found."""

    path: str
    rows: int = 0
    in_order: bool = True
    #: rows that start before the row above them
    out_of_order: int = 0
    first_ns: int = 0
    last_ns: int = 0
    ops: Counter[str] = field(default_factory=Counter)
    logged_errors: int = 0

    @property
    def span_s(self) -> float:
        return (self.last_ns - self.first_ns) / NS if self.rows else 0.0

    @property
    def replayable(self) -> int:
        return sum(n for op, n in self.ops.items() if op in CALLS)

    @property
    def skipped(self) -> dict[str, int]:
        return {op: n for op, n in sorted(self.ops.items()) if op not in CALLS}

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "rows": self.rows,
            "sorted": self.in_order,
            "span_s": round(self.span_s, 6),
            "ops": dict(sorted(self.ops.items())),
            "logged_errors": self.logged_errors,
            "skipped": self.skipped,
        }


def scan_log(path: Path) -> LogScan:
    """Check and count every row of the log (see the module docstring)."""
    scan = LogScan(str(path))
    previous = None
    first = last = None
    ops: Counter[str] = scan.ops
    for row in read_rows(path):
        start = row.start_ns
        ops[row.op] += 1
        if row.error:
            scan.logged_errors += 1
        if previous is not None and start < previous:
            scan.out_of_order += 1
        previous = start
        first = start if first is None or start < first else first
        last = start if last is None or start > last else last
    scan.rows = sum(ops.values())
    scan.in_order = scan.out_of_order == 0
    scan.first_ns, scan.last_ns = first or 0, last or 0
    return scan


def _line_blocks(path: Path, block_bytes: int) -> Iterator[list[str]]:
    """The data lines of the log, about `block_bytes` at a time: read and decoded a block at once, not a
    line at a time (the scan checked the header, the encoding and every row already)."""
    with open_binary(path) as stream:
        stream.readline()  # the header
        while raw := stream.readlines(block_bytes):
            text = b"".join(raw).decode("utf-8")
            if "\r" in text:
                text = text.replace("\r\n", "\n")
            lines = text.split("\n")
            if "" in lines or "\n#" in text or text.startswith("#"):
                lines = [line for line in lines if line and not line.startswith("#")]
            if lines:
                yield lines


class ReplayPlan:
    """The log (sorted when it was not) and how its rows become ops; `close()` removes a temporary sort."""

    def __init__(self, log: Path, *, speed: float, mapper: Mapper, say: Callable[[str], None],
                 tmp_dir: Path | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be > 0")
        self.log = log
        self.speed = speed
        self.mapper = mapper
        self.scan = scan_log(log)
        self._scratch: Path | None = None
        self.source = log
        if not self.scan.in_order:
            self._scratch = Path(tempfile.mkdtemp(prefix=".sbench-replay-", dir=tmp_dir))
            self.source = self._scratch / "sorted.tsv.zst"
            say(
                f"{log}: {self.scan.out_of_order:,} rows start before the row above them (an unsorted "
                f"capture); sorting {self.scan.rows:,} rows into a temporary file first"
            )
            sort_logs([log], self.source, tmp_dir=self._scratch)

    @property
    def duration_s(self) -> float:
        """How long the schedule lasts at this speed (the last op's due time)."""
        return self.scan.span_s / self.speed

    def ops(self) -> Iterator[ReplayOp]:
        """The replayable ops one by one, named (for a dry-run; replays take `batches`)."""
        for batch in self.batches():
            yield from map(ReplayOp._make, batch)

    def batches(self, size: int = BATCH_ROWS) -> Iterator[list[tuple[Any, ...]]]:
        """The replayable ops in start order, `size` at a time (see the module docstring)."""
        first, speed, mapper = self.scan.first_ns, self.speed, self.mapper
        time_ns = TimeFormat().ns
        heads: dict[str, int] = {}
        seq = 0
        for chunk in _line_blocks(self.source, size * _ROW_BYTES):
            flat = "\t".join(chunk).split("\t")
            columns = [flat[c::_WIDTH] for c in (2, 5, 6, 7, 9)]  # op, bytes, endpoint, file, start
            calls = list(map(CALLS.get, columns[0]))
            if None in calls:  # rows no call replays (counted by the scan): out before the mapper sees them
                keep = [i for i, call in enumerate(calls) if call is not None]
                calls = [calls[i] for i in keep]
                columns = [[column[i] for i in keep] for column in columns]
            names, sizes, endpoints, files, starts = columns
            if set(map(len, starts)) == {_LEN} and set(map(_ZONE, starts)) == {"Z"} \
                    and set(map(_SEP, starts)) == {"."}:  # s3dlio's own form, nanoseconds: by columns
                head_texts = list(map(_HEAD, starts))
                if len(heads) > 4096:
                    heads.clear()
                for head in set(head_texts).difference(heads):
                    heads[head] = time_ns(head + "Z")
                start_ns = list(map(add, map(heads.__getitem__, head_texts), map(int, map(_NANOS, starts))))
            else:
                start_ns = list(map(time_ns, starts))
            dues = ([s - first for s in start_ns] if speed == 1
                    else [int((s - first) / speed) for s in start_ns])
            batch = list(zip(range(seq, seq + len(calls)), dues, calls, names,
                             map_column(mapper, endpoints, files), map(int, sizes), strict=True))
            seq += len(batch)
            if batch:
                yield batch

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
