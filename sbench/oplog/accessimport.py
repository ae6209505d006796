"""`sbench oplog import --format s3-access-log`: S3 server access logs -> one op-log sorted by start.

Flow, in constant memory whatever the logs' size:

1. every line of every file (plain, gzip or zstd, by their first bytes) is parsed and classified
   (oplog.accesslog); a line that gives no row is counted by reason, per file, with the first place it
   happened;
2. the requests go through the external sort (oplog.sort) by (start, rank): access logs are in no order,
   within a file or across files, and the rank puts a multipart upload's initiation before its parts and
   its parts before its completion when they share a second (the log's resolution);
3. the sorted stream is written as the op-log (zstd when the name ends in `.zst`); multipart steps are
   folded on the way: the parts of an upload are held (part number -> size) only until its completion or
   abort, so memory follows the uploads open at a time, not the log's length;
4. a report (`import_report_path`) lists the counts: lines, rows per op, folded multipart steps, skipped
   lines by reason and by operation, per file and in total. lines = rows + folded + skipped, always.

An import that yields no row fails (exit 1) without writing the log (the report is written, to say why);
a file that cannot be opened or read stops it with the file named (exit 2).
"""

from __future__ import annotations

import gzip
import json
import zlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from operator import itemgetter
from pathlib import Path
from typing import Any, BinaryIO

import zstandard

from sbench.errors import ConfigError, RunFailed
from sbench.oplog.accesslog import (
    MP_ABORT,
    MP_COMPLETE,
    MP_INITIATE,
    MP_PART,
    RANK,
    SKIP_REASONS,
    Request,
    Skip,
    TimeParser,
    classify,
    split_fields,
)
from sbench.oplog.format import OP_CODE, PUT
from sbench.oplog.reader import decompressed
from sbench.oplog.sort import DEFAULT_WINDOW, external_sort, log_stem
from sbench.oplog.writer import LogWriter, RawFormat

FORMAT = "s3-access-log"
#: the client_id column of imported rows: where they came from
CLIENT_ID = "s3-access-log"
_GZIP_MAGIC = b"\x1f\x8b"
_ORDINARY = 1
by_start_and_rank = itemgetter(0, 1)


def import_report_path(out: Path) -> Path:
    """The report beside the log: `traffic.tsv.zst` -> `traffic.import.json`."""
    return out.with_name(log_stem(out) + ".import.json")


@dataclass
class FileCounts:
    """What one input file gave."""

    path: str
    lines: int = 0
    rows: int = 0
    folded: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "lines": self.lines, "rows": self.rows, "folded": dict(self.folded),
                "skipped": dict(self.skipped)}


@dataclass
class ImportReport:
    """The counts of an import, per file and in total (the JSON report and the console summary)."""

    output: str
    files: list[FileCounts]
    rows_by_op: Counter[str] = field(default_factory=Counter)
    #: per skip reason, the operations of the lines it skipped
    skipped_operations: dict[str, Counter[str]] = field(default_factory=dict)
    first_skipped_at: dict[str, str] = field(default_factory=dict)
    uploads_completed: int = 0
    uploads_aborted: int = 0
    uploads_not_completed: int = 0
    rows_without_total_time: int = 0

    def skip(self, file_index: int, lineno: int, why: Skip) -> None:
        counts = self.files[file_index]
        counts.skipped[why.reason] += 1
        if why.operation:
            self.skipped_operations.setdefault(why.reason, Counter())[why.operation] += 1
        self.first_skipped_at.setdefault(why.reason, f"{counts.path}:{lineno}")

    def total(self, name: str) -> int:
        return sum(getattr(f, name) for f in self.files)

    def summed(self, name: str) -> Counter[str]:
        out: Counter[str] = Counter()
        for f in self.files:
            out.update(getattr(f, name))
        return out

    def to_dict(self) -> dict[str, Any]:
        skipped = self.summed("skipped")
        return {
            "format": FORMAT,
            "output": self.output,
            "lines": self.total("lines"),
            "rows": self.total("rows"),
            "rows_by_op": dict(sorted(self.rows_by_op.items())),
            "rows_without_total_time": self.rows_without_total_time,
            "folded": dict(sorted(self.summed("folded").items())),
            "skipped": dict(sorted(skipped.items())),
            "skipped_operations": {reason: dict(ops.most_common())
                                   for reason, ops in sorted(self.skipped_operations.items())},
            "first_skipped_at": dict(sorted(self.first_skipped_at.items())),
            "skip_reasons": {reason: SKIP_REASONS[reason] for reason in sorted(skipped)},
            "multipart": {
                "uploads_completed": self.uploads_completed,
                "uploads_aborted": self.uploads_aborted,
                "uploads_not_completed": self.uploads_not_completed,
            },
            "files": [f.to_dict() for f in self.files],
        }

    def render(self) -> str:
        """The console summary."""
        d = self.to_dict()
        out = [f"{d['lines']:,} lines in {len(self.files)} file(s): {d['rows']:,} rows "
               f"({', '.join(f'{op} {n:,}' for op, n in d['rows_by_op'].items()) or 'none'})"]
        if d["folded"]:
            mp = d["multipart"]
            folded = ", ".join(f"{k} {n:,}" for k, n in d["folded"].items())
            out.append(f"folded into multipart PUTs: {folded} ({mp['uploads_completed']} uploads completed, "
                       f"{mp['uploads_aborted']} aborted, {mp['uploads_not_completed']} not completed in "
                       "these logs)")
        skipped = sum(d["skipped"].values())
        out.append(f"skipped {skipped:,} lines" + (":" if skipped else ""))
        for reason, n in d["skipped"].items():
            out.append(f"  {reason:<24}{n:>10,}  (first at {d['first_skipped_at'][reason]})")
            ops = list(d["skipped_operations"].get(reason, {}).items())
            if ops:
                shown = ", ".join(f"{op} {n:,}" for op, n in ops[:8]) + (", ..." if len(ops) > 8 else "")
                out.append(f"  {'':<24}{'':>10}  {shown}")
        for f in self.files:
            if f.lines and not f.rows and not f.folded:
                out.append(f"warning: {f.path}: nothing importable in its {f.lines:,} lines")
        return "\n".join(out)


