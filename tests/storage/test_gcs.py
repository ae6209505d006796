"""GCS drivers beyond the shared contract: credential resolution, error mapping, range engine, async API.

gcs-native objects are created through the sdk driver: fake-gcs-server cannot take obstore's XML-API PUTs
(see fixtures_cloud.GCS_NATIVE_PUT_REASON).
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from sbench.errors import RunFailed
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.gcs import PLACEHOLDER_PROJECT, resolve_credentials
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.registry import open_backend
from sbench.storage.uri import parse_uri
from tests.storage.cloud_checks import check_async_reads_and_delete, check_string_prefixes_and_recursive_rmdir
from tests.storage.fixtures_cloud import (
    GCS_BUCKET,
    RANGES,
    NativeWithSeeder,
    clear_gcs_env,
    gcs_uri,
    open_gcs_backend,
    remove_and_close,
)

DRIVERS = [Driver.SDK, Driver.NATIVE]
URI = parse_uri("gs://bkt/prefix")


def _service_account_file(directory: Path, project: str = "from-file") -> Path:
    """A syntactically real service-account key (fresh RSA key; no Google account behind it)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": project, "private_key_id": "0" * 40, "private_key": pem,
        "client_email": f"sbench@{project}.iam.gserviceaccount.com", "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    path = directory / "sa.json"
    path.write_text(json.dumps(info))
    return path


# --- credential resolution (no server involved) -----------------------------------------------------------
def test_emulator_host_is_anonymous_and_is_the_endpoint() -> None:
    creds = resolve_credentials(URI, BackendOptions(), {"STORAGE_EMULATOR_HOST": "localhost:4443"})
    assert (creds.kind, creds.endpoint) == ("emulator", "http://localhost:4443")
    assert creds.project == PLACEHOLDER_PROJECT
    assert creds.is_http


def test_endpoint_precedence() -> None:
    env = {"STORAGE_EMULATOR_HOST": "http://emu:1"}
    in_uri = parse_uri("gs://127.0.0.1:4443/bkt/p")
    assert resolve_credentials(in_uri, BackendOptions(), env).endpoint == "http://127.0.0.1:4443"
    explicit = BackendOptions(endpoint_url="https://private.example/")
    assert resolve_credentials(in_uri, explicit, env).endpoint == "https://private.example"


def test_service_account_file(tmp_path: Path) -> None:
    path = _service_account_file(tmp_path)
    env = {"GOOGLE_APPLICATION_CREDENTIALS": str(path), "CLOUDSDK_CONFIG": str(tmp_path)}
    creds = resolve_credentials(URI, BackendOptions(), env)
    assert (creds.kind, creds.credentials_file, creds.project) == ("service_account", str(path), "from-file")
    assert creds.endpoint is None and not creds.is_http
    env["GOOGLE_CLOUD_PROJECT"] = "from-env"
    assert resolve_credentials(URI, BackendOptions(), env).project == "from-env"


def test_application_default_credentials(tmp_path: Path) -> None:
    adc = tmp_path / "application_default_credentials.json"
    adc.write_text(json.dumps({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                               "refresh_token": "r", "quota_project_id": "quota"}))
    creds = resolve_credentials(URI, BackendOptions(), {"CLOUDSDK_CONFIG": str(tmp_path)})
    assert (creds.kind, creds.credentials_file, creds.project) == ("authorized_user", str(adc), "quota")


def test_missing_credentials_name_the_variables(tmp_path: Path) -> None:
    with pytest.raises(RunFailed) as info:
        resolve_credentials(URI, BackendOptions(), {"CLOUDSDK_CONFIG": str(tmp_path)})
    text = str(info.value)
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST", "Application Default Credentials",
                 "gs://bkt/prefix"):
        assert name in text


