"""HDR latency histogram in microseconds, 1 µs to 1 h at 3 significant digits, shipped as encoded bytes.

The hdrh object cannot be pickled or sent through Ray, so snapshots carry `encode()` bytes and every merge
decodes and adds: percentiles across workers, agents and intervals are exact, never averaged.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from functools import cache
from itertools import accumulate
from operator import mul
from typing import Any

from hdrh.codec import PayloadHeader
from hdrh.histogram import HdrHistogram

from sbench.metrics.hdrwire import add_body, payload

LOWEST_US = 1
HIGHEST_US = 3_600_000_000
SIGNIFICANT_DIGITS = 3


def _layout() -> tuple[int, int, int, int]:
    probe = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    if probe.unit_magnitude != 0:
        raise RuntimeError("LatencyHistogram's inline record assumes a lowest trackable value of 1")
    half_mag = probe.sub_bucket_half_count_magnitude
    return half_mag, 1 << half_mag, probe.sub_bucket_mask, half_mag + 1


_HALF_MAG, _HALF_COUNT, _SUB_BUCKET_MASK, _SUB_BUCKET_BITS = _layout()


@cache
def _medians() -> list[int]:
    """hdrh's median equivalent value of every counts slot (the layout is fixed), computed once, so a mean
    is one C-level multiply-and-sum over the used slots instead of three hdrh method calls per slot.

    hdrh's arithmetic (`get_value_from_index`, then `_hdr_median_equiv_value`) for a lowest trackable value
    of 1: slot `index` starts at `sub << bucket` and spans `1 << bucket` values; a test checks every slot.
    """
    slots = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS).counts_len
    out = []
    for index in range(slots):
        bucket = (index >> _HALF_MAG) - 1
        sub = (index & (_HALF_COUNT - 1)) + _HALF_COUNT
        if bucket < 0:
            sub -= _HALF_COUNT
            bucket = 0
        out.append((sub << bucket) + ((1 << bucket) >> 1))
    return out


@cache
def _slots_at_or_below(bounds_us: tuple[int, ...]) -> tuple[int, ...]:
    """For each bound, the last counts slot whose values all lie at or below it (the layout is fixed, so this
    is worked out once per set of bounds, not with hdrh's method calls at every `counts_at_or_below`)."""
    probe = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    out = []
    for bound in bounds_us:
        index = probe._counts_index_for(bound)
        if probe.get_highest_equivalent_value(bound) != bound:
            index -= 1  # the slot holding the bound reaches past it
        out.append(index)
    return tuple(out)


class LatencyHistogram:
    __slots__ = ("_h",)

    def __init__(self) -> None:
        self._h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)

    def record_us(self, value_us: int, count: int = 1) -> None:
        """Record `count` equal latencies; values are clamped into the trackable range instead of being
        dropped.

        This is the per-op hot path, so it computes the counts index inline (the same arithmetic as
        `HdrHistogram._counts_index_for` for these fixed bounds, checked by a test against `record_value`)
        instead of going through hdrh's four nested method calls: about 2.5x cheaper.
        """
        if value_us < LOWEST_US:
            value_us = LOWEST_US
        elif value_us > HIGHEST_US:
            value_us = HIGHEST_US
        h = self._h
        bucket = (value_us | _SUB_BUCKET_MASK).bit_length() - _SUB_BUCKET_BITS
        h.counts[((bucket + 1) << _HALF_MAG) + (value_us >> bucket) - _HALF_COUNT] += count
        h.total_count += count
        if value_us < h.min_value:
            h.min_value = value_us
        if value_us > h.max_value:
            h.max_value = value_us

    def record_many_us(self, values_us: Any) -> None:
        """Record every latency of an integer array (numpy) at once: the counts `record_us` would give
        value by value, for callers that fold their ops in bulk off the hot path (a replay's workers append
        one int per op; bench/replay_rate.py). The index arithmetic is `record_us`'s, done by numpy; the
        bit length comes from frexp, exact for integers below 2**53 (the largest trackable value is ~2**32).
        """
        import numpy as np  # only the replay folds in bulk; `sbench run` never imports numpy for this

        v = np.clip(np.asarray(values_us, dtype=np.int64), LOWEST_US, HIGHEST_US)
        if not v.size:
            return
        _, bit_length = np.frexp((v | _SUB_BUCKET_MASK).astype(np.float64))
        bucket = bit_length.astype(np.int64) - _SUB_BUCKET_BITS
        index = ((bucket + 1) << _HALF_MAG) + (v >> bucket) - _HALF_COUNT
        slots, counts = np.unique(index, return_counts=True)
        h = self._h
        view = np.ctypeslib.as_array(h.counts)
        view[slots] += counts.astype(view.dtype)
        h.total_count += int(v.size)
        low, high = int(v.min()), int(v.max())
        if low < h.min_value:
            h.min_value = low
        if high > h.max_value:
            h.max_value = high

    @property
    def count(self) -> int:
        return self._h.get_total_count()

    def percentile(self, pct: float) -> int:
        return self.percentiles((pct,))[0]

    def _used_counts(self) -> tuple[int, list[int]]:
        """(first index, counts from the min value's slot to the max value's slot) as a plain list."""
        h = self._h
        first = h._counts_index_for(h.min_value)
        last = h._counts_index_for(h.max_value)
        return first, h.counts[first : last + 1]

    def percentiles(self, pcts: Sequence[float]) -> list[int]:
        """Several percentiles in one pass, with exactly hdrh's values.

        hdrh's `get_value_at_percentile` walks the whole counts array with a method call per slot (about 2 ms
        per percentile); a cumulative sum over the used slots and a bisect per percentile give the same slot.
        """
        h = self._h
        if not h.total_count:
            return [0] * len(pcts)
        first, counts = self._used_counts()
        cum = list(accumulate(counts))
        out = []
        for pct in pcts:
            pos = bisect_left(cum, h.get_target_count_at_percentile(pct))
            if pos >= len(cum):  # cannot happen while counts sum to total_count; stay correct regardless
                out.append(h.get_value_at_percentile(pct))
                continue
            value = h.get_value_from_index(first + pos)
            out.append(h.get_highest_equivalent_value(value) if pct else h.get_lowest_equivalent_value(value))
        return out

    def counts_at_or_below(self, bounds_us: Sequence[int]) -> list[int]:
        """For each bound (ascending, µs), how many recorded values lie at or below it: Prometheus's
        cumulative bucket counts, taken from the HDR slots without re-recording anything.

        A slot counts under a bound when its highest equivalent value is at or below it (as hdrh reports a
        percentile by the slot's highest value). Below 2,048 µs every slot holds one value, so the counts are
        exact; above, a slot straddling a bound (narrower than 0.1 % of it) counts under the next bound.
        """
        if not self._h.total_count:
            return [0] * len(bounds_us)
        first, counts = self._used_counts()
        cum = list(accumulate(counts))
        last = len(cum) - 1
        return [
            0 if (pos := index - first) < 0 else cum[min(pos, last)]
            for index in _slots_at_or_below(tuple(bounds_us))
        ]

    @property
    def mean(self) -> float:
        """hdrh's mean (each slot counted at its median equivalent value), over the used slots only."""
        h = self._h
        if not h.total_count:
            return 0.0
        first, counts = self._used_counts()
        total = sum(map(mul, counts, _medians()[first : first + len(counts)]))
        return total / h.total_count

    @property
    def max(self) -> int:
        return self._h.get_max_value() if self.count else 0

    @property
    def min(self) -> int:
        return self._h.get_min_value() if self.count else 0

    def add(self, other: LatencyHistogram) -> None:
        self._h.add(other._h)

    def add_encoded(self, data: bytes) -> None:
        """Add an `encode()`d histogram, with exactly the counts of hdrh's `decode_and_add`.

        hdrh builds a whole HdrHistogram object per decode (about 100 µs, mostly Python set-up); decoding the
        payload into a reused counts array and adding only the slots in use (`hdrwire`) takes a fifth of
        that, which matters where a coordinator merges a thousand agents' intervals every second."""
        if data:
            self.add_decompressed(data, *payload(data))

    def add_decompressed(self, data: bytes, header: PayloadHeader, body: bytes) -> None:
        """`add_encoded` with `data` already unwrapped by `hdrwire.payload` (a snapshot's service histogram
        is often the very bytes of a response histogram: closed loop, one size bucket)."""
        layout = (header.lowest_trackable_value, header.highest_trackable_value, header.significant_figures)
        h = self._h
        if layout != (LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS):  # another tool's histogram: hdrh's way
            h.decode_and_add(data)
            return
        added = add_body(h.counts, body)
        if not added.total:
            return
        h.total_count += added.total
        h.min_value = min(h.min_value, h.get_value_from_index(added.first))
        top = h.get_highest_equivalent_value(h.get_value_from_index(added.last))
        h.max_value = max(h.max_value, top)

    def encode(self) -> bytes:
        return self._h.encode() if self.count else b""

    @classmethod
    def decode(cls, data: bytes) -> LatencyHistogram:
        hist = cls()
        hist.add_encoded(data)
        return hist

    def reset(self) -> None:
        self._h.reset()
