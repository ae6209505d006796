"""Which fleet runs a config: in this process, or Ray agents (then Ray is connected here, and only here).

Single-agent configs (no `distributed` block, `processes` unset or 1, no Ray address given) run on the
in-process fleet: no Ray, no start-up cost. A `distributed` block, `processes: N` (N local agents) or a
named cluster (--ray-address, RAY_ADDRESS) run on the Ray fleet. Either way the same driver runs the stages.
The `--metrics-port` server is bound before anything else, and Ray runs also export the live metrics through
Ray's metrics (unless --no-ray-metrics).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sbench.config import LoadedConfig
from sbench.config.runoptions import RunOptions
from sbench.layout.naming import new_run_id
from sbench.metrics.live.openmetrics import MetricsServer
from sbench.metrics.live.state import LiveMetrics, Sink
from sbench.run.driver import RunDriver
from sbench.run.inprocess import InProcessFleet


def is_distributed(loaded: LoadedConfig, ray_address: str | None = None) -> bool:
    """Ray runs it: a `distributed` block, `processes` above one (local agent processes), or a named
    cluster (--ray-address or RAY_ADDRESS)."""
    config = loaded.config
    named = bool(ray_address or os.environ.get("RAY_ADDRESS"))
    return config.distributed is not None or config.process_count > 1 or named


def run(
    loaded: LoadedConfig,
    options: RunOptions,
    config_path: Path,
    stage_fn: Callable[..., Any] | None = None,
    *,
    on_ray: bool | None = None,
) -> int:
    """Run a loaded config with the CLI options; returns the process exit code. `on_ray` forces the
    fleet (None: `is_distributed` decides); `stage_fn` replaces the engine in Ray agents (tests)."""
    run_id = new_run_id()
    if on_ray is None:
        on_ray = is_distributed(loaded, options.ray_address)
    # bound first: a port in use or a bad host is a usage error before any I/O
    server = MetricsServer(options.metrics_host, options.metrics_port) if options.metrics_port else None
    try:
        return _run(loaded, options, config_path, stage_fn, on_ray, run_id, server)
    finally:
        if server is not None:
            server.close()


def _run(
    loaded: LoadedConfig,
    options: RunOptions,
    config_path: Path,
    stage_fn: Callable[..., Any] | None,
    on_ray: bool,
    run_id: str,
    server: MetricsServer | None,
) -> int:
    if not on_ray:
        fleet = InProcessFleet(loaded.config, run_id, cleanup_only=options.cleanup_only)
        live = _live(run_id, server, ())
        return RunDriver(loaded, options, config_path, fleet, run_id, live).execute()
    # Ray takes seconds to import: only when it is used
    from sbench.cluster.connect import ray_connection
    from sbench.cluster.rayfleet import RayFleet
    from sbench.cluster.raymetrics import RayMetricsSink
    from sbench.plan.agents import local_agents

    if loaded.config.distributed is None:
        # `processes: N`, or RAY_ADDRESS without a `distributed` block: local agents on the driver's node
        loaded = dataclasses.replace(loaded, config=local_agents(loaded.config))
    with ray_connection(options.ray_address) as connection:
        ray_fleet = RayFleet(
            loaded.config, run_id, connection, cleanup_only=options.cleanup_only, stage_fn=stage_fn
        )
        live = _live(run_id, server, (RayMetricsSink(),) if options.ray_metrics else ())
        return RunDriver(loaded, options, config_path, ray_fleet, run_id, live).execute()


def _live(run_id: str, server: MetricsServer | None, sinks: tuple[Sink, ...]) -> LiveMetrics | None:
    """The run's live metrics when anything exports them (Ray's metrics, --metrics-port)."""
    if server is None and not sinks:
        return None
    live = LiveMetrics(run_id, sinks)
    if server is not None:
        server.attach(live)
    return live
