"""ShardPlan: the closed forms the prepare stage uses equal counting the shards one by one."""

from __future__ import annotations

import random

from sbench.plan.shardplan import ShardPlan
from sbench.run.objectbook import subtract_ranges


def test_shards_cover_the_space_once_and_every_agent_gets_work() -> None:
    cases = [(0, 3, 10), (1, 3, 10), (7, 3, 10), (100, 3, 10), (95, 4, 10), (10, 1, 3)]
    for total, agents, shard_max in cases:
        plan = ShardPlan.of(total, agents, shard_max)
        shards = list(plan.shards())
        assert len(shards) == len(plan)
        assert [i for _, lo, hi in shards for i in range(lo, hi)] == list(range(total))
        assert all(hi - lo <= shard_max for _, lo, hi in shards)
        if total >= agents:
            assert {k % agents for k, _, _ in shards} == set(range(agents))


def test_closed_forms_equal_counting() -> None:
    rng = random.Random(5)
    for _ in range(200):
        total = rng.randrange(1, 400)
        plan = ShardPlan.of(total, rng.randrange(1, 7), rng.randrange(1, 40))
        shards = list(plan.shards())
        runs, at = [], 0
        while at < total:
            lo = at + rng.randrange(0, 30)
            hi = min(total, lo + rng.randrange(1, 60))
            if lo < hi:
                runs.append((lo, hi))
            at = hi + 1
        covered = plan.covered(runs)
        inside = {k for k, lo, hi in shards if any(a <= lo and hi <= b for a, b in runs)}
        assert {k for k0, k1 in covered for k in range(k0, k1)} == inside
        by_agent = plan.objects_by_agent(subtract_ranges(0, len(plan), covered))
        for agent in range(plan.agents):
            mine = [hi - lo for k, lo, hi in shards if k % plan.agents == agent and k not in inside]
            assert by_agent[agent] == sum(mine)
        picks = sorted(rng.sample(range(len(plan) + 1), min(len(plan) + 1, 6)))
        k_ranges = list(zip(picks[::2], picks[1::2], strict=False))
        for agent, n in enumerate(plan.objects_by_agent(k_ranges)):
            wanted = [k for k0, k1 in k_ranges for k in range(k0, k1) if k % plan.agents == agent]
            assert n == sum(hi - lo for k, lo, hi in shards if k in wanted)

def test_a_trillion_objects_over_256_agents_are_planned_without_a_list() -> None:
    plan = ShardPlan.of(10**12, 256)
    assert len(plan) == 10**8 and plan.size == 10_000
    assert sum(plan.objects_by_agent([(0, len(plan))])) == 10**12
    assert plan.shard(len(plan) - 1) == (10**12 - 10_000, 10**12)
    assert next(iter(plan.shards([(5, 6)]))) == (5, 50_000, 60_000)
