"""How a run, a stage or a shard is told to stop: the flag every worker checks between ops and every wait
wakes on. Below everything that runs (engine, preflight, fleets), like the status words."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class StopKind(StrEnum):
    STOP = "stop"  # finish the stage early but cleanly (duration reached elsewhere, completion met)
    ABORT = "abort"  # Ctrl-C, SIGTERM, error budget, a failed barrier: stop now, results are partial


class RunControl:
    """A thread-safe stop/abort flag checked by every worker between ops (never blocks the hot path)."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self.kind: StopKind | None = None
        self.reason: str = ""
        #: plain-attribute copy of the event, for hot loops (an attribute read is cheaper than is_set())
        self.halted = False
        #: monotonic ns of the first stop or abort (0 while running): every bounded wait measures its grace
        #: from this one moment, so nested waits never add their grace periods up
        self.halted_at_ns = 0
        self._children: list[RunControl] = []

    def child(self) -> RunControl:
        """A control for one stage: it stops when this one does (abort, Ctrl-C), but stopping the stage
        (duration reached, timeout, pools exhausted) leaves the run going."""
        child = RunControl()
        with self._lock:
            self._children.append(child)
            kind, reason = self.kind, self.reason
        if kind is not None:
            child._set(kind, reason, self.halted_at_ns)
        return child

    def release(self, child: RunControl) -> None:
        """Forget a finished stage's control."""
        with self._lock:
            if child in self._children:
                self._children.remove(child)

    def stop(self, reason: str) -> None:
        self._set(StopKind.STOP, reason)

    def abort(self, reason: str) -> None:
        self._set(StopKind.ABORT, reason)

    def _set(self, kind: StopKind, reason: str, at_ns: int = 0) -> None:
        with self._lock:
            if self.kind is None or (kind is StopKind.ABORT and self.kind is StopKind.STOP):
                self.kind, self.reason = kind, reason
            children = list(self._children)
            if not self.halted_at_ns:
                self.halted_at_ns = at_ns or time.monotonic_ns()
        self.halted = True
        self._event.set()
        for child in children:
            child._set(kind, reason, self.halted_at_ns)

    @property
    def stopping(self) -> bool:
        return self._event.is_set()

    def stop_flag(self) -> Callable[[], bool]:
        """The bound `is_set` of the stop event, for hot loops that check it once per op."""
        return self._event.is_set

    @property
    def aborted(self) -> bool:
        return self.kind is StopKind.ABORT

    def wait(self, timeout: float | None) -> bool:
        """Sleep up to `timeout` seconds, waking at once on stop/abort; True when stopping."""
        return self._event.wait(timeout)
