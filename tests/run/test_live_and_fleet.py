"""The live display rendered into a string console, the in-process fleet's stage records, the stop signals."""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path

import pytest
from rich.console import Console

from sbench.config import load_config_text
from sbench.config.models import StageType
from sbench.config.runoptions import RunOptions
from sbench.control import RunControl
from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import run_stages
from sbench.results.console import ConsoleLog
from sbench.run.barrier import BarrierStatus
from sbench.run.driver import StopSignals
from sbench.run.fleet import StageCall
from sbench.run.inprocess import InProcessFleet
from sbench.ui.live import LiveProgress


def _snap(gets: int) -> Snapshot:
    rec = Recorder()
    for _ in range(gets):
        rec.record(OpClass.GET, 2048, 150)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = snap.end_ms - 1000, snap.end_ms
    return snap


def test_live_display_without_a_terminal_prints_plain_lines(tmp_path: Path) -> None:
    out = io.StringIO()
    log = ConsoleLog(tmp_path / "console_log.txt", out)
    live = LiveProgress(log, tty=False, stream=out)
    live.stage_started("steady", "execute", 10.0, " on 2 agents, all_or_nothing barrier")
    live.interval(_snap(500))
    live.stage_ended("steady", "ok", "", 1.0)
    live.close()
    text = out.getvalue()
    assert "== stage steady (execute) started on 2 agents, all_or_nothing barrier" in text
    assert "[steady]" in text and "500 ops/s" in text and "errors 0" in text
    assert "== stage steady ok after 1.0s" in text
    transcript = (tmp_path / "console_log.txt").read_text().splitlines()
    assert set(text.splitlines()) <= set(transcript)  # the transcript has what was shown


def _agent_snap(agent_id: str, gets: int, puts: int = 0) -> Snapshot:
    rec = Recorder()
    for _ in range(gets):
        rec.record(OpClass.GET, 2048, 150)
    for _ in range(puts):
        rec.record(OpClass.PUT, 65536, 900)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = snap.end_ms - 1000, snap.end_ms
    snap.set_progress(agent_id, ProgressCounters(stage="steady", at_ms=snap.end_ms))
    return snap


def _rendered(live: LiveProgress) -> str:
    out = io.StringIO()
    Console(file=out, width=120, force_terminal=False, color_system=None).print(live._render())
    return out.getvalue()


def test_live_dashboard_on_a_terminal_has_stage_bars_and_rows_per_op_class_and_agent(tmp_path: Path) -> None:
    out = io.StringIO()
    live = LiveProgress(ConsoleLog(None, out), tty=True, stream=out, stuck_intervals=2)
    live.stage_started("prepare", "prepare", None)
    live.stage_ended("prepare", "ok", "", 1.5)
    live.stage_started("steady", "execute", 5.0)
    a1, a2 = _agent_snap("agent-1", 300, 100), _agent_snap("agent-2", 100)
    live.agent_intervals({"agent-1": [a1], "agent-2": [a2]})
    merged = Snapshot.merge_all([a1, a2])
    merged.set_endpoints(
        [
            {"uri": "s3://ep-one/", "requests": 300, "bytes_read": 0, "bytes_written": 0, "errors": 2},
            {"uri": "s3://ep-two/", "requests": 100, "bytes_read": 0, "bytes_written": 0, "errors": 0},
        ]
    )
    live.interval(merged)
    board = _rendered(live)
    lines = board.splitlines()
    one = next(line for line in lines if "s3://ep-one/" in line)
    assert "300" in one and "75%" in one and " 2 " in one, one
    assert any(line.startswith("prepare") and "ok after 2s" in line for line in lines), board
    assert any(line.startswith("steady") and "execute: 0s / 5s" in line for line in lines), board
    get = next(line for line in lines if line.startswith("│ GET"))
    put = next(line for line in lines if line.startswith("│ PUT"))
    assert "400" in get and "150µs" in get and "0.78" in get, get  # 400 ops/s of 2 KiB
    assert "100" in put and "900µs" in put, put
    agent1 = next(line for line in lines if "agent-1" in line)
    agent2 = next(line for line in lines if "agent-2" in line)
    assert "running" in agent1 and "400" in agent1 and "80%" in agent1, agent1
    assert "running" in agent2 and "20%" in agent2, agent2
    # agent-2 makes no progress for stuck_intervals intervals: flagged STUCK with the reason, the rule of
    # metrics.progress (the coordinator's)
    for _ in range(2):
        idle = _agent_snap("agent-2", 0)
        live.agent_intervals({"agent-1": [_agent_snap("agent-1", 50)], "agent-2": [idle]})
    stuck = next(line for line in _rendered(live).splitlines() if "agent-2" in line)
    assert "STUCK" in stuck and "no progress for 2 consecutive intervals" in stuck, stuck
    live.stage_ended("steady", "failed", "boom", 0.5)
    live.close()
    assert "== stage steady failed after 0.5s: boom" in out.getvalue()


