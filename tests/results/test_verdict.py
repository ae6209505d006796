"""The verdict rules of results.verdict on real recorder snapshots: each rule, its figures in the reason,
the stage types it applies to, and the threshold's off switch."""

from __future__ import annotations

import pytest

from sbench.config import load_config_text
from sbench.errors import ConfigError
from sbench.metrics.buckets import OpClass
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.results.verdict import Outage, OutageWatch, StageCounts, judge_stage
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


# -- the outage rule: intervals in, verdict out ------------------------------------------------------------

T0 = 1_700_000_000_000  # epoch ms of the stage's first interval


def _interval(
    second: int, ok: int = 0, failed: int = 0, retries: int = 0, message: str = "connection refused"
) -> Snapshot:
    """Interval number `second` (1 s long) of a stage: `ok` GETs, `failed` network errors, `retries`."""
    rec = Recorder()
    for _ in range(ok):
        rec.record(OpClass.GET, 4096, 200)
    for _ in range(failed):
        rec.record_error(OpClass.GET, ErrorClass.NETWORK, f"GET k: {message} (at {second} s)")
    for _ in range(retries):
        rec.record_retry(OpClass.GET)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = T0 + 1000 * second, T0 + 1000 * (second + 1)
    if snap.first_errors:  # place the first error inside its interval
        kind = next(iter(snap.first_errors))
        snap.first_errors[kind] = (snap.start_ms + 10, snap.first_errors[kind][1])
    return snap


def _outage_of(intervals: list[Snapshot]) -> Outage | None:
    watch = OutageWatch()
    watch.add_all(intervals)
    return watch.result()


def _judge(intervals: list[Snapshot], max_outage: float = 5.0) -> list[str]:
    merged = Snapshot.merge_all(intervals)
    return judge_stage(
        "execute", merged, min_success_ratio=0.95, outage=_outage_of(intervals), max_outage=max_outage
    )


def _server_down(first: int, last: int, backoff_every: int = 5) -> list[Snapshot]:
    """Seconds first..last with no success: a burst of errors, the error backoff's silence, again; the last
    second is a burst too (the store is probed until it answers)."""
    return [
        _interval(s, failed=3 if (s - first) % backoff_every == 0 or s == last else 0)
        for s in range(first, last + 1)
    ]


def test_a_dead_server_under_the_error_backoff_fails_on_the_outage_not_the_ratio() -> None:
    """The issue's run: 10 s of a dead server, the backoff keeps the errors to a few bursts (9 failed ops
    against 2,000 successes: far above 0.95), yet the outage fails the stage with where, how long, and the
    first error seen in it."""
    intervals = (
        [_interval(s, ok=100) for s in range(3)]
        + _server_down(3, 12)
        + [_interval(s, ok=100) for s in range(13, 30)]
    )  # failures at 3, 8 and 12 s: seen from 3 to 13 s
    merged = Snapshot.merge_all(intervals)
    assert judge_stage("execute", merged, min_success_ratio=0.95) == []  # the ratio alone lets it pass
    [reason] = _judge(intervals)
    assert reason == (
        "storage outage longer than error_handling.max_outage 5 s: no op succeeded for 10.0 s from 3.0 s "
        "into the stage (9 failed ops, 0 retries in it); first error (network): GET k: connection refused "
        "(at 3 s)"
    )
    assert _outage_of(intervals) == Outage(3.0, 10.0, 9, 0, ("network", "GET k: connection refused (at 3 s)"))
    assert _judge(intervals, max_outage=0) == []  # the off switch
    assert _judge(intervals, max_outage=10) == []  # at the limit: it stands
    assert _judge(intervals, max_outage=9.5) != []


def test_a_blip_shorter_than_max_outage_stands() -> None:
    """A restart that costs two intervals of errors is not an outage past the default 5 s."""
    intervals = [_interval(s, ok=50) for s in range(4)] + _server_down(4, 5) + [_interval(6, ok=50)]
    assert _outage_of(intervals) == Outage(4.0, 2.0, 6, 0, ("network", "GET k: connection refused (at 4 s)"))
    assert _judge(intervals) == []


