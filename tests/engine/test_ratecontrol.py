"""The open-loop schedule itself: aggregate rate, distributions, reproducibility, config parsing."""

from __future__ import annotations

import itertools
import statistics

import pytest

from sbench.engine.ratecontrol import OpenLoopSchedule, schedule_from_config


@pytest.mark.parametrize("dist", ["exponential", "uniform", "deterministic"])
def test_schedule_mean_gap_is_one_over_iops(dist: str) -> None:
    s = OpenLoopSchedule(500, dist, seed=1, start_ns=0)
    times = [s.claim() for _ in range(20_000)]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert abs(statistics.fmean(gaps) - 2_000_000) < 2_000_000 * 0.03
    if dist == "deterministic":
        assert max(gaps) - min(gaps) <= 1
    elif dist == "uniform":
        assert min(gaps) >= 0 and max(gaps) <= 4_000_000
    else:
        assert statistics.pstdev(gaps) > 1_500_000  # exponential: sd == mean


def test_schedule_is_reproducible() -> None:
    a = OpenLoopSchedule(100, "exponential", seed=9, start_ns=0)
    b = OpenLoopSchedule(100, "exponential", seed=9, start_ns=0)
    assert [a.claim() for _ in range(50)] == [b.claim() for _ in range(50)]


def test_config_parsing() -> None:
    assert schedule_from_config(None, seed=0) is None
    assert schedule_from_config({"iops": "max"}, seed=0) is None
    assert schedule_from_config({"iops": 0}, seed=0) is None
    s = schedule_from_config({"iops": 250, "distribution": "uniform"}, seed=0)
    assert s is not None and s.iops == 250 and s.distribution == "uniform"
    with pytest.raises(ValueError):
        OpenLoopSchedule(10, "poisson")  # type: ignore[arg-type]
