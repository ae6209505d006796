"""The verdict rules of results.verdict on real recorder snapshots: each rule, its figures in the reason,
the stage types it applies to, and the threshold's off switch."""

from __future__ import annotations

import pytest

from sbench.config import load_config_text
from sbench.errors import ConfigError
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.results.verdict import StageCounts, judge_stage
from sbench.storage.base import ErrorClass


def _stage(ok: int, failed: int, kind: ErrorClass = ErrorClass.THROTTLED) -> Snapshot:
    rec = Recorder()
    for _ in range(ok):
        rec.record(OpClass.GET, 4096, 200)
    for i in range(failed):
        rec.record_error(OpClass.PUT, kind, f"PUT k{i}: {kind.value}: the store said no")
    return rec.take_interval()


def test_no_operation_succeeded_names_attempts_classes_and_first_error() -> None:
    [reason] = judge_stage("execute", _stage(0, 7), min_success_ratio=0.95)
    assert reason == (
        "no operation succeeded: 7 attempts, all failed (throttled=7); "
        "first error (throttled): PUT k0: throttled: the store said no"
    )
    assert judge_stage("prepare", _stage(0, 3), min_success_ratio=0.0)[0].startswith("no operation succeeded")


def test_a_workload_stage_that_attempted_nothing_fails_but_a_prepare_with_nothing_to_create_stands() -> None:
    assert judge_stage("hybrid", Snapshot(), min_success_ratio=0.95) == [
        "no operation succeeded: 0 attempts (the stage measured nothing)"
    ]
    assert judge_stage("prepare", Snapshot(), min_success_ratio=0.95) == []


def test_success_ratio_below_the_threshold_and_its_off_switch() -> None:
    snap = _stage(90, 10, ErrorClass.NO_SPACE)
    [reason] = judge_stage("execute", snap, min_success_ratio=0.95)
    assert reason.startswith(
        "success ratio 90.0% is below error_handling.min_success_ratio 0.95: 90 of 100 ops succeeded, "
        "10 failed (no_space=10); first error (no_space): PUT k0"
    )
    assert judge_stage("execute", snap, min_success_ratio=0.9) == []  # at the threshold: it stands
    assert judge_stage("execute", snap, min_success_ratio=0) == []
    assert judge_stage("execute", _stage(96, 4), min_success_ratio=0.95) == []
    assert StageCounts.of(snap).ratio == 0.9


def test_rules_of_measured_stages_do_not_apply_to_cleanup_custom_or_validation() -> None:
    for stage_type in ("cleanup", "custom", "validation"):
        assert judge_stage(stage_type, _stage(0, 5), min_success_ratio=0.95) == []


def test_an_agent_still_stuck_at_the_end_fails_any_stage() -> None:
    stuck = {"agent-2": "no progress for 3 consecutive intervals", "agent-1": ""}
    assert judge_stage("cleanup", Snapshot(), min_success_ratio=0.95, stuck=stuck) == [
        "agent agent-1 ended the stage STUCK (no progress)",
        "agent agent-2 ended the stage STUCK (no progress for 3 consecutive intervals)",
    ]
    both = judge_stage("execute", _stage(0, 2), min_success_ratio=0.95, stuck={"a": "no progress"})
    assert len(both) == 2 and both[0].startswith("no operation succeeded")


def test_min_success_ratio_is_a_config_key_with_a_default_and_bounds() -> None:
    base = "target: file:///tmp/x/\nduration: 1s\nworkload:\n  - {op: put, path: '', weight: 1}\n"
    assert load_config_text(base).config.error_handling.min_success_ratio == 0.95
    custom = load_config_text(base + "error_handling: {min_success_ratio: 0.5}\n").config
    assert custom.error_handling.min_success_ratio == 0.5
    with pytest.raises(ConfigError, match="min_success_ratio"):
        load_config_text(base + "error_handling: {min_success_ratio: 1.5}\n")
