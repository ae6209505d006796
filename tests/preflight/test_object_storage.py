"""Object-storage preflight against real SeaweedFS (S3), Azurite (Azure Blob) and fake-gcs-server (GCS).

Every failing case asserts its own error type, a suggestion naming what to fix, and that nothing was written;
healthy targets pass and leave no probe object behind (checked by listing after the run).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from sbench.plan.agents import AgentIdentity
from sbench.preflight import run_preflight
from sbench.preflight.result import ErrorType, Level, PreflightResult
from tests import servers
from tests.preflight.conftest import (
    WRONG_AZURE_KEY,
    azure_container_client,
    config_of,
    gcs_client,
    s3_admin,
    s3_keys,
    set_aws_env,
    set_azure_env,
    set_gcs_env,
)

PUT_WORKLOAD = """
workload:
  - {op: put, path: "w/", object_size: 1024, weight: 1}
"""


def cfg(target: str, driver: str = "auto", workload: str = PUT_WORKLOAD, extra: str = ""):
    return config_of(f"duration: 1s\nconcurrency: 2\ndriver: {driver}\ntarget: {target}\n{extra}{workload}")


def fresh() -> str:
    return f"pf-{uuid.uuid4().hex[:10]}"


def single_error(result: PreflightResult):
    assert not result.passed
    assert len(result.errors) == 1, [(c.name, c.message) for c in result.errors]
    return result.errors[0]


# -- S3 ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_s3_healthy_target_passes_and_leaves_no_probe(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path, driver
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    prefix = fresh()
    result = run_preflight(cfg(f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/{prefix}/", driver))
    assert result.passed, result.errors
    for name in ("s3.endpoint", "s3.bucket", "s3.list", "s3.put", "s3.get", "s3.delete"):
        assert [c.level for c in result.find(name)] == [Level.SUCCESS], name
    creds = result.find("s3.credentials")[0]
    assert creds.details["credential_source"] == "env"
    assert "AWS_SECRET_ACCESS_KEY" in creds.details["variables_set"]
    assert servers.S3_SECRET_KEY not in result.to_json() and servers.S3_ACCESS_KEY not in result.to_json()
    assert s3_keys(seaweedfs, s3_preflight_bucket, prefix) == []


def test_s3_read_only_workload_makes_no_write_probe(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    prefix = fresh()
    client = s3_admin(seaweedfs)
    client.put_object(Bucket=s3_preflight_bucket, Key=f"{prefix}/data/a.dat", Body=b"12345")
    client.close()
    workload = """
workload:
  - {op: get, path: "data/a.dat", weight: 1}
  - {op: stat, path: "data/*.dat", weight: 1}
  - {op: get, path: "missing.dat", weight: 1}
