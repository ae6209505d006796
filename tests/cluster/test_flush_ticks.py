"""How often an agent reports within a perf-log interval: every FLUSH_S in a small fleet, less often when the
fleet's reports would exceed what one coordinator actor takes (COORDINATOR_REPORTS_PER_S)."""

from __future__ import annotations

import pytest

from sbench.cluster.agent import COORDINATOR_REPORTS_PER_S, FLUSH_S, flush_ticks


@pytest.mark.parametrize(
    ("interval_s", "agents", "ticks"),
    [(1.0, 1, 4), (1.0, 100, 4), (1.0, 250, 4), (1.0, 500, 2), (1.0, 1000, 1), (1.0, 4000, 1), (5.0, 1000, 5),
     (0.1, 1, 1)],
)
def test_ticks_per_interval(interval_s: float, agents: int, ticks: int) -> None:
    tick_s, per_interval = flush_ticks(interval_s, agents)
    assert per_interval == ticks
    assert tick_s * per_interval == pytest.approx(interval_s)  # ticks divide the interval evenly


@pytest.mark.parametrize("agents", [1, 10, 100, 500, 1000, 2000])
def test_the_fleet_stays_within_the_coordinators_budget_where_an_interval_allows(agents: int) -> None:
    tick_s, _ = flush_ticks(1.0, agents)
    assert tick_s >= FLUSH_S * 0.99
    # one report per agent per interval is the floor; above it, the fleet's calls stay within the budget
    assert agents / tick_s <= max(COORDINATOR_REPORTS_PER_S, agents / 1.0) * 1.01
