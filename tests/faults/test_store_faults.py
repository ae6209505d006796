"""A misbehaving store (S3, and Azure Blob where it applies), through the fault proxy, during one stage of an
in-process run: throttling that never lets up, throttled deletes, deletes that always fail, and requests
that never get an answer."""

from __future__ import annotations

from pathlib import Path

from tests.faults.checks import Expect, check_run
from tests.faults.conftest import AzureTarget, S3Target, write_config
from tests.faults.proxy import Fault, FaultProxy, delete_rules, rule
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import GET_ONLY, SHORT_RETRIES, workload


def test_throttled_execute_fails_the_run(
    s3_target: S3Target, proxy: FaultProxy, tmp_path: Path, outcome: Outcome
) -> None:
    """Every request answered 503 SlowDown during execute, with max_total_errors 5, is a FAILURE that names
    the throttling. Cleanup (unthrottled) then removes everything."""
    config = write_config(
        tmp_path, workload(s3_target.uri, duration="4s", extra="error_handling: {max_total_errors: 5}\n")
    )
    with SbenchProcess(config, tmp_path / "results", env=s3_target.env()) as run:
        run.wait_for_stage("execute")
        proxy.set_rules(rule(Fault.SLOWDOWN, methods=["GET", "PUT", "HEAD"]))
        run.wait_for_stage("cleanup", timeout=30)
        proxy.set_rules()
        done = run.wait(60)
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=30, reason=("throttled",)),
            outcome,
            s3_target.count,
        )
    # max_total_errors=5 stops the stage at its fifth failed op; requests still in flight then may add more
    assert proxy.counts["slowdown"] >= 5


def test_cleanup_retries_throttled_deletes(
    throttling_store: tuple[S3Target | AzureTarget, FaultProxy], tmp_path: Path, outcome: Outcome
) -> None:
    """20% of the deletes answered 503 (S3 SlowDown, Azure ServerBusy): cleanup retries them, nothing is
    left, SUCCESS. Every prepared object and workload PUT is deleted, and every throttled delete is one
    counted retry that then succeeded."""
    target, proxy = throttling_store
    config = write_config(tmp_path, workload(target.uri, duration="2s", objects=200))
    with SbenchProcess(config, tmp_path / "results", env=target.env()) as run:
        run.wait_for_stage("cleanup", timeout=30)
        proxy.set_rules(*delete_rules(Fault.SLOWDOWN, share=0.2))
        done = run.wait(60)
        check_run(run, done, Expect(code=0, status="SUCCESS", within_s=40), outcome, target.count)
    throttled = proxy.counts["slowdown"]
    assert throttled > 10
    summary = _summary(run.results)
    puts = summary["workload"]["operations"]["PUT"]["ops"]
    cleanup = next(s for s in summary["stages"] if s["name"] == "cleanup")
    assert f"deleted 200 prepared and {puts:,} workload objects" in cleanup["reason"], cleanup["reason"]
    assert cleanup["totals"]["retries"] == throttled == cleanup["operations"]["META"]["retries"]
    assert cleanup["totals"]["errors"] == 0  # every throttled delete succeeded on a retry


def test_strict_cleanup_that_cannot_delete_fails_and_reports_what_is_left(
    s3_target: S3Target, proxy: FaultProxy, tmp_path: Path, outcome: Outcome
) -> None:
    """Strict cleanup with every delete refused is a FAILURE; STATUS.txt and summary.json say how many
    objects were left and where."""
    config = write_config(
        tmp_path,
        workload(
            s3_target.uri,
            duration="1s",
            objects=20,
            ops=GET_ONLY,
            cleanup_mode="strict",
            extra=SHORT_RETRIES,
        ),
    )
    with SbenchProcess(config, tmp_path / "results", env=s3_target.env()) as run:
        run.wait_for_stage("cleanup", timeout=30)
        proxy.set_rules(*delete_rules(Fault.SLOWDOWN))
        done = run.wait(60)
        check_run(
            run,
            done,
            Expect(
                code=1,
                status="FAILURE",
                within_s=40,
                left=20,
                reason=(f"{s3_target.bucket}/{s3_target.prefix}",),
            ),
            outcome,
            s3_target.count,
        )


def test_stalled_requests_time_out_per_request(
    s3_target: S3Target, proxy: FaultProxy, tmp_path: Path, outcome: Outcome
) -> None:
    """1% of the GETs never answered, with a 1 s per-request timeout: each counts as a timeout error, the
    stage still ends on time and the run succeeds."""
    config = write_config(
        tmp_path,
        workload(s3_target.uri, duration="4s", objects=40, ops=GET_ONLY, extra="request_timeout: 1s\n"),
    )
    proxy.set_rules(rule(Fault.STALL, share=0.01, methods=["GET"], path=r"/prepared-"))
    with SbenchProcess(config, tmp_path / "results", env=s3_target.env()) as run:
        done = run.wait(60)
        check_run(run, done, Expect(code=0, status="SUCCESS", within_s=20), outcome, s3_target.count)
    stalls = proxy.counts["stall"]
    timeouts = (_summary(run.results)["workload"]["errors"]["by_class"]).get("timeout", 0)
    assert stalls > 0 and stalls - 4 <= timeouts <= stalls, (stalls, timeouts)  # up to 4 in flight at the end


def _summary(results: Path) -> dict:
    import json

    return json.loads((results / "summary.json").read_text())
