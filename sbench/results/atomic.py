"""Whole-file writes of the results directory: complete or absent, never truncated, never a `.tmp` left over.

A result file that a full disk cut in half reads as a valid but wrong result (a TSV missing its last rows, a
STATUS.txt without its reason). Every end-of-run file is therefore written to a temporary name and renamed
over the real one; when the write fails the temporary file is removed and the OSError goes to the caller
(the run's WriteGuard notes it and goes on with the next file).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path


def replace_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """`write(tmp)` fills `path.tmp`, which is then renamed over `path`; on failure nothing is left behind
    (for files a library writes itself, such as a workbook)."""
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    return path


def write_text_atomic(path: Path, text: str) -> Path:
    """Write `text` (UTF-8) to `path` through `path.tmp` and a rename; on failure nothing is left behind."""
    return replace_atomic(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))
