"""Results directory: naming, config copy, metadata.json, console tee, refusal to mix runs."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from sbench.errors import ConfigError
from sbench.results.resultsdir import ResultsDir


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "cfg" / "my-test.yaml"
    path.parent.mkdir()
    path.write_text("# comment kept verbatim\nduration: 1s\nworkload:\n  - {op: get, path: x}\n")
    return path


def test_default_directory_name_and_files(tmp_path: Path, config_file: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    rd = ResultsDir.create(None, config_file, command_line=["sbench", "run"], run_id="r1", stream=out)
    assert re.fullmatch(r"sbench-\d{8}-\d{6}-my-test", rd.path.name)
    assert rd.path.parent == tmp_path
    assert (rd.path / "config.yaml").read_text() == config_file.read_text()
    meta = json.loads((rd.path / "metadata.json").read_text())
    assert meta["end_time"] is None  # written at start too, so a killed run has one
    rd.console.print("hello")
    rd.console.record("file only")
    rd.finalize("SUCCESS")
    assert out.getvalue() == "hello\n"
    assert (rd.path / "console_log.txt").read_text() == "hello\nfile only\n"
    meta = json.loads((rd.path / "metadata.json").read_text())
    for key in (
        "version",
        "test_name",
        "config_path",
        "start_time",
        "end_time",
        "duration_secs",
        "command_line",
        "hostname",
        "distributed",
        "agents",
        "load_model",
        "run_id",
    ):
        assert key in meta
    assert meta["test_name"] == "my-test"
    assert meta["status"] == "SUCCESS"
    assert meta["command_line"] == ["sbench", "run"]
    assert meta["duration_secs"] >= 0


def test_second_run_in_same_second_gets_a_suffix(tmp_path: Path, config_file: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    a = ResultsDir.create(None, config_file, now=1_700_000_000.0, stream=io.StringIO())
    b = ResultsDir.create(None, config_file, now=1_700_000_000.0, stream=io.StringIO())
    assert a.path != b.path
    assert b.path.name == a.path.name + "-2"


def test_explicit_directory_and_file_names(tmp_path: Path, config_file: Path) -> None:
    rd = ResultsDir.create(
        tmp_path / "out" / "run1",
        config_file,
        config_text="duration: 2s\n",
        distributed=True,
        agents=["agent-1", "agent-2"],
        stream=io.StringIO(),
    )
    assert (rd.path / "config.yaml").read_text() == "duration: 2s\n"
    assert rd.results_tsv("workload").name == "workload_results.tsv"
    assert rd.endpoint_stats_tsv("prepare").name == "prepare_endpoint_stats.tsv"
    assert rd.stage_tsv(2, "prepare objects").name == "02_prepare_objects_results.tsv"
    assert rd.agent_dir("agent-1") == rd.path / "agents" / "agent-1"
    writer = rd.perf_log()
    assert writer.agent_id == "controller"
    writer.close()
    agent_writer = rd.perf_log("agent-2")
    assert agent_writer.path == rd.path / "agents" / "agent-2" / "perf_log.tsv"
    agent_writer.close()


def test_refuses_a_non_empty_explicit_directory(tmp_path: Path, config_file: Path) -> None:
    used = tmp_path / "used"
    used.mkdir()
    (used / "old.tsv").write_text("x")
    with pytest.raises(ConfigError, match="already holds files"):
        ResultsDir.create(used, config_file, stream=io.StringIO())


def test_write_phase_adds_endpoint_stats_only_with_endpoints(tmp_path: Path, config_file: Path) -> None:
    from sbench.metrics.snapshot import Snapshot

    rd = ResultsDir.create(tmp_path / "r", config_file, stream=io.StringIO())
    assert [p.name for p in rd.write_phase("prepare", Snapshot(), 1.0)] == ["prepare_results.tsv"]
    snap = Snapshot()
    snap.set_endpoints([{"uri": "file:///a", "requests": 1}])
    names = [p.name for p in rd.write_phase("workload", snap, 1.0)]
    assert names == ["workload_results.tsv", "workload_endpoint_stats.tsv"]
