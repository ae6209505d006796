"""Issue 14 #1 and #2 at the config layer: `backend_options` keys a store or driver cannot honour are refused
with exit 2 naming the key and the reason; `s3dlio_optimization`'s range keys land on `range_engine` and
the rest is refused; `distributed_env` / `agents[].env` values are secrets (never in a repr, redacted from
the copy of the file); the dry-run shows each driver's client settings."""

from __future__ import annotations

import io
import textwrap
from pathlib import Path

import pytest
from rich.console import Console

from sbench.cli import main
from sbench.config import load_config_text
from sbench.config.runoptions import RunOptions
from sbench.errors import ConfigError
from sbench.ui.dryrun import print_dry_run

S3 = "s3://s3.example.com:9000/bkt/p/"
WORKLOAD = "workload: [{op: put, path: k, weight: 1}]\n"


def _refusal(capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str) -> str:
    """The error `sbench run --dry-run` prints for `text`, after checking it exits 2."""
    path = tmp_path / "w.yaml"
    path.write_text(textwrap.dedent(text) + WORKLOAD)
    assert main(["run", str(path), "--dry-run"]) == 2
    return capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "key", "why"),
    [
        (
            "target: az://acct/c/\nbackend_options: {region: eu-west-1}\n",
            "backend_options.region",
            "Azure Blob storage clients have no region setting",
        ),
        (
            "target: gs://bkt/p/\nbackend_options: {path_style: true}\n",
            "backend_options.path_style",
            "one addressing style",
        ),
        (
            "target: az://acct/c/\nbackend_options: {path_style: false}\n",
            "backend_options.path_style",
            "az:// addressing follows the URI",
        ),
        (
            "target: s3://10.0.0.5:9000/b/\nbackend_options: {path_style: false}\n",
            "backend_options.path_style",
            "10.0.0.5 is an IP address",
        ),
        (
            "target: gs://bkt/p/\ndriver: sdk\nbackend_options: {multipart_threshold: 5MiB}\n",
            "backend_options.multipart_threshold",
            "fixed 8.00 MiB",
        ),
        (
            f"target: {S3}\nbackend_options: {{multipart_part_size: 1MiB}}\n",
            "backend_options.multipart_part_size",
            "below the 5 MiB that S3 requires",
        ),
        (
            f"target: {S3}\nconcurrency: 8\nbackend_options: {{max_connections: 4}}\n",
            "backend_options.max_connections",
            "below the 8 requests this agent can have in flight",
        ),
        (
            f"target: {S3}\nrequest_timeout: 5s\nbackend_options: {{connect_timeout: 10s}}\n",
            "backend_options.connect_timeout",
            "longer than the request timeout 5s",
        ),
        (
            f"target: {S3}\nrequest_timeout: 5s\nbackend_options: {{request_timeout: 10s}}\n",
            "backend_options.request_timeout",
            "is set twice",
        ),
        (
            "target: file:///tmp/x/\nbackend_options: {verify_tls: false}\n",
            "backend_options.verify_tls",
            "file:// location, which no client opens",
        ),
        (
            f"multi_endpoint:\n  endpoints: [{S3}]\n  backend_options: {{multipart_part_size: 2MiB}}\n",
            "multi_endpoint.backend_options.multipart_part_size",
            "below the 5 MiB",
        ),
        (
            f"target: {S3}\ndistributed:\n  shared_filesystem: true\n  agents:\n    - address: localhost\n"
            "      multi_endpoint: {endpoints: [gs://b/p/], backend_options: {region: x}}\n",
            "distributed.agents[0].multi_endpoint.backend_options.region",
            "Google Cloud Storage clients have no region",
        ),
    ],
)
def test_a_key_that_cannot_be_honoured_exits_2_naming_it(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, text: str, key: str, why: str
) -> None:
    err = _refusal(capsys, tmp_path, text)
    assert f": {key}: " in err and why in err, err


def test_a_key_for_one_store_is_not_refused_for_another_blocks_endpoints() -> None:
    """region applies to S3: a gs:// multi_endpoint block that sets it back to null is fine."""
    load_config_text(
        f"target: {S3}\nbackend_options: {{region: eu-west-1}}\n"
        "multi_endpoint: {endpoints: [gs://b/p/], backend_options: {region: null}}\n" + WORKLOAD
    )


def test_max_connections_is_checked_against_each_processs_share_of_concurrency() -> None:
    """`processes: 4` splits concurrency 64 into 16 workers per process: a pool of 16 holds."""
    load_config_text(
        f"target: {S3}\nconcurrency: 64\nprocesses: 4\nbackend_options: {{max_connections: 16}}\n" + WORKLOAD
    )


