"""Error policy: retries by class, jittered backoff, rate-triggered pause, budget; a throttled op that was
retried into a success does not count, one that finally failed does."""

from __future__ import annotations

import random

from sbench.control import RunControl
from sbench.engine.errorpolicy import ErrorHandling, ErrorPolicy
from sbench.storage.base import ErrorClass


def test_retry_decisions() -> None:
    policy = ErrorPolicy(ErrorHandling(retry_on_error=True, max_retries=2), RunControl())
    assert policy.should_retry(ErrorClass.THROTTLED, 1)
    assert policy.should_retry(ErrorClass.NETWORK, 2)
    assert not policy.should_retry(ErrorClass.NETWORK, 3)
    assert not policy.should_retry(ErrorClass.NOT_FOUND, 1)
    assert not policy.should_retry(ErrorClass.AUTH, 1)
    off = ErrorPolicy(ErrorHandling(), RunControl())
    assert not off.should_retry(ErrorClass.THROTTLED, 1)


def test_retry_delay_grows_caps_and_jitters() -> None:
    policy = ErrorPolicy(
        ErrorHandling(
            initial_retry_delay_ms=100,
            max_retry_delay_ms=300,
            retry_backoff_multiplier=2.0,
            retry_jitter_factor=0.25,
        ),
        RunControl(),
    )
    rng = random.Random(0)
    first = [policy.retry_delay(1, rng) for _ in range(200)]
    assert min(first) >= 0.075 and max(first) <= 0.125 and len(set(first)) > 100
    assert all(0.225 <= policy.retry_delay(5, rng) <= 0.375 for _ in range(50))


def test_budget_aborts_with_reason_and_retried_throttling_never_counts() -> None:
    control = RunControl()
    policy = ErrorPolicy(ErrorHandling(max_total_errors=3, error_rate_threshold=0), control)
    for _ in range(50):
        policy.on_error(ErrorClass.THROTTLED, final=False)  # throttled tries that a retry then carried
    assert not control.stopping
    policy.on_error(ErrorClass.NETWORK, final=False)  # retried: not a failed op
    policy.on_error(ErrorClass.OTHER, final=True)
    policy.on_error(ErrorClass.OTHER, final=True)
    assert not control.stopping
    policy.on_error(ErrorClass.NOT_FOUND, final=True, where="file:///x/k")
    assert control.aborted
    assert "max_total_errors=3" in control.reason and "not_found=1" in control.reason
    assert policy.errors_by_class[ErrorClass.THROTTLED] == 50 and policy.retries == 51


def test_throttled_ops_that_exhaust_their_retries_count_toward_the_budget() -> None:
    control = RunControl()
    policy = ErrorPolicy(ErrorHandling(max_total_errors=5, error_rate_threshold=0), control)
    for _ in range(4):
        policy.on_error(ErrorClass.THROTTLED, final=True)
    assert not control.stopping
    policy.on_error(ErrorClass.THROTTLED, final=True)
    assert control.aborted
    assert "5 failed ops reached error_handling.max_total_errors=5 (throttled=5)" in control.reason


def test_no_space_is_never_retried() -> None:
    policy = ErrorPolicy(ErrorHandling(retry_on_error=True, max_retries=5), RunControl())
    assert not policy.should_retry(ErrorClass.NO_SPACE, 1)
    assert policy.should_retry(ErrorClass.OTHER, 1)


def test_error_rate_triggers_backoff() -> None:
    policy = ErrorPolicy(
        ErrorHandling(
            max_total_errors=0, error_rate_threshold=5, error_rate_window=1.0, backoff_duration=2.0
        ),
        RunControl(),
    )
    for _ in range(4):
        policy.on_error(ErrorClass.OTHER, final=True)
    assert policy.backoff_until == 0.0
    policy.on_error(ErrorClass.OTHER, final=True)
    assert policy.backoff_until > 0 and policy.backoffs == 1


def test_from_config_takes_dicts_and_objects() -> None:
    assert ErrorHandling.from_config(None) == ErrorHandling()
    assert ErrorHandling.from_config({"max_total_errors": 7}).max_total_errors == 7

    class Cfg:
        retry_on_error = True
        backoff_duration = 1.5

    got = ErrorHandling.from_config(Cfg())
    assert got.retry_on_error and got.backoff_duration == 1.5 and got.max_retries == 3
