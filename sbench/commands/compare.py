"""`sbench compare BASE OTHER [OTHER...]`: figures per stage and op class, the change against the base with
its noise band, optional regression gates (`--fail-if`, exit 1 when one holds) and an HTML page."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sbench.errors import EXIT_OK, EXIT_RUN_FAILED, RunFailed


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare",
        help="compare results directories against a base, with regression gates",
        description="Compare runs (sbench or sai3-bench results directories) against BASE: per stage and op "
        "class ops/s, MiB/s, p50, p99, p99.9 and error rate, the change in %% and whether it is within the "
        "noise of the runs' own intervals. Exit codes: 0 no --fail-if condition holds, 1 one holds, 2 a "
        "condition cannot be read or a directory is not a results directory.",
    )
    parser.add_argument("base", type=Path, metavar="BASE", help="the reference results directory")
    parser.add_argument(
        "others", nargs="+", type=Path, metavar="OTHER", help="results directories to compare"
    )
    parser.add_argument(
        "--fail-if",
        action="append",
        default=[],
        metavar="EXPR",
        help="exit 1 when it holds for any OTHER: [STAGE:]CLASS.METRIC OP VALUE[%%], e.g. 'GET.p99 > +10%%', "
        "'ALL.ops_per_sec < -5%%' (%% = change against BASE; repeatable)",
    )
    parser.add_argument("--html", type=Path, metavar="OUT", help="also write the comparison as an HTML page")


def execute(args: argparse.Namespace) -> int:
    from sbench.report.compare import METRIC_TITLES, compare_runs, format_change, format_figure, verdict
    from sbench.report.gates import check_gates, parse_gate
    from sbench.report.rundir import load_run

    gates = [parse_gate(text) for text in args.fail_if]  # a malformed one stops before anything is read
    comparison = compare_runs(load_run(args.base), [load_run(p) for p in args.others])
    console = Console(width=None if sys.stdout.isatty() else 160)
    names = [o.run.name for o in comparison.others]
    for stage, _ in comparison.pairs:
        table = Table(title=f"stage {stage.name} ({stage.type})", title_justify="left")
        table.add_column("class")
        table.add_column("figure")
        table.add_column(f"base {comparison.base.run.name}", justify="right")
        for name in names:
            table.add_column(name, justify="right")
            table.add_column("change", justify="right")
            table.add_column("noise ±", justify="right")
            table.add_column("verdict")
        for row in (r for r in comparison.rows if r.stage == stage.name):
            cells = [row.cls, METRIC_TITLES[row.metric], format_figure(row.metric, row.base)]
            for delta in row.others:
                band = "n/a" if delta.band is None else f"{delta.band:.1f}%"
                cells += [
                    format_figure(row.metric, delta.value),
                    format_change(delta.change),
                    band,
                    verdict(row.metric, delta),
                ]
            table.add_row(*cells)
        console.print(table)
    for note in comparison.notes:
        print(f"note: {note}")
    if args.html is not None:
        from sbench.report.comparehtml import write_compare_page

        try:
            print(f"comparison: {write_compare_page(comparison, args.html)}")
        except OSError as exc:
            raise RunFailed(f"sbench compare --html {args.html}: {exc.strerror or exc}") from exc
    held = check_gates(gates, comparison)
    for line in held:
        print(f"FAIL --fail-if {line}")
    if held:
        return EXIT_RUN_FAILED
    if gates:
        print(f"passed: none of the {len(gates)} --fail-if condition(s) holds")
    return EXIT_OK