def test_retries_without_final_errors_count_and_a_success_ends_the_outage() -> None:
    """With retry_on_error every op keeps retrying (tries fail, no op has failed yet): that is an outage
    too. A success ends it; the longest of several is reported."""
    intervals = (
        [_interval(0, ok=5)]
        + [_interval(s, retries=4) for s in range(1, 4)]  # 3 s
        + [_interval(4, ok=1)]
        + [_interval(s, retries=2) for s in range(5, 12)]  # 7 s
        + [_interval(12, ok=3)]
    )
    outage = _outage_of(intervals)
    assert outage is not None and (outage.start_s, outage.length_s, outage.retries) == (5.0, 7.0, 14)
    assert outage.first_error is None
    [reason] = _judge(intervals)
    assert "no op succeeded for 7.0 s from 5.0 s into the stage (0 failed ops, 14 retries in it)" in reason


def test_an_outage_that_begins_inside_an_interval_starts_at_its_first_error() -> None:
    """The server dies 2.01 s into the stage: interval 2 still saw successes, then the backoff's silence and
    the next probe's failures at 7 s. The outage runs from interval 2 (where the store died) to the end of
    the probe's interval: 6 s, past the default 5 s (from interval 3 it would read 5 s and pass)."""
    intervals = (
        [_interval(s, ok=100) for s in range(2)]
        + [_interval(2, ok=40, failed=5)]
        + [_interval(s) for s in range(3, 7)]
        + [_interval(7, failed=4)]
        + [_interval(s) for s in range(8, 10)]
    )
    outage = _outage_of(intervals)
    assert outage is not None and (outage.start_s, outage.length_s, outage.failed) == (2.0, 6.0, 9)
    assert outage.first_error == ("network", "GET k: connection refused (at 2 s)")
    [reason] = _judge(intervals)
    assert "no op succeeded for 6.0 s from 2.0 s into the stage (9 failed ops" in reason
    # errors among successes with no failing interval after them are no outage at all
    assert _outage_of([_interval(0, ok=9, failed=1), *[_interval(s) for s in range(1, 9)]]) is None


def test_idle_intervals_count_only_between_failures() -> None:
    """Intervals with nothing completed and nothing failed (one long op in flight, the backoff of a store
    that came back) never start an outage and do not stretch its end; between two failing intervals (a
    dead store probed again after each backoff) they belong to it, also when the stage ends in it."""
    idle = [_interval(s) for s in range(1, 20)]
    assert _outage_of([_interval(0, ok=1), *idle, _interval(20, ok=1)]) is None
    blip_then_backoff = [_interval(0, ok=10), _interval(1, failed=5), *[_interval(s) for s in range(2, 8)]]
    outage = _outage_of([*blip_then_backoff, _interval(8, ok=10)])
    assert outage is not None and (outage.start_s, outage.length_s, outage.failed) == (1.0, 1.0, 5)
    dead_to_the_end = [_interval(0, ok=10), *_server_down(1, 13)]
    outage = _outage_of(dead_to_the_end)
    assert outage is not None and (outage.start_s, outage.length_s, outage.failed) == (1.0, 13.0, 12)


def test_a_stage_with_no_success_at_all_says_so_once_and_other_stage_types_are_not_judged() -> None:
    intervals = _server_down(0, 9)
    [reason] = _judge(intervals)
    assert reason.startswith("no operation succeeded")
    merged = Snapshot.merge_all(intervals)
    for stage_type in ("cleanup", "custom", "validation"):
        assert judge_stage(
            stage_type, merged, min_success_ratio=0, outage=_outage_of(intervals), max_outage=1
        ) == []


def test_max_outage_is_a_config_key_with_a_default_bounds_and_a_clear_message() -> None:
    base = "target: file:///tmp/x/\nduration: 1s\nworkload:\n  - {op: put, path: '', weight: 1}\n"
    def max_outage(text: str) -> float:
        return load_config_text(base + text).config.error_handling.max_outage

    assert max_outage("") == 5.0
    assert max_outage("error_handling: {max_outage: 30s}\n") == 30
    assert max_outage("error_handling: {max_outage: 0}\n") == 0
    with pytest.raises(ConfigError, match=r"error_handling\.max_outage: -1 is not a valid duration"):
        load_config_text(base + "error_handling: {max_outage: -1}\n")
    with pytest.raises(
        ConfigError, match=r"error_handling\.max_outage 0\.5 s is shorter than perf_log\.interval 1 s"
    ):
        load_config_text(base + "error_handling: {max_outage: 500ms}\n")
    # the default follows a perf-log interval longer than itself (the shortest outage it can see)
    assert max_outage("perf_log: {interval: 10s}\n") == 10
    short_ticks = base + "perf_log: {interval: 250ms}\nerror_handling: {max_outage: 500ms}\n"
    assert load_config_text(short_ticks).config.error_handling.max_outage == 0.5
