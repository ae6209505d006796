"""`prepare.key_prefix_shards: N` (sai3 HEAD v0.8.97): prepared names under `{idx % N:02x}/`, one rule for
prepare, the workload's pools, `--verify`, cleanup and `--cleanup-only`."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.config import load_config
from sbench.data.sizes import FixedSampler
from sbench.engine.indexset import IndexSet
from sbench.engine.state import PreparedRecord
from sbench.engine.uncleaned import not_cleaned
from sbench.errors import ConfigError
from sbench.layout.naming import parse_prepared_path, prepared_key
from sbench.storage.declared import DeclaredSpace


def _config(tmp_path: Path, *, shards: int = 16, cleanup: str = "false", ops: str = "") -> Path:
    root = tmp_path / "store"
    root.mkdir(exist_ok=True)
    cfg = tmp_path / "sharded.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.4s\nconcurrency: 2\n"
        f"prepare:\n  key_prefix_shards: {shards}\n  cleanup: {cleanup}\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 40, size_spec: 512}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n" + ops
    )
    return cfg


def _run(cfg: Path, out: Path, *flags: str) -> int:
    return main(["run", str(cfg), *flags, "--no-report", "--results-dir", str(out)])


def _names(data: Path) -> set[str]:
    return {str(p.relative_to(data)) for p in data.rglob("*.dat")}


def test_names_and_parse() -> None:
    assert prepared_key("prepared", 42) == "prepared-00000042.dat"
    assert prepared_key("prepared", 42, 16) == "0a/prepared-00000042.dat"
    assert prepared_key("deletable", 300, 1000) == "12c/deletable-00000300.dat"
    assert parse_prepared_path("0a/prepared-00000042.dat", 16) == ("prepared", 42)
    assert parse_prepared_path("0b/prepared-00000042.dat", 16) is None  # not its shard
    assert parse_prepared_path("prepared-00000042.dat", 16) is None
    assert parse_prepared_path("prepared-00000042.dat") == ("prepared", 42)
    assert parse_prepared_path("x/prepared-00000042.dat") is None


def test_declared_null_space_knows_sharded_names() -> None:
    space = DeclaredSpace("null://b/", ("prepared",), 40, FixedSampler(512), 7, shards=16)
    assert space.size_of("0a/prepared-00000026.dat") == 512  # 26 % 16 == 10
    assert space.size_of("prepared-00000026.dat") is None


def test_sharded_prepare_get_verify_cleanup_only(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    data = tmp_path / "store" / "data"
    assert _run(cfg, tmp_path / "r1") == 0
    names = _names(data)
    assert names == {prepared_key("prepared", i, 16) for i in range(40)}
    assert len({n.split("/")[0] for n in names}) == 16
    summary = json.loads((tmp_path / "r1" / "summary.json").read_text())
    workload = summary["workload"]["totals"]
    assert workload["ops"] > 0 and workload["errors"] == 0
    # a second run finds them all (gap fill lists the shard directories) and GETs them with --skip-prepare
    assert _run(cfg, tmp_path / "r2", "--prepare-only") == 0
    assert "0 objects created, 40 already there" in (tmp_path / "r2" / "console_log.txt").read_text()
    assert _run(cfg, tmp_path / "r3", "--verify") == 0
    assert "40 of 40 objects found" in (tmp_path / "r3" / "console_log.txt").read_text()
    assert _run(cfg, tmp_path / "r4", "--skip-prepare") == 0
    skip = json.loads((tmp_path / "r4" / "summary.json").read_text())["workload"]["totals"]
    assert skip["ops"] > 0 and skip["errors"] == 0
    # --cleanup-only rebuilds the same sharded names
    assert _run(cfg, tmp_path / "r5", "--cleanup-only") == 0
    assert _names(data) == set()


def test_sharded_cleanup_after_the_run(tmp_path: Path) -> None:
    cfg = _config(tmp_path, shards=4, cleanup="true")
    assert _run(cfg, tmp_path / "r") == 0
    assert _names(tmp_path / "store" / "data") == set()


def test_shards_with_a_tree_are_refused(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    cfg.write_text(
        cfg.read_text().replace(
            "  cleanup: false\n",
            "  cleanup: false\n  directory_structure: {width: 2, depth: 1, files_per_dir: 2}\n",
        )
    )
    with pytest.raises(ConfigError, match="key_prefix_shards"):
        load_config(cfg)


def test_dry_run_shows_the_shards(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", str(_config(tmp_path)), "--dry-run"]) == 0
    assert "key_prefix_shards 16" in capsys.readouterr().out


def test_left_behind_hint_for_sharded_names() -> None:
    record = PreparedRecord(0, "s3://b/data/", ("prepared",), 40, IndexSet(0, 40), True, shards=16)
    record.created.add(3)
    [left] = not_cleaned([record], [], 0)
    assert "--cleanup-only" in left.remove and "16 shard prefixes" in left.remove


def test_sharded_prepare_on_s3(seaweedfs, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SeaweedFS: 32 objects under 16 prefixes, GETs find every one, --cleanup-only removes the same names."""
    from tests.storage.fixtures_s3 import hermetic_aws_env, ready_bucket, s3_admin_client

    hermetic_aws_env(monkeypatch, tmp_path)
    ready_bucket(seaweedfs, "sbench-shards")
    prefix = f"shards-{uuid.uuid4().hex[:8]}"
    base = f"s3://127.0.0.1:{seaweedfs.port}/sbench-shards/{prefix}/"
    cfg = tmp_path / "s3.yaml"
    cfg.write_text(
        f"target: {base}\nduration: 0.4s\nconcurrency: 2\n"
        f"prepare:\n  key_prefix_shards: 16\n  ensure_objects:\n    - {{count: 32, size_spec: 256}}\n"
        "workload:\n  - {op: get, path: '', weight: 1}\n"
    )
    client = s3_admin_client(seaweedfs)
    try:
        def keys() -> list[str]:
            pages = client.get_paginator("list_objects_v2").paginate(Bucket="sbench-shards", Prefix=prefix)
            return [o["Key"][len(prefix) + 1 :] for page in pages for o in page.get("Contents", [])]

        assert _run(cfg, tmp_path / "r1") == 0
        assert sorted(keys()) == sorted(prepared_key("prepared", i, 16) for i in range(32))
        totals = json.loads((tmp_path / "r1" / "summary.json").read_text())["workload"]["totals"]
        assert totals["ops"] > 0 and totals["errors"] == 0
        assert _run(cfg, tmp_path / "r2", "--cleanup-only") == 0
        assert keys() == []
    finally:
        client.close()


def test_sharded_prepare_on_null(tmp_path: Path) -> None:
    """A null:// run with sharded names: prepare, GETs and cleanup agree (the declared space is above)."""
    cfg = tmp_path / "null.yaml"
    cfg.write_text(
        "target: null://shards/\nduration: 0.3s\nconcurrency: 2\n"
        "prepare:\n  key_prefix_shards: 8\n  cleanup: true\n"
        "  ensure_objects:\n    - {count: 24, size_spec: 64}\n"
        "workload:\n  - {op: get, path: '', weight: 1}\n"
    )
    assert _run(cfg, tmp_path / "r") == 0
    totals = json.loads((tmp_path / "r" / "summary.json").read_text())["workload"]["totals"]
    assert totals["ops"] > 0 and totals["errors"] == 0
