"""`sbench analyze`: results directories into one xlsx workbook, with sai3-analyze's flags."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sbench.errors import EXIT_OK, ConfigError, RunFailed, UsageError

DEFAULT_OUTPUT = "sbench-results.xlsx"


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "analyze",
        help="results directories into one xlsx workbook (sai3-analyze compatible)",
        description="Write one xlsx workbook from results directories (sbench's or sai3-bench's): a first "
        "sheet with the runs side by side, then one sheet per TSV named {run}-{file}. Exit codes: 0 written, "
        "2 nothing to read or the output exists (see --overwrite).",
    )
    parser.add_argument(
        "-p", "--pattern", metavar="GLOB", help="results directories matching GLOB in --base-dir"
    )
    parser.add_argument(
        "-d", "--dirs", metavar="A,B", help="comma-separated results directories (under --base-dir)"
    )
    parser.add_argument(
        "-b", "--base-dir", type=Path, default=Path("."), metavar="DIR", help="where to look (.)"
    )
    parser.add_argument(
        "-o", "--output", type=Path, default=Path(DEFAULT_OUTPUT), metavar="FILE", help=f"({DEFAULT_OUTPUT})"
    )
    parser.add_argument("--include-agents", action="store_true", help="also the TSVs of agents/<id>/")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output file")


def _candidates(args: argparse.Namespace) -> list[Path]:
    if not args.pattern and not args.dirs:
        raise UsageError(
            "sbench analyze: which results directories? give --pattern 'sbench-*' (or 'sai3-*') or --dirs a,b"
        )
    if not args.base_dir.is_dir():
        raise ConfigError(f"sbench analyze: --base-dir {args.base_dir} is not a directory")
    found: list[Path] = []
    if args.pattern:
        found += sorted(p for p in args.base_dir.glob(args.pattern) if p.is_dir())
    if args.dirs:
        found += [args.base_dir / d.strip() for d in args.dirs.split(",") if d.strip()]
    return list(dict.fromkeys(found))


def execute(args: argparse.Namespace) -> int:
    from sbench.report.rundir import load_run
    from sbench.report.workbook import write_workbook

    if args.output.exists() and not args.overwrite:
        raise UsageError(f"sbench analyze: {args.output} exists; give --overwrite to replace it")
    runs = []
    for path in _candidates(args):
        try:
            runs.append(load_run(path))
        except ConfigError as exc:
            print(f"warning: skipped {path}: {exc.message}", file=sys.stderr)
    if not runs:
        where = f"matching {args.pattern!r} " if args.pattern else ""
        raise ConfigError(f"sbench analyze: no results directories {where}in {args.base_dir}")
    try:
        sheets = write_workbook(runs, args.output, include_agents=args.include_agents)
    except OSError as exc:
        raise RunFailed(f"sbench analyze: {args.output}: {exc.strerror or exc}") from exc
    print(f"workbook: {args.output} ({len(runs)} runs, {len(sheets)} sheets)")
    return EXIT_OK
