"""Stage plan: v0.8.60 defaults, explicit order, per-stage barriers, CLI flag selection."""

from __future__ import annotations

import textwrap

from sbench.config import BarrierType, Completion, StageType, load_config_text
from sbench.config.models import Config
from sbench.plan.stages import select_stages, stage_plan

WORKLOAD = 'target: "s3://b/p/"\nduration: 7s\nworkload: [{op: get, path: "", weight: 1}]\n'


def load(extra: str) -> Config:
    return load_config_text(WORKLOAD + textwrap.dedent(extra)).config


def names(plans: list) -> list[str]:
    return [p.name for p in plans]


def test_defaults_without_prepare_are_preflight_and_execute() -> None:
    plans = stage_plan(
        load_config_text('target: "s3://b/"\nworkload: [{op: put, path: "", weight: 1}]\n').config
    )
    assert names(plans) == ["preflight", "execute"]
    preflight, execute = plans
    assert (preflight.type, preflight.completion, preflight.timeout_s) == (
        StageType.VALIDATION,
        Completion.VALIDATION_PASSED,
        300.0,
    )
    assert (execute.duration, execute.index, execute.order) == (60.0, 2, 3)


def test_defaults_with_prepare_and_cleanup() -> None:
    plans = stage_plan(load("prepare: {ensure_objects: [{count: 5}], cleanup: true}\n"))
    assert names(plans) == ["preflight", "prepare", "execute", "cleanup"]
    assert [p.index for p in plans] == [1, 2, 3, 4]
    cleanup = plans[-1]
    # not optional (sai3's was): a cleanup that leaves objects behind must fail the run
    assert not cleanup.optional
    assert cleanup.timeout_s == 3600.0 and cleanup.completion is Completion.TASKS_DONE
    assert plans[2].duration == 7.0


def test_cleanup_stage_only_when_configured_or_forced() -> None:
    config = load("prepare: {ensure_objects: [{count: 5}]}\n")
    assert names(stage_plan(config)) == ["preflight", "prepare", "execute"]
    assert names(stage_plan(config, force_cleanup=True))[-1] == "cleanup"


def test_explicit_stages_sorted_with_own_phase_barriers() -> None:
    config = load("""
        prepare: {ensure_objects: [{count: 5}]}
        distributed:
          shared_filesystem: true
          agents: [{address: "127.0.0.1:1"}]
          barrier_sync:
            default_heartbeat_interval: 4
            default_query_retries: 0
            prepare: {type: all_or_nothing, missed_threshold: 5}
            execute: {type: majority}
            cleanup: {type: best_effort, agent_barrier_timeout: 10m}
          stages:
            - {name: c, order: 30, type: cleanup, timeout_secs: 2m}
            - {name: e, order: 20, type: execute}
            - {name: p, order: 10, type: prepare}
            - {name: x, order: 25, type: execute, duration: 1s,
               barrier: {type: best_effort, query_timeout: 1}}
            - {name: s, order: 40, type: custom, command: /bin/true}
        """)
    plans = stage_plan(config)
    assert names(plans) == ["p", "e", "x", "c", "s"]
    by = {p.name: p for p in plans}
    assert by["p"].barrier.type is BarrierType.ALL_OR_NOTHING and by["p"].barrier.missed_threshold == 5
    assert by["p"].barrier.heartbeat_interval == 4.0 and by["p"].barrier.query_retries == 0
    assert by["e"].barrier.type is BarrierType.MAJORITY and by["e"].barrier.source == "barrier_sync.execute"
    assert by["e"].duration == 7.0  # top-level duration
    assert by["x"].barrier.type is BarrierType.BEST_EFFORT and by["x"].barrier.source == "stage"
    assert by["x"].barrier.query_timeout == 1.0 and by["x"].duration == 1.0
    assert by["c"].barrier.agent_barrier_timeout == 600.0 and by["c"].timeout_s == 120.0
    assert by["s"].barrier.source == "default" and by["s"].command == "/bin/true"


def test_flag_selection() -> None:
    plans = stage_plan(load("prepare: {ensure_objects: [{count: 5}], cleanup: true}\n"))
    assert names(select_stages(plans, preflight_only=True)) == ["preflight"]
    assert names(select_stages(plans, prepare_only=True)) == ["preflight", "prepare"]
    assert names(select_stages(plans, cleanup_only=True)) == ["cleanup"]
    assert names(select_stages(plans, skip_prepare=True)) == ["preflight", "execute", "cleanup"]
    assert names(select_stages(plans, no_cleanup=True)) == ["preflight", "prepare", "execute"]
    assert names(select_stages(plans, skip_prepare=True, no_cleanup=True)) == ["preflight", "execute"]
