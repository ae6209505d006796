"""Load models: closed loop (no schedule) and open loop (one shared schedule of intended start times).

sai3 gave every worker a period of `concurrency/iops` and then shared one ticker, so uniform and deterministic
arrivals delivered about iops/concurrency in total (reference §7.9). Here all workers of an agent claim slots
from ONE schedule whose mean gap is 1/iops, so the agent delivers `iops` in aggregate whatever the worker
count. Each op keeps its intended start time: latency measured from it is the response time a user would see,
and when workers fall behind, the waiting shows up in the latency instead of vanishing (coordinated omission).
The lag between the intended and the actual start is reported, so a saturated generator is visible.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any, Literal

Arrival = Literal["exponential", "uniform", "deterministic"]
ARRIVALS: tuple[Arrival, ...] = ("exponential", "uniform", "deterministic")

#: An op that starts later than this after its intended time counts as late (a sleep overshoots ~0.1 ms).
LATE_THRESHOLD_NS = 1_000_000


class OpenLoopSchedule:
    """Intended start times (monotonic ns) shared by the workers of one agent.

    `exponential`: Poisson arrivals (gaps Exp(1/iops)). `uniform`: gaps uniform in [0, 2/iops] (random but
    bounded burstiness). `deterministic`: exactly 1/iops apart. The sequence comes from a seeded generator,
    so a run's schedule is reproducible. The rate is per agent: each agent of a distributed run issues `iops`.
    """

    __slots__ = ("_gap", "_lock", "_next_ns", "distribution", "iops", "mean_gap_ns", "start_ns")

    def __init__(self, iops: float, distribution: Arrival = "exponential", *, seed: int = 0,
                 start_ns: int | None = None) -> None:
        if iops <= 0:
            raise ValueError(f"io_rate.iops must be > 0 for an open loop (got {iops})")
        if distribution not in ARRIVALS:
            raise ValueError(f"io_rate.distribution {distribution!r} is not one of {', '.join(ARRIVALS)}")
        self.iops = float(iops)
        self.distribution = distribution
        self.mean_gap_ns = 1e9 / self.iops
        rng = random.Random(seed)
        mean = self.mean_gap_ns
        if distribution == "exponential":
            rate = 1.0 / mean
            self._gap = lambda: rng.expovariate(rate)
        elif distribution == "uniform":
            high = 2.0 * mean
            self._gap = lambda: rng.uniform(0.0, high)
        else:
            self._gap = lambda: mean
        self.start_ns = time.monotonic_ns() if start_ns is None else start_ns
        self._next_ns = float(self.start_ns)
        self._lock = threading.Lock()

    @property
    def next_ns(self) -> float:
        """The next unclaimed intended start: in the future while every worker waits for its slot."""
        return self._next_ns

    def claim(self) -> int:
        """The next intended start time; each call takes one slot (thread-safe, a few hundred ns)."""
        with self._lock:
            t = self._next_ns
            self._next_ns = t + self._gap()
        return int(t)


def schedule_from_config(io_rate: Any, *, seed: int, start_ns: int | None = None) -> OpenLoopSchedule | None:
    """Open-loop schedule for a config's `io_rate`, or None for a closed loop (absent, 0 or "max")."""
    if io_rate is None:
        return None
    iops = io_rate.get("iops") if isinstance(io_rate, dict) else getattr(io_rate, "iops", None)
    dist = (io_rate.get("distribution") if isinstance(io_rate, dict)
            else getattr(io_rate, "distribution", None)) or "exponential"
    if iops in (None, 0, "max") or (isinstance(iops, str) and iops.strip().lower() == "max"):
        return None
    return OpenLoopSchedule(float(iops), str(getattr(dist, "value", dist)), seed=seed, start_ns=start_ns)