def test_s3dlio_range_keys_become_range_engine_keys() -> None:
    config = load_config_text(
        f"target: {S3}\ns3dlio_optimization: {{enable_range_downloads: true, range_threshold_mb: 32, "
        "range_concurrency: 8, chunk_size_mb: 4, auto_threads: true}\n" + WORKLOAD
    ).config
    rng = config.range_engine
    assert (rng.enabled, rng.min_split_size, rng.max_concurrent_ranges, rng.chunk_size) == (
        True,
        32 << 20,
        8,
        4 << 20,
    )


@pytest.mark.parametrize(
    ("block", "key", "why"),
    [
        ("{h2c: true}", "s3dlio_optimization.h2c", "HTTP/2"),
        ("{gcs_channel_count: 4}", "s3dlio_optimization.gcs_channel_count", "gRPC"),
        ("{tokio_worker_threads: 8}", "s3dlio_optimization.tokio_worker_threads", "tokio runtime"),
        ("{auto_threads: false}", "s3dlio_optimization.auto_threads", "only True is accepted"),
        ("{range_threshold_mb: big}", "s3dlio_optimization.range_threshold_mb", "number of MiB"),
        (
            "{range_concurrency: 4}\nrange_engine: {max_concurrent_ranges: 2}",
            "s3dlio_optimization.range_concurrency",
            "which the file also sets",
        ),
        ("{rt_threads: 4}", "s3dlio_optimization.rt_threads", "unknown key"),
    ],
)
def test_s3dlio_keys_without_an_equivalent_exit_2_naming_them(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, block: str, key: str, why: str
) -> None:
    err = _refusal(capsys, tmp_path, f"target: {S3}\ns3dlio_optimization: {block}\n")
    assert f": {key}: " in err and why in err, err


SECRET = "env-sentinel-5f0e2b"


def test_env_values_are_secrets_expanded_from_the_environment_and_redacted_from_the_copy(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SECRET_SOURCE", SECRET)
    loaded = load_config_text(
        f"target: {S3}\ndistributed_env: {{AWS_SECRET_ACCESS_KEY: {SECRET}, N: 3}}\n"
        "distributed:\n  shared_filesystem: true\n  agents:\n    - address: localhost\n      env:\n"
        "        TOKEN: ${SECRET_SOURCE}\n        BLOCK: |\n          " + SECRET + "\n" + WORKLOAD
    )
    config = loaded.config
    agent = config.distributed.agents[0]
    assert (
        agent.env["TOKEN"].get_secret_value() == SECRET
        and agent.env["BLOCK"].get_secret_value() == SECRET + "\n"
    )
    assert config.distributed_env["N"].get_secret_value() == "3"
    assert SECRET not in repr(config) and SECRET not in loaded.source_text
    assert (
        "AWS_SECRET_ACCESS_KEY: '<redacted>'" in loaded.source_text
        and "TOKEN: '<redacted>'" in loaded.source_text
    )
    assert load_config_text(loaded.source_text).config.workload  # the copy is still a valid file


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("SBENCH_AGENT_ID", "sbench sets SBENCH_*"),
        ("RAY_ADDRESS", "Ray reads"),
        ("1BAD", "not an environment variable name"),
    ],
)
def test_env_names_sbench_or_ray_own_are_refused(name: str, why: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config_text(f"target: {S3}\ndistributed_env: {{{name}: x}}\n" + WORKLOAD)
    assert "distributed_env" in str(caught.value) and why in str(caught.value)


def test_dry_run_shows_what_each_driver_uses_and_env_names_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    loaded = load_config_text(
        f"target: {S3}\nconcurrency: 4\ndistributed_env: {{AWS_SESSION_TOKEN: {SECRET}}}\n"
        "backend_options: {verify_tls: false, max_connections: 32, region: eu-west-1, path_style: false}\n"
        "multi_endpoint:\n  endpoints: [gs://b1/p/, gs://b2/p/]\n  driver: sdk\n"
        "  backend_options: {request_timeout: 3s, multipart_part_size: 1MiB, region: null,\n"
        "                    path_style: null}\n" + WORKLOAD
    )
    buffer = io.StringIO()
    print_dry_run(loaded, RunOptions(dry_run=True), Path("w.yaml"), console=Console(file=buffer, width=400))
    out = buffer.getvalue()
    s3_row = next(
        line for line in out.splitlines() if "│ s3://s3.example.com:9000/bkt/p/" in line and "obstore" in line
    )
    assert "pool_max_idle_per_host 32" in s3_row and "allow_invalid_certificates" in s3_row
    assert "virtual-hosted" in s3_row and "region eu-west-1" in s3_row and "timeout 2m" in s3_row
    gs_row = next(
        line for line in out.splitlines() if "│ gs://b1/p/" in line and "google-cloud-storage" in line
    )
    assert "timeout 3s" in gs_row and "chunks of 1.00 MiB" in gs_row and "verify=False" in gs_row
    assert "all agents: AWS_SESSION_TOKEN (values not shown)" in out and SECRET not in out
