"""`sbench oplog merge LOG... -o OUT` and `sbench oplog stats LOG [--json]`: op-log tools, streaming."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from sbench.errors import EXIT_OK, UsageError
from sbench.oplog.merge import merge_logs
from sbench.oplog.sort import DEFAULT_WINDOW
from sbench.oplog.stats import log_stats, render


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "oplog",
        help="op-log tools: merge, stats",
        description="Tools for s3dlio-format op-logs (plain or zstd). Exit 2 on a malformed log.",
    )
    tools = parser.add_subparsers(dest="oplog_command", metavar="TOOL")
    merge = tools.add_parser("merge", help="merge op-logs into one log sorted by start")
    merge.add_argument("logs", nargs="+", type=Path, metavar="LOG", help="logs to merge (sorted or not)")
    merge.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="the merged log")
    merge.add_argument("--window-size", type=int, default=DEFAULT_WINDOW, metavar="N",
                       help=f"rows held in memory at a time (default {DEFAULT_WINDOW:,})")
    stats = tools.add_parser("stats", help="ops per class, bytes, latency, rate over time, distinct keys")
    stats.add_argument("log", type=Path, metavar="LOG")
    stats.add_argument("--json", action="store_true", help="print the figures as JSON")


def execute(args: argparse.Namespace) -> int:
    if args.oplog_command == "merge":
        if args.window_size < 1:
            raise UsageError(f"sbench oplog merge: --window-size must be at least 1 (got {args.window_size})")
        began = time.monotonic()
        rows = merge_logs(list(args.logs), args.output, window=args.window_size)
        print(f"{rows:,} rows of {len(args.logs)} logs merged into {args.output} "
              f"in {time.monotonic() - began:.1f} s")
        return EXIT_OK
    if args.oplog_command == "stats":
        figures = log_stats(args.log)
        print(json.dumps(figures, indent=2) if args.json else render(figures, args.log))
        return EXIT_OK
    raise UsageError("sbench oplog: name a tool: `sbench oplog merge ...` or `sbench oplog stats LOG`")
