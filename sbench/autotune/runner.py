"""Runs every point and trial of a sweep through the one run driver and reads back what it measured.

Each op of each trial of a point is an ordinary sbench run with its own results directory under `points/`,
so everything a run guarantees holds for it: the verdict, the cleanup of exactly what it created, bounded
stops. Its console goes to that directory (console_log.txt) rather than the terminal; the sweep prints one
line per trial. With a `distributed` block one Ray connection serves every run.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sbench.autotune.sweep import Point, base_prefix, point_config, points
from sbench.config import LoadedConfig
from sbench.config.runoptions import RunOptions
from sbench.errors import EXIT_INTERRUPTED
from sbench.layout.naming import new_run_id
from sbench.run.launch import is_distributed, run
from sbench.storage.uri import LOCAL_SCHEMES, parse_uri

OPS = {"put": ("PUT",), "get": ("GET",), "both": ("PUT", "GET")}


@dataclass(frozen=True, slots=True)
class Trial:
    """One op of one trial of one point, as its run measured it."""

    point: Point
    trial: int
    op: str
    #: success, or what stopped it (the run's status and reason)
    status: str
    reason: str
    ops: int
    errors: int
    ops_per_s: float
    mib_per_s: float
    p50_us: int
    p99_us: int
    results_dir: Path

    @property
    def ok(self) -> bool:
        return self.status == "success"


@dataclass
class Sweep:
    """What the sweep did: every trial, and whether it was cut short (Ctrl-C)."""

    trials: list[Trial]
    interrupted: bool = False


def run_sweep(
    loaded: LoadedConfig,
    config_path: Path,
    out_dir: Path,
    ray_address: str | None,
    say: Callable[[str], None],
) -> Sweep:
    spec = loaded.config.autotune
    assert spec is not None  # the command checked
    sweep_dir = f"sbench-autotune-{new_run_id()}/"
    sweep = Sweep([])
    plan = points(spec)
    with _connection(loaded, ray_address), _tidy(spec.uri, sweep_dir):
        for point in plan:
            for trial in range(1, spec.trials + 1):
                measured = []
                for op in OPS[spec.ops]:
                    name = f"{point.slug}-t{trial}-{op.lower()}"
                    config = point_config(loaded.config, spec, point, op, f"{sweep_dir}{name}/")
                    where = out_dir / "points" / name
                    options = RunOptions(results_dir=where, no_report=True, ray_address=ray_address)
                    with _quiet():
                        code = run(replace(loaded, config=config, warnings=[]), options, config_path)
                    measured.append(read_trial(point, trial, op, where))
                    if code == EXIT_INTERRUPTED or measured[-1].status == "aborted":
                        sweep.interrupted = True
                        break
                sweep.trials += measured
                say(_line(point, trial, len(plan), spec.trials, measured))
                if sweep.interrupted:
                    return sweep
    return sweep


@contextlib.contextmanager
def _connection(loaded: LoadedConfig, ray_address: str | None) -> Iterator[None]:
    """One Ray connection for the whole sweep when the points run on Ray (each run reuses it)."""
    if not is_distributed(loaded, ray_address):
        yield
        return
    from sbench.cluster.connect import ray_connection

    with ray_connection(ray_address):
        yield


@contextlib.contextmanager
def _tidy(uri: str, sweep_dir: str) -> Iterator[None]:
    """On a file system the runs delete their files but leave the directories their PUTs made: remove the
    sweep's directories that are empty at the end (never one that still holds anything)."""
    try:
        yield
    finally:
        where = parse_uri(base_prefix(uri))
        if where.scheme in LOCAL_SCHEMES:
            for parent, _dirs, files in os.walk(Path(where.prefix) / sweep_dir, topdown=False):
                try:
                    if not files and not os.listdir(parent):  # os.walk follows no symlink
                        os.rmdir(parent)
                except OSError as exc:
                    print(f"sbench autotune: could not remove directory {parent}: {exc}", file=sys.stderr)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The point's run prints to its console_log.txt only (the sweep prints one line per trial)."""
    with open(os.devnull, "w", encoding="utf-8") as sink, contextlib.redirect_stdout(sink):
        yield


def read_trial(point: Point, trial: int, op: str, where: Path) -> Trial:
    """The op's figures from its run's execute stage in summary.json (no summary: it failed before)."""
    summary = _summary(where)
    reason = str(summary.get("reason") or "")
    if not summary:
        reason = f"no summary.json in {where}: the run ended before it measured anything"
    totals = _stage_totals(summary, "execute")
    latency = totals.get("latency_us", {})
    return Trial(
        point=point,
        trial=trial,
        op=op,
        status=str(summary.get("status", "failure")).lower(),
        reason=reason,
        ops=int(totals.get("ops", 0)),
        errors=int(totals.get("errors", 0)),
        ops_per_s=float(totals.get("ops_per_sec", 0.0)),
        mib_per_s=float(totals.get("mib_per_sec", 0.0)),
        p50_us=int(latency.get("p50_us", 0)),
        p99_us=int(latency.get("p99_us", 0)),
        results_dir=where,
    )


def _summary(where: Path) -> dict[str, Any]:
    try:
        return json.loads((where / "summary.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _stage_totals(summary: dict[str, Any], stage_type: str) -> dict[str, Any]:
    for stage in summary.get("stages", []):
        if stage.get("type") == stage_type:
            return dict(stage.get("totals") or {})
    return {}


def _line(point: Point, trial: int, n_points: int, n_trials: int, measured: list[Trial]) -> str:
    head = f"point {point.number}/{n_points} trial {trial}/{n_trials}: {point.label}: "
    return head + "; ".join(
        f"{t.op} {t.mib_per_s:,.1f} MiB/s {t.ops_per_s:,.0f} ops/s p99 {t.p99_us:,} µs"
        if t.ok
        else f"{t.op} {t.status.upper()} ({t.reason})"
        for t in measured
    )
