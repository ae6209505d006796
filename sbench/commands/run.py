"""`sbench run CONFIG`: flags -> RunOptions, validate the config, then a dry run or the real run."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

from sbench.config import LoadedConfig, load_config
from sbench.config.overrides import ControllerFlags
from sbench.config.runoptions import NAME_STYLES, RunOptions
from sbench.errors import EXIT_OK, UsageError

#: Flag pairs sai3-bench refuses (main.rs:1003-1032), plus sbench's --preflight-only against every mode flag.
CONFLICTS: tuple[tuple[str, str, str], ...] = (
    ("prepare_only", "verify", "--prepare-only creates objects, --verify only checks them"),
    ("prepare_only", "skip_prepare", "--prepare-only runs nothing but prepare"),
    ("prepare_only", "cleanup_only", "--prepare-only creates objects, --cleanup-only deletes them"),
    ("cleanup_only", "skip_prepare", "--cleanup-only never prepares anyway"),
    ("cleanup_only", "verify", "--cleanup-only deletes objects, --verify only checks them"),
    ("cleanup_only", "no_cleanup", "--cleanup-only runs nothing but cleanup"),
    ("verify", "skip_prepare", "--verify runs no prepare anyway"),
    ("preflight_only", "prepare_only", "--preflight-only stops before prepare"),
    ("preflight_only", "cleanup_only", "--preflight-only stops before cleanup"),
    ("preflight_only", "verify", "--preflight-only runs only the preflight checks"),
    ("preflight_only", "skip_prepare", "--preflight-only stops before prepare anyway"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run a YAML workload (preflight, prepare, execute, cleanup)",
        description="Run a sai3-bench compatible YAML workload. Exit codes: 0 success, 1 run failed, "
        "2 config or usage error.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="workload YAML file")
    parser.add_argument(
        "--config",
        dest="config_flag",
        type=Path,
        metavar="CONFIG",
        help="same as the positional CONFIG (sai3-bench spelling)",
    )
    parser.add_argument("--dry-run", action="store_true", help="validate and print the plan; no I/O")
    parser.add_argument(
        "--results-dir",
        type=Path,
        metavar="DIR",
        help="where to write results (default ./sbench-YYYYMMDD-HHMMSS-<config>/)",
    )
    add_mode_flags(parser)
    parser.add_argument(
        "--ray-address",
        metavar="ADDR",
        help="run on the Ray cluster at ADDR (head's GCS host:port; beats RAY_ADDRESS); without it and "
        "without RAY_ADDRESS a private local Ray instance is started, never a cluster found in /tmp/ray",
    )
    parser.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve live metrics (OpenMetrics/Prometheus text) on PORT during the run (default: off)",
    )
    parser.add_argument(
        "--metrics-host",
        default=RunOptions().metrics_host,
        metavar="HOST",
        help="address --metrics-port listens on (default 127.0.0.1)",
    )
    parser.add_argument(
        "--no-ray-metrics",
        dest="ray_metrics",
        action="store_false",
        help="on Ray, do not export live metrics through Ray's metrics export (on by default)",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=argparse.SUPPRESS,
        help="more logging (-vv debug); also shows tracebacks",
    )
    names = parser.add_argument_group("results naming (sai3-bench)")
    names.add_argument(
        "--tsv-name",
        metavar="BASENAME",
        help="name the run BASENAME instead of the config's stem: the results directory "
        "(<prefix>-<time>-BASENAME) and metadata test_name; the file names inside stay fixed, as in sai3",
    )
    names.add_argument(
        "--results-name-style",
        choices=sorted(NAME_STYLES),
        default="sbench",
        help="sbench: sbench-YYYYMMDD-HHMMSS-<name>/ (default); sai3: sai3-YYYYMMDD-HHMM-<name>/, for "
        "scripts that glob sai3-bench's directories",
    )
    ctl = parser.add_argument_group(
        "ad-hoc distributed runs (sai3bench-ctl flags)",
        "Applied to the YAML's `distributed` block before validation; a flag beats the YAML's value of the "
        "same key (metadata.json records both); --agents next to YAML agents is refused.",
    )
    ctl.add_argument(
        "--agents",
        metavar="N|IP,IP,...",
        help="N agents on the driver's node, or one agent per listed Ray node address; concurrency is per "
        "agent; the namespace is shared unless --shared-prepare false",
    )
    ctl.add_argument("--agent-ids", metavar="A,B,...", help="agent ids in agent order (one per agent)")
    ctl.add_argument(
        "--path-template",
        metavar="TEMPLATE",
        help="per-agent prefix in isolated mode ({id}: 1-based agent number, {agent_id}: its id)",
    )
    ctl.add_argument(
        "--start-delay",
        metavar="DURATION",
        help="start the first stage this long after every agent is ready (e.g. 2s)",
    )
    ctl.add_argument(
        "--shared-prepare",
        metavar="BOOL",
        help="true: agents share one namespace (prepare split by index); false: isolated per-agent "
        "prefixes (distributed.shared_filesystem)",
    )


def add_mode_flags(parser: argparse.ArgumentParser) -> None:
    """The flags that pick what a run does (also `sbench submit`'s, which passes them to the job)."""
    parser.add_argument("--prepare-only", action="store_true", help="run preflight and prepare, then stop")
    parser.add_argument(
        "--cleanup-only", action="store_true", help="only delete the objects prepare creates (same names)"
    )
    parser.add_argument(
        "--verify", action="store_true", help="check that the prepared objects exist; no workload"
    )
    parser.add_argument("--skip-prepare", action="store_true", help="assume the prepared objects exist")
    parser.add_argument(
        "--no-cleanup", action="store_true", help="keep the objects (overrides prepare.cleanup)"
    )
    parser.add_argument("--preflight-only", action="store_true", help="run only the preflight checks")
    parser.add_argument(
        "--no-report", action="store_true", help="do not write report.html (charts) at the end of the run"
    )
    parser.add_argument("--op-log", type=Path, metavar="PATH", help="write a per-op log to PATH")


def check_conflicts(args: argparse.Namespace, prog: str) -> None:
    """The refused flag pairs (CONFLICTS) as a UsageError naming both flags."""
    for first, second, why in CONFLICTS:
        if getattr(args, first, False) and getattr(args, second, False):
            a, b = (f"--{name.replace('_', '-')}" for name in (first, second))
            raise UsageError(f"{prog}: {a} and {b} cannot be combined ({why}); pick one")


def options_from_args(args: argparse.Namespace) -> tuple[Path, RunOptions]:
    """Check flag combinations (UsageError, exit 2) and build RunOptions."""
    if args.config is not None and args.config_flag is not None:
        raise UsageError("sbench run: the config is given twice (positional and --config); give it once")
    config_path = args.config if args.config is not None else args.config_flag
    if config_path is None:
        raise UsageError("sbench run: no workload file given; usage: sbench run CONFIG.yaml [--dry-run]")
    check_conflicts(args, "sbench run")
    options = RunOptions(
        results_dir=args.results_dir,
        dry_run=args.dry_run,
        prepare_only=args.prepare_only,
        cleanup_only=args.cleanup_only,
        verify=args.verify,
        skip_prepare=args.skip_prepare,
        no_cleanup=args.no_cleanup,
        preflight_only=args.preflight_only,
        op_log=args.op_log if args.op_log is not None else getattr(args, "global_op_log", None),
        verbose=getattr(args, "verbose", 0),
        ray_address=args.ray_address or None,
        no_report=args.no_report,
        tsv_name=_run_name(args.tsv_name),
        results_name_style=args.results_name_style,
        metrics_port=args.metrics_port,
        metrics_host=args.metrics_host,
        ray_metrics=args.ray_metrics,
    )
    return config_path, options


def _run_name(value: str | None) -> str | None:
    """--tsv-name names a directory: one plain path component."""
    if value is None:
        return None
    if not value.strip() or value in (".", "..") or "/" in value or "\\" in value or "\0" in value:
        raise UsageError(
            f"sbench run --tsv-name {value!r}: give a plain name (no `/`, not `.` or `..`); it becomes part "
            "of the results directory's name"
        )
    if len(value) > 200:
        raise UsageError("sbench run --tsv-name: at most 200 characters (it is part of a directory name)")
    return value


def controller_flags(args: argparse.Namespace) -> ControllerFlags:
    """The sai3bench-ctl flags as given (None: not given); config.overrides applies them."""
    return ControllerFlags(
        agents=args.agents,
        agent_ids=args.agent_ids,
        path_template=args.path_template,
        start_delay=args.start_delay,
        shared_prepare=args.shared_prepare,
    )


def execute(args: argparse.Namespace) -> int:
    config_path, options = options_from_args(args)
    loaded = load_config(config_path, controller_flags(args))
    options = _config_mode(loaded, options)
    _check_mode(loaded, options)
    if options.no_cleanup and loaded.config.prepare is not None:
        loaded.config.prepare.cleanup = False  # sai3: --no-cleanup forces prepare.cleanup=false
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if options.dry_run:
        from sbench.ui.dryrun import print_dry_run

        print_dry_run(loaded, options, config_path)
        return EXIT_OK
    from sbench.run.launch import run  # the engine is imported only when something runs (not for --dry-run)

    return run(loaded, options, config_path)


def _config_mode(loaded: LoadedConfig, options: RunOptions) -> RunOptions:
    """`prepare.cleanup_only: true` in the config (sai3) is `--cleanup-only`, with the same conflicts."""
    prep = loaded.config.prepare
    if prep is None or not prep.cleanup_only or options.cleanup_only:
        return options
    for first, second, why in CONFLICTS:
        if "cleanup_only" in (first, second):
            other = second if first == "cleanup_only" else first
            if getattr(options, other):
                flag = "--" + other.replace("_", "-")
                raise UsageError(
                    f"sbench run {flag}: {loaded.path} sets `prepare.cleanup_only: true`, which is "
                    f"--cleanup-only ({why}); remove the key or the flag"
                )
    return replace(options, cleanup_only=True)


def _check_mode(loaded: LoadedConfig, options: RunOptions) -> None:
    """Flags that need something the config does not have are usage errors, caught before any I/O."""
    needs_prepare = [flag for flag in ("prepare_only", "cleanup_only", "verify") if getattr(options, flag)]
    if needs_prepare and not loaded.config.has_prepare:
        flag = "--" + needs_prepare[0].replace("_", "-")
        raise UsageError(
            f"sbench run {flag}: {loaded.path} has no `prepare.ensure_objects` or "
            "`prepare.directory_structure`, so there is nothing to act on; add a prepare block"
        )
