"""A results file that grows a line at a time while the run goes on (perf logs, histogram logs).

Thread-safe; flushed after every append, so a killed run keeps every line written. With `on_error`, a failed
write (full disk, deleted directory) is reported there once and the file stops growing (it keeps what was
written before, and the run goes on); without it the OSError is raised.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TextIO

from sbench.results.writeguard import stop_writing


class GrowingFile:
    """See the module docstring; `header` lines are written when the file is created (`append`: added to
    what the file has). With `make_parent` its folder is created if missing (agents/<id>/); a file at the
    top of the results directory must not recreate a directory deleted during the run (the end of the run
    notices and says what was lost)."""

    def __init__(
        self,
        path: Path,
        header: Sequence[str],
        on_error: Callable[[Path, OSError], None] | None = None,
        *,
        make_parent: bool = False,
        append: bool = False,
    ) -> None:
        self.path = path
        self._on_error = on_error
        self._lock = threading.Lock()
        self._closed = False
        self._fh: TextIO | None = None
        try:
            if make_parent:
                path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = path.open("a" if append else "w", encoding="utf-8")
            self._fh.write("".join(f"{line}\n" for line in header))
            self._fh.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        fh, self._fh = self._fh, None
        stop_writing(fh, self.path, exc, self._on_error)

    def append(self, lines: Sequence[str]) -> bool:
        """Add `lines`; False when they were not written (an earlier write failed and was reported)."""
        text = "".join(f"{line}\n" for line in lines)
        with self._lock:
            if self._closed:
                raise ValueError(f"{self.path} is closed")
            if self._fh is None:
                return False
            try:
                self._fh.write(text)
                self._fh.flush()
            except OSError as exc:
                self._failed(exc)
                return False
            return True

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError as exc:
                    self._failed(exc)
                self._fh = None
