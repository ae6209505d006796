"""The S3 server itself fails under a running benchmark: killed and restarted mid-execute, or frozen
(SIGSTOP) in one stage while the user presses Ctrl-C. A private SeaweedFS per scenario, reached directly."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.checks import ABORT_WAIT_S, Expect, aborted, check_run
from tests.faults.conftest import S3Target, ServerControl, write_config
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import SHORT_RETRIES, workload

CONCURRENCY = 4


def test_healthy_run_keeps_every_promise(own_target: S3Target, tmp_path: Path, outcome: Outcome) -> None:
    """A run with no fault at all is a SUCCESS that leaves nothing behind (the baseline of every check)."""
    config = write_config(tmp_path, workload(own_target.uri, duration="2s"))
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        done = run.wait(60)
        check_run(run, done, Expect(code=0, status="SUCCESS", within_s=20), outcome, own_target.count)


def test_server_killed_mid_execute_fails_and_reports_what_is_left(
    own_seaweed: ServerControl, own_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """The server killed 1 s into execute and down until the run ends is a FAILURE that reports the objects
    cleanup could not delete (the server is restarted afterwards, same port and data, to count them)."""
    config = write_config(
        tmp_path, workload(own_target.uri, duration="3s", concurrency=CONCURRENCY, extra=SHORT_RETRIES)
    )
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        run.wait_for_stage("execute")
        time.sleep(1.0)
        own_seaweed.kill()
        done = run.wait(90)
        own_seaweed.restart()
        check_run(
            run, done, Expect(code=1, status="FAILURE", within_s=60, left=None), outcome, own_target.count
        )


def test_server_killed_and_restarted_mid_execute_fails_on_the_success_ratio(
    own_seaweed: ServerControl, own_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """The server killed 1 s into a 6 s execute and restarted 2 s later (same port, same data), with
    min_success_ratio 0.999, is a FAILURE naming the network errors; cleanup after the restart leaves
    nothing."""
    config = write_config(
        tmp_path,
        workload(
            own_target.uri,
            duration="6s",
            concurrency=CONCURRENCY,
            extra="error_handling: {min_success_ratio: 0.999}\n",
        ),
    )
    with SbenchProcess(config, tmp_path / "results", env=own_target.env()) as run:
        run.wait_for_stage("execute")
        time.sleep(1.0)
        own_seaweed.kill()
        time.sleep(2.0)
        own_seaweed.restart()
        done = run.wait(90)
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=60, reason=("network",)),
            outcome,
            own_target.count,
        )


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
