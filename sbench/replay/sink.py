"""One replay worker's completed ops as two integer columns, folded into its Recorder once per interval.

A replayed op has three figures (response time from its due time, service time from its actual start,
and its lag, late when above engine.ratecontrol.LATE_THRESHOLD_NS), and recording them op by op (three
histogram records and two locks) cost as much Python time as the op itself on a fast target. So the worker
only appends, per op, `service_us << SLOT_BITS | slot` to `service` and its lag (ns, start minus due
time) to `lag`, and adds the bytes to `nbytes[slot]`, as the closed loop's sink does (metrics.recorder).
`fold_into` (the interval thread, and the last fold after the workers end) derives the rest by columns
with numpy: response = service + max(lag, 0) // 1000 (as the open loop measures it), late = lag above the
threshold, and records each slot's ops with Recorder.record_bulk, the late lags with record_late_bulk.
Every figure is the one the per-op records gave.

The worker appends to `service` before `lag`; the fold takes as many rows as `lag` has, so it never takes
half a row. List slicing and deleting a head are single C calls, atomic under the GIL.
"""

from __future__ import annotations

import numpy as np

from sbench.engine.ratecontrol import LATE_THRESHOLD_NS
from sbench.metrics.recorder import SLOT_BITS, Recorder

_SLOT_MASK = (1 << SLOT_BITS) - 1
_SLOTS = 1 << SLOT_BITS


class ReplaySink:
    """A worker's columns (see the module docstring)."""

    __slots__ = ("_bytes_seen", "lag", "nbytes", "service")

    def __init__(self) -> None:
        self.service: list[int] = []
        self.lag: list[int] = []
        self.nbytes = [0] * _SLOTS
        self._bytes_seen = [0] * _SLOTS

    def fold_into(self, rec: Recorder) -> int | None:
        """Record what was appended since the last fold; the largest lag (ns) among those ops, or None."""
        lag_col, service_col = self.lag, self.service
        rows = len(lag_col)
        lags = np.array(lag_col[:rows], dtype=np.int64)
        packed = np.array(service_col[:rows], dtype=np.int64)
        del lag_col[:rows]
        del service_col[:rows]
        now_bytes = self.nbytes[:]
        moved = {slot: total - seen for slot, (total, seen) in enumerate(zip(now_bytes, self._bytes_seen,
                                                                             strict=True)) if total != seen}
        self._bytes_seen = now_bytes
        slots = packed & _SLOT_MASK
        service = packed >> SLOT_BITS
        response = service + np.maximum(lags, 0) // 1000
        for slot in {*np.unique(slots).tolist(), *moved}:
            mine = slots == slot
            rec.record_bulk(slot, moved.get(slot, 0), response[mine], service[mine])
        late = lags[lags > LATE_THRESHOLD_NS]
        rec.record_late_bulk(late // 1000)
        return int(lags.max()) if rows else None