"""
    result = run_preflight(
        cfg(f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/{prefix}/", "native", workload)
    )
    assert not result.find("s3.put")
    gets = result.find("s3.get_target")
    assert [c.level for c in gets] == [Level.SUCCESS, Level.ERROR]
    assert "5 bytes" in gets[0].message
    assert [c.level for c in result.find("s3.stat_target")] == [Level.SUCCESS]
    err = single_error(result)
    assert err.error_type is ErrorType.CONFIGURATION and "`workload[2].path`" in err.suggestion
    assert s3_keys(seaweedfs, s3_preflight_bucket, prefix) == [f"{prefix}/data/a.dat"]


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_s3_missing_bucket_is_a_configuration_error(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path, driver
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    bucket = f"nobucket-{uuid.uuid4().hex[:8]}"
    err = single_error(run_preflight(cfg(f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/p/", driver)))
    assert (err.name, err.error_type) == ("s3.bucket", ErrorType.CONFIGURATION)
    assert f"create bucket {bucket}" in err.suggestion and "`target`" in err.suggestion
    client = s3_admin(seaweedfs)
    assert bucket not in [b["Name"] for b in client.list_buckets()["Buckets"]]
    client.close()


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_s3_wrong_keys_are_an_authentication_error(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path, driver
) -> None:
    set_aws_env(monkeypatch, tmp_path, secret="not-the-secret")
    prefix = fresh()
    result = run_preflight(cfg(f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/{prefix}/", driver))
    err = single_error(result)
    assert (err.name, err.error_type) == ("s3.list", ErrorType.AUTHENTICATION)
    assert "AWS_SECRET_ACCESS_KEY" in err.suggestion
    assert "not-the-secret" not in result.to_json()
    assert not result.find("s3.put")
    assert s3_keys(seaweedfs, s3_preflight_bucket, prefix) == []


def test_s3_stopped_server_is_a_network_error(monkeypatch, tmp_path) -> None:
    set_aws_env(monkeypatch, tmp_path)
    port = servers.free_port()
    err = single_error(run_preflight(cfg(f"s3://127.0.0.1:{port}/bucket/p/", "native")))
    assert (err.name, err.error_type) == ("s3.endpoint", ErrorType.NETWORK)
    assert f"is the endpoint http://127.0.0.1:{port} up?" in err.suggestion


def test_s3_multi_endpoint_checks_every_endpoint(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path
) -> None:
    """Two endpoints, one of them down: the live one passes, the dead one is named in the error."""
    set_aws_env(monkeypatch, tmp_path)
    prefix = fresh()
    dead = servers.free_port()
    extra = (
        f"multi_endpoint:\n  endpoints:\n"
        f"    - s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/{prefix}/\n"
        f"    - s3://127.0.0.1:{dead}/{s3_preflight_bucket}/{prefix}/\n"
    )
    config = config_of(f"duration: 1s\n{extra}{PUT_WORKLOAD}")
    result = run_preflight(config)
    err = single_error(result)
    assert err.endpoint == f"s3://127.0.0.1:{dead}/{s3_preflight_bucket}/{prefix}/"
    assert "multi_endpoint.endpoints[1]" in err.suggestion
    assert [c.level for c in result.find("s3.put")] == [Level.SUCCESS]
    assert s3_keys(seaweedfs, s3_preflight_bucket, prefix) == []


def test_per_agent_target_override_is_checked_for_that_agent(
    seaweedfs, s3_preflight_bucket, monkeypatch, tmp_path
) -> None:
    set_aws_env(monkeypatch, tmp_path)
    good = f"s3://127.0.0.1:{seaweedfs.port}/{s3_preflight_bucket}/{fresh()}/"
    bad = f"s3://127.0.0.1:{seaweedfs.port}/nobucket-{uuid.uuid4().hex[:8]}/p/"
    config = config_of(f"""
