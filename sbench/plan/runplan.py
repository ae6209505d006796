"""The run as a whole: its stages and its load model, worked out once from the config and the CLI flags.

The driver builds one `RunPlan` before anything runs and reads it for every stage, the console header, the
results directory and the final report; nothing after it works these out again from the raw config.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sbench.config.models import Config
from sbench.config.runoptions import RunOptions
from sbench.plan.stages import StagePlan, run_stages


@dataclass(frozen=True, slots=True)
class RunPlan:
    """What a run will do (see the module docstring)."""

    config: Config
    #: the stages in order, the CLI flags applied and a preflight first (empty for --verify)
    stages: tuple[StagePlan, ...]
    #: the load model label every output carries (load_model_of)
    load_model: dict[str, Any]


def build_plan(config: Config, options: RunOptions) -> RunPlan:
    """The run plan of `config` with the CLI `options` (a pure function of both)."""
    return RunPlan(config, tuple(run_stages(config, options)), load_model_of(config))


def load_model_of(config: Config) -> dict[str, Any]:
    """The load model label every output carries (closed loop, or open loop with its aggregate rate)."""
    iops = config.io_rate.iops if config.io_rate is not None else None
    model: dict[str, Any] = {"kind": "open" if iops else "closed", "concurrency": config.concurrency}
    dist = config.distributed
    if dist is not None and dist.agents:
        model["agents"] = len(dist.agents)  # concurrency is then per agent
    if iops and config.io_rate is not None:
        model["iops"] = iops
        model["distribution"] = config.io_rate.distribution
        model["note"] = (
            "aggregate rate over all workers of all agents (sai3 delivered iops/concurrency for two modes)"
        )
    return model
