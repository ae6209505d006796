"""One cleanup delete, retried and accounted: the unit both prepared-object shards and PUT cleanup use.

Outcomes: `deleted` (confirmed), `missing` (not found: gone all the same, a failure only in strict mode)
and `failed` (it stays). Throttled, network and timeout failures are retried with the workload's jittered
exponential backoff (`ErrorPolicy.retry_delay`, settings from `ErrorHandling.for_cleanup`); each retry is
counted in the stage's figures, and a retry sleep wakes at once when the stage stops. Every error class
keeps its first message per location, so a report can say why objects stayed where they did.

A dead store bounds the job: when an object's whole retry sequence (about 16 s with the defaults) ends
in failure and no delete of the job succeeded since that object's first try, the store is taken as down.
Nothing more is retried or tried then: every object still to delete is reported left at once, with the
reason (`STORE_DOWN`) next to the first error. Retrying each object for 16 s in turn would take minutes
for a few hundred objects and end with the same leftovers. A store that answers some deletes (20 % 503
SlowDown) never trips it: its successes keep coming during every sequence.
"""

from __future__ import annotations

import random
import threading
import time

from sbench.config.models import Config
from sbench.control import RunControl
from sbench.engine.errorpolicy import ErrorHandling, ErrorPolicy
from sbench.engine.leftovers import Leftover
from sbench.engine.shards import ThreadTally
from sbench.metrics.buckets import OpClass
from sbench.storage.base import Backend, ErrorClass, StorageError

MODES = ("strict", "tolerant", "besteffort")
#: the leftover reason of objects not tried because the store was found down (module docstring)
STORE_DOWN = "store_down"


def cleanup_mode(config: Config) -> str:
    """`prepare.cleanup_mode` as a plain string (tolerant when unset), checked against MODES."""
    prep = config.prepare
    raw = prep.cleanup_mode if prep is not None else None
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
        #: monotonic time of the job's last confirmed delete (the job's start before the first)
        self._last_ok = time.monotonic()
        #: why the store is taken as down ("" while it is not): the job tries nothing more
        self.down = ""

    @classmethod
    def for_config(cls, config: Config, control: RunControl) -> Deleter:
        return cls(
            ErrorHandling.for_cleanup(config.error_handling), control, cleanup_mode(config)
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
        if self.down or not (kind.retryable and self.policy.should_retry(kind, attempt)):
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

    def _check_down(self, err: StorageError, attempt: int, began: float) -> None:
        """After an object's last try failed: the store is down when its whole retry sequence (all of
        max_retries, not cut short by a stop) saw no delete of this job succeed."""
        s = self.policy.settings
        whole = err.kind.retryable and attempt > s.max_retries > 0 and not self.control.stopping
        if whole and not self.down and self._last_ok < began:
            seconds = time.monotonic() - began
            self.down = (
                f"no delete succeeded during a whole retry sequence ({s.max_retries} retries over "
                f"{seconds:.1f} s); the store is taken as down and the objects still to delete were not "
                f"tried (last error: {err.kind.value})"
            )

    def not_tried(self, tally: ThreadTally, location: str) -> bool:
        """An object skipped because the store is down: it stays, with the reason noted. False."""
        tally.failed += 1
        self.note(location, STORE_DOWN, self.down)
        return False

    def delete(
        self, backend: Backend, key: str, tally: ThreadTally, rng: random.Random, location: str
    ) -> bool:
        """Delete one object; True when it is gone (deleted or not found), False when it stays."""
        if self.down:
            return self.not_tried(tally, location)
        attempt = 0
        began = time.monotonic()
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
                self._check_down(err, attempt, began)
                return False
            t1 = time.monotonic_ns()
            tally.recorder.record(OpClass.META, 0, (t1 - t0) // 1000)
            tally.deleted += 1
            self._last_ok = t1 / 1e9
            return True

    @property
    def retries(self) -> int:
        return self.policy.retries
