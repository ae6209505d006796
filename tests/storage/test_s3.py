"""S3-specific behaviour of both drivers, beyond the shared contract (tests/storage/test_contract.py).

Resolution rules run against botocore's real config loading with hermetic environments; data-path tests run
against the session SeaweedFS. Failures SeaweedFS cannot produce on demand (throttling, a stalled or trickling
server, a reset connection) come from tiny local HTTP/TCP servers the real clients talk to, and from real
botocore ClientError objects built from the response dicts botocore itself produces.
"""

from __future__ import annotations

import asyncio
import gc
import http.server
import logging
import os
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import botocore.credentials
import botocore.exceptions
import pytest

from sbench.errors import ConfigError, RunFailed
from sbench.storage.base import Backend, ErrorClass, StorageError
from sbench.storage.cloud_errors import classify_obstore, classify_status, obstore_summary
from sbench.storage.cloud_open import open_s3
from sbench.storage.options import BackendOptions, Driver, RangeSettings
from sbench.storage.ranged import RangeEngine, split_ranges
from sbench.storage.registry import open_backend
from sbench.storage.s3 import botocore_session, resolve_settings
from sbench.storage.s3_native import S3NativeBackend, build_store
from sbench.storage.s3_sdk import S3SdkBackend, classify_botocore
from sbench.storage.uri import parse_uri
from tests import servers
from tests.storage.fixtures_local import exercise_multi, put_many, unique_prefix
from tests.storage.fixtures_s3 import hermetic_aws_env, s3_admin_client

MIB = 1024 * 1024
DRIVERS = [Driver.SDK, Driver.NATIVE]
DATA = os.urandom(12 * MIB + 3)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    hermetic_aws_env(monkeypatch, tmp_path)
    return monkeypatch


def _settings(uri: str, **options: object):
    opts = BackendOptions(**options)  # type: ignore[arg-type]
    return resolve_settings(parse_uri(uri, https=opts.https), opts, botocore_session())


def _write_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    config = tmp_path / "aws-config"
    config.write_text(text)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))


# --- endpoint, region, addressing ---------------------------------------------------------------------------


