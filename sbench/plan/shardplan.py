"""How an object space is cut into shards, by arithmetic: shard k and its agent are computed, never listed.

A 10^12-object prepare over 256 agents has 10^8 shards; a list of them would take gigabytes before the first
PUT. Shard k is [k·size, min(total, (k+1)·size)) and is worked by agent k mod agents, so everything the stages
need (how many shards, how many objects each agent has, which shards an existing set already covers) is a
closed form over ranges of shard numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

#: Objects per shard at most (about a second of work on a fast file system, ~10 s on a remote store).
SHARD_MAX = 10_000

Range = tuple[int, int]


@dataclass(frozen=True, slots=True)
class ShardPlan:
    """The shards of [0, total): every agent gets work and no shard exceeds `size` objects."""

    total: int
    agents: int
    size: int

    @classmethod
    def of(cls, total: int, agents: int, shard_max: int = SHARD_MAX) -> ShardPlan:
        agents = max(1, agents)
        size = max(1, min(shard_max, -(-max(0, total) // agents)))
        return cls(max(0, total), agents, size)

    def __len__(self) -> int:
        return -(-self.total // self.size)

    def shard(self, k: int) -> Range:
        lo = k * self.size
        return lo, min(self.total, lo + self.size)

    def shards(self, k_ranges: Iterable[Range] | None = None) -> Iterator[tuple[int, int, int]]:
        """(k, lo, hi) of every shard, or of those in the shard-number ranges, made one at a time."""
        for k0, k1 in k_ranges if k_ranges is not None else [(0, len(self))]:
            for k in range(k0, k1):
                lo, hi = self.shard(k)
                yield k, lo, hi

    def covered(self, runs: Iterable[Range]) -> list[Range]:
        """The shard-number ranges whose every object lies in one of `runs` (sorted, disjoint)."""
        out: list[Range] = []
        n = len(self)
        for lo, hi in runs:
            k0 = -(-lo // self.size)
            k1 = n if hi >= self.total else hi // self.size
            if k0 < k1:
                out.append((k0, k1))
        return out

    def objects_by_agent(self, k_ranges: Iterable[Range]) -> list[int]:
        """Per agent, the objects of its shards in the shard-number ranges (the last shard may be short).

        A range of m shards starting at k0 gives every agent m // agents shards, and one more to the
        m % agents agents from k0 mod agents on (circularly): a difference array adds those runs in O(1)
        each, so 10^5 ranges over 256 agents take milliseconds."""
        n = self.agents
        full = 0
        extra = [0] * (n + 1)
        last = len(self) - 1
        short = self.size - (self.total - last * self.size) if last >= 0 else 0
        last_in = False
        for k0, k1 in k_ranges:
            if k1 <= k0:
                continue
            rounds, rest = divmod(k1 - k0, n)
            full += rounds
            begin = k0 % n
            end = begin + rest
            extra[begin] += 1
            if end <= n:
                extra[end] -= 1
            else:  # wraps past the last agent
                extra[n] -= 1
                extra[0] += 1
                extra[end - n] -= 1
            last_in = last_in or k0 <= last < k1
        out = [(full + shards) * self.size for shards in itertools.accumulate(extra[:n])]
        if short and last_in:
            out[last % n] -= short
        return out
