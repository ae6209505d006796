"""Contract-suite fixtures for s3-sdk and s3-native on the session SeaweedFS, plus S3 test helpers.

Every fixture runs with a hermetic AWS environment (no profile files, no stray AWS_* variables), so a
developer's ~/.aws never leaks into a test and no client ever goes looking for credentials on its own (which
would reach for 169.254.169.254). Each backend is rooted at a fresh prefix of one session bucket and the
prefix is deleted afterwards.
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.storage.base import Backend
from sbench.storage.multi import MultiEndpointBackend, open_multi
from sbench.storage.options import BackendOptions, Driver
from sbench.storage.registry import open_backend
from tests import servers
from tests.storage.fixtures_local import unique_prefix

TEST_BUCKET = "sbench-tests"
_AWS_VARIABLES = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                  "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION", "AWS_DEFAULT_REGION",
                  "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
                  "AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN")


def hermetic_aws_env(monkeypatch: pytest.MonkeyPatch, tmp: Path, secret: str = servers.S3_SECRET_KEY) -> None:
    """Only the test key pair: no profile files, no endpoint/region/profile variables, no metadata service."""
    for name in _AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def s3_admin_client(server: servers.LocalServer):
    """A plain boto3 client with the test credentials, for setting up buckets behind the drivers' backs."""
    import boto3

    return boto3.client("s3", endpoint_url=server.endpoint, region_name="us-east-1",
                        aws_access_key_id=servers.S3_ACCESS_KEY, aws_secret_access_key=servers.S3_SECRET_KEY)


def ready_bucket(server: servers.LocalServer, bucket: str) -> None:
    """Create the bucket (if needed) and wait until it takes writes: SeaweedFS answers InternalError to the
    first PUTs of a new bucket (or of a restarted server) until a volume is there."""
    client = s3_admin_client(server)
    try:
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=bucket)
        deadline = time.monotonic() + 60
        while True:
            try:
                client.put_object(Bucket=bucket, Key="warm-up", Body=b"x")
                break
            except client.exceptions.ClientError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.3)
        client.delete_object(Bucket=bucket, Key="warm-up")
    finally:
        client.close()


def open_s3_backend(uri: str, driver: Driver, **options: object) -> Backend:
    return open_backend(uri, BackendOptions(driver=driver, **options))  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def s3_bucket(seaweedfs: servers.LocalServer) -> str:
    """One bucket for the session; tests isolate themselves by prefix.

    Creating it is idempotent on purpose: `weed mini` talks to its own master and filer through unix sockets
    at fixed /tmp paths (/tmp/seaweedfs-filer-8888.sock...), which a network namespace does not isolate, so
    two test sessions running at the same time on one machine can end up sharing one filer.
    """
    client = s3_admin_client(seaweedfs)
    try:
        # Already there (see above) is fine: the bucket existing is all this fixture promises.
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=TEST_BUCKET)
    finally:
        client.close()
    return TEST_BUCKET


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)


def _fresh_backend(server: servers.LocalServer, bucket: str, driver: Driver) -> Iterator[Backend]:
    backend = open_s3_backend(f"s3://127.0.0.1:{server.port}/{bucket}/{unique_prefix(driver.value)}/", driver)
    try:
        yield backend
    finally:
        try:
            backend.rmdir("", recursive=True)
        finally:
            backend.close()


@pytest.fixture
def backend_s3_sdk(seaweedfs: servers.LocalServer, s3_bucket: str, s3_env: None) -> Iterator[Backend]:
    yield from _fresh_backend(seaweedfs, s3_bucket, Driver.SDK)


@pytest.fixture
def backend_s3_native(seaweedfs: servers.LocalServer, s3_bucket: str, s3_env: None) -> Iterator[Backend]:
    yield from _fresh_backend(seaweedfs, s3_bucket, Driver.NATIVE)


def _badauth(server: servers.LocalServer, bucket: str, driver: Driver, monkeypatch: pytest.MonkeyPatch,
             tmp: Path) -> Iterator[Backend]:
    hermetic_aws_env(monkeypatch, tmp, secret="wrong-" + servers.S3_SECRET_KEY)
    backend = open_s3_backend(f"s3://127.0.0.1:{server.port}/{bucket}/badauth/", driver)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def badauth_s3_sdk(seaweedfs: servers.LocalServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch,
                   tmp_path: Path) -> Iterator[Backend]:
    yield from _badauth(seaweedfs, s3_bucket, Driver.SDK, monkeypatch, tmp_path)


