"""Figures for humans, the same on the live display, the dashboard and the closing tables."""

from __future__ import annotations

MIB = 1024 * 1024


def fmt_us(value: float) -> str:
    """Latency: µs below 1 ms, ms below 10 s, else s."""
    if value < 1000:
        return f"{value:.0f}µs"
    if value < 10_000_000:
        return f"{value / 1000:.2f}ms"
    return f"{value / 1e6:.1f}s"


def fmt_s(seconds: float) -> str:
    """A duration: 42s, 3m05s, 1h02m."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
