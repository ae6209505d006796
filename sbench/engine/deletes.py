"""One cleanup delete, retried and accounted: the unit both prepared-object shards and PUT cleanup use.

Outcomes: `deleted` (confirmed), `missing` (not found: gone all the same, a failure only in strict mode)
and `failed` (it stays). Throttled, network and timeout failures are retried with the workload's jittered
exponential backoff (`ErrorPolicy.retry_delay`, settings from `ErrorHandling.for_cleanup`); each retry is
counted in the stage's figures, and a retry sleep wakes at once when the stage stops. Every error class
keeps its first message per location, so a report can say why objects stayed where they did.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

from sbench.engine.context import RunControl
from sbench.engine.errorpolicy import ErrorHandling, ErrorPolicy
from sbench.engine.leftovers import Leftover
from sbench.engine.shards import ThreadTally
from sbench.metrics.buckets import OpClass
from sbench.storage.base import Backend, ErrorClass, StorageError

MODES = ("strict", "tolerant", "besteffort")


def cleanup_mode(config: Any) -> str:
    """`prepare.cleanup_mode` as a plain string (tolerant when unset), checked against MODES."""
    prep = getattr(config, "prepare", None)
    raw = getattr(prep, "cleanup_mode", None)
    mode = str(getattr(raw, "value", raw) or "tolerant")
    if mode not in MODES:
        raise ValueError(f"cleanup_mode {mode!r} is not one of {', '.join(MODES)}")
    return mode


def as_storage_error(exc: BaseException, uri: str) -> StorageError:
    """A storage error as is; anything else (a client bug surfacing) as an `other` error, never swallowed."""
    if isinstance(exc, StorageError):
        return exc
    return StorageError(ErrorClass.OTHER, f"{type(exc).__name__}: {exc}", uri=uri)


class Deleter:
    """Deletes with retries for one cleanup job (a shard, or the PUT objects of an agent)."""

    def __init__(self, settings: ErrorHandling, control: RunControl, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"cleanup_mode {mode!r} is not one of {', '.join(MODES)}")
        self.policy = ErrorPolicy(settings, control)
        self.control = control
        self.mode = mode
        self._lock = threading.Lock()
        #: (location, error class) -> first message
        self._first: dict[tuple[str, str], str] = {}

    @classmethod
    def for_config(cls, config: Any, control: RunControl) -> Deleter:
        return cls(
            ErrorHandling.for_cleanup(getattr(config, "error_handling", None)), control, cleanup_mode(config)
        )

    def note(self, location: str, kind: str, message: str) -> None:
        """Keep the first message of an error class at a location."""
        with self._lock:
            self._first.setdefault((location, kind), message)

    def errors_at(self, location: str) -> dict[str, str]:
        with self._lock:
            return {k: m for (loc, k), m in self._first.items() if loc == location}

    def leftover(self, location: str, left: int, *, exact: bool = True) -> Leftover:
        return Leftover(location, left, exact, self.errors_at(location))

    def retry(self, kind: ErrorClass, attempt: int, rng: random.Random, tally: ThreadTally) -> bool:
        """Before retry `attempt` after an error of class `kind`: counts the retry and sleeps its backoff;
        False (no retry) for classes that are not retried, past max_retries, or when the stage stops
        before or during the sleep."""
        if not (kind.retryable and self.policy.should_retry(kind, attempt)):
            return False
        self.policy.on_error(kind, final=False)
        tally.recorder.record_retry(OpClass.META)
        return not self.control.wait(self.policy.retry_delay(attempt, rng))

    def failed(self, err: StorageError, tally: ThreadTally, location: str) -> None:
        """A call that finally failed (after its retries): counted by class, first message kept."""
        self.policy.on_error(err.kind, final=True)
        tally.recorder.record_error(OpClass.META, err.kind, f"DELETE: {err}")
        tally.first_error = tally.first_error or str(err)
        self.note(location, err.kind.value, str(err))

    def delete(
        self, backend: Backend, key: str, tally: ThreadTally, rng: random.Random, location: str
    ) -> bool:
        """Delete one object; True when it is gone (deleted or not found), False when it stays."""
        attempt = 0
        while True:
            t0 = time.monotonic_ns()
            try:
                backend.delete(key)
            except Exception as exc:
                err = as_storage_error(exc, backend.uri_of(key))
                if err.kind is ErrorClass.NOT_FOUND:
                    tally.skipped += 1
                    if self.mode == "strict":
                        tally.recorder.record_error(OpClass.META, err.kind, f"DELETE: {err}")
                        tally.first_error = tally.first_error or str(err)
                        self.note(location, err.kind.value, str(err))
                    return True
                attempt += 1
                if self.retry(err.kind, attempt, rng, tally):
                    continue
                self.failed(err, tally, location)
                tally.failed += 1
                return False
            tally.recorder.record(OpClass.META, 0, (time.monotonic_ns() - t0) // 1000)
            tally.deleted += 1
            return True

    @property
    def retries(self) -> int:
        return self.policy.retries
