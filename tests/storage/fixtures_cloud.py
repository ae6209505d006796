"""Contract-suite fixtures for Azure Blob (Azurite) and GCS (fake-gcs-server), sdk and native drivers.

Azure backend fixtures root a Backend at a prefix of a fresh container, deleted afterwards in one request; GCS
ones at a fresh prefix of one session bucket (a bucket must be empty before it can be deleted), emptied
afterwards. Credentials reach the drivers the
way users give them, through environment variables, set with monkeypatch for the duration of one test.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from sbench.storage import ranged
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.options import BackendOptions, Driver, RangeSettings
from sbench.storage.registry import open_backend
from tests import servers
from tests.storage.fixtures_local import Seeder, unique_prefix

AZURE_CONTAINER = "sbench-contract"
GCS_BUCKET = "sbench-contract"
#: A well-formed (base64, 64 bytes) account key that is not Azurite's: every signed request is refused.
WRONG_AZURE_KEY = base64.b64encode(b"sbench-wrong-key" * 4).decode()
GCS_NATIVE_PUT_REASON = (
    "obstore writes through the GCS XML API (PUT /bucket/object) and fake-gcs-server implements only the "
    "JSON upload API (every native PUT gets 400 invalid uploadType), so the native GCS write path cannot be "
    "verified on this test server"
)
GCS_BADAUTH_REASON = "fake-gcs-server accepts any credentials, so wrong credentials cannot be detected on it"
#: Small timeouts for the fixtures that point at nothing: a refused connection fails at once anyway.
FAST_FAIL = {"connect_timeout_s": 2.0, "request_timeout_s": 5.0}

_AZURE_VARS = ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_STORAGE_ACCOUNT_KEY",
               "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN", "AZURE_STORAGE_ENDPOINT")
_GCS_VARS = ("STORAGE_EMULATOR_HOST", "GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG")


def clear_azure_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every Azure variable a driver reads, so a test sees only what it sets."""
    for name in _AZURE_VARS:
        monkeypatch.delenv(name, raising=False)


def clear_gcs_env(monkeypatch: pytest.MonkeyPatch, tmp_home: str) -> None:
    """Remove every GCS variable a driver reads and hide the user's gcloud ADC file."""
    for name in _GCS_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", tmp_home)


def dead_endpoint() -> str:
    """An http endpoint on 127.0.0.1 where nothing listens (connections are refused)."""
    return f"http://127.0.0.1:{servers.free_port()}"


def remove_and_close(backend: Backend) -> None:
    """Delete what a test left under the backend's prefix, then close it. A connection reset is tried once
    more: a local test server may drop a pooled connection it already closed (fake-gcs-server did, during
    this clean-up), and the native drivers make no retries of their own by design."""
    try:
        try:
            backend.rmdir("", recursive=True)
        except StorageError as exc:
            if exc.kind is not ErrorClass.NETWORK:
                raise
            backend.rmdir("", recursive=True)
    finally:
        backend.close()


def _closing(backend: Backend) -> Iterator[Backend]:
    try:
        yield backend
    finally:
        remove_and_close(backend)


# --- Azure (Azurite) ------------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def azure_container(azurite: servers.LocalServer) -> str:
    """One container for the session; tests use fresh prefixes inside it."""
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(servers.azurite_connection_string(azurite.port))
    with service:
        if not service.get_container_client(AZURE_CONTAINER).exists():
            service.create_container(AZURE_CONTAINER)
    return AZURE_CONTAINER


def azure_uri(container: str, prefix: str | None = None) -> str:
    return f"az://{servers.AZURITE_ACCOUNT}/{container}/{prefix or unique_prefix('az')}/"


def open_azure_backend(monkeypatch: pytest.MonkeyPatch, connection_string: str, uri: str, driver: Driver,
                       **options: object) -> Backend:
    clear_azure_env(monkeypatch)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    return open_backend(uri, BackendOptions(driver=driver, **options))  # type: ignore[arg-type]


@pytest.fixture
def fresh_container(azurite: servers.LocalServer) -> Iterator[str]:
    """A new container for one test, deleted with everything in it afterwards (one request, where deleting
    thousands of blobs one by one through the SDK would take seconds)."""
    from azure.storage.blob import BlobServiceClient

    name = unique_prefix("az")
    with BlobServiceClient.from_connection_string(servers.azurite_connection_string(azurite.port)) as service:
        service.create_container(name)
        try:
            yield name
        finally:
            service.delete_container(name)


