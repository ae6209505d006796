"""CPU utilisation: system-wide user/system/iowait % from /proc/stat deltas (as sai3's cpu_monitor), and this
process's own CPU time for bench/ scripts."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

PROC_STAT = Path("/proc/stat")


def _read_cpu_line(path: Path) -> list[int] | None:
    try:
        with path.open() as fh:
            first = fh.readline()
    except OSError:
        return None
    parts = first.split()
    if not parts or parts[0] != "cpu":
        return None
    return [int(v) for v in parts[1:]]


class CpuSampler:
    """Each `sample()` returns the shares of all CPUs' time since the previous call (the first call: since
    the sampler was built).

    /proc/stat columns: user nice system idle iowait irq softirq steal guest guest_nice. User includes nice,
    system includes irq and softirq. Where /proc/stat is missing every sample is (0, 0, 0).
    """

    def __init__(self, path: Path = PROC_STAT) -> None:
        self._path = path
        self._last = _read_cpu_line(path)

    @property
    def available(self) -> bool:
        return self._last is not None

    def sample(self) -> tuple[float, float, float]:
        current = _read_cpu_line(self._path)
        previous, self._last = self._last, current
        if current is None or previous is None:
            return (0.0, 0.0, 0.0)
        delta = [c - p for c, p in zip(current, previous, strict=False)] + [0] * 8
        # Guest time is already counted in user: columns 8+ stay out of the total.
        total = sum(delta[:8])
        if total <= 0:
            return (0.0, 0.0, 0.0)
        user = delta[0] + delta[1]
        system = delta[2] + delta[5] + delta[6]
        return (100.0 * user / total, 100.0 * system / total, 100.0 * delta[4] / total)


@dataclass(frozen=True, slots=True)
class ProcessCpu:
    """CPU seconds this process used (user + system, no children) and wall seconds, between two marks."""

    cpu_s: float
    wall_s: float

    @property
    def utilisation(self) -> float:
        """Cores used on average (1.0 = one full core)."""
        return self.cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class ProcessCpuMeter:
    """`start()` then `stop()`: how much CPU this process burned, to express bench costs per op."""

    def __init__(self) -> None:
        self._cpu0 = 0.0
        self._wall0 = 0.0

    def start(self) -> None:
        t = os.times()
        self._cpu0 = t.user + t.system
        self._wall0 = time.perf_counter()

    def stop(self) -> ProcessCpu:
        t = os.times()
        return ProcessCpu(t.user + t.system - self._cpu0, time.perf_counter() - self._wall0)
