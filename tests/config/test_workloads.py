"""The shipped workloads/ examples all pass `sbench run --dry-run` with no environment set up."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbench.cli import main

WORKLOADS = Path(__file__).resolve().parents[2] / "workloads"
REQUIRED = {
    "quickstart.yaml",
    "s3-example.yaml",
    "azure-example.yaml",
    "gcs-example.yaml",
    "directory-tree.yaml",
    "distributed-two-agents.yaml",
}


def test_required_examples_exist() -> None:
    assert {p.name for p in WORKLOADS.glob("*.yaml")} >= REQUIRED


@pytest.mark.parametrize("name", sorted(p.name for p in WORKLOADS.glob("*.yaml")))
def test_workload_dry_runs(
    name: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("TMPDIR", "S3_BUCKET", "AZURE_STORAGE_ACCOUNT", "AZURE_CONTAINER", "GCS_BUCKET"):
        monkeypatch.delenv(var, raising=False)
    assert main(["run", str(WORKLOADS / name), "--dry-run"]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "Config is valid" in out
    assert "warning" not in err  # the examples use no inert or dubious keys


def test_quickstart_shape() -> None:
    from sbench.config import load_config
    from sbench.layout.paths import op_name

    config = load_config(WORKLOADS / "quickstart.yaml").config
    assert config.target is not None and config.target.startswith("file:///")
    assert config.duration == 10.0
    assert config.prepare is not None and config.prepare.cleanup
    assert sum(spec.count for spec in config.prepare.ensure_objects) == 1000
    weights = {op_name(op): op.weight for op in config.workload}
    assert weights == {"get": 70, "put": 20, "stat": 5, "list": 5}
    spec = config.prepare.ensure_objects[0].size_spec
    assert spec is not None and spec.kind in ("lognormal", "uniform")
