"""Retries for the preflight's storage calls: one 503 or one dropped connection must not fail a run before it
starts, while a store that really is down still fails it in bounded time.

Transient classes (throttled, network, timeout: `ErrorClass.retryable`, the engine's rule too) are retried up
to `ATTEMPTS` tries in all, with jittered exponential backoff from `BASE_DELAY_S`; no new try starts once
`BUDGET_S` has passed since the first one, so a store that times out every call costs about two request
timeouts, not four. Every wait goes through the caller's `wait` (RunControl.wait), so Ctrl-C ends it at once.
Each check records how many tries it needed (`details["attempts"]`) and a failure message says how many
were made.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import TypeVar

from sbench.storage.base import StorageError

#: Tries in all (the first one and three retries).
ATTEMPTS = 4
BASE_DELAY_S = 0.25
#: No retry starts later than this after the first try.
BUDGET_S = 30.0

T = TypeVar("T")
#: Sleeps up to the given seconds; True when the run is stopping (RunControl.wait).
Wait = Callable[[float], bool]


def _no_stop(seconds: float) -> bool:
    time.sleep(seconds)
    return False


class Tries:
    """Runs the storage calls of one preflight agent with retries; `last` is how many tries the most recent
    call needed (recorded on its check)."""

    def __init__(
        self, wait: Wait | None = None, *, attempts: int = ATTEMPTS, budget_s: float = BUDGET_S
    ) -> None:
        self.wait = wait or _no_stop
        self.attempts = attempts
        self.budget_s = budget_s
        self.last = 0
        self._rng = random.Random()

    def call(self, fn: Callable[[], T], *, retry_os_errors: bool = False) -> T:
        """`fn()`, retried on transient StorageErrors (and on OSError when `retry_os_errors`: a raw socket
        connect). The last error is raised when the tries, the budget or the run run out."""
        started = time.monotonic()
        self.last = 0
        while True:
            self.last += 1
            try:
                return fn()
            except StorageError as exc:
                if not exc.retryable or not self._again(started):
                    raise
            except OSError:
                if not retry_os_errors or not self._again(started):
                    raise

    def _again(self, started: float) -> bool:
        """Wait before the next try; False when there is none (tries or budget used up, or stopping)."""
        if self.last >= self.attempts or time.monotonic() - started >= self.budget_s:
            return False
        delay = BASE_DELAY_S * 2 ** (self.last - 1) * self._rng.uniform(0.75, 1.25)
        return not self.wait(delay)

    def note(self) -> str:
        """' after N attempts' for a failure message when more than one try was made."""
        return f" after {self.last} attempts" if self.last > 1 else ""
