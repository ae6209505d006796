"""Smoke tests proving each local server works with its official client: put, get, list, delete."""

from __future__ import annotations

import uuid

import pytest

from tests import servers


def test_seaweedfs_s3_round_trip(seaweedfs: servers.LocalServer) -> None:
    boto3 = pytest.importorskip("boto3")
    s3 = boto3.client("s3", endpoint_url=seaweedfs.endpoint, region_name="us-east-1",
                      aws_access_key_id=servers.S3_ACCESS_KEY, aws_secret_access_key=servers.S3_SECRET_KEY)
    bucket = f"smoke-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert s3.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["a/b.txt"]
    s3.delete_object(Bucket=bucket, Key="a/b.txt")
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_azurite_round_trip(azurite: servers.LocalServer) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient.from_connection_string(servers.azurite_connection_string(azurite.port))
    container = service.create_container(f"smoke-{uuid.uuid4().hex[:8]}")
    container.upload_blob("a/b.txt", b"hello")
    assert container.download_blob("a/b.txt").readall() == b"hello"
    assert [b.name for b in container.list_blobs()] == ["a/b.txt"]
    container.delete_blob("a/b.txt")
    assert list(container.list_blobs()) == []


def test_fake_gcs_round_trip(fake_gcs: servers.LocalServer, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    monkeypatch.setenv("STORAGE_EMULATOR_HOST", fake_gcs.endpoint)
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    bucket = client.create_bucket(f"smoke-{uuid.uuid4().hex[:8]}")
    bucket.blob("a/b.txt").upload_from_string(b"hello")
    assert bucket.blob("a/b.txt").download_as_bytes() == b"hello"
    assert [b.name for b in client.list_blobs(bucket.name)] == ["a/b.txt"]
    bucket.blob("a/b.txt").delete()
    assert list(client.list_blobs(bucket.name)) == []


@pytest.mark.ray
def test_ray_instance_runs_a_task(ray_session: None) -> None:
    import ray

    @ray.remote
    def square(x: int) -> int:
        return x * x

    assert ray.get([square.remote(i) for i in range(4)]) == [0, 1, 4, 9]
