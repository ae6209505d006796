"""Local disks that fail a run: the target file system fills up under PUTs (a 1 MiB tmpfs), and the results
directory is deleted or full when the results are written."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.checks import Expect, check_run
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
    status_file = kept / "STATUS.txt"
    status = (
        status_file.read_text().splitlines()[0].split(":", 1)[1].strip() if status_file.is_file() else "-"
    )
    outcome.record(status=status, code=done.code, seconds=done.seconds, left=files_under(data))
    naming = [
        line
        for line in done.output.splitlines()
        if str(results) in line and not line.startswith(("sbench run ", "results: "))
    ]
    assert done.code == 1, done.output[-3000:]
    assert "Traceback (most recent call last)" not in done.output, done.output[-3000:]
    assert naming, f"no message names {results}:\n{done.output[-3000:]}"
    assert "STATUS:" in done.output and done.seconds < 30
    assert files_under(data) == 0  # cleanup still ran
    if how == "full":
        assert status == "FAILURE"  # STATUS.txt is written first, so it made it