def test_one_agent_and_one_endpoint_get_no_rows_of_their_own(tmp_path: Path) -> None:
    live = LiveProgress(ConsoleLog(None, io.StringIO()), tty=False, stream=io.StringIO())
    live.stage_started("steady", "execute", 5.0)
    snap = _agent_snap("standalone", 10)
    live.agent_intervals({"standalone": [snap]})
    live.interval(snap)
    board = _rendered(live)
    assert "│ GET" in board and "agents" not in board and "endpoints" not in board


CONFIG = """
target: "file://{root}/"
duration: 0.5s
concurrency: 2
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 10, size_spec: 1KiB}}
workload:
  - {{op: get, path: "*", weight: 1}}
"""


def test_in_process_fleet_returns_stage_records_with_what_the_run_carries(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    loaded = load_config_text(CONFIG.format(root=tmp_path / "store"))
    fleet = InProcessFleet(loaded.config, "r1")
    control = RunControl()
    agents = fleet.start(control, lambda _line: None, tmp_path)
    assert [a.agent_id for a in agents] == ["standalone"]
    intervals: list[tuple[list[Snapshot], dict[str, list[Snapshot]]]] = []
    runs = {}
    for plan in run_stages(loaded.config, RunOptions()):
        call = StageCall(plan, ["standalone"], lambda a, p: intervals.append((a, p)), lambda _line: None)
        runs[plan.type] = fleet.run_stage(call)
    assert {t: run.status for t, run in runs.items()} == dict.fromkeys(runs, BarrierStatus.READY), runs
    assert runs[StageType.VALIDATION].preflight is not None and runs[StageType.VALIDATION].preflight.passed
    prepared = runs[StageType.PREPARE].prepared
    assert sum(len(record.created) for record in prepared.values()) == 10
    assert runs[StageType.EXECUTE].merged.total_ops(OpClass.GET) > 0
    assert runs[StageType.CLEANUP].left_behind is not None
    assert not runs[StageType.CLEANUP].left_behind["fails_run"]
    assert intervals
    assert all(list(per) == ["standalone"] and agg == per["standalone"] for agg, per in intervals)


def test_a_first_signal_aborts_the_run_and_a_second_exits_after_last_words(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    control = RunControl()
    said: list[str] = []
    last = threading.Event()
    exits: list[int] = []
    monkeypatch.setattr(os, "_exit", exits.append)
    before = signal.getsignal(signal.SIGINT)  # default_int_handler, or SIG_IGN in a background job
    with StopSignals(control, said.append, last.set):
        os.kill(os.getpid(), signal.SIGTERM)
        assert control.aborted and control.reason == "interrupted by SIGTERM"
        assert not last.is_set()
        os.kill(os.getpid(), signal.SIGINT)
    assert last.is_set() and exits == [130]
    assert said[0].startswith("SIGTERM: aborting the run") and said[1] == "SIGINT again: exiting now"
    assert signal.getsignal(signal.SIGINT) is before  # put back
