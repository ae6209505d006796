"""A 2-agent Ray run scraped through the Ray node's own metrics export: after the run, the counters by op
class and the histogram counts equal summary.json, with both agents labelled."""

from __future__ import annotations

import json
import time
from pathlib import Path

from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.metrics.live import catalog
from sbench.run.launch import run
from tests.metrics.scrape import Sample, scrape, total

ray = __import__("pytest").importorskip("ray")

CONFIG = """
target: "null:///ray-metrics/"
duration: 1s
concurrency: 2
processes: 2
prepare:
  ensure_objects:
    - {base_uri: "null:///ray-metrics/data/", count: 20, size_spec: 1KiB}
workload:
  - {op: put, path: "out/", object_size: 1KiB, weight: 50}
  - {op: stat, path: "data/", weight: 50}
"""


def _export_url() -> str:
    """The metrics export of the node the driver runs on (Ray picks the port at start)."""
    node = next(n for n in ray.nodes() if n["Alive"])
    return f"http://127.0.0.1:{node['MetricsExportPort']}/metrics"


def test_ray_metrics_export_agrees_with_summary(ray_session: None, tmp_path: Path) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(CONFIG)
    results = tmp_path / "results"
    assert run(load_config(path), RunOptions(results_dir=results, no_report=True), path) == 0
    summary = json.loads((results / "summary.json").read_text())
    run_id = summary["run"]["run_id"]
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    want = {op: float(f["ops"]) for op, f in execute["operations"].items()}
    assert want["PUT"] > 0 and want["META"] > 0

    def execute_ops(samples: list[Sample]) -> dict[str, float]:
        return total(samples, "ray_sbench_ops_total", "op", run_id=run_id, stage="execute")

    def barrier(samples: list[Sample]) -> dict[str, float]:
        return total(samples, "ray_sbench_stage_barrier", "status", run_id=run_id, stage="execute")

    samples: list[Sample] = []
    deadline = time.monotonic() + 30  # Ray's processes export every RAY_metrics_report_interval_ms
    while time.monotonic() < deadline:  # the counters and the gauge may reach the export in different flushes
        samples = scrape(_export_url())
        if execute_ops(samples) == want and barrier(samples) == {"ok": 1}:
            break
        time.sleep(0.5)
    assert execute_ops(samples) == want
    agents = total(samples, "ray_sbench_ops_total", "agent", run_id=run_id, stage="execute")
    assert len(agents) == 2 and all(n > 0 for n in agents.values())
    count = total(samples, "ray_sbench_op_latency_seconds_count", "op", run_id=run_id, stage="execute")
    top = total(
        samples, "ray_sbench_op_latency_seconds_bucket", "op", run_id=run_id, stage="execute", le="+Inf"
    )
    assert count == top == {op: n for op, n in want.items() if n}
    mine = {name.removeprefix("ray_") for name, labels, _ in samples if labels.get("run_id") == run_id}
    assert mine <= catalog.exported_series()
    assert barrier(samples) == {"ok": 1}
