"""A remote clock's offset against ours, NTP-style: the probe with the shortest round trip wins.

For each probe: read our clock (t0), ask for the remote clock (tr), read ours again (t1). If the remote
read its clock halfway through the round trip, its offset is tr - (t0 + t1) / 2; whatever the real split,
the offset is within half the round trip of that, which is the uncertainty reported. The shortest round
trip of a few probes gives the tightest bound (queueing only ever lengthens a probe).
"""

from __future__ import annotations

import time
from collections.abc import Callable

PROBES = 5


def measure_offset(
    remote_now_ns: Callable[[], int], probes: int = PROBES, now_ns: Callable[[], int] = time.time_ns
) -> tuple[int, int]:
    """(remote clock minus ours, uncertainty), both in nanoseconds."""
    best: tuple[int, int] | None = None
    for _ in range(max(1, probes)):
        t0 = now_ns()
        remote = remote_now_ns()
        t1 = now_ns()
        rtt = max(0, t1 - t0)
        if best is None or rtt < best[0]:
            best = (rtt, remote - (t0 + t1) // 2)
    assert best is not None
    return best[1], best[0] // 2
