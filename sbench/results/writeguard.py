"""A failed write of one result file must not cost the others: each write is attempted on its own.

A full disk or a results directory deleted under a running benchmark used to end in a traceback with nothing
written but `summary.json.tmp`. Every write of the results directory (end-of-run files, and the perf logs
and console transcript that grow during the run) goes through one WriteGuard: an OSError is noted with the
path and the OS's own words, the writer goes on with the next file, and at the end the run is a failure
(exit 1) whose reason names every file that could not be written and why.
"""

from __future__ import annotations

import contextlib
import errno
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO


def os_error_text(exc: OSError) -> str:
    """`No space left on device [ENOSPC]`: the OS's words plus the errno name a user can search for."""
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    return f"{exc.strerror or exc}" + (f" [{name}]" if name else "")


def stop_writing(
    fh: TextIO | None, path: Path | None, exc: OSError, on_error: Callable[[Path, OSError], None] | None
) -> None:
    """A growing file (perf log, transcript) whose write failed: close it quietly (a partial line may be in
    it) and hand the error to `on_error` (a WriteGuard's note), or raise it when there is nobody to tell."""
    if fh is not None:
        with contextlib.suppress(OSError):
            fh.close()
    if on_error is None or path is None:
        raise exc
    on_error(path, exc)


@dataclass(frozen=True, slots=True)
class WriteFailure:
    """One results file that could not be written (completely), and why."""

    path: Path
    error: str

    def __str__(self) -> str:
        return f"{self.path}: {self.error}"


class WriteGuard:
    """Notes failed writes (the first per path) instead of raising; thread-safe, since perf logs and the
    console transcript are written from interval threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[Path, WriteFailure] = {}

    def note(self, path: Path, problem: OSError | str) -> None:
        """Record that `path` could not be written (an OSError, or a sentence for other losses)."""
        text = os_error_text(problem) if isinstance(problem, OSError) else problem
        with self._lock:
            self._failures.setdefault(path, WriteFailure(path, text))

    def attempt(self, path: Path, write: Callable[[], object]) -> bool:
        """Run `write` (which writes `path`); False, with the failure noted, when it raised an OSError."""
        try:
            write()
        except OSError as exc:
            self.note(path, exc)
            return False
        return True

    @property
    def failures(self) -> list[WriteFailure]:
        with self._lock:
            return list(self._failures.values())

    def describe(self) -> str:
        """One sentence naming every failed path and its error ("" when everything was written)."""
        failures = self.failures
        if not failures:
            return ""
        noun = "file" if len(failures) == 1 else "files"
        return f"results incomplete, {len(failures)} {noun} not written: " + "; ".join(map(str, failures))
