"""Scrape a Prometheus endpoint over HTTP and index its samples, for the live-metrics tests."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterable

from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_prometheus

OPENMETRICS = "application/openmetrics-text; version=1.0.0; charset=utf-8"

Sample = tuple[str, dict[str, str], float]


def scrape(url: str, *, openmetrics: bool = False, timeout_s: float = 5.0) -> list[Sample]:
    """Every sample as (name, labels, value); `openmetrics` asks for (and parses) the OpenMetrics format."""
    request = urllib.request.Request(url, headers={"Accept": OPENMETRICS} if openmetrics else {})
    with urllib.request.urlopen(request, timeout=timeout_s) as response:
        text = response.read().decode()
        content_type = response.headers.get("Content-Type", "")
    if openmetrics:
        assert content_type.startswith("application/openmetrics-text"), content_type
    families = parse_openmetrics(text) if openmetrics else parse_prometheus(text)
    return [(s.name, dict(s.labels), s.value) for family in families for s in family.samples]


def total(samples: Iterable[Sample], name: str, by: str, **match: str) -> dict[str, float]:
    """Sum of `name` samples whose labels include `match`, grouped by the label `by`."""
    out: dict[str, float] = {}
    for sample_name, labels, value in samples:
        if sample_name == name and all(labels.get(k) == v for k, v in match.items()):
            out[labels[by]] = out.get(labels[by], 0.0) + value
    return out
