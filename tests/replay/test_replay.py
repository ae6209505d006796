"""`sbench replay` on one host: round trips from a captured run (file:// and SeaweedFS), the unsorted zstd
fixture, timing at --speed, the verdict, bad logs, backpressure transitions and a drain, Ctrl-C."""

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
from sbench.config import load_config
from sbench.config.runoptions import RunOptions
from sbench.oplog.format import NS
from sbench.oplog.reader import read_rows
from sbench.run.launch import run
from tests import servers
from tests.replay.logs import write_log
from tests.storage.fixtures_s3 import hermetic_aws_env, ready_bucket, s3_admin_client

FIXTURE = Path(__file__).resolve().parent.parent / "oplog" / "fixtures" / "s3dlio_unsorted.tsv.zst"
REPO = Path(__file__).resolve().parent.parent.parent


def _status(results: Path) -> str:
    return (results / "STATUS.txt").read_text().splitlines()[0].split(":", 1)[1].strip()


def _summary(results: Path) -> dict:
    return json.loads((results / "summary.json").read_text())


def _capture_puts(tmp_path: Path, target: str, extra: str = "") -> Path:
    """A PUT/LIST run with an op-log (no prepare, nothing cleaned): the log of what it created."""
    cfg = tmp_path / "run.yaml"
    cfg.write_text(f"""
target: "{target}"
duration: 1s
concurrency: 2
workload:
  - {{op: put, path: "out/", size_spec: {{type: uniform, min: 1KiB, max: 8KiB}}, weight: 80}}
  - {{op: list, path: "out/", weight: 20}}
{extra}""")
    results = tmp_path / "captured"
    options = RunOptions(results_dir=results, op_log=Path("ops.tsv.zst"), no_report=True)
    code = run(load_config(cfg), options, cfg, on_ray=False)
    assert code == 0
    return results / "ops.tsv.zst"


def _created(log: Path) -> dict[str, int]:
    """file column -> size of every object the log leaves behind (PUTs minus later DELETEs)."""
    out: dict[str, int] = {}
    for row in read_rows(log):
        if row.error:
            continue
        if row.op == "PUT":
            out[row.file] = row.bytes
        elif row.op == "DELETE":
            out.pop(row.file, None)
    return out