def test_unusable_credential_files_are_refused(tmp_path: Path) -> None:
    with pytest.raises(RunFailed, match="not a readable file"):
        resolve_credentials(URI, BackendOptions(), {"GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "no")})
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(RunFailed, match="cannot be read as JSON"):
        resolve_credentials(URI, BackendOptions(), {"GOOGLE_APPLICATION_CREDENTIALS": str(bad)})
    bad.write_text(json.dumps({"type": "external_account"}))
    with pytest.raises(RunFailed, match="'external_account'"):
        resolve_credentials(URI, BackendOptions(), {"GOOGLE_APPLICATION_CREDENTIALS": str(bad)})


@pytest.mark.parametrize("driver", DRIVERS)
def test_service_account_backends_open_without_network(driver: Driver, tmp_path: Path, monkeypatch) -> None:
    """Opening reads the key file only; a token is fetched on the first request (never made here)."""
    clear_gcs_env(monkeypatch, str(tmp_path))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account_file(tmp_path)))
    backend = open_backend("gs://bkt/prefix", BackendOptions(driver=driver))
    assert backend.root_uri == "gs://bkt/prefix"
    backend.close()


# --- against fake-gcs-server ------------------------------------------------------------------------------
@pytest.fixture(params=DRIVERS, ids=str)
def gcs_backend(request: pytest.FixtureRequest):
    """The sdk and the native backend fixture in turn (native: objects seeded by the sdk backend)."""
    if request.param is Driver.SDK:
        backend = request.getfixturevalue("backend_gcs_sdk")
        return NativeWithSeeder(native=backend, sdk=backend)
    return request.getfixturevalue("gcs_native_pair")


def test_driver_auto_is_native(fake_gcs, gcs_bucket, monkeypatch, tmp_path) -> None:
    uri = gcs_uri(gcs_bucket)
    backend = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, uri, Driver.AUTO)
    assert backend.is_async and type(backend).__name__ == "GcsNativeBackend"
    backend.close()


# fake-gcs-server closes the connection after every 416 answer; a client that reuses it at once (obstore's
# pool does) gets "connection reset". So each test below makes at most one 416 request, as its last call.
def test_get_range_edges(gcs_backend: NativeWithSeeder) -> None:
    backend = gcs_backend.native
    gcs_backend.sdk.put("obj", b"0123456789")
    assert bytes(backend.get_range("obj", 2, 3)) == b"234"
    assert bytes(backend.get_range("obj", 8, 10)) == b"89"
    assert bytes(backend.get_range("obj", 0, 0)) == b""
    with pytest.raises(StorageError) as info:
        backend.get_range("missing", 0, 4)
    assert info.value.kind is ErrorClass.NOT_FOUND
    assert bytes(backend.get_range("obj", 10, 5)) == b""  # at the end: the service answers 416


def test_range_of_an_empty_object(gcs_backend: NativeWithSeeder) -> None:
    gcs_backend.sdk.put("empty", b"")
    assert bytes(gcs_backend.native.get("empty")) == b""
    assert bytes(gcs_backend.native.get_range("empty", 0, 5)) == b""


def test_string_prefixes_and_recursive_rmdir(gcs_backend: NativeWithSeeder) -> None:
    check_string_prefixes_and_recursive_rmdir(gcs_backend.native, gcs_backend.sdk.put)


