"""The round trip in process on file:// (and on SeaweedFS with the native driver): a mixed run with
prepare and cleanup writes an op-log whose rows per class and errors are the counts of its result files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbench.cli import main
from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.oplog.capture import active
from sbench.run.launch import run
from tests import servers
from tests.oplog.roundtrip import check, mixed_config
from tests.storage.fixtures_s3 import hermetic_aws_env, ready_bucket

#: prepare's gap-fill LIST of data/, and the PUT cleanup's LIST of out/
SETUP_LISTS = 2


def _run(tmp_path: Path, text: str, **flags: object) -> tuple[int, Path]:
    path = tmp_path / "run.yaml"
    path.write_text(text)
    results = tmp_path / "results"
    code = run(load_config(path), RunOptions(results_dir=results, **flags), path, on_ray=False)  # type: ignore[arg-type]
    assert active() is None  # the capture ends with the run
    return code, results


def test_file_round_trip_with_a_relative_path_in_the_results_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SBENCH_CLIENT_ID", raising=False)
    root = tmp_path / "root"
    root.mkdir()
    code, results = _run(tmp_path, mixed_config(f"file://{root}/"), op_log=Path("ops.tsv.zst"))
    log = results / "ops.tsv.zst"
    assert log.read_bytes()[:4] == b"\x28\xb5\x2f\xfd"
    rows = check(results, log, SETUP_LISTS)
    ops = {r.op for r in rows}
    assert ops == {"GET", "PUT", "HEAD", "LIST", "DELETE"}
    assert any(r.error.startswith("not_found") for r in rows)  # strict cleanup's errors are rows too
    assert code == 1 and "strict" in (results / "STATUS.txt").read_text()
    assert {r.client_id for r in rows} == {"standalone"}
    assert all(r.endpoint == "file://" and r.file.startswith(f"{root}/") for r in rows)
    assert not list(results.glob(".*part*"))


def test_config_op_log_path_and_client_id_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SBENCH_CLIENT_ID", "host-7")
    root = tmp_path / "root"
    root.mkdir()
    log = tmp_path / "abs" / "plain.tsv"
    text = (f"target: file://{root}/\nduration: 0.3s\nconcurrency: 1\nop_log_path: {log}\n"
            "workload:\n  - {op: put, path: out/, object_size: 10, weight: 1}\n")
    code, results = _run(tmp_path, text)
    assert code == 0 and log.read_bytes()[:3] == b"idx"  # not .zst: plain text
    rows = check(results, log, 0)
    assert rows and {r.client_id for r in rows} == {"host-7"}
    assert json.loads((results / "summary.json").read_text())["op_log"]["path"] == str(log)


def test_without_an_op_log_nothing_is_captured(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    code, results = _run(
        tmp_path, f"target: file://{root}/\nduration: 0.2s\nworkload:\n  - {{op: put, path: o/, weight: 1}}\n"
    )
    assert code == 0 and json.loads((results / "summary.json").read_text())["op_log"] is None
    assert not [p for p in results.rglob("*") if "op_log" in p.name or p.name.endswith(".zst")]


def test_the_global_flag_is_the_run_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "root"
    root.mkdir()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: 0.2s\nworkload:\n  - {{op: put, path: o/, weight: 1}}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["--op-log", "g.tsv.zst", "run", str(cfg), "--results-dir", "res"]) == 0
    assert (tmp_path / "res" / "g.tsv.zst").is_file()


def test_seaweedfs_round_trip_native_driver(
    seaweedfs: servers.LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The native driver's workers as asyncio tasks (pinned: `auto` picks threads for these small objects):
    the async wrapper's calls are rows too."""
    hermetic_aws_env(monkeypatch, tmp_path)
    bucket = "sbench-oplog"
    ready_bucket(seaweedfs, bucket)
    target = f"s3://127.0.0.1:{seaweedfs.port}/{bucket}/rt/"
    code, results = _run(tmp_path, mixed_config(target, "driver: native\nworkers: {mode: asyncio}\n"),
                         op_log=Path("ops.tsv.zst"))
    rows = check(results, results / "ops.tsv.zst", SETUP_LISTS)
    summary = json.loads((results / "summary.json").read_text())
    assert [s["details"].get("async") for s in summary["stages"] if s["type"] == "execute"] == [True]
    assert {r.endpoint for r in rows} == {f"s3://127.0.0.1:{seaweedfs.port}"}
    assert all(r.file.startswith(f"127.0.0.1:{seaweedfs.port}/{bucket}/rt/") for r in rows)
    assert {r.bytes for r in rows if r.op == "PUT"} == {1024, 2048}
    not_found = sum(r.error.startswith("not_found") for r in rows)
    assert code == (1 if not_found else 0)  # strict cleanup fails on objects the workload deleted
