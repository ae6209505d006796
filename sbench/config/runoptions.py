"""The `sbench run` flags as one typed record. The CLI builds it, the dry run prints from it, the driver
takes it; plan.stages applies it to a config's stages.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: `--results-name-style`: the results directory's prefix and time stamp in each style
NAME_STYLES = {"sbench": ("sbench", "%Y%m%d-%H%M%S"), "sai3": ("sai3", "%Y%m%d-%H%M")}


@dataclass(frozen=True, slots=True)
class RunOptions:
    """The `sbench run` flags, as the driver and the dry run see them."""

    results_dir: Path | None = None
    dry_run: bool = False
    prepare_only: bool = False
    cleanup_only: bool = False
    verify: bool = False
    skip_prepare: bool = False
    no_cleanup: bool = False
    preflight_only: bool = False
    op_log: Path | None = None
    verbose: int = 0
    #: the Ray cluster to join (beats RAY_ADDRESS); None: RAY_ADDRESS, else a private local instance
    ray_address: str | None = None
    #: no report.html at the end of the run
    no_report: bool = False
    #: `--tsv-name`: the run's name (results directory, metadata test_name) instead of the config's stem
    tsv_name: str | None = None
    #: `--results-name-style`: `sbench` (sbench-YYYYMMDD-HHMMSS-<name>) or `sai3` (sai3-YYYYMMDD-HHMM-<name>)
    results_name_style: str = "sbench"
    #: serve live metrics (OpenMetrics) on this port during the run (None: off) and this host
    metrics_port: int | None = None
    metrics_host: str = "127.0.0.1"
    #: on Ray, export the live metrics through Ray's metrics (ray.util.metrics); --no-ray-metrics turns it off
    ray_metrics: bool = True

    @property
    def mode(self) -> str:
        """One word for logs and summaries."""
        for flag in ("preflight_only", "prepare_only", "cleanup_only", "verify"):
            if getattr(self, flag):
                return flag.replace("_", "-")
        return "full"
