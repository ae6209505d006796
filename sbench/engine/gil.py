"""A short GIL switch interval while storage worker threads run.

CPython releases the GIL around every blocking syscall, but a worker coming back from one usually finds it
taken by another worker, and then waits until that worker blocks again or the switch interval expires (5 ms
by default), while the holder may take the GIL straight back after its own short syscall. On storage fast
enough that a call blocks for a few microseconds (tmpfs, page-cache reads, local NVMe), that lets one worker
starve the others for milliseconds at a time, and two threads deliver less than one. With a 50 µs interval
a waiting worker asks for the GIL after 50 µs and gets it at the holder's next bytecode boundary, which
bounds the starvation without giving up the default's purpose (CPU-bound threads still run 50 µs slices).
`bench/engine_overhead.py` measures the effect on 4 KiB tmpfs PUTs and GETs with two workers.

The interval is process-wide: the first worker thread that starts sets it, the last one that ends restores
the previous value, so nothing outside a running stage is affected.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

WORKER_SWITCH_INTERVAL_S = 50e-6


class _SwitchInterval:
    """Reference count of running worker threads, and the interval to restore after the last one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._saved = sys.getswitchinterval()

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved, WORKER_SWITCH_INTERVAL_S))
            self._holders += 1

    def exit(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                sys.setswitchinterval(self._saved)


_INTERVAL = _SwitchInterval()


@contextmanager
def worker_switch_interval() -> Iterator[None]:
    """Run the block (a worker thread's loop) with the short switch interval in force."""
    _INTERVAL.enter()
    try:
        yield
    finally:
        _INTERVAL.exit()
