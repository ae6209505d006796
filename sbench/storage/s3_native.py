"""S3 through obstore (`driver: native`, the default): Rust object_store, a fraction of boto3's CPU per op.

One `S3Store` per backend (one per agent), shared by every worker thread and asyncio task: the store owns a
connection pool and a tokio runtime, both thread-safe. Keys are relative to the store's prefix, so the hot
path passes them through untouched. obstore's own retries are off (`max_retries: 0`), as in the sdk driver,
so sbench counts every failure; `request_timeout_s` is the store's whole-request timeout.

Credentials come from botocore (see s3.py) and are handed over explicitly: static keys as config, temporary
ones (SSO, assume-role, instance role) through a provider that re-reads botocore's refreshing credentials.

Listing: obstore lists by path segment (prefix `a/b` means `a/b/...`), S3 and the other drivers by string
prefix. A prefix that ends inside a name (`obj_1`) is listed from its parent with a start-after offset and
filtered, so every driver returns the same keys. Non-recursive listings use obstore's delimiter listing,
which gathers one directory level (not the whole tree) in memory before returning it.

Why not obstore_base.ObstoreBackend (which Azure and GCS share): that one lists from the directory and
filters, while S3's ListObjectsV2 takes a start-after key, so this driver starts at the prefix and stops at
the end of the matching block; S3 also answers a DELETE of a missing key with 204 (no error to classify),
and the hot path calls obstore's functions through module-level names. The error, stat and recursive-rmdir
helpers are the shared ones.
"""

from __future__ import annotations

import datetime
from collections.abc import AsyncIterator, Iterator
from typing import Any

import obstore
from obstore.store import S3Store

from sbench.storage.base import AsyncBackend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import batches_under
from sbench.storage.cloud_errors import obstore_error, obstore_past_end
from sbench.storage.confine import confine_key
from sbench.storage.obstore_base import OBSTORE_ERRORS, object_stat
from sbench.storage.options import BackendOptions
from sbench.storage.ranged import RangeEngine
from sbench.storage.s3 import S3Settings

# Module-level bindings: one global lookup per call on the hot path instead of a module attribute lookup.
_get, _get_async = obstore.get, obstore.get_async
_get_range, _get_range_async = obstore.get_range, obstore.get_range_async
_put, _put_async = obstore.put, obstore.put_async
_head, _head_async = obstore.head, obstore.head_async
_delete, _delete_async = obstore.delete, obstore.delete_async
_LIST_CHUNK = 1000
#: How long a temporary credential handed to obstore is trusted before obstore asks botocore again.
_CREDENTIAL_TTL = datetime.timedelta(minutes=5)


class _BotocoreCredentialProvider:
    """obstore credential callback over botocore's refreshing credentials (SSO, assume-role, IMDS...)."""

    def __init__(self, credentials: Any) -> None:
        self._credentials = credentials

    def __call__(self) -> dict[str, Any]:
        frozen = self._credentials.get_frozen_credentials()  # botocore refreshes ahead of expiry
        return {
            "access_key_id": frozen.access_key,
            "secret_access_key": frozen.secret_key,
            "token": frozen.token,
            "expires_at": datetime.datetime.now(datetime.UTC) + _CREDENTIAL_TTL,
        }


def build_store(settings: S3Settings, credentials: Any, options: BackendOptions, timeout_s: float) -> S3Store:
    """An S3Store with explicit endpoint, region, addressing, credentials, timeouts (`timeout_s` for the
    whole request), pool and TLS checks of `options`, and no retries."""
    import botocore.credentials

    config: dict[str, Any] = {
        "region": settings.region,
        "virtual_hosted_style_request": not settings.path_style,
    }
    config["endpoint"] = _store_endpoint(settings)
    provider = None
    if isinstance(credentials, botocore.credentials.RefreshableCredentials):
        provider = _BotocoreCredentialProvider(credentials)
    else:
        frozen = credentials.get_frozen_credentials()
        config["access_key_id"] = frozen.access_key
        config["secret_access_key"] = frozen.secret_key
        if frozen.token:
            config["session_token"] = frozen.token
    client_options = {
        "allow_http": settings.is_http,
        "timeout": datetime.timedelta(seconds=timeout_s),
        "connect_timeout": datetime.timedelta(seconds=options.connect_timeout_s),
        "pool_max_idle_per_host": str(options.pool_size),
        "user_agent": f"sbench obstore/{obstore.__version__}",
    }
    if not options.verify_tls:
        client_options["allow_invalid_certificates"] = True
    return S3Store(
        settings.bucket,
        prefix=settings.key_prefix.rstrip("/") or None,
        config=config,
        client_options=client_options,
        retry_config={"max_retries": 0},
        credential_provider=provider,
    )


