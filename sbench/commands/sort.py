"""`sbench sort --files F... [--in-place] [--window-size N]`: sort op-logs by start time (sai3's `sort`).

Each file is sorted on its own into `X.sorted.tsv.zst` next to it (sai3's name), or replaces itself with
`--in-place` (written beside it and renamed, so an interrupted sort leaves the original whole). Streaming,
constant memory: `--window-size` rows are held at a time (oplog.sort).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sbench.errors import EXIT_OK, UsageError
from sbench.oplog.sort import DEFAULT_WINDOW, sort_logs, sorted_name


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sort",
        help="sort op-logs by start time (constant memory)",
        description="Sort s3dlio-format op-logs by start time. Output: X.sorted.tsv.zst beside each input, "
        "or the input itself with --in-place. Exit 2 on a malformed log (file and line named).",
    )
    parser.add_argument("--files", nargs="+", type=Path, required=True, metavar="F", help="op-logs to sort")
    parser.add_argument("--in-place", action="store_true", help="replace each file by its sorted version")
    parser.add_argument(
        "--window-size",
        type=int,
        default=DEFAULT_WINDOW,
        metavar="N",
        help=f"rows held in memory at a time (default {DEFAULT_WINDOW:,}); the result is exactly sorted "
        "whatever N is",
    )


def execute(args: argparse.Namespace) -> int:
    if args.window_size < 1:
        raise UsageError(f"sbench sort: --window-size must be at least 1 (got {args.window_size})")
    for path in args.files:
        out = path if args.in_place else sorted_name(path)
        began = time.monotonic()
        rows = sort_logs([path], out, window=args.window_size)
        print(f"{path}: {rows:,} rows sorted into {out} in {time.monotonic() - began:.1f} s")
    return EXIT_OK