duration: 1s
target: {good}
distributed:
  shared_filesystem: false
  agents:
    - {{address: "127.0.0.1:7761", id: a1}}
    - {{address: "127.0.0.1:7762", id: a2, target_override: "{bad}"}}
{PUT_WORKLOAD}""")
    assert run_preflight(config, AgentIdentity("a1", 0, 2)).passed
    err = single_error(run_preflight(config, AgentIdentity("a2", 1, 2)))
    assert err.agent_id == "a2" and err.error_type is ErrorType.CONFIGURATION
    assert "distributed.agents[1].target_override" in err.suggestion


# -- Azure ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_azure_healthy_container_passes_and_leaves_no_probe(
    azurite, azure_preflight_container, monkeypatch, driver
) -> None:
    set_azure_env(monkeypatch, azurite.port)
    prefix = fresh()
    uri = f"az://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/{azure_preflight_container}/{prefix}/"
    result = run_preflight(cfg(uri, driver))
    assert result.passed, result.errors
    for name in ("azure.endpoint", "azure.bucket", "azure.list", "azure.put", "azure.get", "azure.delete"):
        assert [c.level for c in result.find(name)] == [Level.SUCCESS], name
    assert (
        result.find("azure.credentials")[0].details["credential_source"] == "AZURE_STORAGE_CONNECTION_STRING"
    )
    assert servers.AZURITE_KEY not in result.to_json()
    container = azure_container_client(azurite, azure_preflight_container)
    assert list(container.list_blobs(name_starts_with=prefix)) == []


def test_azure_missing_container_is_a_configuration_error(azurite, monkeypatch) -> None:
    set_azure_env(monkeypatch, azurite.port)
    name = f"nocontainer{uuid.uuid4().hex[:8]}"
    err = single_error(
        run_preflight(cfg(f"az://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/{name}/p/"))
    )
    assert (err.name, err.error_type) == ("azure.bucket", ErrorType.CONFIGURATION)
    assert f"create container {name}" in err.suggestion
    assert not azure_container_client(azurite, name).exists()


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_azure_wrong_key_is_an_authentication_error(
    azurite, azure_preflight_container, monkeypatch, driver
) -> None:
    set_azure_env(monkeypatch, azurite.port, key=WRONG_AZURE_KEY)
    prefix = fresh()
    uri = f"az://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/{azure_preflight_container}/{prefix}/"
    result = run_preflight(cfg(uri, driver))
    err = single_error(result)
    assert (err.name, err.error_type) == ("azure.list", ErrorType.AUTHENTICATION)
    assert "AccountKey" in err.suggestion and "AZURE_STORAGE_CONNECTION_STRING" in err.suggestion
    assert WRONG_AZURE_KEY not in result.to_json()
    container = azure_container_client(azurite, azure_preflight_container)
    assert list(container.list_blobs(name_starts_with=prefix)) == []


def test_azure_without_credentials_names_the_variables(azurite, monkeypatch) -> None:
    set_azure_env(monkeypatch, azurite.port)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING")
    err = single_error(run_preflight(cfg(f"az://127.0.0.1:{azurite.port}/{servers.AZURITE_ACCOUNT}/c/p/")))
    assert (err.name, err.error_type) == ("azure.credentials", ErrorType.AUTHENTICATION)
    assert "AZURE_STORAGE_CONNECTION_STRING" in err.suggestion


# -- GCS -----------------------------------------------------------------------------------------------------


def test_gcs_healthy_bucket_passes_and_leaves_no_probe(
    fake_gcs, gcs_preflight_bucket, monkeypatch, tmp_path
) -> None:
    """Write probe through the SDK driver (the native GCS PUT cannot work on fake-gcs-server, see
    ENVIRONMENT.md); the native driver is checked on a read-only workload below."""
    set_gcs_env(monkeypatch, fake_gcs, tmp_path)
    prefix = fresh()
    result = run_preflight(cfg(f"gs://127.0.0.1:{fake_gcs.port}/{gcs_preflight_bucket}/{prefix}/", "sdk"))
    assert result.passed, result.errors
    for name in ("gcs.endpoint", "gcs.bucket", "gcs.list", "gcs.put", "gcs.get", "gcs.delete"):
        assert [c.level for c in result.find(name)] == [Level.SUCCESS], name
    assert list(gcs_client(fake_gcs).list_blobs(gcs_preflight_bucket, prefix=prefix)) == []


def test_gcs_native_read_only_workload(fake_gcs, gcs_preflight_bucket, monkeypatch, tmp_path) -> None:
    set_gcs_env(monkeypatch, fake_gcs, tmp_path)
    prefix = fresh()
    gcs_client(fake_gcs).bucket(gcs_preflight_bucket).blob(f"{prefix}/x.dat").upload_from_string(b"abc")
    workload = '\nworkload:\n  - {op: get, path: "x.dat", weight: 1}\n'
    result = run_preflight(
        cfg(f"gs://127.0.0.1:{fake_gcs.port}/{gcs_preflight_bucket}/{prefix}/", "native", workload)
    )
    assert result.passed, result.errors
    assert [c.level for c in result.find("gcs.get_target")] == [Level.SUCCESS]
    assert not result.find("gcs.put")


@pytest.mark.parametrize("driver", ["sdk", "native"])
def test_gcs_missing_bucket_is_a_configuration_error(fake_gcs, monkeypatch, tmp_path, driver) -> None:
    set_gcs_env(monkeypatch, fake_gcs, tmp_path)
    bucket = f"nobucket-{uuid.uuid4().hex[:8]}"
    err = single_error(run_preflight(cfg(f"gs://127.0.0.1:{fake_gcs.port}/{bucket}/p/", driver)))
    assert (err.name, err.error_type) == ("gcs.bucket", ErrorType.CONFIGURATION)
    assert f"create bucket {bucket}" in err.suggestion
    assert bucket not in [b.name for b in gcs_client(fake_gcs).list_buckets()]


def test_gcs_without_credentials_names_the_variables(monkeypatch, tmp_path: Path) -> None:
    for name in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "none"))
    err = single_error(run_preflight(cfg("gs://127.0.0.1:1/bucket/p/")))
    assert (err.name, err.error_type) == ("gcs.credentials", ErrorType.AUTHENTICATION)
    assert "GOOGLE_APPLICATION_CREDENTIALS" in err.suggestion


@pytest.mark.parametrize("keep", ["", "AWS_ACCESS_KEY_ID"])
def test_s3_missing_credentials_name_the_variables(monkeypatch, tmp_path, keep) -> None:
    """No key pair (or half of one), no profile, metadata service disabled: stop before any request."""
    set_aws_env(monkeypatch, tmp_path)
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        if name != keep:
            monkeypatch.delenv(name)
    err = single_error(run_preflight(cfg("s3://127.0.0.1:1/bucket/p/")))
    assert (err.name, err.error_type) == ("s3.credentials", ErrorType.AUTHENTICATION)
    assert "AWS_SECRET_ACCESS_KEY" in err.suggestion