def test_file_round_trip_to_a_fresh_prefix(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()
    log = _capture_puts(tmp_path, f"file://{tmp_path}/src/")
    fresh = tmp_path / "fresh"
    results = tmp_path / "replayed"
    assert main(["replay", "--op-log", str(log), "--target", f"file://{fresh}/", "--speed", "4",
                 "--results-dir", str(results)]) == 0
    created = _created(log)
    assert len(created) > 10
    for file, size in created.items():
        assert (fresh / file.lstrip("/")).stat().st_size == size
    summary = _summary(results)
    assert _status(results) == "SUCCESS" and summary["load_model"]["agents"]["standalone"]["async"] is False
    ops = {row.op for row in read_rows(log)}
    assert ops == {"PUT", "LIST"}
    assert summary["load_model"]["ops_succeeded"] == sum(1 for _ in read_rows(log))
    assert summary["workload"]["operations"]["PUT"]["ops"] == sum(r.op == "PUT" for r in read_rows(log))
    for name in ("workload_results.tsv", "01_replay_results.tsv", "perf_log.tsv", "metadata.json",
                 "config.yaml", "console_log.txt"):
        assert (results / name).is_file(), name


def test_seaweedfs_round_trip_to_a_fresh_prefix(
    seaweedfs: servers.LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hermetic_aws_env(monkeypatch, tmp_path)
    bucket = "sbench-replay"
    ready_bucket(seaweedfs, bucket)
    authority = f"127.0.0.1:{seaweedfs.port}"
    log = _capture_puts(tmp_path, f"s3://{authority}/{bucket}/src/")
    results = tmp_path / "replayed"
    assert main(["replay", "--op-log", str(log), "--target", f"s3://{authority}/{bucket}/fresh/",
                 "--speed", "4", "--results-dir", str(results)]) == 0
    agent = _summary(results)["load_model"]["agents"]["standalone"]
    assert agent["async"] is True  # the native driver's calls run as asyncio tasks, as in the engine
    client = s3_admin_client(seaweedfs)
    try:
        for file, size in _created(log).items():
            key = "fresh/" + file[len(f"{authority}/"):]  # file = host:port/bucket/src/out/..
            assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == size
    finally:
        client.close()


def test_the_unsorted_zstd_fixture_replays_with_its_own_op_log(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    results = tmp_path / "r"
    code = main(["replay", "--op-log", str(FIXTURE), "--target", f"file://{tmp_path}/t/",
                 "--continue-on-error",
                 "--results-dir", str(results), "--capture", "own.tsv"])
    out = capsys.readouterr().out
    assert "rows start before the row above them" in out and "sorting 8 rows" in out
    assert code == 0 and _status(results) == "SUCCESS"
    assert (tmp_path / "t" / "mnt" / "data" / "big.bin").stat().st_size == 65536
    assert not (tmp_path / "t" / "data" / "obj-0002.dat").exists()  # PUT, then DELETE
    own = list(read_rows(results / "own.tsv"))
    logged = sorted(read_rows(FIXTURE), key=lambda r: r.start_ns)
    assert [r.op for r in own] == [r.op for r in logged]  # replayed in start order
    # relative timing kept: each op starts at its logged offset from the first op (a replay that ignored
    # the timestamps would start them all at once, up to 1 s early); on a busy 2-core machine a worker's
    # wake-up, the first op's included, can come tens of ms late, so the bounds leave room for that
    for mine, theirs in zip(own, logged, strict=True):
        want = (theirs.start_ns - logged[0].start_ns) / NS
        late = (mine.start_ns - own[0].start_ns) / NS - want
        assert -0.1 < late < 0.5, (theirs.op, want, late)
    summary = _summary(results)
    assert summary["load_model"]["ops_failed"] == 4 and summary["load_model"]["ops_succeeded"] == 4


def test_speed_2_halves_the_schedule(tmp_path: Path) -> None:
    log = write_log(tmp_path / "l.tsv", [(i * 0.1, "MKDIR", f"bench/d{i}", 0) for i in range(21)])
    results = tmp_path / "r"
    began = time.monotonic()
    assert main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/", "--speed", "2",
                 "--results-dir", str(results), "--capture", "own.tsv"]) == 0
    wall = time.monotonic() - began
    own = list(read_rows(results / "own.tsv"))
    span = (own[-1].start_ns - own[0].start_ns) / NS
    assert abs(span - 1.0) < 0.1, span  # a 2 s log at speed 2: 1 s, +-10%
    assert wall < 4.0


def _failed_replay(tmp_path: Path, entries: list[tuple[float, str, str, int]]) -> dict:
    """Replay `entries` (without --continue-on-error) into file://tmp_path/t/; it must exit 1 with FAILURE:
    its summary.json."""
    log = write_log(tmp_path / "l.tsv", entries)
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/",
                 "--results-dir", str(results)]) == 1
    assert _status(results) == "FAILURE"
    return _summary(results)


def test_without_continue_on_error_the_first_failure_stops_the_replay(tmp_path: Path) -> None:
    summary = _failed_replay(tmp_path, [(0.0, "GET", "bench/missing", 10)]
                             + [(0.2 + i * 0.05, "PUT", f"bench/k{i}", 100) for i in range(5)])
    figures = summary["load_model"]
    assert figures["ops_failed"] == 1 and figures["ops_not_replayed"] == 5
    assert "--continue-on-error" in summary["reason"]


def test_an_op_raising_an_unexpected_exception_fails_it_and_keeps_the_verdict(tmp_path: Path) -> None:
    """A logged key with a NUL byte makes os.open raise ValueError, not a storage error: the op is a failed
    op like any other (it once killed its worker thread, and the replay said SUCCESS)."""
    summary = _failed_replay(tmp_path, [(0.0, "PUT", "bench/first", 10), (0.1, "GET", "bench/a\x00b", 10)]
                             + [(0.3 + i * 0.05, "PUT", f"bench/k{i}", 100) for i in range(3)])
    figures = summary["load_model"]
    assert figures["ops_failed"] == 1 and figures["ops_not_replayed"] == 3
    assert "null byte" in summary["reason"]


def test_a_gap_in_the_log_longer_than_stall_timeout_is_not_a_stall(tmp_path: Path) -> None:
    """Nothing due and nothing in flight for 3 s with a 1 s stall_timeout: idle by design, the replay
    succeeds (a store that stops answering is tests/faults/test_replay_faults.py)."""
    log = write_log(tmp_path / "l.tsv", [(0.0, "PUT", "bench/a", 10), (3.0, "PUT", "bench/b", 10)])
    config = tmp_path / "bp.yaml"
    config.write_text("stall_timeout: 1s\n")
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/", "--config", str(config),
                 "--results-dir", str(results)]) == 0
    assert _status(results) == "SUCCESS"
    assert _summary(results)["load_model"]["ops_succeeded"] == 2


