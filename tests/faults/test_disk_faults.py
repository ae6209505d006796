"""Local disks that fail a run: the target file system fills up under PUTs (a 1 MiB tmpfs), and the results
directory is deleted or full when the results are written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.checks import Expect, assert_none, check_run, exit_problems, read_status
from tests.faults.conftest import files_under, tmpfs_wrapper, write_config
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import PUT_ONLY, workload


def test_full_target_fails_with_the_no_space_error_first(tmp_path: Path, outcome: Outcome) -> None:
    """PUTs that fill a 1 MiB tmpfs target are a FAILURE whose STATUS.txt gives the no_space class and its
    first message; cleanup still removes what was written."""
    tiny, count_file = tmp_path / "tiny", tmp_path / "left.txt"
    tiny.mkdir()
    config = write_config(tmp_path, workload(f"file://{tiny}/", duration="3s", objects=1, ops=PUT_ONLY))
    with SbenchProcess(config, tmp_path / "results", wrapper=tmpfs_wrapper(tiny, "1m", count_file)) as run:
        done = run.wait(60)
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=30, reason=("no_space", "No space left on device")),
            outcome,
            lambda: int(count_file.read_text()),
        )


#: Lines that name the results directory whatever happens (the run's first line and its last).
QUIET = ("sbench run ", "results: ")


@pytest.mark.parametrize("how", ["deleted", "full"])
def test_results_write_failure_exits_1_naming_the_path(how: str, tmp_path: Path, outcome: Outcome) -> None:
    """A results directory deleted during the run, or too full for the results, ends with exit 1, the
    summary on the console and a message naming the path, never a traceback."""
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    config = write_config(tmp_path, workload(f"file://{data}/", duration="2s", objects=20))
    wrapper: list[str] = []
    kept = results  # where the results are to be read afterwards
    if how == "full":
        results.mkdir()
        kept = tmp_path / "results-copy"
        wrapper = tmpfs_wrapper(results, "32k", tmp_path / "count", copy_to=kept)
    with SbenchProcess(config, results, wrapper=wrapper) as run:
        if how == "deleted":
            run.wait_for_stage("execute")
            shutil.rmtree(results)
        done = run.wait(60)
    status, status_text = read_status(kept)
    outcome.record(status=status, code=done.code, seconds=done.seconds, left=files_under(data))
    problems = exit_problems(done, 1, 30)
    if not [line for line in done.output.splitlines() if str(results) in line and not line.startswith(QUIET)]:
        problems.append(f"no message names {results}")
    if "STATUS:" not in done.output:
        problems.append("no summary on the console")
    if files_under(data):
        problems.append(f"{files_under(data)} object(s) left: cleanup did not run")
    if status not in ("FAILURE", "-"):  # results that could not be written are a failed run
        problems.append(f"STATUS {status}, expected FAILURE (or no STATUS.txt at all)")
    assert_none(problems, done, status_text)
