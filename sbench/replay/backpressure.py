"""Strict and best-effort replay, and the switches between them (sai3's replay backpressure, recorded).

- strict: every op waits for its due time;
- best effort: ops start as soon as a worker is free, due times are ignored (timing is dropped so the
  replay can catch up with a target that cannot keep up).

Each op's lag (actual start minus due time, seen when a worker takes it) drives the mode with hysteresis:
strict -> best effort when lag exceeds `lag_threshold`, best effort -> strict when it falls below
`recovery_threshold`. Every switch is recorded (time since the epoch, direction, lag) for summary.json. More
than `max_flaps_per_minute` switches within 60 s mean the target neither keeps up nor stays behind: the
replay drains (no new ops; those in flight get `drain_timeout`) and ends, saying why.

`observe` is called once per op by the worker that took it, under one lock: a comparison and, rarely, a
list append; the lag itself goes into the worker's columns (replay.sink: late ops and the lag histogram
are derived once per interval, as is the largest lag, `seen`).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sbench.replay.settings import Backpressure

FLAP_WINDOW_NS = 60 * 1_000_000_000


class Mode(StrEnum):
    STRICT = "strict"
    BEST_EFFORT = "best_effort"


@dataclass(frozen=True, slots=True)
class Transition:
    """One switch: when (seconds after the epoch), to which mode, at what lag."""

    at_s: float
    to: Mode
    lag_s: float

    def to_dict(self) -> dict[str, Any]:
        return {"at_s": round(self.at_s, 3), "to": self.to.value, "lag_s": round(self.lag_s, 3)}


class ModeController:
    """The replay's mode and its switches (see the module docstring); shared by an agent's workers."""

    def __init__(self, settings: Backpressure) -> None:
        self.settings = settings
        self._lag_ns = int(settings.lag_threshold * 1e9)
        self._recover_ns = int(settings.recovery_threshold * 1e9)
        self.mode = Mode.STRICT
        #: a plain attribute (the workers read it once per op): True while ops wait for their due time
        self.strict = True
        #: the lags a worker must report: above `enter_ns` in strict mode, below `leave_ns` in best effort
        self.enter_ns, self.leave_ns = self._lag_ns, self._recover_ns
        self.transitions: list[Transition] = []
        self._recent: deque[int] = deque()
        self._lock = threading.Lock()
        self.max_lag_ns = 0
        #: why the replay must drain ("" while it may go on)
        self.drain_reason = ""

    def observe(self, lag_ns: int, now_ns: int) -> None:
        """An op's lag at `now_ns` (ns since the epoch); workers call it only for a lag past `enter_ns`
        (strict) or under `leave_ns` (best effort), and report their largest lag at the end (`seen`)."""
        self.seen(lag_ns)
        if self.mode is Mode.STRICT:
            if lag_ns <= self._lag_ns:
                return
            to = Mode.BEST_EFFORT
        else:
            if lag_ns >= self._recover_ns:
                return
            to = Mode.STRICT
        with self._lock:
            if self.mode is to:  # another worker switched first
                return
            self.mode = to
            self.strict = to is Mode.STRICT
            self.transitions.append(Transition(now_ns / 1e9, to, lag_ns / 1e9))
            recent = self._recent
            recent.append(now_ns)
            while recent and recent[0] < now_ns - FLAP_WINDOW_NS:
                recent.popleft()
            limit = self.settings.max_flaps_per_minute
            if len(recent) > limit and not self.drain_reason:
                self.drain_reason = (
                    f"{len(recent)} mode transitions within a minute (max_flaps_per_minute: {limit}): "
                    "the target neither keeps up nor stays behind"
                )

    def seen(self, lag_ns: int) -> None:
        """The largest lag a worker saw (the report's `max_lag_s`)."""
        if lag_ns > self.max_lag_ns:
            self.max_lag_ns = lag_ns

    def report(self) -> dict[str, Any]:
        return {
            "final_mode": self.mode.value,
            "max_lag_s": round(self.max_lag_ns / 1e9, 6),
            "transitions": [t.to_dict() for t in self.transitions],
            "drained": self.drain_reason,
            "settings": self.settings.model_dump(exclude={"distributed"}),
        }