def test_every_op_failing_is_a_failure(tmp_path: Path) -> None:
    log = write_log(tmp_path / "l.tsv", [(i * 0.01, "GET", f"bench/missing{i}", 10) for i in range(3)])
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/", "--continue-on-error",
                 "--results-dir", str(results)]) == 1
    assert _status(results) == "FAILURE"
    assert "all 3 ops failed" in (results / "STATUS.txt").read_text()


def test_a_malformed_line_exits_2_with_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    log = write_log(tmp_path / "l.tsv", [(0.0, "PUT", "bench/a", 1), (0.1, "PUT", "bench/b", 1)])
    lines = log.read_text().splitlines()
    lines[2] = lines[2].replace("\t1\ts3://", "\tmany\ts3://")
    log.write_text("\n".join(lines) + "\n")
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", f"file://{tmp_path}/t/",
                 "--results-dir", str(results)]) == 2
    assert f"{log}:3: bytes: not a whole number: 'many'" in capsys.readouterr().err
    assert not results.exists() and not (tmp_path / "t").exists()  # nothing ran


def test_dry_run_prints_the_plan_and_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["replay", "--op-log", str(FIXTURE), "--target", f"file://{tmp_path}/t/", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "ops to replay: 8 (DELETE 1, GET 2, GET_RANGE 1, HEAD 1, LIST 1, PUT 2)" in out
    assert "logged span 1.000 s" in out and not (tmp_path / "t").exists()


def _burst(start: float, n: int, tag: str) -> list[tuple[float, str, str, int]]:
    return [(start + i * 0.002, "PUT", f"bench/{tag}{i}", 10) for i in range(n)]


def test_backpressure_switches_to_best_effort_and_back(tmp_path: Path) -> None:
    """2 ops in flight at 50 ms each cannot keep up with a burst of 24: lag passes 0.2 s (best effort);
    the sparse ops after it find the target free again (strict)."""
    bp = tmp_path / "bp.yaml"
    bp.write_text("lag_threshold: 200ms\nrecovery_threshold: 50ms\nmax_concurrent: 2\n")
    log = write_log(tmp_path / "l.tsv", [*_burst(0.0, 24, "a"), (1.2, "PUT", "bench/z1", 10),
                                         (1.3, "PUT", "bench/z2", 10)])
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", "null:///bp/?latency=50ms", "--config", str(bp),
                 "--results-dir", str(results)]) == 0
    figures = _summary(results)["load_model"]
    modes = [t["to"] for t in figures["transitions"]["standalone"]]
    assert modes == ["best_effort", "strict"]
    first = figures["transitions"]["standalone"][0]
    assert first["lag_s"] > 0.2 and figures["late_ops"] > 0 and figures["ops_succeeded"] == 26


def test_too_many_flaps_drain_and_end_the_replay(tmp_path: Path) -> None:
    bp = tmp_path / "bp.yaml"
    bp.write_text("lag_threshold: 200ms\nrecovery_threshold: 50ms\nmax_concurrent: 2\n"
                  "max_flaps_per_minute: 2\ndrain_timeout: 1s\n")
    rows = _burst(0.0, 24, "a") + _burst(1.2, 24, "b") + _burst(2.4, 24, "c")
    log = write_log(tmp_path / "l.tsv", rows)
    results = tmp_path / "r"
    assert main(["replay", "--op-log", str(log), "--target", "null:///bp/?latency=50ms", "--config", str(bp),
                 "--results-dir", str(results)]) == 1
    summary = _summary(results)
    figures = summary["load_model"]
    assert [t["to"] for t in figures["transitions"]["standalone"]] == ["best_effort", "strict", "best_effort"]
    assert "max_flaps_per_minute: 2" in figures["drained"]["standalone"]
    assert "drained" in summary["reason"] and figures["ops_not_replayed"] > 0
    assert _status(results) == "FAILURE"


def test_ctrl_c_stops_within_2_s_with_partial_results(tmp_path: Path) -> None:
    log = write_log(tmp_path / "l.tsv", [(i * 0.05, "MKDIR", f"bench/d{i}", 0) for i in range(600)])
    results = tmp_path / "r"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-m", "sbench", "replay", "--op-log", str(log), "--target",
                             f"file://{tmp_path}/t/", "--results-dir", str(results)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        perf_log = results / "perf_log.tsv"
        while not perf_log.exists() or len(perf_log.read_text().splitlines()) < 2:
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        began = time.monotonic()
        assert proc.wait(timeout=10) == 1
        assert time.monotonic() - began < 2.5
    finally:
        if proc.poll() is None:
            proc.kill()
    assert _status(results) == "ABORTED"
    figures = _summary(results)["load_model"]
    assert 0 < figures["ops_succeeded"] < 600 and figures["ops_not_replayed"] > 0