def _azure_backend(monkeypatch: pytest.MonkeyPatch, azurite: servers.LocalServer, container: str,
                   driver: Driver) -> Iterator[Backend]:
    conn = servers.azurite_connection_string(azurite.port)
    backend = open_azure_backend(monkeypatch, conn, azure_uri(container), driver)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def backend_azure_sdk(azurite, fresh_container, monkeypatch) -> Iterator[Backend]:
    yield from _azure_backend(monkeypatch, azurite, fresh_container, Driver.SDK)


@pytest.fixture
def backend_azure_native(azurite, fresh_container, monkeypatch) -> Iterator[Backend]:
    yield from _azure_backend(monkeypatch, azurite, fresh_container, Driver.NATIVE)


@pytest.fixture
def badauth_azure_sdk(azurite, azure_container, monkeypatch) -> Iterator[Backend]:
    conn = servers.azurite_connection_string(azurite.port, key=WRONG_AZURE_KEY)
    backend = open_azure_backend(monkeypatch, conn, azure_uri(azure_container), Driver.SDK)
    yield backend
    backend.close()


@pytest.fixture
def badauth_azure_native(azurite, azure_container, monkeypatch) -> Iterator[Backend]:
    conn = servers.azurite_connection_string(azurite.port, key=WRONG_AZURE_KEY)
    backend = open_azure_backend(monkeypatch, conn, azure_uri(azure_container), Driver.NATIVE)
    yield backend
    backend.close()


def _stopped_azure(monkeypatch: pytest.MonkeyPatch, driver: Driver) -> Backend:
    conn = (f"DefaultEndpointsProtocol=http;AccountName={servers.AZURITE_ACCOUNT};"
            f"AccountKey={servers.AZURITE_KEY};BlobEndpoint={dead_endpoint()}/{servers.AZURITE_ACCOUNT};")
    return open_azure_backend(monkeypatch, conn, azure_uri(AZURE_CONTAINER), driver, **FAST_FAIL)


@pytest.fixture
def stopped_azure_sdk(monkeypatch) -> Iterator[Backend]:
    backend = _stopped_azure(monkeypatch, Driver.SDK)
    yield backend
    backend.close()


@pytest.fixture
def stopped_azure_native(monkeypatch) -> Iterator[Backend]:
    backend = _stopped_azure(monkeypatch, Driver.NATIVE)
    yield backend
    backend.close()


# --- GCS (fake-gcs-server) ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def gcs_bucket(fake_gcs: servers.LocalServer) -> str:
    """One bucket for the session (created through the JSON API, which fake-gcs-server implements)."""
    from google.api_core.exceptions import Conflict
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    client = storage.Client(project="sbench-tests", credentials=AnonymousCredentials(),
                            client_options={"api_endpoint": fake_gcs.endpoint})
    try:
        client.create_bucket(GCS_BUCKET)
    except Conflict:
        pass  # a previous fixture of this session made it
    finally:
        client.close()
    return GCS_BUCKET


def gcs_uri(bucket: str, prefix: str | None = None) -> str:
    return f"gs://{bucket}/{prefix or unique_prefix('gs')}/"


def open_gcs_backend(monkeypatch: pytest.MonkeyPatch, tmp_home: str, emulator: str, uri: str, driver: Driver,
                     **options: object) -> Backend:
    clear_gcs_env(monkeypatch, tmp_home)
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", emulator)
    return open_backend(uri, BackendOptions(driver=driver, **options))  # type: ignore[arg-type]


@pytest.fixture
def backend_gcs_sdk(fake_gcs, gcs_bucket, monkeypatch, tmp_path) -> Iterator[Backend]:
    uri = gcs_uri(gcs_bucket)
    backend = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, uri, Driver.SDK)
    try:
        yield backend
    finally:
        backend.close()
        # Emptied through the native driver: its batched deletes cost a fraction of the SDK's CPU per object.
        remove_and_close(open_backend(uri, BackendOptions(driver=Driver.NATIVE)))


