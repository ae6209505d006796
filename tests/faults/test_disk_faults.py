"""Local disks that fail a run: the target file system fills up under PUTs (a 1 MiB tmpfs), and the results
directory is deleted or full when the results are written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.faults.checks import Expect, assert_none, check_run, exit_problems, read_status
from tests.faults.conftest import files_under, tmpfs_wrapper, write_config
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import PUT_ONLY, workload
from tests.test_verdict_runs import _first_errors, _reason


def test_full_target_fails_with_the_no_space_error_first(tmp_path: Path, outcome: Outcome) -> None:
    """PUTs that fill a 1 MiB tmpfs target are a FAILURE whose STATUS.txt gives the no_space class and its
    first message; cleanup still removes what was written. With retries on, no PUT is retried: a full file
    system stays full."""
    tiny, count_file = tmp_path / "tiny", tmp_path / "left.txt"
    tiny.mkdir()
    retries = "error_handling: {retry_on_error: true, max_retries: 3}\n"
    config = write_config(
        tmp_path, workload(f"file://{tiny}/", duration="3s", objects=1, ops=PUT_ONLY, extra=retries)
    )
    with SbenchProcess(config, tmp_path / "results", wrapper=tmpfs_wrapper(tiny, "1m", count_file)) as run:
        done = run.wait(60)
        check_run(
            run,
            done,
            Expect(code=1, status="FAILURE", within_s=30, reason=("no_space", "No space left on device")),
            outcome,
            lambda: int(count_file.read_text()),
        )
    reason = _reason(run.results)
    assert "stage 'execute' failed" in reason and "no_space=" in reason, reason
    summary = json.loads((run.results / "summary.json").read_text())
    assert summary["workload"]["totals"]["retries"] == 0
    assert summary["workload"]["errors"]["by_class"].keys() == {"no_space"}
    [line] = _first_errors(run.results)
    assert line.startswith("stage execute: no_space") and "[ENOSPC]" in line and "disk full" in line, line
    assert "first no_space error" in done.output


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
    if how == "deleted":
        _deleted_results_still_land(results, done.output)


def _deleted_results_still_land(results: Path, output: str) -> None:
    """A results directory deleted mid-run is made again: the verdict lands in every file, each file on its
    own, naming the deleted directory and the OS error, with no `.tmp` left, and the closing summary reaches
    both the terminal and the new transcript."""
    gone = f"{results}: the directory was deleted during the run (No such file or directory [ENOENT])"
    assert gone in _reason(results)
    summary = json.loads((results / "summary.json").read_text())
    assert summary["status"] == "FAILURE" and summary["workload"]["totals"]["ops"] > 0
    assert json.loads((results / "metadata.json").read_text())["status"] == "FAILURE"
    assert (results / "workload_results.tsv").is_file()
    assert not list(results.glob("*.tmp"))
    assert "STATUS: FAILURE" in output and "the directory was deleted during the run" in output
    assert "STATUS: FAILURE" in (results / "console_log.txt").read_text()