@pytest.fixture
def badauth_s3_native(seaweedfs: servers.LocalServer, s3_bucket: str, monkeypatch: pytest.MonkeyPatch,
                      tmp_path: Path) -> Iterator[Backend]:
    yield from _badauth(seaweedfs, s3_bucket, Driver.NATIVE, monkeypatch, tmp_path)


def _stopped(driver: Driver) -> Iterator[Backend]:
    port = servers.free_port()  # bound and released: nothing listens there
    backend = open_s3_backend(f"s3://127.0.0.1:{port}/{TEST_BUCKET}/stopped/", driver, connect_timeout_s=2.0,
                              request_timeout_s=5.0)
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def stopped_s3_sdk(s3_env: None) -> Iterator[Backend]:
    yield from _stopped(Driver.SDK)


@pytest.fixture
def stopped_s3_native(s3_env: None) -> Iterator[Backend]:
    yield from _stopped(Driver.NATIVE)


# --- a second S3 gateway on the same SeaweedFS filer: two endpoints, one namespace ------------------------

_FILER_RE = re.compile(r"Filer UI:\s+http://([0-9.]+:\d+)")


def start_second_gateway(server: servers.LocalServer) -> servers.LocalServer:
    """Another `weed s3` process on a new port, serving the same filer (hence the same buckets) as `server`.

    This is what sai3 multi-endpoint setups look like: several gateways in front of one store.
    """
    log_text = (server.workdir / "seaweedfs.log").read_text(errors="replace")
    match = _FILER_RE.search(log_text)
    filer = match.group(1) if match else "127.0.0.1:8888"  # weed mini's default filer address
    port = servers.free_port()
    cmd = [str(servers.weed_binary()), "s3", f"-filer={filer}", "-ip.bind=127.0.0.1", f"-port={port}",
           f"-port.grpc={servers.free_port()}", "-port.iceberg=0", "-port.lance=0"]
    env = {"AWS_ACCESS_KEY_ID": servers.S3_ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": servers.S3_SECRET_KEY}
    return servers._start("s3-gateway2", cmd, port, server.workdir / f"gateway-{port}", env)


@pytest.fixture(scope="session")
def seaweedfs_gateway2(seaweedfs: servers.LocalServer) -> Iterator[servers.LocalServer]:
    gateway = start_second_gateway(seaweedfs)
    try:
        yield gateway
    finally:
        gateway.stop()


def two_endpoint_uris(first: servers.LocalServer, second: servers.LocalServer, bucket: str,
                      prefix: str) -> list[str]:
    """The same bucket/prefix through two gateways."""
    return [f"s3://127.0.0.1:{first.port}/{bucket}/{prefix}/",
            f"s3://127.0.0.1:{second.port}/{bucket}/{prefix}/"]


def _multi(first: servers.LocalServer, second: servers.LocalServer, bucket: str,
           driver: Driver) -> Iterator[MultiEndpointBackend]:
    uris = two_endpoint_uris(first, second, bucket, unique_prefix(f"multi-{driver.value}"))
    multi = open_multi(uris, "round_robin", BackendOptions(driver=driver))
    try:
        yield multi
    finally:
        try:
            multi.backends[0].rmdir("", recursive=True)
        finally:
            multi.close()


@pytest.fixture
def multi_s3_sdk(seaweedfs: servers.LocalServer, seaweedfs_gateway2: servers.LocalServer, s3_bucket: str,
                 s3_env: None) -> Iterator[MultiEndpointBackend]:
    """A fresh round_robin MultiEndpointBackend over two S3 gateways of one SeaweedFS (sdk driver)."""
    yield from _multi(seaweedfs, seaweedfs_gateway2, s3_bucket, Driver.SDK)


@pytest.fixture
def multi_s3_native(seaweedfs: servers.LocalServer, seaweedfs_gateway2: servers.LocalServer, s3_bucket: str,
                    s3_env: None) -> Iterator[MultiEndpointBackend]:
    """A fresh round_robin MultiEndpointBackend over two S3 gateways of one SeaweedFS (native driver)."""
    yield from _multi(seaweedfs, seaweedfs_gateway2, s3_bucket, Driver.NATIVE)


#: What `from tests.storage.fixtures_s3 import *` registers in conftest.py: the fixtures only.
__all__ = [
    "backend_s3_native", "backend_s3_sdk", "badauth_s3_native", "badauth_s3_sdk", "multi_s3_native",
    "multi_s3_sdk", "s3_bucket", "s3_env", "seaweedfs_gateway2", "stopped_s3_native", "stopped_s3_sdk",
]
