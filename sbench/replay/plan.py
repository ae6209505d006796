"""A replay's plan: the log checked and scanned once, then streamed as ops with their due times.

1. `scan_log` reads every row (oplog.reader: a malformed line stops everything with the file and line,
   exit 2, before any op touches storage) and counts ops per name, the time span, and whether the rows
   are in start order.
2. An unsorted log (sai3 and s3dlio capture unsorted) is sorted first into a temporary file (oplog.sort,
   bounded memory) and the user is told so; the temporary file is removed when the replay ends.
3. `ops()` streams `ReplayOp`s in start order: op i is due `(start_i - start_0) / speed` after the replay's
   epoch, its URI is where the mapper (remap.retarget or a Remapper) sends it. Memory is constant: one row at
   a time, whatever the log's length.

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
from pathlib import Path
from typing import Any, NamedTuple

from sbench.oplog.format import NS, TimeFormat
from sbench.oplog.reader import iter_lines, read_rows
from sbench.oplog.sort import sort_logs

#: log op name -> the replay's call (executor.CALLS has one function per call)
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


class ReplayOp(NamedTuple):
    """One op to replay: its place in the log, due time (ns after the epoch), call, URI and byte count."""

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
        """The replayable ops in start order (see the module docstring). The scan checked every row, so
        only the five columns a replay needs are read here (one time parse per row, not three)."""
        first, speed, mapper = self.scan.first_ns, self.speed, self.mapper
        time_ns = TimeFormat().ns
        head, head_ns = "", 0
        seq = 0
        for _lineno, line in iter_lines(self.source):
            f = line.split("\t", 10)
            call = CALLS.get(f[2])
            if call is None:
                continue
            text = f[9]
            if len(text) == 30 and text[29] == "Z" and text[19] == ".":  # s3dlio's own form: fast path
                if text[:19] != head:
                    head, head_ns = text[:19], time_ns(text[:19] + "Z")
                start = head_ns + int(text[20:29])
            else:
                start = time_ns(text)
            due = int((start - first) / speed)
            yield ReplayOp(seq, due, call, f[2], mapper(f[6], f[7]), int(f[5]))
            seq += 1

    def close(self) -> None:
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)
            self._scratch = None
