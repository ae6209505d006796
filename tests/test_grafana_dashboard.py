"""deploy/grafana/sbench-dashboard.json queries only what sbench exports, grouped by labels those metrics
have, and covers what an operator watches (throughput, MiB/s, latency heatmap and quantiles, errors,
in-flight, schedule lag, stage annotations)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sbench.metrics.live import catalog

DASHBOARD = Path(__file__).resolve().parents[1] / "deploy" / "grafana" / "sbench-dashboard.json"
SELECTOR = re.compile(r'__name__=~"\(ray_\)\?(\w+)"')


def _queries(node: Any) -> Iterator[str]:
    """Every PromQL string of the dashboard: panel targets, annotations, variable queries."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("expr", "query", "definition") and isinstance(value, str):
                yield value
            else:
                yield from _queries(value)
    elif isinstance(node, list):
        for value in node:
            yield from _queries(value)


def _by_series() -> dict[str, tuple[str, ...]]:
    """Sample name -> its labels (a histogram's buckets also have `le`)."""
    out = {}
    for metric in catalog.METRICS:
        for name in metric.series_names():
            out[name] = metric.labels + (("le",) if name.endswith("_bucket") else ())
    return out


def test_every_metric_the_dashboard_queries_is_one_sbench_exports() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [q for q in _queries(dashboard) if "sbench_" in q]
    assert len(queries) >= 15
    labels_of = _by_series()
    queried: set[str] = set()
    for query in queries:
        names = SELECTOR.findall(query)
        assert names, query
        # no metric named any other way than through the selector that matches both exports
        assert len(re.findall(r"sbench_\w+", query)) == len(names), query
        for name in names:
            assert name in catalog.exported_series(), f"{name} is not exported: {query}"
        for group in re.findall(r"by \(([^)]*)\)", query):
            for label in (g.strip() for g in group.split(",")):
                assert all(label in labels_of[n] for n in names), f"{label} not a label of {names}: {query}"
        queried.update(names)
    wanted = {
        "sbench_ops_total",
        "sbench_bytes_total",
        "sbench_op_latency_seconds_bucket",
        "sbench_errors_total",
        "sbench_in_flight_ops",
        "sbench_schedule_lag_seconds",
        "sbench_stage_running",
    }
    assert wanted <= queried
    kinds = {panel["type"] for panel in dashboard["panels"]}
    assert "heatmap" in kinds
    assert any("histogram_quantile" in q for q in queries)
    annotation = [a for a in dashboard["annotations"]["list"] if "sbench_stage_running" in a.get("expr", "")]
    assert annotation, "no stage annotations"


def test_the_dashboard_is_importable_as_is() -> None:
    """Grafana's import needs a uid, a title, panels with ids and grid positions, and a datasource
    variable (no hard-wired datasource uid)."""
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert all({"x", "y", "w", "h"} <= panel["gridPos"].keys() for panel in dashboard["panels"])
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    uids = {t["datasource"]["uid"] for panel in dashboard["panels"] for t in panel["targets"]}
    assert uids == {"${datasource}"}