def test_endpoint_resolution_order(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env.setenv("AWS_ENDPOINT_URL", "http://generic:1")
    assert _settings("s3://bkt/p").endpoint_url == "http://generic:1"
    env.setenv("AWS_ENDPOINT_URL_S3", "http://s3-specific:2")
    assert _settings("s3://bkt/p").endpoint_url == "http://s3-specific:2"
    uri_based = _settings("s3://10.0.0.5:9000/bkt/p")
    assert (uri_based.endpoint_url, uri_based.endpoint_source) == ("http://10.0.0.5:9000", "the URI")
    assert _settings("s3://10.0.0.5:9000/bkt/p", https=True).endpoint_url == "https://10.0.0.5:9000"
    explicit = _settings("s3://10.0.0.5:9000/bkt/p", endpoint_url="minio.local:9000/")
    assert (explicit.endpoint_url, explicit.endpoint_source) == ("http://minio.local:9000", "endpoint_url")
    env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    assert _settings("s3://bkt/p").endpoint_url is None


def test_endpoint_and_region_from_profile(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _write_profile(tmp_path, env, "[profile bench]\nregion = eu-west-3\ns3 =\n  endpoint_url = http://prof:7000\n"
                                  "[profile svc]\nservices = local\n[services local]\ns3 =\n"
                                  "  endpoint_url = http://svc:7001\n[default]\nendpoint_url = http://glob:7002\n")
    assert _settings("s3://bkt").endpoint_url == "http://glob:7002"
    env.setenv("AWS_PROFILE", "bench")
    bench = _settings("s3://bkt")
    assert (bench.endpoint_url, bench.endpoint_source, bench.region) == (
        "http://prof:7000", "profile bench", "eu-west-3")
    env.setenv("AWS_PROFILE", "svc")
    assert _settings("s3://bkt").endpoint_url == "http://svc:7001"


def test_region_resolution_order(env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert _settings("s3://bkt").region == "us-east-1"
    _write_profile(tmp_path, env, "[default]\nregion = ap-south-1\n")
    assert _settings("s3://bkt").region == "ap-south-1"
    env.setenv("AWS_DEFAULT_REGION", "eu-central-1")
    assert _settings("s3://bkt").region == "eu-central-1"
    env.setenv("AWS_REGION", "us-west-2")
    assert _settings("s3://bkt").region == "us-west-2"
    assert _settings("s3://bkt", region="sa-east-1").region == "sa-east-1"


def test_path_style_defaults(env: pytest.MonkeyPatch) -> None:
    assert _settings("s3://bkt/p").path_style is False  # AWS: virtual-hosted
    assert _settings("s3://127.0.0.1:9000/bkt/p").path_style is True  # explicit endpoint: path-style
    assert _settings("s3://minio.lan:9000/bkt/p", path_style=False).path_style is False
    with pytest.raises(ConfigError, match=r"127\.0\.0\.1 is an IP address"):  # obstore panicked on it
        _settings("s3://127.0.0.1:9000/bkt/p", path_style=False)
    assert _settings("s3://bkt/p", path_style=True).path_style is True


@pytest.mark.parametrize("driver", DRIVERS)
def test_addressing_style_on_the_wire(env: pytest.MonkeyPatch, driver: Driver) -> None:
    """The URL each client requests: bucket in the path (path-style) or in the host name (virtual)."""
    port = servers.free_port()
    # A host name, not an IP: botocore never puts a bucket in front of an IP address.
    for path_style, expected in [(True, f"//localhost:{port}/bkt/k"), (False, f"//bkt.localhost:{port}/k")]:
        backend = open_backend(f"s3://localhost:{port}/bkt/", BackendOptions(
            driver=driver, path_style=path_style, request_timeout_s=3, connect_timeout_s=2))
        with pytest.raises(StorageError) as excinfo:
            backend.get("k")
        assert expected in str(excinfo.value)
        assert excinfo.value.kind is ErrorClass.NETWORK
        backend.close()


def test_bad_endpoint_and_profile_are_config_errors(env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="ftp://x"):
        _settings("s3://bkt", endpoint_url="ftp://x")
    env.setenv("AWS_PROFILE", "nope")
    with pytest.raises(ConfigError, match="'nope'"):
        open_backend("s3://bkt/p")


@pytest.mark.parametrize("driver", DRIVERS)
def test_missing_credentials_stop_the_run(env: pytest.MonkeyPatch, driver: Driver) -> None:
    env.delenv("AWS_ACCESS_KEY_ID")
    env.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(RunFailed) as excinfo:
        open_backend("s3://127.0.0.1:9/bkt/p", BackendOptions(driver=driver))
    text = str(excinfo.value)
    assert "AWS_ACCESS_KEY_ID" in text and "AWS_PROFILE" in text and "s3://127.0.0.1:9/bkt/p" in text


@pytest.mark.parametrize("driver", DRIVERS)
def test_secrets_never_logged(env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, driver: Driver,
                              seaweedfs: servers.LocalServer) -> None:
    caplog.set_level(logging.DEBUG)
    env.setenv("AWS_SECRET_ACCESS_KEY", "wrong-" + servers.S3_SECRET_KEY)
    backend = open_backend(f"s3://127.0.0.1:{seaweedfs.port}/sbench-secret/", BackendOptions(driver=driver))
    with pytest.raises(StorageError) as excinfo:
        backend.get("k")
    backend.close()
    assert excinfo.value.kind is ErrorClass.AUTH
    for text in (caplog.text, str(excinfo.value), repr(backend), repr(backend.settings)):  # type: ignore[attr-defined]
        assert servers.S3_SECRET_KEY not in text


# --- data path on SeaweedFS ---------------------------------------------------------------------------------


@pytest.fixture
def s3_root(seaweedfs: servers.LocalServer, s3_bucket: str, env: pytest.MonkeyPatch) -> Iterator[str]:
    prefix = unique_prefix("s3")
    yield f"s3://127.0.0.1:{seaweedfs.port}/{s3_bucket}/{prefix}/"
    cleanup = open_backend(f"s3://127.0.0.1:{seaweedfs.port}/{s3_bucket}/{prefix}/")
    cleanup.rmdir("", recursive=True)
    cleanup.close()


def test_auto_driver_is_native(s3_root: str) -> None:
    backend = open_backend(s3_root)
    assert isinstance(backend, S3NativeBackend) and backend.is_async
    backend.close()
    sdk = open_backend(s3_root, BackendOptions(driver=Driver.SDK))
    assert isinstance(sdk, S3SdkBackend) and not sdk.is_async
    sdk.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_multipart_upload_above_threshold(s3_root: str, seaweedfs: servers.LocalServer,
                                          driver: Driver) -> None:
    options = BackendOptions(driver=driver, multipart_threshold=6 * MIB, multipart_part_size=5 * MIB)
    backend = open_backend(s3_root, options)
    try:
        backend.put("mp/big", memoryview(DATA)[: 11 * MIB + 3])  # 3 parts: 5 + 5 + 1 MiB + 3
        backend.put("mp/small", DATA[: 6 * MIB - 1])  # just below the threshold: one PUT
        assert bytes(backend.get("mp/big")) == DATA[: 11 * MIB + 3]
        assert backend.stat("mp/big").etag.endswith("-3")  # type: ignore[union-attr]  # S3 multipart ETag
        assert "-" not in (backend.stat("mp/small").etag or "")
    finally:
        backend.close()
    uploads = s3_admin_client(seaweedfs).list_multipart_uploads(Bucket=s3_root.split("/")[3])
    assert not [u for u in uploads.get("Uploads", ()) if "/mp/" in u["Key"]]  # all completed


def _ranged(s3_root: str, driver: Driver) -> Backend:
    settings = RangeSettings(enabled=True, chunk_size=256 * 1024, max_concurrent_ranges=4, min_split_size=MIB)
    return open_backend(s3_root, BackendOptions(driver=driver, range=settings))


@pytest.mark.parametrize("driver", DRIVERS)
def test_range_engine_reassembles_objects(s3_root: str, driver: Driver) -> None:
    backend = _ranged(s3_root, driver)
    try:
        sizes = {"odd": 3 * MIB + 12345, "exact": 2 * MIB, "below": MIB - 1, "empty": 0}
        for name, size in sizes.items():
            backend.put(f"rg/{name}", DATA[:size])
        for name, size in sizes.items():
            assert bytes(backend.get(f"rg/{name}")) == DATA[:size], name
        if backend.is_async:
            async def read_all() -> list[bytes]:
                return [bytes(await backend.get_async(f"rg/{n}")) for n in sizes]  # type: ignore[attr-defined]

            assert asyncio.run(read_all()) == [DATA[:s] for s in sizes.values()]
        with pytest.raises(StorageError) as excinfo:
            backend.get("rg/missing")
        assert excinfo.value.kind is ErrorClass.NOT_FOUND
    finally:
        backend.close()


def test_range_engine_bounds_concurrency() -> None:
    settings = RangeSettings(enabled=True, chunk_size=1000, max_concurrent_ranges=3, min_split_size=1)
    engine = RangeEngine(settings, callers=2)
    data = os.urandom(25_500)
    lock = threading.Lock()
    state = {"now": 0, "peak": 0}

    def fetch(offset: int, length: int) -> bytes:
        with lock:
            state["now"] += 1
            state["peak"] = max(state["peak"], state["now"])
        time.sleep(0.01)
        with lock:
            state["now"] -= 1
        return data[offset:offset + length]

    assert engine.read(fetch, len(data)) == data
    assert 1 < state["peak"] <= 3
    assert split_ranges(2500, 1000) == [(0, 1000), (1000, 1000), (2000, 500)]
    assert not engine.applies(1000) and engine.applies(1001)
    engine.close()


def test_listing_prefixes_agree_between_drivers(s3_root: str) -> None:
    """obstore lists by path segment; the native driver must still give S3's string-prefix results."""
    sdk = open_backend(s3_root, BackendOptions(driver=Driver.SDK))
    native = open_backend(s3_root, BackendOptions(driver=Driver.NATIVE))
    keys = ["a/1", "a/2", "ab/3", "a_b", "b", "dir/obj_1", "dir/obj_10", "dir/obj_2", "dir/obj_1x/deep",
            "dir/other", "dir/sub/x", "dirx/y"]
    try:
        for key in keys:
            sdk.put(key, key.encode())
        for prefix in ["", "a", "a/", "ab", "dir/obj_1", "dir/obj_", "dir/", "dir", "di", "dir/sub", "zz"]:
            for recursive in (True, False):
                want = sorted(sdk.list(prefix, recursive))
                assert sorted(native.list(prefix, recursive)) == want, (prefix, recursive)

                async def collect(p: str = prefix, r: bool = recursive) -> list[tuple[str, int]]:
                    return [item async for item in native.list_async(p, r)]  # type: ignore[attr-defined]

                assert sorted(asyncio.run(collect())) == want, (prefix, recursive, "async")
        assert sorted(k for k, _ in sdk.list("dir/obj_1")) == ["dir/obj_1", "dir/obj_10", "dir/obj_1x/deep"]
    finally:
        sdk.close()
        native.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_rmdir_and_mkdir_on_object_store(s3_root: str, driver: Driver) -> None:
    backend = open_backend(s3_root, BackendOptions(driver=driver))
    try:
        backend.mkdir("d/e")  # no-op: nothing appears
        assert list(backend.list("d/")) == []
        keys = [f"d/e/k{i:04d}" for i in range(1003)] + ["d/f", "dz"]  # > one DeleteObjects batch
        put_many(backend.put, ((key, b"1") for key in keys))
        backend.rmdir("d", recursive=False)  # no-op on object stores
        assert len(list(backend.list("d/"))) == 1004
        backend.rmdir("d", recursive=True)
        assert list(backend.list("")) == [("dz", 1)]  # only keys under d/ went
    finally:
        backend.close()


def test_refreshing_credentials_reach_obstore(seaweedfs: servers.LocalServer, s3_bucket: str,
                                              env: pytest.MonkeyPatch) -> None:
    """Temporary credentials (SSO, assume-role) go to obstore through a provider, not as fixed keys."""
    calls = []

    def refresh() -> dict[str, str]:
        calls.append(1)
        expiry = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
        return {"access_key": servers.S3_ACCESS_KEY, "secret_key": servers.S3_SECRET_KEY, "token": "",
                "expiry_time": expiry}

    credentials = botocore.credentials.RefreshableCredentials.create_from_metadata(
        refresh(), refresh, "custom-refresh")
    parsed = parse_uri(f"s3://127.0.0.1:{seaweedfs.port}/{s3_bucket}/{unique_prefix('refresh')}/")
    options = BackendOptions(driver=Driver.NATIVE)
    settings = resolve_settings(parsed, options, botocore_session())
    backend = S3NativeBackend(settings, options, credentials)
    try:
        backend.put("k", b"temporary")
        assert bytes(backend.get("k")) == b"temporary"
        assert "access_key_id" not in backend._store.config  # keys were not baked into the store
        backend.delete("k")
    finally:
        backend.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_multi_endpoint_over_two_gateways(driver: Driver, request: pytest.FixtureRequest) -> None:
    multi = request.getfixturevalue(f"multi_s3_{driver.value}")
    first, second = multi.endpoints
    assert first != second  # two gateway processes, one namespace
    stats = exercise_multi(multi)
    assert [s.uri for s in stats] == [first, second]


def test_open_s3_direct_factory(s3_root: str) -> None:
    backend = open_s3(parse_uri(s3_root), BackendOptions(driver=Driver.SDK))
    assert backend.root_uri == parse_uri(s3_root).root
    backend.close()


# --- failure classification ---------------------------------------------------------------------------------


def _client_error(status: int, code: str, operation: str = "GetObject") -> botocore.exceptions.ClientError:
    """A ClientError exactly as botocore builds it from a parsed error response."""
    response = {
        "Error": {"Code": code, "Message": f"status {status}"},
        "ResponseMetadata": {"RequestId": "R", "HostId": "", "HTTPStatusCode": status,
                             "HTTPHeaders": {"content-type": "application/xml"}, "RetryAttempts": 0},
    }
    return botocore.exceptions.ClientError(response, operation)


@pytest.mark.parametrize(("status", "code", "kind"), [
    (503, "SlowDown", ErrorClass.THROTTLED),
    (503, "503", ErrorClass.THROTTLED),  # HEAD responses have no body: the code is the status
    (429, "TooManyRequests", ErrorClass.THROTTLED),
    (400, "RequestLimitExceeded", ErrorClass.THROTTLED),
    (403, "InvalidAccessKeyId", ErrorClass.AUTH),
    (403, "SignatureDoesNotMatch", ErrorClass.AUTH),
    (403, "403", ErrorClass.AUTH),
    (400, "ExpiredToken", ErrorClass.AUTH),
    (404, "NoSuchKey", ErrorClass.NOT_FOUND),
    (404, "NoSuchBucket", ErrorClass.NOT_FOUND),
    (404, "404", ErrorClass.NOT_FOUND),
    (400, "RequestTimeout", ErrorClass.TIMEOUT),
    (500, "InternalError", ErrorClass.OTHER),
    (416, "InvalidRange", ErrorClass.OTHER),
    (507, "XMinioStorageFull", ErrorClass.NO_SPACE),
    (507, "507", ErrorClass.NO_SPACE),  # a HEAD's answer: no body, the code is the status
    (403, "QuotaExceeded", ErrorClass.NO_SPACE),  # Ceph RGW: the user's or bucket's quota is used up
])
def test_botocore_client_errors(status: int, code: str, kind: ErrorClass) -> None:
    assert classify_botocore(_client_error(status, code)) is kind
    assert classify_status(status, code) is kind


def test_botocore_transport_errors() -> None:
    e = botocore.exceptions
    assert classify_botocore(e.EndpointConnectionError(endpoint_url="http://x")) is ErrorClass.NETWORK
    assert classify_botocore(e.ConnectionClosedError(endpoint_url="http://x")) is ErrorClass.NETWORK
    assert classify_botocore(e.ReadTimeoutError(endpoint_url="http://x")) is ErrorClass.TIMEOUT
    assert classify_botocore(e.ConnectTimeoutError(endpoint_url="http://x")) is ErrorClass.TIMEOUT
    assert classify_botocore(e.NoCredentialsError()) is ErrorClass.AUTH
    assert classify_botocore(ValueError("x")) is ErrorClass.OTHER


_XML = {503: "SlowDown", 429: "TooManyRequests", 500: "InternalError", 403: "InvalidAccessKeyId",
        507: "XMinioStorageFull"}


class _StatusHandler(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status named by the key's last path segment (`.../503`)."""

    protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` at once, as S3 does

    def _answer(self) -> None:
        status = int(self.path.rstrip("/").rsplit("/", 1)[-1])
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        body = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{_XML[status]}</Code>'
                f"<Message>m</Message></Error>").encode()
        self.send_response(status)
        self.send_header("content-type", "application/xml")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_PUT = do_HEAD = do_DELETE = _answer

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on what the clients saw."""


class _TrickleHandler(http.server.BaseHTTPRequestHandler):
    """A GET of 9 MiB sent as 1 MiB every 0.3 s: never silent long enough for a read timeout."""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-length", str(9 * MIB))
        self.end_headers()
        try:
            for _ in range(9):
                self.wfile.write(b"x" * MIB)
                self.wfile.flush()
                time.sleep(0.3)
        except OSError:
            return  # the client gave up: that is the point of the test

    def log_message(self, *args: object) -> None:
        """Quiet: the test asserts on what the clients saw."""


@pytest.fixture
def http_server(request: pytest.FixtureRequest) -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), request.param)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def raw_server(request: pytest.FixtureRequest) -> Iterator[int]:
    """A TCP server that either never answers ("silent") or resets every connection ("reset")."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            if request.param == "reset":
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                conn.recv(65536)
                conn.close()
            else:
                held.append(conn)

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1]
    stop.set()
    listener.close()
    for conn in held:
        conn.close()


@pytest.mark.parametrize("http_server", [_StatusHandler], indirect=True)
@pytest.mark.parametrize("driver", DRIVERS)
def test_status_classification_on_the_wire(env: pytest.MonkeyPatch, http_server: int, driver: Driver) -> None:
    backend = open_backend(f"s3://127.0.0.1:{http_server}/bkt/", BackendOptions(driver=driver))
    try:
        for status, kind in [(503, ErrorClass.THROTTLED), (429, ErrorClass.THROTTLED),
                             (500, ErrorClass.OTHER), (403, ErrorClass.AUTH), (507, ErrorClass.NO_SPACE)]:
            for call in (lambda k: backend.get(k), lambda k: backend.stat(k), lambda k: backend.put(k, b"x")):
                with pytest.raises(StorageError) as excinfo:
                    call(f"k/{status}")
                assert excinfo.value.kind is kind, (status, str(excinfo.value))
                assert str(status) in str(excinfo.value) or _XML[status] in str(excinfo.value)
                assert excinfo.value.retryable is (kind is ErrorClass.THROTTLED)
    finally:
        backend.close()


@pytest.mark.parametrize("raw_server", ["silent"], indirect=True)
@pytest.mark.parametrize("driver", DRIVERS)
def test_stalled_server_times_out(env: pytest.MonkeyPatch, raw_server: int, driver: Driver) -> None:
    backend = open_backend(f"s3://127.0.0.1:{raw_server}/bkt/",
                           BackendOptions(driver=driver, request_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(StorageError) as excinfo:
        backend.get("k")
    assert excinfo.value.kind is ErrorClass.TIMEOUT and excinfo.value.retryable
    assert time.monotonic() - started < 10
    backend.close()


@pytest.mark.parametrize("raw_server", ["reset"], indirect=True)
@pytest.mark.parametrize("driver", DRIVERS)
def test_reset_connection_is_network(env: pytest.MonkeyPatch, raw_server: int, driver: Driver) -> None:
    backend = open_backend(f"s3://127.0.0.1:{raw_server}/bkt/", BackendOptions(driver=driver))
    with pytest.raises(StorageError) as excinfo:
        backend.get("k")
    assert excinfo.value.kind is ErrorClass.NETWORK
    backend.close()


@pytest.mark.parametrize("http_server", [_TrickleHandler], indirect=True)
@pytest.mark.parametrize("driver", DRIVERS)
def test_slow_body_hits_the_per_op_timeout(env: pytest.MonkeyPatch, http_server: int, driver: Driver) -> None:
    """Bytes keep coming (no read timeout fires), but the whole GET must still end at request_timeout_s."""
    backend = open_backend(f"s3://127.0.0.1:{http_server}/bkt/",
                           BackendOptions(driver=driver, request_timeout_s=1.0))
    started = time.monotonic()
    with pytest.raises(StorageError) as excinfo:
        backend.get("k")
    assert excinfo.value.kind is ErrorClass.TIMEOUT
    assert time.monotonic() - started < 2.5  # the server would take 2.7 s to send everything
    backend.close()


def test_obstore_messages_are_summarised(env: pytest.MonkeyPatch) -> None:
    import obstore
    from obstore.store import S3Store

    port = servers.free_port()
    store = S3Store("bkt", endpoint=f"http://127.0.0.1:{port}", region="us-east-1", access_key_id="k",
                    secret_access_key="s", client_options={"allow_http": True},
                    retry_config={"max_retries": 0})
    with pytest.raises(Exception) as excinfo:  # whatever obstore raises is what gets classified
        obstore.get(store, "x")
    assert classify_obstore(excinfo.value) is ErrorClass.NETWORK
    summary = obstore_summary(excinfo.value)
    assert "Debug source" not in summary and "Connection refused" in summary


def test_native_store_never_reads_the_endpoint_from_env(env: pytest.MonkeyPatch) -> None:
    """obstore reads AWS_ENDPOINT_URL itself when not given one; the driver always passes the resolved one."""
    env.setenv("AWS_ENDPOINT_URL", "http://from-env:1")
    env.setenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true")
    credentials = botocore_session().get_credentials()
    virtual = build_store(_settings("s3://bkt/p", region="eu-west-1"), credentials, BackendOptions(), 5)
    assert virtual.config["endpoint"] == "https://bkt.s3.eu-west-1.amazonaws.com"
    path = build_store(_settings("s3://bkt/p", path_style=True), credentials, BackendOptions(), 5)
    assert path.config["endpoint"] == "https://s3.us-east-1.amazonaws.com"
    custom = build_store(_settings("s3://minio.lan:9000/bkt/p"), credentials, BackendOptions(), 5)
    assert custom.config["endpoint"] == "http://minio.lan:9000"
    assert custom.config["virtual_hosted_style_request"] == "false"
    assert custom.prefix == "p"


def test_sdk_clients_die_with_their_threads(s3_root: str) -> None:
    backend = open_backend(s3_root, BackendOptions(driver=Driver.SDK))
    backend.put("k", b"v")
    workers = [threading.Thread(target=backend.stat, args=("k",)) for _ in range(4)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    gc.collect()
    assert len(backend._clients) == 1  # only the test thread's client is left  # type: ignore[attr-defined]
    backend.close()


@pytest.mark.parametrize("driver", DRIVERS)
def test_range_at_or_past_the_end_is_empty(s3_root: str, driver: Driver) -> None:
    """S3 answers 416 there; the drivers read it as EOF, like pread and the other backends."""
    backend = open_backend(s3_root, BackendOptions(driver=driver))
    try:
        backend.put("r/k", b"0123456789")
        backend.put("r/empty", b"")
        assert bytes(backend.get_range("r/k", 10, 5)) == b""
        assert bytes(backend.get_range("r/k", 100, 5)) == b""
        assert bytes(backend.get_range("r/empty", 0, 5)) == b""
        assert bytes(backend.get_range("r/k", 8, 0)) == b""
        with pytest.raises(StorageError) as excinfo:
            backend.get_range("r/k", -1, 5)
        assert excinfo.value.kind is ErrorClass.OTHER
        with pytest.raises(StorageError) as excinfo:
            backend.get_range("r/missing", 0, 5)
        assert excinfo.value.kind is ErrorClass.NOT_FOUND
        if backend.is_async:
            assert bytes(asyncio.run(backend.get_range_async("r/k", 12, 3))) == b""  # type: ignore[attr-defined]
    finally:
        backend.close()


def test_range_engine_reports_the_first_failure() -> None:
    settings = RangeSettings(enabled=True, chunk_size=100, max_concurrent_ranges=4, min_split_size=1)
    engine = RangeEngine(settings)
    data = os.urandom(1000)
    failure = StorageError(ErrorClass.THROTTLED, "503 SlowDown")

    def fetch(offset: int, length: int) -> bytes:
        if offset == 300:
            raise failure
        return data[offset:offset + length]

    async def afetch(offset: int, length: int) -> bytes:
        await asyncio.sleep(0)
        return fetch(offset, length)

    with pytest.raises(StorageError) as excinfo:
        engine.read(fetch, len(data))
    assert excinfo.value is failure
    with pytest.raises(StorageError) as excinfo:
        asyncio.run(engine.read_async(afetch, len(data)))
    assert excinfo.value is failure  # not an ExceptionGroup: callers classify one error

    async def short(offset: int, length: int) -> bytes:
        return data[offset:offset + length - (offset == 500)]

    with pytest.raises(StorageError, match="returned 99 bytes instead of 100"):
        asyncio.run(engine.read_async(short, len(data)))
    engine.close()
