"""The inline HDR record path must be bit-identical to hdrh's own record_value."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, LatencyHistogram


def test_inline_record_matches_record_value() -> None:
    rng = random.Random(7)
    values = [int(rng.lognormvariate(8, 3)) for _ in range(50_000)]
    values += [0, 1, 2, 1023, 1024, 2047, 2048, 2049, 4095, 4096, 10**6, HIGHEST_US, HIGHEST_US * 2]
    ours = LatencyHistogram()
    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for v in values:
        ours.record_us(v)
        ref.record_value(min(max(v, LOWEST_US), HIGHEST_US))
    assert ours.count == ref.get_total_count()
    assert (ours.min, ours.max) == (ref.get_min_value(), ref.get_max_value())
    for pct in (1, 50, 90, 99, 99.9, 100):
        assert ours.percentile(pct) == ref.get_value_at_percentile(pct)
    assert LatencyHistogram.decode(ours.encode()).percentile(99) == ref.get_value_at_percentile(99)
    assert ref.encode() == ours.encode()


def test_fast_percentiles_and_mean_equal_hdrh() -> None:
    rng = random.Random(3)
    for spread in (0.5, 2.0, 5.0):
        ours = LatencyHistogram()
        for _ in range(20_000):
            ours.record_us(int(rng.lognormvariate(6, spread)) + 1)
        merged = LatencyHistogram.decode(ours.encode())  # decoded histograms keep slot-rounded min/max
        for hist in (ours, merged):
            ref = hist._h
            pcts = [0, 0.1, 1, 25, 50, 90, 95, 99, 99.9, 99.99, 100]
            assert hist.percentiles(pcts) == [ref.get_value_at_percentile(p) for p in pcts]
            assert hist.mean == ref.get_mean_value()
    empty = LatencyHistogram()
    assert empty.percentiles([50, 99]) == [0, 0]
    assert empty.mean == 0.0


def test_the_median_table_is_hdrh_median_of_every_slot() -> None:
    from hdrh.histogram import HdrHistogram

    from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS, _medians

    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    table = _medians()
    assert len(table) == ref.counts_len
    for index in range(0, ref.counts_len, 3):
        assert table[index] == ref._hdr_median_equiv_value(ref.get_value_from_index(index)), index


def test_bulk_record_gives_the_counts_of_record_us() -> None:
    """`record_many_us` (numpy, a replay's interval fold) equals recording the values one by one, at every
    bucket edge and beyond the trackable range."""
    import numpy as np

    rng = random.Random(11)
    values = [int(rng.lognormvariate(8, 3)) for _ in range(20_000)]
    values += [-5, 0, 1, 2, 2047, 2048, 2049, 4095, 4096, 2**31, 2**32 + 7, HIGHEST_US, HIGHEST_US * 3]
    one_by_one, bulk = LatencyHistogram(), LatencyHistogram()
    for v in values:
        one_by_one.record_us(v)
    bulk.record_many_us(np.array(values[:7]))
    bulk.record_many_us(np.array(values[7:]))
    bulk.record_many_us(np.array([], dtype=np.int64))
    assert bulk.encode() == one_by_one.encode()
    assert (bulk.count, bulk.min, bulk.max) == (one_by_one.count, one_by_one.min, one_by_one.max)
