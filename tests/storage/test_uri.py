"""URI parsing: every accepted form, and errors that name the wrong part."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sbench.errors import ConfigError
from sbench.storage import registry
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend, register
from sbench.storage.uri import parse_uri


@pytest.mark.parametrize(
    ("uri", "scheme", "account", "bucket", "prefix", "endpoint"),
    [
        ("file:///tmp/data/", "file", None, "", "/tmp/data/", None),
        ("file://localhost/tmp/data", "file", None, "", "/tmp/data", None),
        ("file:///", "file", None, "", "/", None),
        ("direct:///mnt/nvme/bench/", "direct", None, "", "/mnt/nvme/bench/", None),
        ("s3://bucket", "s3", None, "bucket", "", None),
        ("s3://bucket/", "s3", None, "bucket", "", None),
        ("s3://my-bucket2/bench/", "s3", None, "my-bucket2", "bench/", None),
        ("s3://b/a/b/c", "s3", None, "b", "a/b/c", None),
        ("S3://b/x", "s3", None, "b", "x", None),
        ("s3://10.0.0.5:9000/bucket/pre/", "s3", None, "bucket", "pre/", "http://10.0.0.5:9000"),
        ("s3://host.example:443/b", "s3", None, "b", "", "http://host.example:443"),
        ("s3://[::1]:9000/b/p", "s3", None, "b", "p", "http://[::1]:9000"),
        ("s3://my.dotted.bucket/p", "s3", None, "my.dotted.bucket", "p", None),
        ("az://acct/container/pre/fix", "az", "acct", "container", "pre/fix", None),
        ("azure://acct/container", "az", "acct", "container", "", None),
        (
            "az://127.0.0.1:10000/devstoreaccount1/c/p",
            "az", "devstoreaccount1", "c", "p", "http://127.0.0.1:10000",
        ),
        ("gs://bucket/prefix/", "gs", None, "bucket", "prefix/", None),
        ("gcs://bucket/prefix", "gs", None, "bucket", "prefix", None),
        ("gs://127.0.0.1:4443/bucket/p", "gs", None, "bucket", "p", "http://127.0.0.1:4443"),
    ],
)
def test_accepted_forms(
    uri: str, scheme: str, account: str | None, bucket: str, prefix: str, endpoint: str | None
) -> None:
    parsed = parse_uri(uri)
    assert (parsed.scheme, parsed.account, parsed.bucket, parsed.prefix, parsed.endpoint) == (
        scheme, account, bucket, prefix, endpoint,
    )
    assert parsed.raw == uri
    assert parse_uri(parsed.root) == replace(parsed, raw=parsed.root)  # root is a canonical spelling


def test_https_endpoint() -> None:
    assert parse_uri("s3://h:9000/b", https=True).endpoint == "https://h:9000"


def test_key_helpers() -> None:
    parsed = parse_uri("s3://b/runs/one")
    assert parsed.key_prefix == "runs/one/"
    assert parsed.object_key("k/x.dat") == "runs/one/k/x.dat"
    assert parsed.relative_key("runs/one/k/x.dat") == "k/x.dat"
    assert parsed.child("agent-1/").prefix == "runs/one/agent-1/"
    assert parsed.child("agent-1/").root == "s3://b/runs/one/agent-1/"
    assert parse_uri("s3://b").object_key("k") == "k"
    assert parse_uri("file:///tmp/x").object_key("a") == "/tmp/x/a"


@pytest.mark.parametrize(
    ("uri", "names"),
    [
        ("", "Empty"),
        ("/tmp/data", "no scheme"),
        ("ftp://host/x", "'ftp'"),
        ("file://tmp/data", "'tmp'"),
        ("file:", "no scheme"),
        ("direct://relative", "'relative'"),
        ("s3://", "bucket name is missing"),
        ("s3://host:9000/", "bucket name is missing"),
        ("s3://host:abc/b", "port 'abc'"),
        ("s3://host:70000/b", "port '70000'"),
        ("s3://bad bucket/x", "'bad bucket'"),
        ("s3://b/a//c", "'a//c'"),
        ("az://account", "container name is missing"),
        ("az://", "storage account name is missing"),
        ("gs://bu*ket/x", "'bu*ket'"),
    ],
)
def test_errors_name_the_wrong_part(uri: str, names: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_uri(uri)
    assert names in str(excinfo.value)
    assert excinfo.value.hint  # every URI error says what to write instead


def test_registry_unknown_module_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, "file", "sbench.storage.no_such_driver:open_it")
    with pytest.raises(ConfigError) as excinfo:
        open_backend("file:///tmp/")
    assert "not built" in str(excinfo.value)


def test_register_replaces_a_schemes_factory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, "file", registry._REGISTRY["file"])
    register("file", "sbench.storage.null:open_null")
    assert type(open_backend("file:///tmp/")).__name__ == "NullBackend"
    with pytest.raises(ValueError, match="module:function"):
        register("file", "sbench.storage.null")


def test_registry_missing_package_names_pip_install(tmp_path, monkeypatch) -> None:
    """A driver whose client library is absent: the error names the pip package, not a traceback."""
    module = tmp_path / "sbench_fake_driver.py"
    module.write_text("import azure.not_installed_pkg\n\ndef open_it(parsed, options):\n    return None\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    # the registry's own entry comes back after the test (a hand-written restore once left a stale one)
    monkeypatch.setitem(registry._REGISTRY, "az", "sbench_fake_driver:open_it")
    with pytest.raises(ConfigError) as excinfo:
        open_backend("az://acct/cont/p", BackendOptions())
    assert "pip install azure-storage-blob" in str(excinfo.value)


def test_open_backend_accepts_parsed_uri(tmp_path) -> None:
    backend = open_backend(parse_uri(f"file://{tmp_path}/"))
    assert backend.root_uri == f"file://{tmp_path}/"
