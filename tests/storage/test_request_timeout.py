"""`request_timeout` reaches every cloud driver: a GET against a server that accepts connections and never
answers fails as a `timeout` error within the configured time (1 s here, instead of the default 2 min)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from sbench.config.backend import backend_options
from sbench.storage.base import ErrorClass, StorageError
from sbench.storage.registry import open_backend
from tests import servers
from tests.engine.helpers import config_from
from tests.stallproxy import StallProxy
from tests.storage.fixtures_cloud import clear_azure_env, clear_gcs_env
from tests.storage.fixtures_s3 import hermetic_aws_env

CASES = [(scheme, driver) for scheme in ("s3", "az", "gs") for driver in ("sdk", "native")]


def _point_at(scheme: str, port: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    """The URI of a bucket on 127.0.0.1:port, with the variables that send the scheme's clients there."""
    if scheme == "s3":
        hermetic_aws_env(monkeypatch, tmp_path)
        return f"s3://127.0.0.1:{port}/stalled/prefix/"
    if scheme == "az":
        clear_azure_env(monkeypatch)
        monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", servers.azurite_connection_string(port))
        return f"az://{servers.AZURITE_ACCOUNT}/stalled/prefix/"
    clear_gcs_env(monkeypatch, str(tmp_path))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", f"http://127.0.0.1:{port}")
    return "gs://stalled/prefix/"


@pytest.mark.parametrize(("scheme", "driver"), CASES)
def test_get_from_a_store_that_never_answers_fails_as_timeout_in_time(
    scheme: str, driver: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with StallProxy() as server:  # no upstream: accepts, reads the request, never answers
        uri = _point_at(scheme, server.port, monkeypatch, tmp_path)
        config = config_from(
            f"target: {uri}\nrequest_timeout: 1s\ndriver: {driver}\n"
            "workload: [{op: get, path: k, weight: 1}]\n"
        )
        backend = open_backend(uri, backend_options(config, uri))
        try:
            t0 = time.monotonic()
            with pytest.raises(StorageError) as caught:
                backend.get("some-object")
            took = time.monotonic() - t0
        finally:
            backend.close()
    assert caught.value.kind is ErrorClass.TIMEOUT, caught.value
    assert server.counts.stalled >= 1  # the request did reach the server
    assert 0.8 <= took < 3.0, took