@dataclass(frozen=True)
class NativeWithSeeder:
    """A gcs-native backend and an sdk backend on the same prefix, which creates (and removes) its objects."""

    native: Backend
    sdk: Backend


@pytest.fixture
def gcs_native_pair(fake_gcs, gcs_bucket, monkeypatch, tmp_path) -> Iterator[NativeWithSeeder]:
    uri = gcs_uri(gcs_bucket)
    sdk = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, uri, Driver.SDK)
    native = open_backend(uri, BackendOptions(driver=Driver.NATIVE))
    try:
        yield NativeWithSeeder(native, sdk)
    finally:
        sdk.close()
        remove_and_close(native)  # native deletes work on fake-gcs-server (only its PUTs do not)


@pytest.fixture
def backend_gcs_native(gcs_native_pair: NativeWithSeeder) -> Backend:
    return gcs_native_pair.native


@pytest.fixture
def seeder_gcs_native(gcs_native_pair: NativeWithSeeder) -> Seeder:
    """Objects for gcs-native tests come through the sdk driver (see GCS_NATIVE_PUT_REASON)."""
    return Seeder(put=gcs_native_pair.sdk.put, put_skip_reason=GCS_NATIVE_PUT_REASON)


@pytest.fixture
def badauth_gcs_sdk() -> Backend:
    pytest.skip(GCS_BADAUTH_REASON)


@pytest.fixture
def badauth_gcs_native() -> Backend:
    pytest.skip(GCS_BADAUTH_REASON)


@pytest.fixture
def stopped_gcs_sdk(monkeypatch, tmp_path) -> Iterator[Backend]:
    backend = open_gcs_backend(monkeypatch, str(tmp_path), dead_endpoint(), gcs_uri(GCS_BUCKET), Driver.SDK,
                               **FAST_FAIL)
    yield backend
    backend.close()


@pytest.fixture
def stopped_gcs_native(monkeypatch, tmp_path) -> Iterator[Backend]:
    backend = open_gcs_backend(monkeypatch, str(tmp_path), dead_endpoint(), gcs_uri(GCS_BUCKET),
                               Driver.NATIVE, **FAST_FAIL)
    yield backend
    backend.close()


# --- range engine ---------------------------------------------------------------------------------------
#: Small chunks so a 1 MiB object is read as 17 concurrent ranges; 100 KiB objects stay one plain GET.
RANGES = RangeSettings(enabled=True, chunk_size=64 * 1024, max_concurrent_ranges=4, min_split_size=128 * 1024)


@pytest.fixture
def range_reads(monkeypatch) -> list[int]:
    """Sizes of the objects read through the range engine (sync or async) during a test."""
    seen: list[int] = []
    read, read_async = ranged.RangeEngine.read, ranged.RangeEngine.read_async

    def spy(self, fetch, size, uri=None):
        seen.append(size)
        return read(self, fetch, size, uri)

    async def spy_async(self, fetch, size, uri=None):
        seen.append(size)
        return await read_async(self, fetch, size, uri)

    monkeypatch.setattr(ranged.RangeEngine, "read", spy)
    monkeypatch.setattr(ranged.RangeEngine, "read_async", spy_async)
    return seen


# --- servers that answer every request the same way (error mapping of statuses emulators never send) -------
class CannedServer:
    """An HTTP server on 127.0.0.1 that answers every request with one status and body, or never answers
    (`status=None`: the TCP connection is accepted and left silent, so clients hit their read timeout)."""

    def __init__(self, status: int | None, body: bytes = b"", content_type: str = "application/xml") -> None:
        import http.server
        import socket
        import threading

        self._silent: socket.socket | None = None
        self._server: http.server.ThreadingHTTPServer | None = None
        if status is None:
            self._silent = socket.socket()
            self._silent.bind(("127.0.0.1", 0))
            self._silent.listen(64)
            self.port = self._silent.getsockname()[1]
            return

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _answer

            def log_message(self, format: str, *args: object) -> None:  # keep test output quiet
                return

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._silent is not None:
            self._silent.close()


@pytest.fixture
def canned_server() -> Iterator[type[CannedServer]]:
    """Factory of CannedServers, all closed after the test."""
    made: list[CannedServer] = []

    class Tracked(CannedServer):
        def __init__(self, *args, **kwargs) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    yield Tracked
    for server in made:
        server.close()
