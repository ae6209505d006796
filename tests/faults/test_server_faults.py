"""The S3 server itself fails under a running benchmark: killed and restarted mid-execute, or frozen
(SIGSTOP) in one stage while the user presses Ctrl-C. A private SeaweedFS per scenario, reached directly."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
import ray

from tests.faults.checks import ABORT_WAIT_S, Expect, aborted, check_run
from tests.faults.conftest import S3Target, ServerControl, write_config
from tests.faults.proxy import Fault, FaultProxy, rule
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import TWO_AGENTS, workload

CONCURRENCY = 4


def test_healthy_run_keeps_every_promise(own_target: S3Target, tmp_path: Path, outcome: Outcome) -> None:
    """A run with no fault at all is a SUCCESS that leaves nothing behind (the baseline of every check)."""
    config = write_config(tmp_path, workload(own_target.uri, duration="2s"))
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        done = run.wait(60)
        check_run(run, done, Expect(code=0, status="SUCCESS", within_s=20), outcome, own_target.count)


#: How long a cleanup against a dead store may take with the default cleanup retries (8 retries, delays
#: capped at 5 s, jittered: one object's whole sequence is about 16 s, 20 s at most): one sequence, then
#: every object still to delete is reported left without being tried.
DEAD_STORE_CLEANUP_S = 30.0


def test_server_killed_mid_execute_fails_and_cleanup_gives_up_within_seconds(
    own_seaweed: ServerControl, own_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """The server killed 1 s into execute and down until the run ends, default settings: a FAILURE whose
    cleanup stops retrying once a whole retry sequence saw no delete succeed, so it ends within
    DEAD_STORE_CLEANUP_S (not minutes of retrying object by object) and reports the objects it left, exactly
    (the server is restarted afterwards, same port and data, to count them)."""
    # The verdict's reason is the first failure; on a loaded machine the second of ops before the kill can
    # be few enough for the failed ones to break min_success_ratio first, and then the reason is execute's.
    # This test is about cleanup's, so the ratio is not checked here.
    config = write_config(
        tmp_path,
        workload(
            own_target.uri,
            duration="3s",
            concurrency=CONCURRENCY,
            extra="error_handling: {min_success_ratio: 0}\n",
        ),
    )
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        run.wait_for_stage("execute")
        time.sleep(1.0)
        own_seaweed.kill()
        done = run.wait(180)
        own_seaweed.restart()
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=60, left=None, reason=("objects left",)),
            outcome,
            own_target.count,
        )
    cleanup = next(s for s in _summary(run.results)["stages"] if s["name"] == "cleanup")
    assert cleanup["wall_seconds"] < DEAD_STORE_CLEANUP_S, cleanup["wall_seconds"]
    status = (run.results / "STATUS.txt").read_text()
    assert "no delete succeeded" in status
    # the verdict's reason gives the count of the list below it (cleanup's own, floored by the run's PUTs)
    total = re.search(r"^Objects left: ((?:at least )?[\d,]+)", status, re.M)
    reason = next(line for line in status.splitlines() if line.startswith("Reason:"))
    assert total is not None and f"left {total.group(1)} objects" in reason, (total, reason)


def test_server_restarted_within_execute_fails_on_the_outage_with_default_settings(
    own_seaweed: ServerControl, own_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """The server killed 1 s into an 8 s execute and back about 6.5 s later (same port, same data), default
    settings: the error backoff keeps the failed ops to a few bursts, far under min_success_ratio, but the
    store was seen failing for longer than error_handling.max_outage (5 s), so the run is a FAILURE whose
    STATUS.txt names the outage (start, length, first error). Cleanup after the restart leaves nothing."""
    config = write_config(tmp_path, workload(own_target.uri, duration="8s", concurrency=CONCURRENCY))
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        run.wait_for_stage("execute")
        time.sleep(1.0)
        own_seaweed.kill()
        time.sleep(5.5)  # past the first 5 s error backoff: its probe must fail too
        own_seaweed.restart()
        done = run.wait(90)
        check_run(
            run,
            done,
            Expect(
                code=1,
                status="FAILURE",
                within_s=60,
                reason=("storage outage longer than error_handling.max_outage 5 s", "first error (network)"),
            ),
            outcome,
            own_target.count,
        )
    execute = next(s for s in _summary(run.results)["stages"] if s["name"] == "execute")
    outage = execute["longest_outage"]
    assert 5.0 < outage["length_secs"] < 9.0 and 0.0 <= outage["start_offset_secs"] < 3.0, outage
    assert outage["first_error"]["kind"] == "network"
    assert "storage outage" in run.output  # the console names it too


@pytest.mark.ray
@pytest.mark.slow
def test_store_unreachable_within_execute_fails_on_the_outage_on_ray(
    ray_session: None, s3_target: S3Target, proxy: FaultProxy, tmp_path: Path, outcome: Outcome
) -> None:
    """The same outage on the Ray path: two agents, every request reset by the proxy for 9 s from 1 s into
    a 12 s execute (the agents back off 5 s after the first errors; 9 s leaves them seconds to meet the
    outage again however late they saw it start, on a loaded machine too). The outage is judged on the
    merged intervals of both agents: FAILURE naming it, each agent named with its own outage, and cleanup
    (after the store is back) leaves nothing. The success-ratio rule is off: the agents' first second is
    too short to outweigh the outage's errors, and this scenario shows the outage rule alone. The run
    joins the session's Ray instance (a private one's start-up is not the point here;
    tests/faults/test_stops.py and tests/cluster/test_ray_lifecycle.py cover it)."""
    config = write_config(
        tmp_path,
        workload(
            s3_target.uri,
            duration="12s",
            concurrency=CONCURRENCY,
            extra=TWO_AGENTS + "error_handling: {min_success_ratio: 0}\n",
        ),
    )
    joined = s3_target.env() | {"RAY_ADDRESS": ray.get_runtime_context().gcs_address}
    with SbenchProcess(config, tmp_path / "results", env=joined) as run:
        run.wait_for_stage("execute", timeout=90)
        time.sleep(1.0)
        proxy.set_rules(rule(Fault.RESET))
        time.sleep(9.0)
        proxy.set_rules()
        done = run.wait(120)
        check_run(
            run,
            done,
            Expect(
                code=1,
                status="FAILURE",
                within_s=90,
                reason=("storage outage longer than error_handling.max_outage 5 s", "first error (network)"),
                distributed=True,
            ),
            outcome,
            s3_target.count,
        )
    execute = next(s for s in _summary(run.results)["stages"] if s["name"] == "execute")
    outage = execute["longest_outage"]
    assert 5.0 < outage["length_secs"] < 12.0 and outage["first_error"]["kind"] == "network", outage
    status = (run.results / "STATUS.txt").read_text()
    for agent in ("a1", "a2"):
        line = next(x for x in status.splitlines() if x.lstrip().startswith(f"{agent}"))
        assert "storage outage" in line, line


@pytest.mark.parametrize("stage", ["prepare", "execute", "cleanup"])
def test_ctrl_c_with_a_frozen_server_aborts_within_seconds(
    stage: str, own_seaweed: ServerControl, own_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """Ctrl-C one second after the server was frozen (SIGSTOP) in a stage ends the run ABORTED within a few
    seconds, with every result file written."""
    objects = 3000 if stage == "prepare" else 200  # prepare must still be running when the server stops
    config = write_config(
        tmp_path, workload(own_target.uri, duration="3s", objects=objects, concurrency=CONCURRENCY)
    )
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        run.wait_for_stage(stage, timeout=60)
        own_seaweed.freeze()
        time.sleep(1.0)
        run.interrupt()
        done = run.wait(ABORT_WAIT_S)
        own_seaweed.thaw()
        time.sleep(0.5)  # requests the frozen server had accepted complete now; count after them
        check_run(run, done, aborted(left_slack=CONCURRENCY), outcome, own_target.count)


def _summary(results: Path) -> dict:
    return json.loads((results / "summary.json").read_text())
