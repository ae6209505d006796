"""The in-process runner: stage flags, preflight stopping the run before any I/O, Ctrl-C giving ABORTED with
partial results, and the results directory on every path."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sbench.cli import main

REPO = Path(__file__).resolve().parent.parent


def _write(tmp_path: Path, duration: str = "1s", extra: str = "", cleanup: str = "true") -> Path:
    root = tmp_path / "store"
    root.mkdir(exist_ok=True)
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"target: file://{root}/\nduration: {duration}\nconcurrency: 2\n{extra}"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: 50, size_spec: 2048}}\n"
        f"  cleanup: {cleanup}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 8}\n  - {op: put, path: 'out/', weight: 2, "
        "object_size: 1024}\nperf_log: {interval: 0.5s}\n"
    )
    return cfg


def _status(out: Path) -> str:
    return (out / "STATUS.txt").read_text().splitlines()[0]


def test_prepare_cleanup_only_in_the_config_is_the_cleanup_only_flag(tmp_path: Path, capsys) -> None:
    cfg = _write(tmp_path, cleanup="false")
    data = tmp_path / "store" / "data"
    assert main(["run", str(cfg), "--prepare-only", "--results-dir", str(tmp_path / "r1")]) == 0
    assert len(list(data.iterdir())) == 50
    cfg.write_text(cfg.read_text().replace("  cleanup: false\n", "  cleanup: false\n  cleanup_only: true\n"))
    assert main(["run", str(cfg), "--verify", "--results-dir", str(tmp_path / "r2")]) == 2
    assert "sets `prepare.cleanup_only: true`, which is --cleanup-only" in capsys.readouterr().err
    assert len(list(data.iterdir())) == 50
    assert main(["run", str(cfg), "--results-dir", str(tmp_path / "r3")]) == 0
    assert not list(data.iterdir())
    summary = json.loads((tmp_path / "r3" / "summary.json").read_text())
    assert summary["prepare"] is None and summary["workload"] is None


def test_prepare_only_then_verify_then_skip_prepare_then_cleanup_only(tmp_path: Path) -> None:
    cfg = _write(tmp_path, cleanup="false")
    data = tmp_path / "store" / "data"
    assert main(["run", str(cfg), "--prepare-only", "--results-dir", str(tmp_path / "r1")]) == 0
    assert len(list(data.iterdir())) == 50
    assert _tsv_count(tmp_path / "r1" / "workload_results.tsv") == 0  # header only: no workload ran
    assert main(["run", str(cfg), "--verify", "--results-dir", str(tmp_path / "r2")]) == 0
    assert "50 of 50 objects found" in (tmp_path / "r2" / "console_log.txt").read_text()
    assert main(["run", str(cfg), "--skip-prepare", "--results-dir", str(tmp_path / "r3")]) == 0
    summary = json.loads((tmp_path / "r3" / "summary.json").read_text())
    assert summary["prepare"] is None and summary["workload"]["totals"]["ops"] > 0
    assert main(["run", str(cfg), "--cleanup-only", "--results-dir", str(tmp_path / "r4")]) == 0
    assert not list(data.iterdir())
    assert "--cleanup-only has no record" in (tmp_path / "r4" / "console_log.txt").read_text()
    (data / "prepared-00000001.dat").unlink(missing_ok=True)
    assert main(["run", str(cfg), "--verify", "--results-dir", str(tmp_path / "r5")]) == 1
    assert _status(tmp_path / "r5") == "TEST STATUS: FAILURE"


def _tsv_count(path: Path) -> int:
    return len(path.read_text().strip().splitlines()) - 1


def test_preflight_error_stops_before_any_io(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        f"target: file://{blocker}/sub/\nduration: 1s\nconcurrency: 1\n"
        f"prepare:\n  ensure_objects:\n    - {{base_uri: 'file://{blocker}/sub/', count: 5}}\n"
        "workload:\n  - {op: get, path: '', weight: 1}\n"
    )
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--results-dir", str(out)]) == 1
    assert _status(out) == "TEST STATUS: FAILURE"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["preflight"]["passed"] is False
    assert [s["name"] for s in summary["stages"]] == ["preflight"]
    assert (out / "preflight.json").is_file()
    assert blocker.read_text() == "not a directory"


def test_empty_get_pool_is_a_config_error_with_results(tmp_path: Path) -> None:
    cfg = _write(tmp_path)  # --skip-prepare: the GET pool is listed, and nothing is there
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--skip-prepare", "--results-dir", str(out)]) == 2
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "FAILURE" and "matches no object" in summary["reason"]
    assert _status(out) == "TEST STATUS: FAILURE"


@pytest.mark.slow
def test_ctrl_c_aborts_quickly_with_partial_results(tmp_path: Path) -> None:
    cfg = _write(tmp_path, duration="60s")
    out = tmp_path / "r"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "sbench", "run", str(cfg), "--results-dir", str(out)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        perf = out / "perf_log.tsv"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # wait for a few workload intervals
            if perf.is_file() and perf.read_text().count("\tWorkload\t") >= 3:
                break
            time.sleep(0.1)
        else:
            pytest.fail("the workload never started")
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=20)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
    output = proc.stdout.read() if proc.stdout else ""
    assert code == 1, output
    assert took < 5.0, took
    assert _status(out) == "TEST STATUS: ABORTED"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "ABORTED" and "SIGINT" in summary["reason"]
    assert summary["workload"]["totals"]["ops"] > 0
    assert _tsv_count(out / "workload_results.tsv") > 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["status"] == "ABORTED"
    assert "ABORTED" in output


def test_multi_endpoint_run_writes_endpoint_stats(tmp_path: Path) -> None:
    a, b = tmp_path / "ep-a", tmp_path / "ep-b"
    a.mkdir()
    b.mkdir()
    cfg = tmp_path / "multi.yaml"
    cfg.write_text(
        f"duration: 1s\nconcurrency: 2\nmulti_endpoint:\n  endpoints: ['file://{a}/', 'file://{b}/']\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{a}/', use_multi_endpoint: true, count: 20, size_spec: 100}}\n"
        "workload:\n  - {op: put, path: 'out/', weight: 1, object_size: 100}\n")
    out = tmp_path / "r"
    assert main(["run", str(cfg), "--results-dir", str(out)]) == 0
    rows = (out / "workload_endpoint_stats.tsv").read_text().strip().splitlines()
    assert rows[0].split("\t")[:3] == ["endpoint_idx", "endpoint_uri", "total_requests"]
    requests = [int(r.split("\t")[2]) for r in rows[1:]]
    summary = json.loads((out / "summary.json").read_text())
    assert len(requests) == 2 and all(n > 0 for n in requests)
    assert sum(requests) == summary["workload"]["totals"]["ops"]
    # prepare places object i on endpoint i % 2 and its per-endpoint stats are measured too
    prep = (out / "prepare_endpoint_stats.tsv").read_text().strip().splitlines()
    prep_rows = [r.split("\t") for r in prep[1:]]
    # requests: 10 PUTs plus the one gap-fill LIST of that endpoint; bytes_written: 10 objects x 100 B
    assert [int(r[2]) for r in prep_rows] == [11, 11]
    assert [int(r[4]) for r in prep_rows] == [1000, 1000]
    assert summary["prepare"]["totals"]["ops"] == 20
