"""The backend protocol every storage driver implements, and the error classes they map failures to.

Keys are always relative to the backend's root URI (the `target`, an endpoint or a `base_uri`), with `/` as
separator, so the engine and the multi-endpoint router never deal with schemes, buckets or accounts.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from enum import StrEnum
from typing import ClassVar

Buffer = bytes | bytearray | memoryview


class ErrorClass(StrEnum):
    """Why a storage call failed; counted separately in every result file."""

    NOT_FOUND = "not_found"
    THROTTLED = "throttled"
    AUTH = "auth"
    NETWORK = "network"
    TIMEOUT = "timeout"
    OTHER = "other"
    # Classes added later go last, so the per-class columns of older result files keep their positions.
    #: the storage is full (ENOSPC), a quota is exhausted (EDQUOT) or the store says so (507 Insufficient
    #: Storage, a quota error code): retrying cannot help, and the run must say so by name, not as `other`.
    NO_SPACE = "no_space"
    #: a key that would leave its root (`..`, or a symlink out of a file:// target); refused, never followed
    OUTSIDE_ROOT = "outside_root"

    @property
    def retryable(self) -> bool:
        """Worth retrying whatever the settings: the store may answer differently a moment later."""
        return self in (ErrorClass.THROTTLED, ErrorClass.NETWORK, ErrorClass.TIMEOUT)

    @property
    def final(self) -> bool:
        """Never retried: repeating the same call cannot change the answer."""
        return self in (ErrorClass.NOT_FOUND, ErrorClass.AUTH, ErrorClass.NO_SPACE, ErrorClass.OUTSIDE_ROOT)


class StorageError(Exception):
    """A failed storage call, classified, with the client's original message kept for the user."""

    def __init__(self, kind: ErrorClass, message: str, *, uri: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.uri = uri

    @property
    def retryable(self) -> bool:
        return self.kind.retryable

    def __str__(self) -> str:
        where = f" ({self.uri})" if self.uri else ""
        return f"{self.kind.value}{where}: {self.message}"

    def __reduce__(self):  # keep the class across Ray/pickle boundaries
        return (_rebuild_storage_error, (self.kind.value, self.message, self.uri))


def _rebuild_storage_error(kind: str, message: str, uri: str | None) -> StorageError:
    return StorageError(ErrorClass(kind), message, uri=uri)


@dataclass(frozen=True, slots=True)
class ObjectStat:
    """What a STAT/HEAD returns."""

    key: str
    size: int
    mtime: float | None = None
    etag: str | None = None


class Backend(ABC):
    """Synchronous storage protocol. One instance may be shared by many worker threads."""

    scheme: ClassVar[str]
    #: True when the backend also implements AsyncBackend and the engine should drive it with asyncio tasks.
    is_async: ClassVar[bool] = False
    #: True when its sync calls cost less client CPU per op than its async ones (measured on the native S3
    #: driver: bench/native_path.py), so `workers.mode: auto` may run threads on it (engine.workermode).
    #: Wrappers (op-log capture, multi-endpoint router) set it per instance from what they wrap.
    threads_cheaper: bool = False
    #: True when mkdir/rmdir act on real directories (file://, direct://); object stores treat them as no-ops.
    has_directories: ClassVar[bool] = False

    def __init__(self, root_uri: str) -> None:
        self.root_uri = root_uri

    @abstractmethod
    def get(self, key: str) -> Buffer:
        """Read a whole object."""

    @abstractmethod
    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        """Read `length` bytes at `offset` (fewer at the end of the object)."""

    @abstractmethod
    def put(self, key: str, data: Buffer) -> None:
        """Create or replace an object."""

    @abstractmethod
    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """Stream (key, size) pairs under `prefix`, in pages, in constant memory.

        Non-recursive listings yield objects directly under the prefix and directories/common prefixes as
        keys ending in `/` with size 0.
        """

    @abstractmethod
    def stat(self, key: str) -> ObjectStat:
        """HEAD one object; raises StorageError(NOT_FOUND) when missing."""

    @abstractmethod
    def delete(self, key: str) -> None:
        """Delete one object; raises StorageError(NOT_FOUND) when missing, where the store can tell."""

    @abstractmethod
    def mkdir(self, path: str) -> None:
        """Create a directory and its parents; a no-op on object stores."""

    @abstractmethod
    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Remove a directory (with its content when `recursive`); on object stores, delete the prefix
        when `recursive`, else a no-op."""

    def close(self) -> None:  # noqa: B027 - most backends hold nothing that needs closing
        """Release connections and file handles."""

    def uri_of(self, key: str) -> str:
        """The full URI of a key, for messages and op-logs."""
        return self.root_uri.rstrip("/") + "/" + key.lstrip("/")


class AsyncBackend(Backend):
    """A backend that can also be driven by asyncio tasks (the native obstore drivers)."""

    is_async: ClassVar[bool] = True

    @abstractmethod
    async def get_async(self, key: str) -> Buffer: ...

    @abstractmethod
    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer: ...

    @abstractmethod
    async def put_async(self, key: str, data: Buffer) -> None: ...

    @abstractmethod
    def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]: ...

    @abstractmethod
    async def stat_async(self, key: str) -> ObjectStat: ...

    @abstractmethod
    async def delete_async(self, key: str) -> None: ...
