"""An agent process killed (SIGKILL) mid-execute on the Ray path: two local agents, the default
all_or_nothing barrier. The run fails, and the survivor cleans up what the dead agent created."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.faults.checks import Expect, check_run
from tests.faults.conftest import S3Target, write_config
from tests.faults.sbenchrun import SbenchProcess, agent_processes
from tests.faults.table import Outcome
from tests.faults.workloads import TWO_AGENTS, workload

pytestmark = [pytest.mark.ray, pytest.mark.slow]


def test_killed_agent_fails_the_run_and_its_objects_are_cleaned(
    s3_target: S3Target, tmp_path: Path, outcome: Outcome
) -> None:
    """An agent killed 1.5 s into execute fails the run (all_or_nothing); the survivor deletes the dead
    agent's objects too, so nothing is left, and the merged results equal the agents' sums."""
    config = write_config(tmp_path, workload(s3_target.uri, duration="5s", objects=100, extra=TWO_AGENTS))
    with SbenchProcess(config, tmp_path / "results", env=s3_target.env()) as run:
        run.wait_for_stage("execute", timeout=90)
        time.sleep(1.5)
        agents = agent_processes(run.ray_tmp)
        assert len(agents) == 2, [a.cmdline() for a in agents]
        agents[0].kill()
        done = run.wait(120)
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=90, distributed=True),
            outcome,
            s3_target.count,
        )
