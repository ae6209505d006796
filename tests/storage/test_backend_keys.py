"""The YAML `backend_options` keys (issue 14 #1) reach the client each driver builds, per block: the
constructed client's own configuration is inspected for all six cloud drivers, and SeaweedFS shows the ones
a request can show (a 12 MiB PUT above a 5 MiB threshold is a multipart upload; path-style off sends the
bucket in the host name; a multi_endpoint block's request timeout cuts a stalled request while the
top-level one would wait two minutes)."""

from __future__ import annotations

import http.server
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest

from sbench.config.backend import backend_options
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.registry import open_backend
from tests import servers
from tests.engine.helpers import config_from
from tests.stallproxy import StallProxy
from tests.storage.fixtures_cloud import clear_azure_env, clear_gcs_env
from tests.storage.fixtures_s3 import TEST_BUCKET, hermetic_aws_env, ready_bucket, s3_admin_client

KEYS = (
    "backend_options: {request_timeout: 7s, connect_timeout: 3s, max_connections: 40, verify_tls: false, "
    "multipart_threshold: 9MiB, multipart_part_size: 6MiB}\n"
)


def _open(uri: str, driver: str, extra: str = KEYS) -> Any:
    workload = "workload: [{op: put, path: k, weight: 1}]\n"
    config = config_from(f"target: {uri}\nconcurrency: 4\ndriver: {driver}\n{extra}{workload}")
    return open_backend(uri, backend_options(config, uri))


