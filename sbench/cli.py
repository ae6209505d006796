"""The `sbench` command line: `sbench run CONFIG`, `sbench submit CONFIG` (as a Ray job), `sbench util ...`,
`sort` and `oplog` on op-logs, `report`, `analyze`, `compare` on results directories, `ping` (Ray nodes and
storage roots) and `autotune` (a parameter sweep).

User errors (SbenchError, StorageError) end with one clear message and an exit code (2 config/usage, 1 run
failed); anything else is a bug and keeps its traceback. `-v` shows tracebacks for user errors too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path

from sbench import __version__
from sbench.commands import analyze as analyze_command
from sbench.commands import autotune as autotune_command
from sbench.commands import compare as compare_command
from sbench.commands import oplog as oplog_command
from sbench.commands import ping as ping_command
from sbench.commands import replay as replay_command
from sbench.commands import report as report_command
from sbench.commands import run as run_command
from sbench.commands import sort as sort_command
from sbench.commands import submit as submit_command
from sbench.commands import util as util_command
from sbench.errors import EXIT_INTERRUPTED, EXIT_RUN_FAILED, EXIT_USAGE, SbenchError


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors already; this only adds a pointer to --help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="sbench",
        description="Distributed storage I/O benchmark on Ray "
        "(S3, Azure Blob, GCS, file://, direct://), sai3-bench compatible.",
    )
    parser.add_argument("--version", action="version", version=f"sbench {__version__}")
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv debug); also shows tracebacks"
    )
    parser.add_argument(
        "--op-log",
        type=Path,
        metavar="PATH",
        dest="global_op_log",
        help="sai3's global op-log flag: the same as `run --op-log PATH`",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run_command.add_parser(subparsers)
    submit_command.add_parser(subparsers)
    util_command.add_parser(subparsers)
    sort_command.add_parser(subparsers)
    oplog_command.add_parser(subparsers)
    replay_command.add_parser(subparsers)
    report_command.add_parser(subparsers)
    analyze_command.add_parser(subparsers)
    compare_command.add_parser(subparsers)
    autotune_command.add_parser(subparsers)
    ping_command.add_parser(subparsers)
    return parser


_COMMANDS = {
    "run": run_command.execute,
    "submit": submit_command.execute,
    "util": util_command.execute,
    "report": report_command.execute,
    "analyze": analyze_command.execute,
    "compare": compare_command.execute,
    "sort": sort_command.execute,
    "oplog": oplog_command.execute,
    "autotune": autotune_command.execute,
    "ping": ping_command.execute,
    "replay": replay_command.execute,
}


def _execute(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    command = _COMMANDS.get(args.command)
    if command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    return command(args)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = int(getattr(args, "verbose", 0) or 0)
    logging.basicConfig(
        level=logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from sbench.storage.base import StorageError

    try:
        return _execute(args, parser)
    except SbenchError as exc:
        _report(exc, verbose)
        return exc.exit_code
    except StorageError as exc:
        _report(exc, verbose)
        return EXIT_RUN_FAILED
    except KeyboardInterrupt:
        if verbose:
            traceback.print_exc()
        print("sbench: interrupted (Ctrl-C)", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report(exc: BaseException, verbose: int) -> None:
    if verbose:
        traceback.print_exception(exc)
    print(f"error: {exc}", file=sys.stderr)
