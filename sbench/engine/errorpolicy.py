"""The workload error policy (sai3 `error_handling`): retries, rate-triggered backoff and the abort budget.

One ErrorPolicy is shared by the workers of an agent. The success path never touches it except for one float
comparison (`backoff_until`); everything else runs only when a call failed, so a lock there costs nothing.

Decisions sbench makes explicitly (sai3 left them implicit):
- Throttled errors are the store asking for less load: they are counted by class, trigger the rate backoff and
  are retried when `retry_on_error` is set. A throttled try whose retry then succeeds is not a failed op; a
  throttled op that runs out of retries (or is not retried) failed like any other and counts toward
  `max_total_errors`: a store that throttles every request is not being measured, so the run must not pass.
- not_found, auth and no_space errors are not retried: repeating the same call cannot change the answer.
- Every failed attempt is counted here by class (that is what the store returned); the abort budget counts
  only ops that finally failed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from sbench.config.models import ErrorHandlingConfig
from sbench.control import RunControl
from sbench.storage.base import ErrorClass

#: Cleanup's retries per delete when `error_handling.max_retries` is not given: with 20 % of calls failing
#: at random, 9 tries leave about 1 object in 2 million behind.
CLEANUP_MAX_RETRIES = 8
_RETRY_KEYS = (
    "max_retries", "initial_retry_delay_ms", "max_retry_delay_ms", "retry_backoff_multiplier",
    "retry_jitter_factor",
)


#: the defaults of `error_handling`, as the config model states them (sai3's)
_DEFAULTS = ErrorHandlingConfig()


@dataclass(frozen=True, slots=True)
class ErrorHandling:
    """The `error_handling` keys the engine acts on, with the model's defaults; durations in seconds."""

    max_total_errors: int = _DEFAULTS.max_total_errors
    #: Failed calls per second, averaged over `error_rate_window`, that trigger a pause of `backoff_duration`.
    error_rate_threshold: float = _DEFAULTS.error_rate_threshold
    error_rate_window: float = _DEFAULTS.error_rate_window
    backoff_duration: float = _DEFAULTS.backoff_duration
    retry_on_error: bool = _DEFAULTS.retry_on_error
    max_retries: int = _DEFAULTS.max_retries
    initial_retry_delay_ms: float = _DEFAULTS.initial_retry_delay_ms
    max_retry_delay_ms: float = _DEFAULTS.max_retry_delay_ms
    retry_backoff_multiplier: float = _DEFAULTS.retry_backoff_multiplier
    retry_jitter_factor: float = _DEFAULTS.retry_jitter_factor

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

    @classmethod
    def for_cleanup(cls, cfg: Any) -> ErrorHandling:
        """Cleanup's policy: it always retries throttled, network and timeout failures (an object left
        behind is worse than a slow cleanup), with the retry keys of `error_handling` where the config
        gives them and CLEANUP_MAX_RETRIES otherwise. No error budget and no rate pause: every object
        gets its retries, and `max_retries: 0` turns cleanup retries off. With the defaults one object's
        tries span about 16 s (delays capped at max_retry_delay_ms, jittered); a store that answers no
        delete for one whole sequence is given up on (`deletes.Deleter`), which bounds a cleanup against
        a dead store to about that long, whatever the object count."""
        given = _given_keys(cfg)
        values: dict[str, Any] = {"max_retries": CLEANUP_MAX_RETRIES}
        for name in _RETRY_KEYS:
            if name in given:
                values[name] = given[name]
        return cls(retry_on_error=True, max_total_errors=0, error_rate_threshold=0.0, **values)


def _given_keys(cfg: Any) -> dict[str, Any]:
    """The `error_handling` keys the config spells out (a pydantic model's set fields, or a dict's keys)."""
    if cfg is None:
        return {}
    if isinstance(cfg, dict):
        return {k: v for k, v in cfg.items() if v is not None}
    names = getattr(cfg, "model_fields_set", None)
    if names is None:
        names = [n for n in ErrorHandling.__dataclass_fields__ if getattr(cfg, n, None) is not None]
    return {n: getattr(cfg, n) for n in names if getattr(cfg, n, None) is not None}


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
        return s.retry_on_error and attempt <= s.max_retries and not kind.final

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
            if final:
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
