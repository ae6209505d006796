"""One agent's op-log: this process's capture writes a raw part file while the run goes on, and closing
sorts the part by start time into the TSV log (oplog.sort), formatting each row then, off the run.

The in-process fleet's one agent writes its log straight to the op-log path; a Ray agent writes into a
scratch directory on its node, and the driver fetches and merges the agents' sorted logs (cluster.oplogs).
Calls made by shard tasks for an agent reach it as batches (`add_batch`) with their own clock offset and a
source number, so their thread idents never mix with the agent's own.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sbench.oplog.capture import Capture, install, uninstall
from sbench.oplog.records import RecordWriter, read_records
from sbench.oplog.sort import DEFAULT_WINDOW, by_first, external_sort
from sbench.oplog.writer import LogWriter, RawFormat


class PartSink:
    """A capture's batches as records of a raw part file: (offset_ns, source, rows)."""

    def __init__(self, path: Path) -> None:
        self.writer = RecordWriter(path)

    def write(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None:
        self.writer.write((offset_ns, source, rows))

    def close(self) -> None:
        self.writer.close()


@dataclass
class LogSummary:
    """What an agent's op-log holds and what capturing it cost, for summary.json and the console."""

    client_id: str
    path: str
    rows: int = 0
    #: calls captured (rows plus calls the part could not take)
    calls: int = 0
    backpressure_waits: int = 0
    backpressure_s: float = 0.0
    late_calls: int = 0
    unwritten: int = 0
    failed: str = ""
    sort_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def corrected_rows(part: Path) -> Iterator[tuple[Any, ...]]:
    """The raw calls of a part file with their times on the driver's clock and small thread numbers (in
    the order threads first appear, per source process)."""
    threads: dict[tuple[int, int], int] = {}
    for offset, source, rows in read_records(part):
        for t0, t1, code, site, key, nbytes, nobj, error, ident in rows:
            thread = threads.get((source, ident))
            if thread is None:
                thread = threads[(source, ident)] = len(threads)
            yield (t0 - offset, t1 - offset, code, site, key, nbytes, nobj, error, thread)


def write_sorted(part: Path, out: Path, client_id: str, *, window: int = DEFAULT_WINDOW) -> int:
    """The calls of `part` as the TSV op-log `out`, sorted by start; the number of rows."""
    fmt = RawFormat(client_id)
    with LogWriter(out) as writer:
        for row in external_sort(corrected_rows(part), by_first, window=window, tmp_dir=out.parent):
            writer.add(fmt.rest(row))
    return writer.rows


class AgentLog:
    """This process's capture for one agent, writing `out` when finished (see the module docstring)."""

    def __init__(self, out: Path, client_id: str, *, work_dir: Path | None = None) -> None:
        self.out = out
        self.client_id = client_id
        self.part = (work_dir or out.parent) / f".{out.name}.part"
        self.part.parent.mkdir(parents=True, exist_ok=True)
        self.sink = PartSink(self.part)
        self.capture = Capture(self.sink)
        #: calls shard tasks sent (counted apart: the capture's writer counts its own on another thread)
        self.task_calls = 0
        install(self.capture)

    def set_offset(self, offset_ns: int) -> None:
        """This node's clock minus the driver's, for the calls from now on."""
        self.capture.set_offset(offset_ns)

    def add_batch(self, rows: list[tuple[Any, ...]], offset_ns: int, source: int) -> None:
        """Calls a shard task made for this agent; `offset_ns` is the task's clock minus this agent's."""
        self.task_calls += len(rows)
        self.sink.write(rows, offset_ns + self.capture.offset_ns, source)

    def finish(self) -> LogSummary:
        """Stop capturing, sort the part into the log, remove the part."""
        uninstall(self.capture)
        self.capture.close()
        summary = LogSummary(self.client_id, str(self.out), **self.capture.stats())
        summary.calls += self.task_calls
        began = time.monotonic()
        try:
            summary.rows = write_sorted(self.part, self.out, self.client_id)
        except Exception as exc:  # an unreadable part (full disk while capturing): the run says so
            summary.failed = summary.failed or f"{type(exc).__name__}: {exc}"
        finally:
            self.part.unlink(missing_ok=True)
        summary.sort_s = round(time.monotonic() - began, 3)
        return summary

    def abandon(self) -> None:
        """Stop capturing and drop the part (the run is being torn down without a log)."""
        uninstall(self.capture)
        self.capture.close()
        self.part.unlink(missing_ok=True)
