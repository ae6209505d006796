"""OS errors -> StorageError with an ErrorClass, shared by the file:// and direct:// drivers.

The engine counts failures by class and retries only the retryable ones, so the mapping decides both what the
user sees in the results and whether a run keeps going; the original OS message is always kept.
"""

from __future__ import annotations

import errno

from sbench.storage.base import ErrorClass, StorageError

_NOT_FOUND = {errno.ENOENT, errno.ENOTDIR}
_AUTH = {errno.EACCES, errno.EPERM}
_TIMEOUT = {errno.ETIMEDOUT}
_NETWORK = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.ENETDOWN,
    errno.ENETUNREACH,
    errno.ENETRESET,
    errno.EHOSTDOWN,
    errno.EHOSTUNREACH,
    errno.ESTALE,  # NFS: the server lost the file handle (restart, failover)
    errno.ENOLINK,
    errno.EREMOTEIO,
}
_THROTTLED = {errno.EAGAIN}
_NO_SPACE = {errno.ENOSPC, errno.EDQUOT}
#: errno -> a sentence that tells the user what happened and what to do, added to the OS message.
_EXPLAIN = {
    errno.ENOSPC: "disk full: the file system has no space left; free space or use a smaller dataset",
    errno.EDQUOT: "disk full: the user's disk quota is exhausted; raise the quota or use a smaller dataset",
    errno.EROFS: "the file system is mounted read-only",
    errno.EMFILE: "too many open files in this process; raise the limit (ulimit -n)",
    errno.ENFILE: "too many open files on this host (system-wide limit)",
    errno.EACCES: "permission denied; check the owner and mode of the path",
    errno.EPERM: "operation not permitted; check the owner and mode of the path",
    errno.ENAMETOOLONG: "the path or one of its components is too long for this file system",
    errno.ENOTEMPTY: "the directory is not empty; use a recursive rmdir",
    errno.EISDIR: "the path is a directory, not a file",
    errno.ENOTDIR: "a component of the path is a file, not a directory",
}


_ERRNO_CLASS = {
    code: kind
    for kind, codes in (
        (ErrorClass.THROTTLED, _THROTTLED),
        (ErrorClass.NETWORK, _NETWORK),
        (ErrorClass.TIMEOUT, _TIMEOUT),
        (ErrorClass.AUTH, _AUTH),
        (ErrorClass.NOT_FOUND, _NOT_FOUND),
        (ErrorClass.NO_SPACE, _NO_SPACE),
    )
    for code in codes
}


def classify_errno(code: int | None) -> ErrorClass:
    """The class that decides whether the engine retries: anything unlisted is OTHER (not retried)."""
    return _ERRNO_CLASS.get(code, ErrorClass.OTHER)  # type: ignore[arg-type]


def storage_error_from_os(exc: OSError, uri: str, action: str) -> StorageError:
    """Classify an OSError raised while doing `action` ("get", "put", ...) on `uri`."""
    reason = exc.strerror or str(exc)
    explain = _EXPLAIN.get(exc.errno) if exc.errno is not None else None
    name = errno.errorcode.get(exc.errno, "") if exc.errno is not None else ""
    message = f"{action} failed: {reason}" + (f" [{name}]" if name else "")
    if explain:
        message += f" ({explain})"
    return StorageError(classify_errno(exc.errno), message, uri=uri)
