"""A set of object indices kept as sorted, disjoint half-open runs: what an object space's created set is.

An `IndexSet` bitmap costs a bit per index of its whole range, whatever it holds: 125 MB for 10^9 objects
and 125 GB for the 10^12-object plans sai3-bench investigates. Prepare creates whole shards and only the
exceptions (a failed PUT, an object deleted in the middle) split a run, so a space's created set is a handful
of runs and costs bytes. Shards still work on bitmaps (`slice` hands one over): a shard holds at most
SHARD_MAX indices.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Iterable

from sbench.engine.indexset import IndexSet

Range = tuple[int, int]


class RangeSet:
    """Indices of [start, stop) as runs `_los[i]`..`_his[i]` (half-open): sorted, disjoint, never touching."""

    __slots__ = ("_his", "_los", "start", "stop")

    def __init__(self, start: int, stop: int, ranges: Iterable[Range] = ()) -> None:
        if stop < start:
            raise ValueError(f"empty range [{start}, {stop})")
        self.start, self.stop = start, stop
        self._los: list[int] = []
        self._his: list[int] = []
        for lo, hi in ranges:
            self.add_range(lo, hi)

    def __reduce__(self):
        return (RangeSet, (self.start, self.stop, self.ranges()))

    def add_range(self, lo: int, hi: int) -> None:
        """Add [lo, hi) (clipped to the set's range), merging with the runs it overlaps or touches."""
        lo, hi = max(lo, self.start), min(hi, self.stop)
        if lo >= hi:
            return
        first = bisect_left(self._his, lo)  # first run ending at or after lo: touches or follows
        last = bisect_right(self._los, hi)  # runs before `last` start at or before hi
        if first < last:
            lo, hi = min(lo, self._los[first]), max(hi, self._his[last - 1])
        self._los[first:last] = [lo]
        self._his[first:last] = [hi]

    def discard_range(self, lo: int, hi: int) -> None:
        """Remove [lo, hi); a run it cuts keeps what sticks out on either side."""
        lo, hi = max(lo, self.start), min(hi, self.stop)
        if lo >= hi:
            return
        first = bisect_right(self._his, lo)  # first run ending after lo: overlaps or follows
        last = bisect_left(self._los, hi)  # runs before `last` start before hi: they overlap
        if first >= last:
            return
        keep_lo: list[int] = []
        keep_hi: list[int] = []
        if self._los[first] < lo:
            keep_lo.append(self._los[first])
            keep_hi.append(lo)
        if self._his[last - 1] > hi:
            keep_lo.append(hi)
            keep_hi.append(self._his[last - 1])
        self._los[first:last] = keep_lo
        self._his[first:last] = keep_hi

    def ranges(self) -> list[Range]:
        return list(zip(self._los, self._his, strict=True))

    def ranges_in(self, lo: int, hi: int) -> list[Range]:
        """The runs within [lo, hi), clipped to it."""
        first = bisect_right(self._his, lo)
        last = bisect_left(self._los, hi)
        return [
            (max(a, lo), min(b, hi))
            for a, b in zip(self._los[first:last], self._his[first:last], strict=True)
        ]

    def count_in(self, lo: int, hi: int) -> int:
        return sum(b - a for a, b in self.ranges_in(lo, hi))

    def covers(self, lo: int, hi: int) -> bool:
        """Every index of [lo, hi) is a member."""
        i = bisect_right(self._los, lo) - 1
        return lo >= hi or (i >= 0 and self._his[i] >= hi)

    def slice(self, lo: int, hi: int) -> IndexSet:
        """The members of [lo, hi) as a bitmap over [lo, hi) (what one shard works on)."""
        return IndexSet.of_ranges(lo, hi, self.ranges_in(lo, hi))

    def copy(self) -> RangeSet:
        out = RangeSet(self.start, self.stop)
        out._los, out._his = list(self._los), list(self._his)
        return out

    def __contains__(self, index: int) -> bool:
        i = bisect_right(self._los, index) - 1
        return i >= 0 and index < self._his[i]

    def __len__(self) -> int:
        return sum(self._his) - sum(self._los)
