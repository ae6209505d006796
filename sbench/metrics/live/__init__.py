"""Live metrics for Prometheus: the run's interval snapshots as counters, gauges and latency histograms.

`catalog` names every exported metric (one place: the OpenMetrics endpoint, the Ray export, the Grafana
dashboard test all read it); `state` folds the intervals the driver already receives into cumulative values;
`openmetrics` serves them in this process (`--metrics-port`); `sbench.cluster.raymetrics` forwards them to
Ray's metrics export on a Ray run. Nothing here runs per op.
"""