# -- reading ----------------------------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    """The file's bytes, decompressed when it starts as gzip or zstd."""
    try:
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller
        if raw.peek(2)[:2] == _GZIP_MAGIC:
            raw.close()  # gzip.open's file closes its own file (a GzipFile given one would not close it)
            return gzip.open(path, "rb")  # type: ignore[return-value]
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}",
                          hint="name readable S3 server access log files (plain, gzip or zstd)") from exc
    return decompressed(raw)


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line without its line end) of a file; a read error names the file and line."""
    stream = _open(path)
    lineno = 0
    try:
        with stream:
            for lineno, raw in enumerate(stream, 1):
                yield lineno, raw.rstrip(b"\r\n")
    except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
        raise ConfigError(f"{path}:{lineno + 1}: cannot read: {exc}") from exc


def _requests(paths: list[Path], report: ImportReport) -> Iterator[tuple[Any, ...]]:
    """Sort items of every line that gives a request; the others are counted in `report`."""
    times = TimeParser()
    for index, path in enumerate(paths):
        counts = report.files[index]
        for lineno, raw in _lines(path):
            counts.lines += 1
            if not raw.strip():
                report.skip(index, lineno, Skip("blank_line"))
                continue
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError:
                report.skip(index, lineno, Skip("not_utf8"))
                continue
            fields = split_fields(line)
            got = fields if isinstance(fields, Skip) else classify(fields, times)
            if isinstance(got, Skip):
                report.skip(index, lineno, got)
                continue
            yield (got.start_ns, RANK.get(got.op, _ORDINARY), index, lineno, *got)


# -- writing ----------------------------------------------------------------------------------------------


class _Writer:
    """Sorted requests -> op-log rows, folding multipart steps (the parts of each open upload are held
    until it completes or is aborted)."""

    def __init__(self, log: LogWriter, report: ImportReport) -> None:
        self.log = log
        self.report = report
        self.format = RawFormat(CLIENT_ID)
        self.sites: dict[str, tuple[str, str]] = {}
        self.uploads: dict[str, dict[int, int]] = {}

    def add(self, item: tuple[Any, ...]) -> None:
        index, lineno = item[2], item[3]
        req = Request(*item[4:])
        counts = self.report.files[index]
        if req.op in (MP_INITIATE, MP_PART, MP_ABORT):
            counts.folded[req.op] += 1
            if req.op == MP_PART and not req.error and req.nbytes >= 0:
                self.uploads.setdefault(req.upload_id, {})[req.part] = req.nbytes  # a retried part: last wins
            elif req.op == MP_ABORT:
                self.uploads.pop(req.upload_id, None)
                self.report.uploads_aborted += 1
            return
        if req.op == MP_COMPLETE:
            parts = self.uploads.pop(req.upload_id, None)
            size = req.nbytes if req.nbytes >= 0 else sum(parts.values()) if parts else None
            if req.error:
                size = 0
            elif size is None:
                self.report.skip(index, lineno, Skip("multipart_size_unknown", "REST.POST.UPLOAD"))
                return
            else:
                self.report.uploads_completed += 1
            req = req._replace(op=PUT, nbytes=size)
        self._row(req)
        counts.rows += 1

    def _row(self, req: Request) -> None:
        site = self.sites.get(req.bucket)
        if site is None:
            site = self.sites[req.bucket] = (f"s3://{req.bucket}", f"{req.bucket}/")
        self.log.add(self.format.rest((req.start_ns, req.end_ns, OP_CODE[req.op], site, req.key, req.nbytes,
                                       req.n_objects, req.error, 0)))
        self.report.rows_by_op[req.op] += 1
        if not req.has_total_time:
            self.report.rows_without_total_time += 1

    def close(self) -> None:
        self.report.uploads_not_completed = len(self.uploads)


def import_access_logs(paths: list[Path], out: Path, *, window: int = DEFAULT_WINDOW) -> ImportReport:
    """Import S3 server access logs `paths` into the op-log `out`, sorted by start; the report (also
    written as JSON beside `out`). RunFailed (exit 1) when no line gave a row."""
    for path in paths:  # every file is checked before any work: a typo fails at once
        _open(path).close()
    report = ImportReport(output=str(out), files=[FileCounts(str(p)) for p in paths])
    report_path = import_report_path(out)
    with LogWriter(out) as log:
        writer = _Writer(log, report)
        for item in external_sort(_requests(paths, report), by_start_and_rank, window=window,
                                  tmp_dir=out.parent):
            writer.add(item)
        writer.close()
        report_path.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
        if not log.rows:  # leaving the block with an error discards the empty log
            raise RunFailed(
                f"nothing importable in {', '.join(map(str, paths))}: no line gave a row (report: "
                f"{report_path})\n{report.render()}",
                hint="are these S3 server access logs? the report counts the lines by reason",
            )
    return report

