"""The results report (run.report) from synthetic stage records, without any fleet: stage tables, phases
merging every stage of their kind, agent states, stage details, the aborted STATUS.txt of a second Ctrl-C."""

from __future__ import annotations

import json
from pathlib import Path

from sbench.config.models import BarrierType, Completion, StageType
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.results.resultsdir import ResultsDir
from sbench.run.barrier import BarrierStatus
from sbench.run.report import RunReport, stage_details, stage_status
from sbench.run.stagerecord import AgentStageResult, StageRun
from sbench.status import AgentState, RunStatus, StageStatus
from tests.cluster.conftest import stage_tables


def _snap(gets: int, puts: int = 0) -> Snapshot:
    rec = Recorder()
    for op, count in ((OpClass.GET, gets), (OpClass.PUT, puts)):
        for _ in range(count):
            rec.record(op, 1024, 100)
    return rec.take_interval()


def _plan(index: int, name: str, kind: StageType = StageType.EXECUTE) -> StagePlan:
    return StagePlan(
        name=name,
        order=index,
        type=kind,
        completion=Completion.DURATION,
        barrier=PhaseBarrier(type=BarrierType.ALL_OR_NOTHING),
        index=index,
        duration=1.0,
    )


def _run(plan: StagePlan, per_agent: dict[str, Snapshot], **extra: object) -> StageRun:
    results = {
        a: AgentStageResult(a, plan.index, StageStatus.OK, snapshot=s, elapsed_s=1.0, extra=dict(extra))
        for a, s in per_agent.items()
    }
    return StageRun(plan, BarrierStatus.READY, results, dict.fromkeys(per_agent, "ready"), {})


def _report(tmp_path: Path) -> RunReport:
    config = tmp_path / "c.yaml"
    config.write_text("target: file:///tmp/x/\n")
    results = ResultsDir.create(tmp_path / "results", config, run_id="r1")
    return RunReport(results, [("a1", "10.0.0.1"), ("a2", "10.0.0.2")], 0)


def test_a_phase_merges_every_stage_of_its_kind_and_stage_tables_list_agents(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.stage_done(_run(_plan(1, "warmup"), {"a1": _snap(3), "a2": _snap(4)}), optional=False)
    report.stage_done(_run(_plan(2, "steady"), {"a1": _snap(10, 2), "a2": _snap(20)}), optional=False)
    status, _ = report.finalize(RunStatus.SUCCESS, "", load_model={}, warnings=[], preflight=None, extra={})
    assert status is RunStatus.SUCCESS
    results = report.results.path
    counts, agents = stage_tables(results / "02_steady_results.tsv")
    assert counts["GET/ALL"] == 30 and counts["PUT/ALL"] == 2
    assert [a["agent_id"] for a in agents] == ["a1", "a2"]
    summary = json.loads((results / "summary.json").read_text())
    assert summary["workload"]["totals"]["ops"] == 3 + 4 + 12 + 20  # both stages, not the first only
    assert summary["workload"]["wall_seconds"] == 2.0
    assert summary["prepare"] is None and summary["cleanup"] is None
    per_agent = (results / "agents" / "a1" / "results.tsv").read_text()
    assert "\t13\t" in per_agent  # a1's GETs over both stages: 3 + 10
    assert [s["name"] for s in summary["stages"]] == ["warmup", "steady"]


def test_stage_details_add_counts_join_lists_and_drop_disagreements() -> None:
    plan = _plan(1, "execute")
    run = _run(plan, {"a1": Snapshot(), "a2": Snapshot()})
    run.results["a1"].extra = {"deleted": 3, "notes": ["x"], "ended_by": "duration", "workers": 2}
    run.results["a2"].extra = {"deleted": 4, "notes": ["y"], "ended_by": "duration", "workers": 2,
                               "first_error": "boom"}
    run.results["a2"].extra["exit_code"] = 1
    details = stage_details(run)
    expected = {"deleted": 7, "notes": ["x", "y"], "ended_by": "duration", "workers": 4, "exit_code": 1}
    assert details == expected
    run.results["a1"].extra["ended_by"] = "aborted"
    assert "ended_by" not in stage_details(run)


def test_agent_states_follow_their_stages(tmp_path: Path) -> None:
    report = _report(tmp_path)
    run = _run(_plan(1, "execute"), {"a1": _snap(5), "a2": _snap(0)})
    run.results["a2"].status, run.results["a2"].reason = StageStatus.FAILED, "store said no"
    run.states["a2"], run.reasons["a2"] = "failed", "store said no"
    run.status = BarrierStatus.DEGRADED
    report.stage_done(run, optional=False)
    assert stage_status(run) == "degraded"
    assert report.tracks["a1"].state is AgentState.COMPLETED
    assert report.tracks["a2"].state is AgentState.FAILED and "store said no" in report.tracks["a2"].reason
    assert report.degraded and "a2" in report.degraded[0]


def test_aborted_status_of_a_second_ctrl_c_has_the_counts_so_far(tmp_path: Path) -> None:
    report = _report(tmp_path)
    report.stage_done(_run(_plan(1, "execute"), {"a1": _snap(6), "a2": _snap(1)}), optional=False)
    report.write_aborted_status("interrupted by SIGINT; interrupted again")
    text = (report.results.path / "STATUS.txt").read_text()
    assert text.startswith("TEST STATUS: ABORTED") and "interrupted again" in text
    assert "7" in text.split("Total operations", 1)[1].splitlines()[0]
