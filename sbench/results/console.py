"""The console transcript: every line shown to the user also lands in console_log.txt (sai3's write_console).

`print()` tees a line to the terminal stream and the file; `record()` writes to the file only, for output
that a live display (rich) already showed on the terminal in its own form. When the file cannot be written
(full disk, deleted directory) the failure goes to `on_error` once and the terminal keeps getting every
line: the user still sees the run and its summary.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from sbench.results.growingfile import GrowingFile


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
        self._file = self._open()

    def _open(self) -> GrowingFile | None:
        return None if self.path is None else GrowingFile(self.path, [], self._on_error, append=True)

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
        if self._file is not None:
            self._file.append([text])

    def reopen(self) -> None:
        """Append to the transcript's path again (its directory was recreated: the old file is gone)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = self._open()

    def close(self) -> None:
        """The transcript ends; lines printed later still reach the terminal."""
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
