"""HDR latency histogram in microseconds, 1 µs to 1 h at 3 significant digits, shipped as encoded bytes.

The hdrh object cannot be pickled or sent through Ray, so snapshots carry `encode()` bytes and every merge
decodes and adds: percentiles across workers, agents and intervals are exact, never averaged.
"""

from __future__ import annotations

from hdrh.histogram import HdrHistogram

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3


class LatencyHistogram:
    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

    def record_us(self, value_us: int) -> None:
        """Record one latency; values are clamped into the trackable range instead of being dropped."""
        if value_us < LOWEST_US:
            value_us = LOWEST_US
        elif value_us > HIGHEST_US:
            value_us = HIGHEST_US
        self._h.record_value(value_us)

    @property
    def count(self) -> int:
        return self._h.get_total_count()

    def percentile(self, pct: float) -> int:
        return self._h.get_value_at_percentile(pct) if self.count else 0

    @property
    def mean(self) -> float:
        return self._h.get_mean_value() if self.count else 0.0

    @property
    def max(self) -> int:
        return self._h.get_max_value() if self.count else 0

    @property
    def min(self) -> int:
        return self._h.get_min_value() if self.count else 0

    def add(self, other: LatencyHistogram) -> None:
        self._h.add(other._h)

    def add_encoded(self, data: bytes) -> None:
        if data:
            self._h.decode_and_add(data)

    def encode(self) -> bytes:
        return self._h.encode() if self.count else b""

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        hist = cls()
        hist.add_encoded(data)
        return hist

    def reset(self) -> None:
        self._h.reset()
