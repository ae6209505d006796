"""What every obstore-backed driver shares (Azure and GCS; S3 keeps its own, see s3_native.py): the store is
built once per backend, with the client's own retries off (the engine counts and retries failures) and the
per-op timeout of the options. When the range engine is enabled, its ranges go through a second store whose
timeout is `range_timeout_s`, since only the client can abandon a request that takes too long.

Prefixes behave as plain string prefixes (as in the SDK drivers), although object_store lists by path
segment: the listing starts at the prefix's directory and filters. Non-recursive listings use
`list_with_delimiter`, which object_store gathers in memory across pages (it exposes no page stream for
delimited listings); recursive listings stream in pages of 1,000.

A key or prefix with a `..` segment is refused (OUTSIDE_ROOT, sbench.storage.confine) before obstore sees it.

Directory operations: `mkdir` is a no-op; `rmdir(path, recursive=True)` deletes every object under the prefix,
without `recursive` it is a no-op.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from datetime import timedelta
from typing import Any

import obstore
from obstore.exceptions import BaseError as ObstoreBaseError

from sbench.storage.base import AsyncBackend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import PAGE_SIZE, batches_under
from sbench.storage.cloud_errors import classify_obstore, obstore_error, obstore_past_end
from sbench.storage.confine import confine_key
from sbench.storage.options import BackendOptions
from sbench.storage.ranged import RangeEngine

#: What obstore raises: its own errors, and FileNotFoundError (an OSError) for missing objects.
OBSTORE_ERRORS = (ObstoreBaseError, OSError)

#: Builds the store for a given per-request timeout in seconds.
StoreFactory = Callable[[float], Any]


def client_options(options: BackendOptions, timeout_s: float, allow_http: bool) -> dict[str, Any]:
    """obstore ClientConfig from BackendOptions: timeouts, idle pool per host (BackendOptions.pool_size),
    plain http only when the endpoint is http (emulators), certificate checks off only with verify_tls
    false."""
    config: dict[str, Any] = {
        "timeout": timedelta(seconds=timeout_s),
        "connect_timeout": timedelta(seconds=options.connect_timeout_s),
        "pool_max_idle_per_host": str(options.pool_size),
    }
    if allow_http:
        config["allow_http"] = True
    if not options.verify_tls:
        config["allow_invalid_certificates"] = True
    return config


#: No client-side retries: a retry inside one timed call would hide throttling and inflate latency.
NO_RETRIES: dict[str, Any] = {"max_retries": 0}


class ObstoreBackend(AsyncBackend):
    """A Backend over any obstore store rooted at the URI's prefix (keys are relative to it)."""

    def __init__(self, root_uri: str, make_store: StoreFactory, options: BackendOptions,
                 scrub: Callable[[str], str] = str) -> None:
        super().__init__(root_uri)
        self._options = options
        self._scrub = scrub
        self._store = make_store(options.request_timeout_s)
        self._range: RangeEngine | None = None
        self._range_store = self._store
        if options.range.enabled:
            self._range = RangeEngine(options.range, options.concurrency)
            self._range_store = make_store(options.range.range_timeout_s)
        self._multipart_threshold = options.multipart_threshold
        self._part_size = options.multipart_part_size

    # --- sync -----------------------------------------------------------------------------------------
    def get(self, key: str) -> Buffer:
        confine_key(key, "get", self.uri_of)
        try:
            if self._range is not None:
                size = obstore.head(self._store, key)["size"]
                if self._range.applies(size):
                    return self._range.read(lambda off, n: self._fetch(key, off, n), size, self.uri_of(key))
            return memoryview(obstore.get(self._store, key).bytes())
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        confine_key(key, "get_range", self.uri_of)
        if length <= 0:
            return b""
        try:
            return memoryview(obstore.get_range(self._store, key, start=offset, length=length))
        except OBSTORE_ERRORS as exc:
            if obstore_past_end(exc):
                return b""
            raise self._error(exc, key) from exc

    def put(self, key: str, data: Buffer) -> None:
        confine_key(key, "put", self.uri_of)
        try:
            obstore.put(self._store, key, data, **self._put_args(data))
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        confine_key(prefix, "list", self.uri_of)
        directory = _directory_of(prefix)
        try:
            if recursive:
                for page in obstore.list(self._store, directory or None, chunk_size=PAGE_SIZE):
                    for meta in page:
                        if meta["path"].startswith(prefix):
                            yield meta["path"], meta["size"]
                return
            yield from _delimited(obstore.list_with_delimiter(self._store, directory or None), prefix)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, prefix) from exc

    def stat(self, key: str) -> ObjectStat:
        confine_key(key, "stat", self.uri_of)
        try:
            return object_stat(key, obstore.head(self._store, key))
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def delete(self, key: str) -> None:
        confine_key(key, "delete", self.uri_of)
        try:
            obstore.delete(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def mkdir(self, path: str) -> None:
        """Object stores have no directories: nothing to create (as sai3 does)."""

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Delete every object under `path` when `recursive`; otherwise a no-op (there is no directory
        object to remove). Deletes go out in batches of a listing page: Azure sends them as Blob Batch
        requests, GCS as concurrent DELETEs."""
        confine_key(path, "rmdir", self.uri_of)
        if recursive:
            for batch in batches_under(self, path):
                self._delete_batch(batch)

    def close(self) -> None:
        if self._range is not None:
            self._range.close()

    # --- async ----------------------------------------------------------------------------------------
    async def get_async(self, key: str) -> Buffer:
        confine_key(key, "get", self.uri_of)
        try:
            if self._range is not None:
                size = (await obstore.head_async(self._store, key))["size"]
                if self._range.applies(size):
                    return await self._range.read_async(
                        lambda off, n: self._fetch_async(key, off, n), size, self.uri_of(key)
                    )
            result = await obstore.get_async(self._store, key)
            return memoryview(await result.bytes_async())
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        confine_key(key, "get_range", self.uri_of)
        if length <= 0:
            return b""
        try:
            return memoryview(await obstore.get_range_async(self._store, key, start=offset, length=length))
        except OBSTORE_ERRORS as exc:
            if obstore_past_end(exc):
                return b""
            raise self._error(exc, key) from exc

    async def put_async(self, key: str, data: Buffer) -> None:
        confine_key(key, "put", self.uri_of)
        try:
            await obstore.put_async(self._store, key, data, **self._put_args(data))
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        confine_key(prefix, "list", self.uri_of)
        directory = _directory_of(prefix)
        try:
            if recursive:
                async for page in obstore.list(self._store, directory or None, chunk_size=PAGE_SIZE):
                    for meta in page:
                        if meta["path"].startswith(prefix):
                            yield meta["path"], meta["size"]
                return
            result = await obstore.list_with_delimiter_async(self._store, directory or None)
            for item in _delimited(result, prefix):
                yield item
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, prefix) from exc

    async def stat_async(self, key: str) -> ObjectStat:
        confine_key(key, "stat", self.uri_of)
        try:
            return object_stat(key, await obstore.head_async(self._store, key))
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    async def delete_async(self, key: str) -> None:
        confine_key(key, "delete", self.uri_of)
        try:
            await obstore.delete_async(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    # --- helpers --------------------------------------------------------------------------------------
    def _put_args(self, data: Buffer) -> dict[str, Any]:
        return {"use_multipart": len(data) > self._multipart_threshold, "chunk_size": self._part_size}

    def _fetch(self, key: str, offset: int, length: int) -> Buffer:
        return obstore.get_range(self._range_store, key, start=offset, length=length)

    async def _fetch_async(self, key: str, offset: int, length: int) -> Buffer:
        return await obstore.get_range_async(self._range_store, key, start=offset, length=length)

    def _delete_batch(self, keys: list[str]) -> None:
        try:
            obstore.delete(self._store, keys)
        except OBSTORE_ERRORS as exc:
            if classify_obstore(exc) is not ErrorClass.NOT_FOUND:
                raise self._error(exc, keys[0]) from exc
            # One key was deleted meanwhile (by another worker): delete the rest one by one.
            for key in keys:
                try:
                    self.delete(key)
                except StorageError as one:
                    if one.kind is not ErrorClass.NOT_FOUND:
                        raise

    def _error(self, exc: BaseException, key: str) -> StorageError:
        return obstore_error(exc, self.uri_of(key), self._scrub)


def _directory_of(prefix: str) -> str:
    """The directory part of a string prefix (`a/b/c` -> `a/b/`): where an object_store listing must start."""
    return prefix[: prefix.rfind("/") + 1]


def _delimited(result: Any, prefix: str) -> Iterator[tuple[str, int]]:
    for meta in result["objects"]:
        if meta["path"].startswith(prefix):
            yield meta["path"], meta["size"]
    for common in result["common_prefixes"]:
        name = common.rstrip("/") + "/"
        if name.startswith(prefix):
            yield name, 0


def object_stat(key: str, meta: Any) -> ObjectStat:
    modified = meta.get("last_modified")
    etag = (meta.get("e_tag") or "").strip('"') or None
    return ObjectStat(key=key, size=meta["size"], mtime=modified.timestamp() if modified else None, etag=etag)
