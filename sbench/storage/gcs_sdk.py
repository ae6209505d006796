"""gs:// through google-cloud-storage (`driver: sdk`): what GCS applications use, with sbench's measurement
rules applied.

- One `storage.Client` per worker thread (thread-local), all sharing one authorized requests session whose
  connection pool is sized to the backend's concurrency (`max_connections` when set; times
  `max_concurrent_ranges` when the range engine may fan a GET out).
- Retries are off (`retry=None` on every call): the engine counts and retries failures itself.
- Checksums are off (`checksum=None`): computing CRC32C/MD5 per op is client CPU that a throughput benchmark
  would otherwise attribute to the storage.
- Uploads above 8 MiB use the SDK's resumable upload in chunks of `multipart_part_size` (rounded to 256 KiB as
  GCS requires).
- Directory operations: `mkdir` is a no-op; `rmdir(path, recursive=True)` deletes every object under the
  prefix, without `recursive` it is a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import google.auth.exceptions
import requests
from google.api_core import exceptions as api_exc
from google.auth.credentials import AnonymousCredentials, Credentials
from google.auth.transport.requests import AuthorizedSession
from google.cloud import storage
from google.oauth2 import credentials as user_credentials
from google.oauth2 import service_account
from google.resumable_media import common as media_common
from requests.adapters import HTTPAdapter

from sbench.storage.base import Backend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import delete_under
from sbench.storage.cloud_errors import classify_status, classify_transport
from sbench.storage.gcs import GcsCredentials, resumable_chunk
from sbench.storage.options import BackendOptions
from sbench.storage.ranged import RangeEngine
from sbench.storage.uri import StorageUri

PAGE_SIZE = 1000
SCOPES = ["https://www.googleapis.com/auth/devstorage.read_write"]
#: Only the fields a listing needs: less JSON to parse per page.
CONTENT_TYPE = "application/octet-stream"
LIST_FIELDS = "items(name,size),prefixes,nextPageToken"
#: What the SDK stack raises on a failed call (anything else is a bug and keeps its traceback).
SDK_ERRORS = (
    api_exc.GoogleAPICallError,
    requests.RequestException,
    google.auth.exceptions.GoogleAuthError,
    media_common.InvalidResponse,
    ConnectionError,
    TimeoutError,
)


class _UncheckedAdapter(HTTPAdapter):
    """`verify_tls: false`: no certificate check on any request. Set on the adapter because requests lets
    REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE override a session's `verify = False`, and the SDK passes none."""

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        kwargs["verify"] = False
        return super().send(request, **kwargs)


