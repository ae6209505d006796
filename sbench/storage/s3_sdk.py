"""S3 through boto3 (`driver: sdk`): what applications built on the AWS SDK see, costs included.

One botocore client per worker thread (clients are not meant to be shared across threads for throughput, and
creating one per call costs milliseconds), all made from one botocore session so credentials are resolved
once. The connection pool of each client is sized to the backend's concurrency. botocore's retries are off
(`total_max_attempts: 1`): sbench counts and retries failures itself, by class, so a throttled request
shows up as a throttled request instead of as a slow one.

Timeouts: `connect_timeout_s` for connecting, `request_timeout_s` as botocore's read timeout (the longest
silence on a socket) and, for bodies above 8 MiB, as a deadline for the whole GET (checked between 1 MiB
reads). A multipart PUT is bounded per part by the same read timeout.

Object-store semantics kept as S3 has them: DELETE of a missing key succeeds (S3 answers 204), `mkdir` is a
no-op, `rmdir(recursive=True)` deletes every key under the prefix with batched DeleteObjects.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import botocore.config
import botocore.exceptions
import urllib3.exceptions

from sbench.storage.base import Backend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import batches_under
from sbench.storage.cloud_errors import classify_status, classify_transport
from sbench.storage.confine import confine_key
from sbench.storage.options import BackendOptions
from sbench.storage.ranged import RangeEngine
from sbench.storage.s3 import S3Settings

log = logging.getLogger(__name__)

#: Bodies up to this size are read with one call; larger ones in chunks, checking the op deadline.
_WHOLE_READ_MAX = 8 * 1024 * 1024
_READ_CHUNK = 1024 * 1024
_LIST_PAGE = 1000
#: Failures the SDK raises for a request (everything else is a bug and keeps its traceback).
_SDK_ERRORS = (botocore.exceptions.ClientError, botocore.exceptions.BotoCoreError,
               urllib3.exceptions.HTTPError, OSError)
_TIMEOUT_ERRORS = (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError,
                   urllib3.exceptions.TimeoutError)
_NETWORK_ERRORS = (botocore.exceptions.ConnectionError, botocore.exceptions.HTTPClientError,
                   botocore.exceptions.IncompleteReadError, urllib3.exceptions.ProtocolError)
_AUTH_ERRORS = (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError,
                botocore.exceptions.CredentialRetrievalError, botocore.exceptions.TokenRetrievalError)


def classify_botocore(exc: BaseException) -> ErrorClass:
    """Class of a boto3/botocore failure: service code and HTTP status for ClientError, else the transport."""
    if isinstance(exc, botocore.exceptions.ClientError):
        response = exc.response
        code = response.get("Error", {}).get("Code")
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return classify_status(status, code)
    if isinstance(exc, _TIMEOUT_ERRORS):
        return ErrorClass.TIMEOUT
    if isinstance(exc, _AUTH_ERRORS):
        return ErrorClass.AUTH
    transport = classify_transport(exc)
    if transport is not None:
        return transport
    if isinstance(exc, _NETWORK_ERRORS):
        return ErrorClass.NETWORK
    return ErrorClass.OTHER


def _past_end(exc: botocore.exceptions.ClientError) -> bool:
    """S3 answers 416 InvalidRange to a range that starts at or after the end of the object."""
    response = exc.response
    return (response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 416
            or response.get("Error", {}).get("Code") == "InvalidRange")


class S3SdkBackend(Backend):
    """An S3 bucket/prefix through boto3; safe to share between worker threads."""

    scheme = "s3"

    def __init__(self, settings: S3Settings, options: BackendOptions, session) -> None:
        super().__init__(settings.root_uri)
        self.settings = settings
        self.options = options
        self._session = session
        self._bucket = settings.bucket
        self._prefix = settings.key_prefix
        self._timeout = options.request_timeout_s
        base = {
            "region_name": settings.region,
            "max_pool_connections": options.pool_size,
            # `total_max_attempts` counts the first try; botocore's `max_attempts` counts *retries*, so
            # {"max_attempts": 1} would still retry once (and hide a throttled request behind a backoff).
            "retries": {"total_max_attempts": 1, "mode": "standard"},
            "connect_timeout": options.connect_timeout_s,
            "s3": {"addressing_style": "path" if settings.path_style else "virtual"},
            "user_agent_extra": "sbench",
        }
        self._config = botocore.config.Config(read_timeout=options.request_timeout_s, **base)
        self._range_config = botocore.config.Config(read_timeout=options.range.range_timeout_s, **base)
        self._local = threading.local()
        self._range_local = threading.local()
        # Weak: a worker thread's client dies with the thread (its thread-local), so threads that come and go
        # between stages do not pile up clients and sockets; close() closes the ones still alive.
        self._clients: weakref.WeakSet[Any] = weakref.WeakSet()
        self._create_lock = threading.Lock()
        self._ranges = RangeEngine(options.range, options.concurrency) if options.range.enabled else None
        self._parts: ThreadPoolExecutor | None = None

    # --- clients -------------------------------------------------------------------------------------

    def _client(self) -> Any:
        try:
            return self._local.client
        except AttributeError:
            client = self._local.client = self._new_client(self._config)
            return client

    def _range_client(self) -> Any:
        try:
            return self._range_local.client
        except AttributeError:
            client = self._range_local.client = self._new_client(self._range_config)
            return client

    def _new_client(self, config: botocore.config.Config) -> Any:
        # botocore sessions are not safe for concurrent client creation; one lock, taken once per thread.
        with self._create_lock:
            client = self._session.create_client(
                "s3",
                region_name=self.settings.region,
                endpoint_url=self.settings.endpoint_url,
                config=config,
                verify=self.options.verify_tls,
            )
            self._clients.add(client)
        return client

    def _key(self, key: str) -> str:
        """The S3 key of a relative key; one with a `..` segment is refused, never sent (some HTTP layers
        normalise `a/../b` in the URL path, which would leave the prefix)."""
        return self._prefix + confine_key(key, "access", self.uri_of)

    def _error(self, exc: BaseException, key: str) -> StorageError:
        return StorageError(classify_botocore(exc), str(exc), uri=self.uri_of(key))

    # --- data path -----------------------------------------------------------------------------------

    def get(self, key: str) -> Buffer:
        if self._ranges is not None:
            return self._get_ranged(key)
        return self._get_whole(key)

    def _get_whole(self, key: str) -> Buffer:
        started = time.monotonic()
        try:
            resp = self._client().get_object(Bucket=self._bucket, Key=self._key(key))
            length = resp.get("ContentLength")
            if length is None or length <= _WHOLE_READ_MAX:  # no length: a chunked reply, read to the end
                return resp["Body"].read()
            return self._read_with_deadline(resp, started, key)
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc

    def _read_with_deadline(self, resp: dict, started: float, key: str) -> bytearray:
        body = resp["Body"]
        deadline = started + self._timeout
        out = bytearray()
        try:
            while chunk := body.read(_READ_CHUNK):
                out += chunk
                if time.monotonic() > deadline:
                    raise StorageError(
                        ErrorClass.TIMEOUT,
                        f"GET took longer than request_timeout_s={self._timeout:g} s "
                        f"({len(out)} of {resp['ContentLength']} bytes read)",
                        uri=self.uri_of(key),
                    )
        finally:
            body.close()
        if len(out) != resp["ContentLength"]:
            raise StorageError(ErrorClass.NETWORK, f"GET body ended after {len(out)} of "
                               f"{resp['ContentLength']} bytes", uri=self.uri_of(key))
        return out

    def _get_ranged(self, key: str) -> Buffer:
        assert self._ranges is not None
        size = self.stat(key).size
        if not self._ranges.applies(size):
            return self._get_whole(key)
        return self._ranges.read(lambda off, length: self._fetch_range(key, off, length), size,
                                 self.uri_of(key))

    def _fetch_range(self, key: str, offset: int, length: int) -> Buffer:
        try:
            return self._get_range_with(self._range_client(), key, offset, length)
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc

    def _get_range_with(self, client: Any, key: str, offset: int, length: int) -> Buffer:
        resp = client.get_object(Bucket=self._bucket, Key=self._key(key),
                                 Range=f"bytes={offset}-{offset + length - 1}")
        return resp["Body"].read()

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        """`length` bytes at `offset`, fewer at the end; empty at or past the end (as pread at EOF)."""
        if offset < 0 or length < 0:
            raise StorageError(ErrorClass.OTHER, f"invalid range offset={offset} length={length}",
                               uri=self.uri_of(key))
        if length == 0:
            return b""
        try:
            return self._get_range_with(self._client(), key, offset, length)
        except botocore.exceptions.ClientError as exc:
            if _past_end(exc):
                return b""
            raise self._error(exc, key) from exc
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc

    def put(self, key: str, data: Buffer) -> None:
        size = data.nbytes if isinstance(data, memoryview) else len(data)
        try:
            if size >= self.options.multipart_threshold:
                self._put_multipart(key, memoryview(data).cast("B"), size)
                return
            # botocore accepts bytes/bytearray/file objects only; a memoryview payload slice is copied once.
            body = data if isinstance(data, bytes | bytearray) else bytes(data)
            self._client().put_object(Bucket=self._bucket, Key=self._key(key), Body=body)
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc

    def _put_multipart(self, key: str, view: memoryview, size: int) -> None:
        client = self._client()
        full_key = self._key(key)
        upload_id = client.create_multipart_upload(Bucket=self._bucket, Key=full_key)["UploadId"]
        part_size = self.options.multipart_part_size
        pool = self._part_pool()
        futures: list[Future[str]] = []
        try:
            for number, off in enumerate(range(0, size, part_size), start=1):
                futures.append(pool.submit(self._upload_part, full_key, upload_id, number,
                                           view[off:off + part_size]))
            parts = [{"ETag": fut.result(), "PartNumber": n} for n, fut in enumerate(futures, start=1)]
            client.complete_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id,
                                             MultipartUpload={"Parts": parts})
        except BaseException:
            for fut in futures:
                fut.cancel()
            try:
                client.abort_multipart_upload(Bucket=self._bucket, Key=full_key, UploadId=upload_id)
            except _SDK_ERRORS as abort_exc:
                # The part failure is what the user needs to see; say that the upload may linger.
                log.warning("abort of multipart upload %s for %s failed: %s", upload_id, self.uri_of(key),
                            abort_exc)
            raise

    def _upload_part(self, full_key: str, upload_id: str, number: int, chunk: memoryview) -> str:
        resp = self._client().upload_part(Bucket=self._bucket, Key=full_key, UploadId=upload_id,
                                          PartNumber=number, Body=bytes(chunk))
        return resp["ETag"]

    def _part_pool(self) -> ThreadPoolExecutor:
        if self._parts is None:
            with self._create_lock:
                if self._parts is None:
                    workers = max(4, min(64, self.options.concurrency * 2))
                    self._parts = ThreadPoolExecutor(workers, thread_name_prefix="sbench-s3-part")
        return self._parts

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        """ListObjectsV2 pages of 1,000 keys, streamed; non-recursive yields common prefixes as `dir/`."""
        strip = len(self._prefix)
        kwargs: dict[str, Any] = {"Bucket": self._bucket, "Prefix": self._key(prefix.lstrip("/")),
                                  "PaginationConfig": {"PageSize": _LIST_PAGE}}
        if not recursive:
            kwargs["Delimiter"] = "/"
        try:
            for page in self._client().get_paginator("list_objects_v2").paginate(**kwargs):
                for obj in page.get("Contents", ()):
                    yield obj["Key"][strip:], obj["Size"]
                for common in page.get("CommonPrefixes", ()):
                    yield common["Prefix"][strip:], 0
        except _SDK_ERRORS as exc:
            raise self._error(exc, prefix) from exc

    def stat(self, key: str) -> ObjectStat:
        try:
            resp = self._client().head_object(Bucket=self._bucket, Key=self._key(key))
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc
        modified = resp.get("LastModified")
        etag = resp.get("ETag")
        return ObjectStat(key=key, size=resp["ContentLength"],
                          mtime=modified.timestamp() if modified else None,
                          etag=etag.strip('"') if etag else None)

    def delete(self, key: str) -> None:
        """DELETE one key. S3 answers 204 whether or not the key existed, so a missing key is not an error."""
        try:
            self._client().delete_object(Bucket=self._bucket, Key=self._key(key))
        except _SDK_ERRORS as exc:
            raise self._error(exc, key) from exc

    def mkdir(self, path: str) -> None:
        """No-op: S3 has no directories; a prefix exists as soon as a key under it does."""

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """With `recursive`, delete every key under `path/` (batches of 1,000); otherwise a no-op."""
        if recursive:
            for batch in batches_under(self, path):
                self._delete_batch([{"Key": self._key(key)} for key in batch], path)

    def _delete_batch(self, batch: list[dict[str, str]], path: str) -> None:
        try:
            resp = self._client().delete_objects(Bucket=self._bucket,
                                                 Delete={"Objects": batch, "Quiet": True})
        except _SDK_ERRORS as exc:
            raise self._error(exc, path) from exc
        errors = resp.get("Errors") or []
        if errors:
            first = errors[0]
            raise StorageError(classify_status(None, first.get("Code")),
                               f"{len(errors)} of {len(batch)} deletes failed, first {first.get('Key')}: "
                               f"{first.get('Code')} {first.get('Message')}", uri=self.uri_of(path))

    def close(self) -> None:
        if self._ranges is not None:
            self._ranges.close()
        if self._parts is not None:
            self._parts.shutdown(wait=False, cancel_futures=True)
        with self._create_lock:
            clients, self._clients = list(self._clients), weakref.WeakSet()
        for client in clients:
            client.close()
