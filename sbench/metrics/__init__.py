"""Latency histograms per (op class, size bucket), interval snapshots and their exact merge."""
