"""az:// through azure-storage-blob (`driver: sdk`): what Azure applications use, with sbench's measurement
rules applied.

- One ContainerClient per worker thread (thread-local), so no pipeline state is shared between workers,
  but all of them draw from one requests connection pool sized to the backend's concurrency
  (`max_connections` when set; times `max_concurrent_ranges` when the range engine may fan a GET out).
- Retries are off (`retry_total=0`): the engine counts and retries failures itself, and an SDK retrying inside
  a timed call would hide throttling and inflate latency silently.
- Directory operations: `mkdir` is a no-op (blob storage has no directories); `rmdir(path, recursive=True)`
  deletes every blob under the prefix, `rmdir` without `recursive` is a no-op.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import requests
from azure.core import exceptions as azure_exc
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobPrefix, ContainerClient
from requests.adapters import HTTPAdapter

from sbench.storage.azure import AzureCredentials, redact
from sbench.storage.base import Backend, Buffer, ErrorClass, ObjectStat, StorageError
from sbench.storage.bulk_delete import batches_under
from sbench.storage.cloud_errors import classify_status, classify_transport
from sbench.storage.options import BackendOptions
from sbench.storage.ranged import RangeEngine
from sbench.storage.uri import StorageUri

#: Listing page size (the service maximum is 5,000; 1,000 matches S3 and GCS so LIST ops compare).
PAGE_SIZE = 1000
#: Deletes per Blob Batch request (the service maximum).
BATCH_DELETE = 256


class AzureSdkBackend(Backend):
    """Blob storage via azure-storage-blob; keys are relative to `az://ACCOUNT/CONTAINER/prefix`."""

    scheme = "az"

    def __init__(self, parsed: StorageUri, creds: AzureCredentials, options: BackendOptions) -> None:
        super().__init__(parsed.root)
        self._uri = parsed
        self._creds = creds
        self._options = options
        self._range = RangeEngine(options.range, options.concurrency) if options.range.enabled else None
        self.pool_size = options.pool_size
        self._session = requests.Session()
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=self.pool_size, max_retries=0)
        self._session.mount("http://", adapter)
        self._session.mount("https://", adapter)
        self._local = threading.local()

    # --- Backend protocol -----------------------------------------------------------------------------
    def get(self, key: str) -> Buffer:
        name = self._uri.object_key(key)
        try:
            if self._range is not None:
                size = self._properties(name).size
                if self._range.applies(size):
                    return self._range.read(lambda off, n: self._ranged(name, off, n), size, self.uri_of(key))
            return self._container().download_blob(name, max_concurrency=1).readall()
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(key)) from exc

    def get_range(self, key: str, offset: int, length: int) -> Buffer:
        if length <= 0:
            return b""
        try:
            return self._ranged(self._uri.object_key(key), offset, length)
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(key)) from exc

    def put(self, key: str, data: Buffer) -> None:
        # The SDK's upload path concatenates bytes; a memoryview has to become bytes first (one copy).
        body = data if isinstance(data, bytes) else bytes(data)
        try:
            self._container().upload_blob(self._uri.object_key(key), body, overwrite=True, max_concurrency=1)
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(key)) from exc

    def list(self, prefix: str = "", recursive: bool = True) -> Iterator[tuple[str, int]]:
        full = self._uri.object_key(prefix)
        cc = self._container()
        try:
            if recursive:
                for blob in cc.list_blobs(name_starts_with=full or None, results_per_page=PAGE_SIZE):
                    yield self._uri.relative_key(blob.name), blob.size
                return
            walk = cc.walk_blobs(name_starts_with=full or None, delimiter="/", results_per_page=PAGE_SIZE)
            for item in walk:
                if isinstance(item, BlobPrefix):
                    yield self._uri.relative_key(item.name), 0
                else:
                    yield self._uri.relative_key(item.name), item.size
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(prefix)) from exc

    def stat(self, key: str) -> ObjectStat:
        try:
            props = self._properties(self._uri.object_key(key))
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(key)) from exc
        mtime = props.last_modified.timestamp() if props.last_modified else None
        return ObjectStat(key=key, size=props.size, mtime=mtime, etag=(props.etag or "").strip('"') or None)

    def delete(self, key: str) -> None:
        try:
            self._container().delete_blob(self._uri.object_key(key))
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(key)) from exc

    def mkdir(self, path: str) -> None:
        """Blob storage has no directories: nothing to create (as sai3 does on object stores)."""

    def rmdir(self, path: str, recursive: bool = False) -> None:
        """Delete every blob under `path` when `recursive`, as Blob Batch requests of 256 deletes; otherwise
        a no-op (there is no directory object to remove). A blob deleted meanwhile is fine."""
        if recursive:
            for batch in batches_under(self, path, BATCH_DELETE):
                self._delete_batch([self._uri.object_key(key) for key in batch])

    def close(self) -> None:
        # The thread-local clients own nothing but their pipelines (their transports do not own the session);
        # closing the one session closes every connection. A client dies with its thread.
        self._session.close()
        if self._range is not None:
            self._range.close()

    # --- helpers --------------------------------------------------------------------------------------
    def _container(self) -> ContainerClient:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._new_client()
        return client

    def _new_client(self) -> ContainerClient:
        creds = self._creds
        credential: AzureNamedKeyCredential | AzureSasCredential
        if creds.account_key:
            credential = AzureNamedKeyCredential(creds.account, creds.account_key)
        else:
            credential = AzureSasCredential(creds.sas_token or "")
        transport = RequestsTransport(
            session=self._session,
            session_owner=False,
            connection_timeout=self._options.connect_timeout_s,
            read_timeout=self._options.request_timeout_s,
            # per request, over the session's own `verify`
            connection_verify=self._options.verify_tls,
        )
        return ContainerClient(
            creds.endpoint,
            self._uri.bucket,
            credential=credential,
            transport=transport,
            retry_total=0,
            max_single_put_size=self._options.multipart_threshold,
            max_block_size=self._options.multipart_part_size,
        )

    def _delete_batch(self, names: list[str]) -> None:
        try:
            responses = self._container().delete_blobs(*names, raise_on_any_failure=False)
            for name, response in zip(names, responses, strict=True):
                if response.status_code not in (202, 404):
                    code = response.headers.get("x-ms-error-code")
                    raise StorageError(classify_status(response.status_code, code),
                                       f"HTTP {response.status_code} {code or ''}: batch delete failed",
                                       uri=self.uri_of(self._uri.relative_key(name)))
        except azure_exc.AzureError as exc:
            raise azure_error(exc, self.uri_of(self._uri.relative_key(names[0]))) from exc

    def _properties(self, name: str):
        return self._container().get_blob_client(name).get_blob_properties()

    def _ranged(self, name: str, offset: int, length: int) -> Buffer:
        """One ranged GET. Past the end of the blob the service answers 416, which is an empty read here
        (as pread at EOF), not an error."""
        timeout = self._options.range.range_timeout_s if self._range else self._options.request_timeout_s
        try:
            stream = self._container().download_blob(
                name, offset=offset, length=length, max_concurrency=1, read_timeout=timeout
            )
            return stream.readall()
        except azure_exc.HttpResponseError as exc:
            if exc.status_code == 416:
                return b""
            raise


def azure_error(exc: BaseException, uri: str | None = None) -> StorageError:
    """Classify an azure-core exception (service code first, then HTTP status, then transport failure) and
    keep its message, with the XML body and any SAS signature removed."""
    kind: ErrorClass
    if isinstance(exc, azure_exc.HttpResponseError) and exc.status_code is not None:
        code = exc.error_code
        kind = classify_status(exc.status_code, str(getattr(code, "value", code)) if code else None)
    elif isinstance(exc, azure_exc.ServiceRequestTimeoutError | azure_exc.ServiceResponseTimeoutError):
        kind = ErrorClass.TIMEOUT
    elif isinstance(exc, azure_exc.ServiceRequestError | azure_exc.ServiceResponseError):
        # Connect timeouts arrive as ServiceRequestError around urllib3's ConnectTimeoutError.
        kind = classify_transport(exc) or (
            ErrorClass.TIMEOUT if "timed out" in str(exc).lower() else ErrorClass.NETWORK
        )
    elif isinstance(exc, azure_exc.ClientAuthenticationError):
        kind = ErrorClass.AUTH
    else:
        kind = classify_transport(exc) or ErrorClass.OTHER
    return StorageError(kind, _message(exc), uri=uri)


def _message(exc: BaseException) -> str:
    text = str(exc).split("\nContent:", 1)[0]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    status = getattr(exc, "status_code", None)
    head = f"HTTP {status}: " if status else ""
    return redact(head + "; ".join(lines)) or type(exc).__name__
