"""RangeSet (an object space's created set as runs) answers like the IndexSet bitmap it replaces."""

from __future__ import annotations

import pickle
import random

from sbench.engine.indexset import IndexSet
from sbench.engine.rangeset import RangeSet


def test_random_adds_and_discards_match_a_bitmap() -> None:
    rng = random.Random(3)
    runs, bits = RangeSet(100, 3100), IndexSet(100, 3100)
    for _ in range(2000):
        lo = rng.randrange(50, 3150)
        hi = lo + rng.choice([0, 1, 1, 2, 7, 64, 400])
        if rng.random() < 0.6:
            runs.add_range(lo, hi)
            bits.add_range(lo, hi)
        else:
            runs.discard_range(lo, hi)
            bits.discard_range(lo, hi)
        if rng.random() < 0.05:
            assert runs.ranges() == bits.ranges()
    assert runs.ranges() == bits.ranges()
    assert len(runs) == len(bits)
    for _ in range(300):
        lo = rng.randrange(100, 3100)
        hi = min(3100, lo + rng.randrange(0, 500))
        assert runs.covers(lo, hi) == bits.covers(lo, hi)
        assert runs.ranges_in(lo, hi) == bits.ranges_in(lo, hi)
        assert runs.count_in(lo, hi) == len(bits.slice(lo, hi))
        assert runs.slice(lo, hi).ranges() == bits.slice(lo, hi).ranges()
        assert (lo in runs) == (lo in bits)
    back = pickle.loads(pickle.dumps(runs))
    assert back.ranges() == runs.ranges() and (back.start, back.stop) == (100, 3100)
    copy = runs.copy()
    copy.discard_range(0, 5000)
    assert len(copy) == 0 and len(runs) == len(bits)


def test_a_trillion_objects_cost_a_few_runs() -> None:
    created = RangeSet(0, 10**12)
    created.add_range(0, 10**12)
    created.discard_range(123_456_789_012, 123_456_789_013)
    assert len(created) == 10**12 - 1
    assert created.ranges() == [(0, 123_456_789_012), (123_456_789_013, 10**12)]
    assert not created.covers(123_456_780_000, 123_456_790_000)
    assert created.slice(123_456_789_000, 123_456_789_020).ranges() == [
        (123_456_789_000, 123_456_789_012),
        (123_456_789_013, 123_456_789_020),
    ]
