"""`sbench autotune CONFIG`: sweep the config's `autotune:` block and report the best setting per size.

Exit codes: 0 every trial of every point succeeded; 1 a point failed or was stopped early (its reason is in
the TSVs and on the console), or the sweep was interrupted; 2 the config or the block is invalid (before
any I/O).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from sbench.autotune.sweep import base_prefix, points
from sbench.config import load_config
from sbench.config.units import format_size
from sbench.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, ConfigError, UsageError


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "autotune",
        help="sweep sizes x threads x ranged-GET settings (the config's `autotune:` block)",
        description="Run every point of the config's `autotune:` block (sai3-bench's keys) as a short "
        "sbench run and report the best setting per object size. Exit codes: 0 success, 1 a point failed, "
        "2 config or usage error.",
    )
    parser.add_argument("config", nargs="?", type=Path, help="YAML file with an `autotune:` block")
    parser.add_argument("--config", dest="config_flag", type=Path, metavar="CONFIG", help="same as CONFIG")
    parser.add_argument("--dry-run", action="store_true", help="print the sweep plan; no I/O")
    parser.add_argument(
        "--results-dir", type=Path, metavar="DIR", help="default ./sbench-autotune-YYYYMMDD-HHMMSS/"
    )
    parser.add_argument("--ray-address", metavar="ADDR", help="run the points on this Ray cluster")


def execute(args: argparse.Namespace) -> int:
    if args.config is not None and args.config_flag is not None:
        raise UsageError("sbench autotune: the config is given twice (positional and --config); give it once")
    config_path = args.config if args.config is not None else args.config_flag
    if config_path is None:
        raise UsageError("sbench autotune: no config given; usage: sbench autotune CONFIG.yaml [--dry-run]")
    loaded = load_config(config_path, workload_used=False)
    spec = loaded.config.autotune
    if spec is None:
        raise ConfigError(
            f"{config_path}: has no `autotune:` block; add one (keys: uri, sizes or size_range, threads, "
            "range_enabled, range_thresholds_mb, objects, trials, optimize_for, ops)"
        )
    plan = points(spec)
    ops = {"put": 1, "get": 1, "both": 2}[spec.ops]
    print(f"sbench autotune: {config_path}")
    print(f"  under {base_prefix(spec.uri)} (a fresh prefix per trial, deleted after it)")
    sizes = ", ".join(format_size(s) for s in spec.size_points())
    print(
        f"  sizes {sizes}; threads {spec.threads}; ranged GETs {spec.range_enabled} "
        f"(thresholds {spec.range_thresholds_mb} MiB)"
    )
    print(
        f"  {len(plan)} points x {spec.trials} trials = {len(plan) * spec.trials} runs; each: "
        + ("PUT " if spec.ops != "get" else "")
        + f"{spec.objects:,} objects"
        + (f", GETs for {spec.duration:g} s" if spec.ops != "put" else "")
        + f"; optimize for {spec.optimize_for}"
    )
    if ops * len(plan) * spec.trials > 200:
        print("  note: more than 200 measurements; narrow the sweep if that is too long")
    if args.dry_run:
        for point in plan:
            print(f"    {point.number:3d}  {point.label}")
        print("Nothing was run (dry run).")
        return EXIT_OK
    from sbench.autotune.output import write_outputs  # plotly and the engine only when something runs
    from sbench.autotune.runner import run_sweep

    out_dir = args.results_dir or Path(f"sbench-autotune-{time.strftime('%Y%m%d-%H%M%S')}")
    out_dir.mkdir(parents=True, exist_ok=True)
    sweep = run_sweep(loaded, config_path, out_dir, args.ray_address, print)
    figures, best = write_outputs(out_dir, sweep.trials, spec.optimize_for, f"sbench autotune: {config_path}")
    for f in best:
        print(
            f"best {f.op} for {format_size(f.point.size)}: {f.point.threads} threads, ranged GETs "
            f"{'on' if f.point.range_enabled else 'off'}: {f.mib_per_s:,.1f} MiB/s, p99 {f.p99_us:,.0f} µs "
            f"(spread {f.spread:.0%} over {f.trials_ok} trials)"
        )
    failed = [f for f in figures if f.failure]
    for label, failure in dict.fromkeys((f.point.label, f.failure) for f in failed):
        print(f"FAILED {label}: {failure}")
    print(f"results: {out_dir}/autotune.tsv, autotune_summary.tsv, autotune_best.tsv, autotune.html")
    if sweep.interrupted:
        print("the sweep was interrupted: the points above are all it measured")
        return EXIT_INTERRUPTED
    return EXIT_RUN_FAILED if failed or not best else EXIT_OK
