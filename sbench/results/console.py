"""The console transcript: every line shown to the user also lands in console_log.txt (sai3's write_console).

`print()` tees a line to the terminal stream and the file; `record()` writes to the file only, for output
that a live display (rich) already showed on the terminal in its own form. When the file cannot be written
(full disk, deleted directory) the failure goes to `on_error` once and the terminal keeps getting every
line: the user still sees the run and its summary.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sbench.results.writeguard import stop_writing


class ConsoleLog:
    def __init__(
        self,
        path: Path | None,
        stream: TextIO | None = None,
        on_error: Callable[[Path, OSError], None] | None = None,
    ) -> None:
        self.path = path
        self._stream = stream
        self._on_error = on_error
        self._lock = threading.Lock()
        self._fh: TextIO | None = path.open("a", encoding="utf-8") if path is not None else None

    @property
    def stream(self) -> TextIO:
        return self._stream if self._stream is not None else sys.stdout

    def print(self, text: str = "") -> None:
        """Show `text` (one or more lines) and keep it in the transcript."""
        with self._lock:
            self.stream.write(text + "\n")
            self.stream.flush()
            self._append(text)

    def record(self, text: str = "") -> None:
        """Keep `text` in the transcript without printing it."""
        with self._lock:
            self._append(text)

    def _append(self, text: str) -> None:
        if self._fh is None:
            return
        try:
            self._fh.write(text + "\n")
            self._fh.flush()
        except OSError as exc:
            self._failed(exc)

    def _failed(self, exc: OSError) -> None:
        """Stop writing the transcript and report why, once."""
        fh, self._fh = self._fh, None
        stop_writing(fh, self.path, exc, self._on_error)

    def reopen(self) -> None:
        """Append to the transcript's path again (its directory was recreated: the old file is gone)."""
        with self._lock:
            if self.path is None:
                return
            if self._fh is not None:
                with contextlib.suppress(OSError):
                    self._fh.close()
            try:
                self._fh = self.path.open("a", encoding="utf-8")
            except OSError as exc:
                self._fh = None
                self._failed(exc)

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                try:
                    self._fh.close()
                except OSError as exc:
                    self._failed(exc)
                self._fh = None
