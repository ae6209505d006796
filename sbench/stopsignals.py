"""SIGINT and SIGTERM routed to one handler for the length of a `with` block, whatever their disposition on
arrival (a background job inherits SIGINT ignored; a CI timeout sends SIGTERM), then put back.

The run's driver (run.driver.StopSignals) and `sbench submit`'s job follower (submit.jobs) each say what a
first and a second signal do; installing and restoring the handlers is this one piece.
"""

from __future__ import annotations

import signal
import threading
from abc import ABC, abstractmethod
from types import FrameType
from typing import Any, Self


class SignalScope(ABC):
    """Subclasses implement `_handle(signum, frame)`; it runs for SIGINT and SIGTERM inside the block (only
    when entered on the main thread: an embedded caller's own thread cannot take signals)."""

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}

    @abstractmethod
    def _handle(self, signum: int, frame: FrameType | None) -> None:
        """What a SIGINT or SIGTERM does inside the block."""

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
