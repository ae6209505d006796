"""The live display rendered into a string console, the in-process fleet's stage records, the stop signals."""

from __future__ import annotations

import io
import os
import signal
import threading
from pathlib import Path

import pytest

from sbench.config import load_config_text
from sbench.config.models import StageType
from sbench.config.runoptions import RunOptions
from sbench.control import RunControl
from sbench.metrics.buckets import OpClass
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


def test_live_display_on_a_terminal_renders_the_stage_panel(tmp_path: Path) -> None:
    out = io.StringIO()
    live = LiveProgress(ConsoleLog(None, out), tty=True, stream=out)
    live.stage_started("warmup", "execute", 5.0)
    live.interval(_snap(200))
    rendered = io.StringIO()
    live.console.file = rendered
    live.console.print(live._render())
    live.stage_ended("warmup", "failed", "boom", 0.5)
    panel = rendered.getvalue()
    assert "stage warmup" in panel and "throughput" in panel and "200 ops/s" in panel
    assert "== stage warmup failed after 0.5s: boom" in out.getvalue()


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
    with StopSignals(control, said.append, last.set):
        os.kill(os.getpid(), signal.SIGTERM)
        assert control.aborted and control.reason == "interrupted by SIGTERM"
        assert not last.is_set()
        os.kill(os.getpid(), signal.SIGINT)
    assert last.is_set() and exits == [130]
    assert said[0].startswith("SIGTERM: aborting the run") and said[1] == "SIGINT again: exiting now"
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # put back