def _store_endpoint(settings: S3Settings) -> str:
    """The endpoint URL obstore is given, always explicitly: left unset, obstore would read AWS_ENDPOINT_URL
    from the environment on its own, even where s3.py decided otherwise (AWS_IGNORE_CONFIGURED_ENDPOINT_URLS).

    obstore takes a virtual-hosted endpoint as the bucket's own URL, so the bucket goes into the host name
    here (botocore does the same for the sdk driver).
    """
    endpoint = settings.endpoint_url
    if endpoint is None:
        suffix = "amazonaws.com.cn" if settings.region.startswith("cn-") else "amazonaws.com"
        endpoint = f"https://s3.{settings.region}.{suffix}"
    if settings.path_style:
        return endpoint
    scheme, _, host = endpoint.partition("://")
    return f"{scheme}://{settings.bucket}.{host}"


class S3NativeBackend(AsyncBackend):
    """An S3 bucket/prefix through one obstore S3Store; sync calls for threads, async for asyncio tasks."""

    scheme = "s3"
    threads_cheaper = True

    def __init__(self, settings: S3Settings, options: BackendOptions, credentials: Any) -> None:
        super().__init__(settings.root_uri)
        self.settings = settings
        self.options = options
        self._store = build_store(settings, credentials, options, options.request_timeout_s)
        self._threshold = options.multipart_threshold
        self._part_size = options.multipart_part_size
        self._ranges: RangeEngine | None = None
        self._range_store: S3Store | None = None
        if options.range.enabled:
            self._ranges = RangeEngine(options.range, options.concurrency)
            self._range_store = build_store(settings, credentials, options, options.range.range_timeout_s)

    def _error(self, exc: BaseException, key: str) -> StorageError:
        return obstore_error(exc, self.uri_of(key))

    # --- async (asyncio tasks) ------------------------------------------------------------------------

    async def get_async(self, key: str) -> Buffer:
        confine_key(key, "get", self.uri_of)
        if self._ranges is not None:
            return await self._get_ranged_async(key)
        try:
            result = await _get_async(self._store, key)
            return await result.bytes_async()
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    async def _get_ranged_async(self, key: str) -> Buffer:
        assert self._ranges is not None and self._range_store is not None
        range_store = self._range_store
        size = (await self.stat_async(key)).size
        if not self._ranges.applies(size):
            try:
                return await (await _get_async(self._store, key)).bytes_async()
            except OBSTORE_ERRORS as exc:
                raise self._error(exc, key) from exc

        async def fetch(offset: int, length: int) -> Buffer:
            try:
                return await _get_range_async(range_store, key, start=offset, length=length)
            except OBSTORE_ERRORS as exc:
                raise self._error(exc, key) from exc

        return await self._ranges.read_async(fetch, size, self.uri_of(key))

    async def get_range_async(self, key: str, offset: int, length: int) -> Buffer:
        confine_key(key, "get_range", self.uri_of)
        if length <= 0 or offset < 0:
            return self._empty_range(key, offset, length)
        try:
            return await _get_range_async(self._store, key, start=offset, length=length)
        except OBSTORE_ERRORS as exc:
            if obstore_past_end(exc):
                return b""
            raise self._error(exc, key) from exc

    async def put_async(self, key: str, data: Buffer) -> None:
        confine_key(key, "put", self.uri_of)
        try:
            if len(data) < self._threshold:
                await _put_async(self._store, key, data, use_multipart=False)
            else:
                await _put_async(self._store, key, data, use_multipart=True, chunk_size=self._part_size)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    async def list_async(self, prefix: str = "", recursive: bool = True) -> AsyncIterator[tuple[str, int]]:
        confine_key(prefix, "list", self.uri_of)
        prefix = prefix.lstrip("/")
        directory, partial = _split_prefix(prefix)
        try:
            if recursive:
                stream = obstore.list(self._store, directory or None, chunk_size=_LIST_CHUNK,
                                      offset=_start_after(prefix, partial))
                async for chunk in stream:
                    for meta in chunk:
                        path = meta["path"]
                        if partial and not path.startswith(prefix):
                            if path > prefix:
                                return
                            continue
                        yield path, meta["size"]
            else:
                level = await obstore.list_with_delimiter_async(self._store, directory or None)
                for item in _level_items(level, prefix, partial):
                    yield item
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, prefix) from exc

    async def stat_async(self, key: str) -> ObjectStat:
        confine_key(key, "stat", self.uri_of)
        try:
            meta = await _head_async(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc
        return object_stat(key, meta)

    async def delete_async(self, key: str) -> None:
        """DELETE one key; S3 answers 204 whether or not it existed, so a missing key is not an error."""
        confine_key(key, "delete", self.uri_of)
        try:
            await _delete_async(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    # --- sync (worker threads; obstore releases the GIL while it waits) ---------------------------------

    def get(self, key: str) -> Buffer:
        confine_key(key, "get", self.uri_of)
        if self._ranges is not None:
            return self._get_ranged(key)
        try:
            return _get(self._store, key).bytes()
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def _get_ranged(self, key: str) -> Buffer:
        assert self._ranges is not None and self._range_store is not None
        range_store = self._range_store
        size = self.stat(key).size
        if not self._ranges.applies(size):
            try:
                return _get(self._store, key).bytes()
            except OBSTORE_ERRORS as exc:
                raise self._error(exc, key) from exc

        def fetch(offset: int, length: int) -> Buffer:
            try:
                return _get_range(range_store, key, start=offset, length=length)
            except OBSTORE_ERRORS as exc:
                raise self._error(exc, key) from exc

        return self._ranges.read(fetch, size, self.uri_of(key))

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        """`length` bytes at `offset`, fewer at the end; empty at or past the end (as pread at EOF)."""
        confine_key(key, "get_range", self.uri_of)
        if length <= 0 or offset < 0:
            return self._empty_range(key, offset, length)
        try:
            return _get_range(self._store, key, start=offset, length=length)
        except OBSTORE_ERRORS as exc:
            if obstore_past_end(exc):
                return b""
            raise self._error(exc, key) from exc

    def _empty_range(self, key: str, offset: int, length: int) -> Buffer:
        if offset < 0 or length < 0:
            raise StorageError(ErrorClass.OTHER, f"invalid range offset={offset} length={length}",
                               uri=self.uri_of(key))
        return b""

    def put(self, key: str, data: Buffer) -> None:
        confine_key(key, "put", self.uri_of)
        try:
            if len(data) < self._threshold:
                _put(self._store, key, data, use_multipart=False)
            else:
                _put(self._store, key, data, use_multipart=True, chunk_size=self._part_size)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """Pages of 1,000 keys, streamed (recursive); one level (non-recursive), directories as `dir/`."""
        confine_key(prefix, "list", self.uri_of)
        prefix = prefix.lstrip("/")
        directory, partial = _split_prefix(prefix)
        try:
            if recursive:
                stream = obstore.list(self._store, directory or None, chunk_size=_LIST_CHUNK,
                                      offset=_start_after(prefix, partial))
                for chunk in stream:
                    for meta in chunk:
                        path = meta["path"]
                        if partial and not path.startswith(prefix):
                            if path > prefix:
                                return  # keys come sorted: the matching block is over
                            continue
                        yield path, meta["size"]
            else:
                level = obstore.list_with_delimiter(self._store, directory or None)
                yield from _level_items(level, prefix, partial)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, prefix) from exc

    def stat(self, key: str) -> ObjectStat:
        confine_key(key, "stat", self.uri_of)
        try:
            meta = _head(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc
        return object_stat(key, meta)

    def delete(self, key: str) -> None:
        """DELETE one key; S3 answers 204 whether or not it existed, so a missing key is not an error."""
        confine_key(key, "delete", self.uri_of)
        try:
            _delete(self._store, key)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, key) from exc

    def mkdir(self, path: str) -> None:
        """No-op: S3 has no directories; a prefix exists as soon as a key under it does."""

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """With `recursive`, bulk-delete every key under `path/` (batches of 1,000); otherwise a no-op."""
        confine_key(path, "rmdir", self.uri_of)
        if recursive:
            for batch in batches_under(self, path):
                self._delete_many(batch, path)

    def _delete_many(self, keys: list[str], path: str) -> None:
        try:
            _delete(self._store, keys)
        except OBSTORE_ERRORS as exc:
            raise self._error(exc, path) from exc

    def close(self) -> None:
        if self._ranges is not None:
            self._ranges.close()


def _split_prefix(prefix: str) -> tuple[str, bool]:
    """(directory obstore can list, whether `prefix` ends inside a name and needs filtering)."""
    if not prefix or prefix.endswith("/"):
        return prefix, False
    return prefix.rpartition("/")[0], True


def _start_after(prefix: str, partial: bool) -> str | None:
    """Start-after key for a partial prefix: its parent-relative spelling minus the last character, which
    sorts before every key that starts with the prefix (and is never the parent directory itself)."""
    return prefix[:-1] if partial and len(prefix) > 1 else None


def _level_items(level: dict, prefix: str, partial: bool) -> Iterator[tuple[str, int]]:
    for meta in level["objects"]:
        if not partial or meta["path"].startswith(prefix):
            yield meta["path"], meta["size"]
    for common in level["common_prefixes"]:
        if not partial or common.startswith(prefix):
            yield common + "/", 0
