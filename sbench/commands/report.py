"""`sbench report DIR [DIR...]`: write report.html into each results directory."""

from __future__ import annotations

import argparse
from pathlib import Path

from sbench.errors import EXIT_OK, RunFailed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "report",
        help="write report.html (charts, offline) into results directories",
        description="Write report.html into each results directory (sbench's or sai3-bench's): one "
        "self-contained page with the run's header and charts that opens offline. Exit codes: 0 written, "
        "2 a directory is not a results directory.",
    )
    parser.add_argument("dirs", nargs="+", type=Path, metavar="DIR", help="results directory")


def execute(args: argparse.Namespace) -> int:
    from sbench.report.htmlreport import write_report  # plotly only when a report is written

    for path in args.dirs:
        try:
            print(f"report: {write_report(path)}")
        except OSError as exc:
            raise RunFailed(
                f"sbench report: {path}: {exc.strerror or exc}", hint="check the directory's permissions"
            ) from exc
    return EXIT_OK
