"""The workload error policy (sai3 `error_handling`): retries, rate-triggered backoff and the abort budget.

One ErrorPolicy is shared by the workers of an agent. The success path never touches it except for one float
comparison (`backoff_until`); everything else runs only when a call failed, so a lock there costs nothing.

Decisions sbench makes explicitly (sai3 left them implicit):
- Throttled errors are the store asking for less load: they are counted by class, trigger the rate backoff and
  are retried when `retry_on_error` is set, but never count toward `max_total_errors`, so throttling alone
  never aborts a run.
- not_found and auth errors are not retried: repeating the same call cannot change the answer.
- Every failed attempt is counted as an error (that is what the store returned); the abort budget counts only
  ops that finally failed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sbench.engine.context import RunControl
from sbench.storage.base import ErrorClass

_NO_RETRY = (ErrorClass.NOT_FOUND, ErrorClass.AUTH)


@dataclass(frozen=True, slots=True)
class ErrorHandling:
    """The `error_handling` keys with sai3's defaults; durations in seconds."""

    max_total_errors: int = 100
    #: Failed calls per second, averaged over `error_rate_window`, that trigger a pause of `backoff_duration`.
    error_rate_threshold: float = 5.0
    error_rate_window: float = 1.0
    backoff_duration: float = 5.0
    retry_on_error: bool = False
    max_retries: int = 3
    initial_retry_delay_ms: float = 100.0
    max_retry_delay_ms: float = 5000.0
    retry_backoff_multiplier: float = 2.0
    retry_jitter_factor: float = 0.25

    @classmethod
    def from_config(cls, cfg: Any) -> ErrorHandling:
        """From the config model's `error_handling` (or a dict, or None for the defaults)."""
        if cfg is None:
            return cls()
        values = {}
        for name in cls.__dataclass_fields__:
            value = cfg.get(name) if isinstance(cfg, dict) else getattr(cfg, name, None)
            if value is not None:
                values[name] = value
        return cls(**values)


class ErrorPolicy:
    """Counts failures, decides retries and backoff, and aborts the run with a reason once over budget."""

    def __init__(self, settings: ErrorHandling, control: RunControl) -> None:
        self.settings = settings
        self.control = control
        #: Monotonic time until which workers pause before their next op (0.0 = no pause).
        self.backoff_until = 0.0
        self.errors_by_class: dict[ErrorClass, int] = {}
        self.failed_ops = 0
        self.retries = 0
        self.backoffs = 0
        self._recent: deque[float] = deque()
        self._lock = threading.Lock()

    def should_retry(self, kind: ErrorClass, attempt: int) -> bool:
        """Retry attempt number `attempt` (1 = the first retry) after an error of class `kind`?"""
        s = self.settings
        return s.retry_on_error and attempt <= s.max_retries and kind not in _NO_RETRY

    def retry_delay(self, attempt: int, rng: random.Random) -> float:
        """Seconds to wait before retry `attempt`: exponential from the initial delay, capped, with jitter."""
        s = self.settings
        base = min(s.initial_retry_delay_ms * s.retry_backoff_multiplier ** (attempt - 1),
                   s.max_retry_delay_ms)
        jitter = base * s.retry_jitter_factor
        return max(0.0, base + rng.uniform(-jitter, jitter)) / 1000.0

    def on_error(self, kind: ErrorClass, *, final: bool, where: str = "") -> None:
        """Account one failed call; `final` when the op gives up (no retry follows)."""
        now = time.monotonic()
        s = self.settings
        with self._lock:
            self.errors_by_class[kind] = self.errors_by_class.get(kind, 0) + 1
            if not final:
                self.retries += 1
            recent = self._recent
            recent.append(now)
            horizon = now - s.error_rate_window
            while recent and recent[0] < horizon:
                recent.popleft()
            if (s.error_rate_threshold > 0 and s.backoff_duration > 0 and self.backoff_until < now
                    and len(recent) / max(s.error_rate_window, 1e-3) >= s.error_rate_threshold):
                self.backoff_until = now + s.backoff_duration
                self.backoffs += 1
            if final and kind is not ErrorClass.THROTTLED:
                self.failed_ops += 1
                if s.max_total_errors > 0 and self.failed_ops >= s.max_total_errors:
                    summary = ", ".join(f"{k.value}={v}" for k, v in sorted(self.errors_by_class.items()))
                    self.control.abort(
                        f"error budget exceeded: {self.failed_ops} failed ops reached "
                        f"error_handling.max_total_errors={s.max_total_errors} ({summary})"
                        + (f"; last failure at {where}" if where else "")
                        + ". Check the endpoint and credentials, or raise max_total_errors.")

    def pause_if_backing_off(self) -> None:
        """Sleep out a backoff (waking at once on stop/abort); called by sync workers between ops."""
        remaining = self.backoff_until - time.monotonic()
        if remaining > 0:
            self.control.wait(remaining)
