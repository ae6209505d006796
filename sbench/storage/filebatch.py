"""Which file:// ops run in native batches (filebatch.c), and what a batch needs from the driver.

Why batches: run from Python, each syscall of a page-cache GET (open, lseek, pread, close; ~1 µs each)
releases and retakes the GIL, so two worker threads hand it over several times per op. With two threads,
sbench's Python loop read 0.6x what a bare four-line `os` loop did on ext4 and xfs (bench/README.md, § Real
file systems), and every line of Python per op made it worse. In a batch, the worker's Python only makes
the keys and their confined paths (`FileBackend.path_of`, the one confinement rule), and filebatch.c makes
every syscall of the batch with the GIL released, timing each op and handing back what the engine's
closed-loop sink records. Everything but the common case (an error, a symlink, a missing parent, a
directory) is handed back to FileBackend for that one op, so it keeps one implementation.

Batches run only where they do exactly what FileBackend's `get` and `put` do: a plain FileBackend (not
direct://, whose O_DIRECT needs aligned buffers; not one wrapped by the op log or a service-time model) with
no `page_cache_mode` (its posix_fadvise hints are the Python driver's), the extension built, and
`workers.native_file_io` left on.
"""

from __future__ import annotations

import sys

from sbench.storage.base import Backend
from sbench.storage.file import FILE_MODE, READ_FLAGS, WRITE_FLAGS, FileBackend

try:
    from sbench.storage import _filebatch as native
except ImportError as exc:  # built only where a C compiler and Python headers were found (setup.py)
    native = None
    _NOT_BUILT = (
        f"the native file loop (sbench.storage._filebatch) cannot be imported here ({exc}): it is built when "
        "sbench is installed on a machine with a C compiler and the Python headers, for that Python"
    )
else:
    _NOT_BUILT = ""

__all__ = ["FILE_MODE", "READ_FLAGS", "WRITE_FLAGS", "batch_refusal", "native"]


def batch_refusal(backend: Backend) -> str:
    """Why `backend`'s GETs and PUTs cannot run in native batches; "" when they can."""
    if _NOT_BUILT:
        return _NOT_BUILT
    if type(backend) is not FileBackend:
        return f"{backend.root_uri} is not a plain file:// store"
    if backend.page_cache_mode is not None:
        return "page_cache_mode is set (its posix_fadvise hints are the Python driver's)"
    if sys.getfilesystemencoding() != "utf-8":  # filebatch.c hands the kernel a path's UTF-8
        return f"the file system encoding is {sys.getfilesystemencoding()}, not utf-8"
    return ""