class GcsSdkBackend(Backend):
    """GCS via google-cloud-storage; keys are relative to `gs://bucket/prefix`."""

    scheme = "gs"

    def __init__(self, parsed: StorageUri, creds: GcsCredentials, options: BackendOptions) -> None:
        super().__init__(parsed.root)
        self._uri = parsed
        self._creds = creds
        self._options = options
        self._timeout = (options.connect_timeout_s, options.request_timeout_s)
        self._range = RangeEngine(options.range, options.concurrency) if options.range.enabled else None
        self._range_timeout = (options.connect_timeout_s, options.range.range_timeout_s)
        self.pool_size = options.pool_size
        self._chunk_size = resumable_chunk(options.multipart_part_size)
        self._credentials = _load_credentials(creds)
        # Anonymous credentials cannot be refreshed: let a 401 from an emulator surface as the 401 it is.
        if isinstance(self._credentials, AnonymousCredentials):
            self._session = AuthorizedSession(self._credentials, refresh_status_codes=())
        else:
            self._session = AuthorizedSession(self._credentials)
        adapter_type = HTTPAdapter if options.verify_tls else _UncheckedAdapter
        adapter = adapter_type(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._local = threading.local()

    # --- Backend protocol -----------------------------------------------------------------------------
    def get(self, key: str) -> Buffer:
        try:
            blob = self._blob(key)
            if self._range is not None:
                blob.reload(retry=None, timeout=self._timeout)
                size = blob.size or 0
                if self._range.applies(size):
                    return self._range.read(lambda off, n: self._ranged(key, off, n, ranged=True), size,
                                            self.uri_of(key))
            return blob.download_as_bytes(retry=None, timeout=self._timeout, checksum=None, raw_download=True)
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(key)) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        if length <= 0:
            return b""
        try:
            return self._ranged(key, offset, length, ranged=False)
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(key)) from exc

    def put(self, key: str, data: Buffer) -> None:
        # upload_from_string accepts bytes only; a memoryview becomes bytes first (one copy).
        body = data if isinstance(data, bytes) else bytes(data)
        try:
            blob = self._blob(key, chunk_size=self._chunk_size)
            blob.upload_from_string(body, content_type=CONTENT_TYPE, retry=None, timeout=self._timeout,
                                    checksum=None)
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(key)) from exc

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        full = self._uri.object_key(prefix)
        # Emulators repeat a common prefix on every page; the service does not. Remember the ones yielded.
        seen: set[str] = set()
        try:
            pages = self._client().list_blobs(
                self._uri.bucket,
                prefix=full or None,
                delimiter=None if recursive else "/",
                page_size=PAGE_SIZE,
                fields=LIST_FIELDS,
                retry=None,
                timeout=self._timeout,
            ).pages
            for page in pages:
                for blob in page:
                    yield self._uri.relative_key(blob.name), blob.size or 0
                for name in page.prefixes:
                    if name not in seen:
                        seen.add(name)
                        yield self._uri.relative_key(name), 0
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(prefix)) from exc

    def stat(self, key: str) -> ObjectStat:
        blob = self._blob(key)
        try:
            blob.reload(retry=None, timeout=self._timeout)
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(key)) from exc
        mtime = blob.updated.timestamp() if blob.updated else None
        etag = (blob.etag or "").strip('"') or None
        return ObjectStat(key=key, size=blob.size or 0, mtime=mtime, etag=etag)

    def delete(self, key: str) -> None:
        try:
            self._blob(key).delete(retry=None, timeout=self._timeout)
        except SDK_ERRORS as exc:
            raise gcs_error(exc, self.uri_of(key)) from exc

    def mkdir(self, path: str) -> None:
        """GCS has no directories (outside hierarchical-namespace buckets): nothing to create (as sai3)."""

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Delete every object under `path` when `recursive` (with `concurrency` threads); otherwise a
        no-op (there is no directory object to remove)."""
        if recursive:
            delete_under(self, path, self._options.concurrency)

    def close(self) -> None:
        self._session.close()
        if self._range is not None:
            self._range.close()

    # --- helpers --------------------------------------------------------------------------------------
    def _client(self) -> storage.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            endpoint = self._creds.endpoint
            client = storage.Client(
                project=self._creds.project,
                credentials=self._credentials,
                _http=self._session,
                client_options={"api_endpoint": endpoint} if endpoint else None,
            )
            self._local.client = client
            self._local.bucket = client.bucket(self._uri.bucket)
        return client

    def _blob(self, key: str, chunk_size: int | None = None) -> storage.Blob:
        self._client()
        return self._local.bucket.blob(self._uri.object_key(key), chunk_size=chunk_size)

    def _ranged(self, key: str, offset: int, length: int, ranged: bool) -> Buffer:
        """One ranged GET. Past the end of the object the service answers 416, which is an empty read here
        (as pread at EOF), not an error."""
        try:
            return self._blob(key).download_as_bytes(
                start=offset,
                end=offset + length - 1,
                retry=None,
                timeout=self._range_timeout if ranged else self._timeout,
                checksum=None,
                raw_download=True,
            )
        except api_exc.RequestRangeNotSatisfiable:
            return b""


def _load_credentials(creds: GcsCredentials) -> Credentials:
    """Anonymous for emulators, else the credentials file (read locally; a token is fetched on first use)."""
    if creds.kind == "emulator" or creds.credentials_file is None:
        return AnonymousCredentials()
    path = creds.credentials_file
    try:
        if creds.kind == "service_account":
            return service_account.Credentials.from_service_account_file(path, scopes=SCOPES)
        return user_credentials.Credentials.from_authorized_user_file(path, scopes=SCOPES)
    except (google.auth.exceptions.GoogleAuthError, ValueError, KeyError) as exc:
        from sbench.errors import RunFailed

        raise RunFailed(
            f"The Google credentials file {creds.credentials_file} (from {creds.source}) is not usable: "
            f"{exc}",
            hint="Download the service-account key again (JSON format) or fix the path.",
        ) from None


def gcs_error(exc: BaseException, uri: str | None = None) -> StorageError:
    """Classify a google-cloud-storage failure: the service reason first, then the HTTP status, then the
    transport failure; the original message is kept."""
    kind: ErrorClass
    if isinstance(exc, api_exc.GoogleAPICallError):
        kind = classify_status(exc.code, _reason(exc))
    elif isinstance(exc, media_common.InvalidResponse):
        response = getattr(exc, "response", None)
        kind = classify_status(getattr(response, "status_code", None))
    elif isinstance(exc, requests.Timeout):
        kind = ErrorClass.TIMEOUT
    elif isinstance(exc, requests.ConnectionError | google.auth.exceptions.TransportError):
        kind = classify_transport(exc) or ErrorClass.NETWORK
    elif isinstance(exc, google.auth.exceptions.GoogleAuthError):
        kind = ErrorClass.AUTH
    else:
        kind = classify_transport(exc) or ErrorClass.OTHER
    text = " ".join(str(exc).split()) or type(exc).__name__
    return StorageError(kind, text, uri=uri)


def _reason(exc: api_exc.GoogleAPICallError) -> str | None:
    for error in exc.errors or ():
        if isinstance(error, dict) and error.get("reason"):
            return str(error["reason"])
    return exc.reason