@pytest.mark.parametrize("driver", DRIVERS)
def test_missing_bucket_is_not_found(driver: Driver, fake_gcs, monkeypatch, tmp_path) -> None:
    uri = gcs_uri("no-such-bucket")
    backend = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, uri, driver)
    try:
        for call in (lambda: backend.get("k"), lambda: backend.stat("k")):
            with pytest.raises(StorageError) as info:
                call()
            assert info.value.kind is ErrorClass.NOT_FOUND
    finally:
        backend.close()


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (429, "rateLimitExceeded", ErrorClass.THROTTLED),
        (503, "backendError", ErrorClass.THROTTLED),
        (401, "required", ErrorClass.AUTH),
        (403, "forbidden", ErrorClass.AUTH),
        (408, "requestTimeout", ErrorClass.TIMEOUT),
        (500, "internalError", ErrorClass.OTHER),
    ],
)
def test_service_errors_are_classified(status, reason, expected, driver, canned_server, monkeypatch,
                                       tmp_path) -> None:
    body = json.dumps({"error": {"code": status, "message": f"canned {reason}",
                                 "errors": [{"reason": reason, "message": f"canned {reason}"}]}}).encode()
    server = canned_server(status, body, "application/json")
    backend = open_gcs_backend(monkeypatch, str(tmp_path), server.endpoint, gcs_uri(GCS_BUCKET), driver)
    try:
        for call in (lambda: backend.get("k"), lambda: backend.delete("k")):
            with pytest.raises(StorageError) as info:
                call()
            assert info.value.kind is expected, info.value
            assert str(status) in info.value.message
    finally:
        backend.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_silent_server_is_timeout(driver: Driver, canned_server, monkeypatch, tmp_path) -> None:
    server = canned_server(None)
    backend = open_gcs_backend(monkeypatch, str(tmp_path), server.endpoint, gcs_uri(GCS_BUCKET), driver,
                               request_timeout_s=0.5)
    try:
        with pytest.raises(StorageError) as info:
            backend.stat("k")
        assert info.value.kind is ErrorClass.TIMEOUT
    finally:
        backend.close()


# --- range engine -------------------------------------------------------------------------------------
@pytest.mark.parametrize("driver", DRIVERS)
def test_range_engine_reads_large_objects_exactly(driver, fake_gcs, gcs_bucket, monkeypatch, tmp_path,
                                                  range_reads) -> None:
    uri = gcs_uri(gcs_bucket)
    seeder = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, uri, Driver.SDK)
    backend = open_backend(uri, BackendOptions(driver=driver, range=RANGES))
    large, small = os.urandom(1024 * 1024 + 123), os.urandom(100 * 1024)
    try:
        seeder.put("large", large)
        seeder.put("small", small)
        assert bytes(backend.get("large")) == large
        assert bytes(backend.get("small")) == small
        assert range_reads == [len(large)]  # the small one is below min_split_size: one plain GET
        if backend.is_async:
            assert bytes(asyncio.run(backend.get_async("large"))) == large
            assert range_reads == [len(large)] * 2
    finally:
        backend.close()
        remove_and_close(seeder)


def test_sdk_put_of_a_multi_chunk_object(backend_gcs_sdk) -> None:
    """Above 8 MiB the SDK switches to a resumable upload in multipart_part_size chunks."""
    data = os.urandom(9 * 1024 * 1024 + 7)
    backend_gcs_sdk.put("big", memoryview(data))
    assert backend_gcs_sdk.stat("big").size == len(data)
    assert bytes(backend_gcs_sdk.get("big")) == data


# --- native async API -----------------------------------------------------------------------------------
def test_native_async_api(gcs_native_pair: NativeWithSeeder) -> None:
    backend, seed = gcs_native_pair.native, gcs_native_pair.sdk
    seed.put("d/a", b"alpha")
    seed.put("d/sub/b", b"beta")
    seed.put("top", b"")
    asyncio.run(check_async_reads_and_delete(backend))


def test_sdk_clients_per_thread_share_one_sized_pool(fake_gcs, gcs_bucket, monkeypatch, tmp_path) -> None:
    import threading

    backend = open_gcs_backend(monkeypatch, str(tmp_path), fake_gcs.endpoint, gcs_uri(gcs_bucket), Driver.SDK,
                               concurrency=7)
    clients = [backend._client()]
    worker = threading.Thread(target=lambda: clients.append(backend._client()))
    worker.start()
    worker.join()
    assert clients[0] is backend._client() and clients[1] is not clients[0]
    assert clients[0]._http is clients[1]._http  # one session, one pool
    assert backend.pool_size == 7
    backend.close()
