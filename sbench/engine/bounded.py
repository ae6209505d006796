"""Bounded waits on storage work: once a stage is told to stop (Ctrl-C, SIGTERM, abort, timeout, stall), every
wait on its threads ends within `GRACE_S`, whatever the storage does.

A storage call blocked in a socket read cannot be interrupted from Python. So no caller joins a thread that
may be inside such a call without a timeout: the work runs on daemon threads, the caller waits in short steps
that check the stop flag, and once the stop is `GRACE_S` old the threads still inside a call are abandoned
(left to finish or to die with the process) and counted as in flight. Every level measures the grace from the
same moment (`RunControl.halted_at_ns`), so waits nested in one another never add their grace periods up.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from sbench.control import RunControl

#: How long a stopped stage lets in-flight storage calls finish before it abandons them.
GRACE_S = 0.9
#: Longest single wait between two looks at the stop flag.
POLL_S = 0.1

T = TypeVar("T")


class Abandoned(Exception):
    """The work was still running `GRACE_S` after the stop and was left behind."""


def grace_over(control: RunControl, grace_s: float = GRACE_S) -> bool:
    """True once `control` has been stopping for `grace_s` seconds."""
    at = control.halted_at_ns
    return bool(at) and time.monotonic_ns() - at >= grace_s * 1e9


def call_bounded(
    fn: Callable[[], T],
    control: RunControl,
    *,
    name: str,
    on_poll: Callable[[], Any] | None = None,
) -> T:
    """`fn()` on a daemon thread; its result, or its exception re-raised. When `control` stops and `fn` is
    still running `GRACE_S` later, raises Abandoned (the thread is left to finish on its own). `on_poll` runs
    between waits (e.g. a stall check that aborts `control`)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller below
            box["error"] = exc

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    while True:
        worker.join(POLL_S)
        if not worker.is_alive():
            break
        if on_poll is not None:
            on_poll()
        if control.stopping and grace_over(control):
            raise Abandoned(f"{name} did not return within {GRACE_S:g} s of the stop ({control.reason})")
    if "error" in box:
        raise box["error"]
    return box["value"]


def join_bounded(
    threads: Iterable[threading.Thread],
    control: RunControl,
    *,
    on_poll: Callable[[], Any] | None = None,
) -> int:
    """Wait for `threads`; give up once `control` has been stopping for `GRACE_S`. Returns how many are
    still alive (each one inside a storage call: in flight at the stop). `on_poll` runs between waits."""
    threads = list(threads)
    while True:
        alive = [t for t in threads if t.is_alive()]
        if not alive:
            return 0
        if control.stopping and grace_over(control):
            return len(alive)
        alive[0].join(POLL_S)
        if on_poll is not None:
            on_poll()
