"""Helpers for the preflight tests: configs from YAML text, hermetic credentials, session buckets."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import pytest

from sbench.config import Config, load_config_text
from tests import servers
from tests.storage.fixtures_s3 import ready_bucket

PREFLIGHT_BUCKET = "sbench-preflight"
AWS_VARIABLES = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
)
AZURE_VARIABLES = (
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_ACCOUNT",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_ENDPOINT",
)
#: A well-formed key (base64 of 64 bytes, as real keys) but not Azurite's: every signed request fails.
WRONG_AZURE_KEY = base64.b64encode(b"sbench-preflight-wrong-key-".ljust(64, b"x")).decode()


def config_of(text: str) -> Config:
    """A validated Config from YAML text, as `sbench run` would load it."""
    return load_config_text(text).config


def set_aws_env(monkeypatch: pytest.MonkeyPatch, tmp: Path, secret: str = servers.S3_SECRET_KEY) -> None:
    """Only the given key pair: no profile files, no stray AWS_* settings, metadata service disabled."""
    for name in AWS_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", servers.S3_ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", secret)


def s3_admin(server: servers.LocalServer):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id=servers.S3_ACCESS_KEY,
        aws_secret_access_key=servers.S3_SECRET_KEY,
    )


def s3_keys(server: servers.LocalServer, bucket: str, prefix: str = "") -> list[str]:
    client = s3_admin(server)
    try:
        pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    finally:
        client.close()


@pytest.fixture(scope="session")
def s3_preflight_bucket(seaweedfs: servers.LocalServer) -> str:
    """The session bucket, usable for writes: SeaweedFS grows a volume for a new bucket on its first PUT and
    answers InternalError until it is there, which a test of "healthy target passes" must not see."""
    ready_bucket(seaweedfs, PREFLIGHT_BUCKET)
    return PREFLIGHT_BUCKET


def set_azure_env(monkeypatch: pytest.MonkeyPatch, port: int, key: str = servers.AZURITE_KEY) -> None:
    for name in AZURE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", servers.azurite_connection_string(port, key))


def azure_container_client(server: servers.LocalServer, container: str):
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(servers.azurite_connection_string(server.port))
    return service.get_container_client(container)


@pytest.fixture(scope="session")
def azure_preflight_container(azurite: servers.LocalServer) -> Iterator[str]:
    client = azure_container_client(azurite, PREFLIGHT_BUCKET)
    client.create_container()
    yield PREFLIGHT_BUCKET


def set_gcs_env(monkeypatch: pytest.MonkeyPatch, server: servers.LocalServer, tmp: Path) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp / "no-gcloud"))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", server.endpoint)


def gcs_client(server: servers.LocalServer):
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(
        project="test", credentials=AnonymousCredentials(), client_options={"api_endpoint": server.endpoint}
    )


@pytest.fixture(scope="session")
def gcs_preflight_bucket(fake_gcs: servers.LocalServer) -> str:
    gcs_client(fake_gcs).create_bucket(PREFLIGHT_BUCKET)
    return PREFLIGHT_BUCKET
