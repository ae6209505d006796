"""`sbench replay`: replay an op-log against storage with its timing, on one host or over Ray agents.

Flags are sai3's (`--op-log`, `--target`, `--remap`, `--speed`, `--continue-on-error`, `--config` for the
backpressure keys) plus `--dry-run`, `--results-dir`, `--capture` (the replay's own op-log) and `--agents N`
(a distributed replay on Ray). A distributed replay can also take its agents from a `distributed:` block
in the `--config` file (the block of a workload file, as `sbench run` reads it); `--agents` next to one is
refused, as `sbench run` refuses `--agents` next to the YAML's agents. Exit codes: 0 success, 1 the replay
failed, 2 a bad log, remap or config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from sbench.errors import UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay an op-log against storage, timing kept (remap, speed, backpressure)",
        description="Replay an s3dlio-format op-log (sorted or not, plain or zstd): op i is due at "
        "epoch + (start_i - start_0) / speed. Writes a results directory as `sbench run` does. Exit codes: "
        "0 success, 1 the replay failed, 2 a bad log, remap file or config.",
    )
    parser.add_argument("--op-log", type=Path, required=True, metavar="LOG", help="the op-log to replay")
    parser.add_argument("--target", metavar="URI", help="replay everything under URI (1 -> 1 retarget)")
    parser.add_argument("--remap", type=Path, metavar="FILE", help="remap rules (YAML `rules:`)")
    parser.add_argument("--speed", type=float, default=1.0, metavar="F", help="time scale: 2 = twice as fast")
    parser.add_argument(
        "--continue-on-error", action="store_true", help="go on after a failed op (default: stop)"
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help="backpressure YAML: lag_threshold, recovery_threshold, max_flaps_per_minute, drain_timeout, "
        "max_concurrent; and `distributed:` (a workload file's block) to replay over Ray agents",
    )
    parser.add_argument("--dry-run", action="store_true", help="check log, remap and target; print the plan")
    parser.add_argument("--results-dir", type=Path, metavar="DIR", help="where to write the results")
    parser.add_argument(
        "--capture", type=Path, metavar="PATH", help="log the replay's own calls to PATH (an op-log)"
    )
    parser.add_argument("--agents", type=int, metavar="N", help="replay over N Ray agents (split by key)")
    parser.add_argument("--ray-address", metavar="ADDR", help="Ray cluster for --agents")


def execute(args: argparse.Namespace) -> int:
    from sbench.replay.driver import ReplayDriver, ReplayOptions
    from sbench.replay.settings import load_replay_config

    if args.agents is not None and args.agents < 1:
        raise UsageError(f"sbench replay: --agents must be at least 1 (got {args.agents})")
    config = load_replay_config(args.config)
    if args.agents is not None and config.settings.distributed is not None:
        raise UsageError(
            f"sbench replay --agents {args.agents}: {config.distributed_at} has a `distributed` block, which "
            "places the replay's agents; remove one of the two (the block's agents may carry ids, nodes and "
            "environments --agents would drop)"
        )
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    options = ReplayOptions(
        op_log=args.op_log,
        target=args.target,
        remap=args.remap,
        speed=args.speed,
        continue_on_error=args.continue_on_error,
        config=args.config,
        dry_run=args.dry_run,
        results_dir=args.results_dir,
        capture=args.capture or getattr(args, "global_op_log", None),
        agents=args.agents,
    )
    if (args.agents is None and config.settings.distributed is None) or args.dry_run:
        return ReplayDriver(options, settings=config.settings).execute()
    from sbench.cluster.replayfleet import replay_on_ray

    return replay_on_ray(options, config.settings, args.ray_address)
