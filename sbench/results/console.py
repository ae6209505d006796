"""The console transcript: every line shown to the user also lands in console_log.txt (sai3's write_console).

`print()` tees a line to the terminal stream and the file; `record()` writes to the file only, for output
that a live display (rich) already showed on the terminal in its own form.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path
from typing import TextIO


class ConsoleLog:
    def __init__(self, path: Path | None, stream: TextIO | None = None) -> None:
        self.path = path
        self._stream = stream
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
        if self._fh is not None:
            self._fh.write(text + "\n")
            self._fh.flush()

    def close(self) -> None:
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
