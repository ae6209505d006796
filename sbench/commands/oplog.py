"""`sbench oplog merge LOG... -o OUT`, `sbench oplog stats LOG [--json]` and `sbench oplog import --format
s3-access-log FILE... -o OUT`: op-log tools, streaming."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sbench.errors import EXIT_OK, UsageError
from sbench.oplog.accessimport import FORMAT as ACCESS_LOG_FORMAT
from sbench.oplog.accessimport import import_access_logs, import_report_path
from sbench.oplog.merge import merge_logs
from sbench.oplog.sort import DEFAULT_WINDOW
from sbench.oplog.stats import log_stats, render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "oplog",
        help="op-log tools: merge, stats, import",
        description="Tools for s3dlio-format op-logs (plain or zstd). Exit 2 on a malformed log.",
    )
    tools = parser.add_subparsers(dest="oplog_command", metavar="TOOL")
    merge = tools.add_parser("merge", help="merge op-logs into one log sorted by start")
    merge.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="logs to merge (sorted or not)")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the merged log")
    _window_option(merge)
    stats = tools.add_parser("stats", help="ops per class, bytes, latency, rate over time, distinct keys")
    stats.add_argument("log", type=Path, metavar="LOG")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")
    imp = tools.add_parser(
        "import",
        help="S3 server access logs -> one op-log sorted by start (unmapped lines counted by reason)",
        description="Import AWS S3 server access logs (plain, gzip or zstd) into one op-log sorted by "
        "start, with a report OUT-stem.import.json beside it. Exit 1 when no line gives a row, 2 on an "
        "unreadable file.",
    )
    imp.add_argument("--format", required=True, choices=[ACCESS_LOG_FORMAT], help="the logs' format")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="access log files, in any order")
    imp.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                     help="the op-log to write (zstd when it ends in .zst)")
    _window_option(imp)


def _window_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--window-size", type=int, default=DEFAULT_WINDOW, metavar="N",
                        help=f"rows held in memory at a time (default {DEFAULT_WINDOW:,})")


def execute(args: argparse.Namespace) -> int:
    if getattr(args, "window_size", 1) < 1:
        raise UsageError(f"sbench oplog {args.oplog_command}: --window-size must be at least 1 "
                         f"(got {args.window_size})")
    if args.oplog_command == "merge":
        began = time.monotonic()
        rows = merge_logs(list(args.logs), args.output, window=args.window_size)
        print(f"{rows:,} rows of {len(args.logs)} logs merged into {args.output} "
              f"in {time.monotonic() - began:.1f} s")
        return EXIT_OK
    if args.oplog_command == "stats":
        figures = log_stats(args.log)
        print(json.dumps(figures, indent=2) if args.json else render(figures, args.log))
        return EXIT_OK
    if args.oplog_command == "import":
        began = time.monotonic()
        report = import_access_logs(list(args.files), args.output, window=args.window_size)
        print(report.render())
        print(f"{args.output} written in {time.monotonic() - began:.1f} s; report: "
              f"{import_report_path(args.output)}")
        return EXIT_OK
    raise UsageError("sbench oplog: name a tool: `sbench oplog merge ...`, `sbench oplog stats LOG` or "
                     "`sbench oplog import --format s3-access-log FILE... -o OUT`")