@pytest.fixture
def cloud_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials for all three clouds pointing at a closed port: clients are built, never used."""
    hermetic_aws_env(monkeypatch, tmp_path)
    clear_azure_env(monkeypatch)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", servers.azurite_connection_string(9))
    clear_gcs_env(monkeypatch, str(tmp_path))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")


def test_s3_sdk_client_gets_every_key(cloud_env: None) -> None:
    backend = _open(
        "s3://localhost:9/bkt/p/", "sdk", KEYS.replace("}", ", region: eu-west-3, path_style: false}")
    )
    client = backend._client()
    config = client.meta.config
    assert (config.connect_timeout, config.read_timeout, config.max_pool_connections) == (3, 7, 40)
    assert config.s3 == {"addressing_style": "virtual"} and client.meta.region_name == "eu-west-3"
    assert client._endpoint.http_session._verify is False
    assert (backend.options.multipart_threshold, backend.options.multipart_part_size) == (9 << 20, 6 << 20)


def test_s3_native_store_gets_every_key(cloud_env: None) -> None:
    backend = _open(
        "s3://localhost:9/bkt/p/", "native", KEYS.replace("}", ", region: eu-west-3, path_style: false}")
    )
    options, config = backend._store.client_options, backend._store.config
    assert options["timeout"] == "7s" and options["connect_timeout"] == "3s"
    assert options["pool_max_idle_per_host"] == "40" and options["allow_invalid_certificates"] == "true"
    assert config["region"] == "eu-west-3" and config["virtual_hosted_style_request"] == "true"
    assert (backend._threshold, backend._part_size) == (9 << 20, 6 << 20)


def test_azure_and_gcs_sdk_clients_get_every_key(cloud_env: None) -> None:
    azure = _open("az://devstoreaccount1/c/p/", "sdk")
    container = azure._container()
    assert (container._config.max_single_put_size, container._config.max_block_size) == (9 << 20, 6 << 20)
    connection = container._config.transport.connection_config
    assert (connection.timeout, connection.read_timeout) == (3, 7)
    assert connection.verify is False and azure.pool_size == 40
    gcs = _open("gs://bkt/p/", "sdk", KEYS.replace("multipart_threshold: 9MiB, ", ""))
    assert (
        gcs._session.get_adapter("https://x").send.__qualname__.startswith("_Unchecked")
        and gcs.pool_size == 40
    )
    assert gcs._timeout == (3, 7) and gcs._chunk_size == 6 << 20


@pytest.mark.parametrize("uri", ["az://devstoreaccount1/c/p/", "gs://bkt/p/"])
def test_azure_and_gcs_native_stores_get_every_key(cloud_env: None, uri: str) -> None:
    backend = _open(uri, "native")
    options = backend._store.client_options
    assert (options["timeout"], options["connect_timeout"]) == ("7s", "3s")
    assert options["pool_max_idle_per_host"] == "40" and options["allow_invalid_certificates"] == "true"
    assert (backend._multipart_threshold, backend._part_size) == (9 << 20, 6 << 20)


def test_a_multi_endpoint_block_replaces_only_the_keys_it_sets(cloud_env: None) -> None:
    config = config_from(
        "target: s3://127.0.0.1:9/top/\n"
        + KEYS
        + "multi_endpoint:\n  endpoints: [s3://127.0.0.1:9/a/, s3://127.0.0.1:9/b/]\n"
        "  backend_options: {request_timeout: 4s, verify_tls: true}\n"
        "workload: [{op: put, path: k, weight: 1}]\n"
    )
    top, own = (
        backend_options(config, "s3://127.0.0.1:9/top/"),
        backend_options(config, "s3://127.0.0.1:9/a/x/"),
    )
    assert (top.request_timeout_s, top.verify_tls, top.max_connections) == (7, False, 40)
    assert (own.request_timeout_s, own.verify_tls, own.max_connections) == (4, True, 40)
    assert own.connect_timeout_s == 3


def test_unset_keys_keep_the_drivers_defaults(cloud_env: None) -> None:
    config = config_from(
        "target: s3://127.0.0.1:9/b/\nrequest_timeout: 4s\nworkload: [{op: put, path: k, weight: 1}]\n"
    )
    options = backend_options(config, "s3://127.0.0.1:9/b/")
    assert (options.request_timeout_s, options.connect_timeout_s, options.verify_tls) == (4, 4, True)
    assert (options.multipart_threshold, options.multipart_part_size) == (64 << 20, 16 << 20)
    assert options.max_connections is None and options.pool_size == 16


# --- against SeaweedFS -------------------------------------------------------------------------------


@pytest.fixture
def s3_env(seaweedfs: servers.LocalServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    hermetic_aws_env(monkeypatch, tmp_path)
    ready_bucket(seaweedfs, TEST_BUCKET)
    return f"s3://localhost:{seaweedfs.port}/{TEST_BUCKET}/backend-keys-{time.monotonic_ns()}/"


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_a_12_mib_put_above_a_5_mib_threshold_is_a_multipart_upload(
    seaweedfs: servers.LocalServer, s3_env: str, driver: str
) -> None:
    body = bytes(range(256)) * (12 * 4096)
    uploads = {}
    for name, keys in (
        ("multi", "backend_options: {multipart_threshold: 5MiB, multipart_part_size: 5MiB}\n"),
        ("one", ""),
    ):
        backend = _open(s3_env, driver, keys)
        try:
            backend.put(name, memoryview(body))
        finally:
            backend.close()
        key = s3_env.split(f"{TEST_BUCKET}/", 1)[1] + name
        uploads[name] = s3_admin_client(seaweedfs).head_object(Bucket=TEST_BUCKET, Key=key)["ETag"].strip('"')
    assert uploads["multi"].endswith("-3"), uploads  # S3's multipart ETag: md5 of the parts' md5s, -count
    assert "-" not in uploads["one"], uploads


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_path_style_off_puts_the_bucket_in_the_host_name(s3_env: str, driver: str) -> None:
    path_style = _open(s3_env, driver, "backend_options: {path_style: true}\n")
    virtual = _open(s3_env, driver, "backend_options: {path_style: false}\n")
    try:
        path_style.put("k", b"v")  # SeaweedFS on localhost answers path-style requests
        with pytest.raises(StorageError) as caught:
            virtual.put("k", b"v")  # to sbench-tests.localhost, a name that does not resolve
    finally:
        path_style.close()
        virtual.close()
    assert caught.value.kind is ErrorClass.NETWORK, caught.value


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_a_multi_endpoint_blocks_request_timeout_cuts_a_stalled_request(
    driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)
    with StallProxy() as server:  # accepts, reads the request, never answers
        uri = f"s3://127.0.0.1:{server.port}/stalled/p/"
        backend = _open(
            uri,
            driver,
            f"multi_endpoint:\n  endpoints: [{uri}]\n  backend_options: {{request_timeout: 1s}}\n",
        )
        try:
            t0 = time.monotonic()
            with pytest.raises(StorageError) as caught:
                backend.get("k")
            took = time.monotonic() - t0
        finally:
            backend.close()
    assert caught.value.kind is ErrorClass.TIMEOUT, caught.value
    assert 0.8 <= took < 3.0, took


def test_prepare_on_a_multi_endpoint_block_uses_the_blocks_settings() -> None:
    from sbench.plan.agents import AgentIdentity
    from sbench.plan.objectspaces import prepare_params

    config = config_from(
        "target: s3://h.example:1/top/\n"
        "multi_endpoint:\n  endpoints: [s3://h.example:1/a/, s3://h.example:1/b/]\n"
        "  backend_options: {request_timeout: 3s}\n"
        "prepare: {ensure_objects: [{count: 2, use_multi_endpoint: true}]}\n"
        "workload: [{op: get, path: '*', weight: 1}]\n"
    )
    (params,) = prepare_params(config, AgentIdentity())
    assert params.roots == ("s3://h.example:1/a", "s3://h.example:1/b")
    assert params.options.request_timeout_s == 3


class _NotFoundHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with an empty 404: tells a request that arrived from one that did not."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self.seen.append(self.command)
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, *args: object) -> None:
        """Quiet: the test counts requests instead."""


@pytest.fixture
def self_signed_https(tmp_path: Path) -> Iterator[int]:
    """An https server on localhost with a freshly made self-signed certificate; yields its port."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem = tmp_path / "server.pem"
    pem.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pem)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFoundHandler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    _NotFoundHandler.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("scheme", "driver"), [(s, d) for s in ("s3", "az", "gs") for d in ("sdk", "native")]
)
def test_verify_tls_false_reaches_a_self_signed_endpoint_and_true_refuses_it(
    self_signed_https: int, scheme: str, driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    endpoint = f"https://localhost:{self_signed_https}"
    hermetic_aws_env(monkeypatch, tmp_path)
    clear_azure_env(monkeypatch)
    clear_gcs_env(monkeypatch, str(tmp_path))
    if scheme == "gs":
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
        uri = "gs://bkt/p/"
    elif scheme == "s3":
        monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
        uri = "s3://bkt/p/"
    else:
        connection = (
            servers.azurite_connection_string(1)
            .replace("http://127.0.0.1:1", endpoint)
            .replace("DefaultEndpointsProtocol=http", "DefaultEndpointsProtocol=https")
        )
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection)
        uri = "az://devstoreaccount1/c/p/"
    kinds = {}
    for verify in ("true", "false"):
        extra = f"backend_options: {{verify_tls: {verify}, path_style: true, request_timeout: 5s}}\n"
        backend = _open(uri, driver, extra if scheme == "s3" else extra.replace(" path_style: true,", ""))
        try:
            with pytest.raises(StorageError) as caught:
                backend.get("k")
        finally:
            backend.close()
        kinds[verify] = (caught.value.kind, len(_NotFoundHandler.seen))
    assert kinds["true"] == (kinds["true"][0], 0) and kinds["true"][0] is not ErrorClass.NOT_FOUND, kinds
    assert kinds["false"][0] is ErrorClass.NOT_FOUND and kinds["false"][1] >= 1, kinds
