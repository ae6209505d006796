"""The end-of-run write sequence both drivers share: STATUS.txt first, then every other file on its own.

A full or deleted results directory at the end must not lose the verdict: STATUS.txt goes first, then
summary.json, then every other file (TSVs, preflight.json), each in its own attempt through the run's
WriteGuard, then metadata.json (with the final status and reason). When any write of the run failed (here
or during the run: perf logs, the console transcript, stage files), a successful run becomes a FAILURE and
the reason names every path and OS error; STATUS.txt and summary.json are then written again with that
verdict (atomically: if that fails too, the first version stays).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sbench.results.resultsdir import ResultsDir
from sbench.status import RunStatus

#: writes STATUS.txt (or summary.json) for a verdict
VerdictWriter = Callable[[RunStatus, str], object]


def with_write_failures(results: ResultsDir, status: RunStatus, reason: str) -> tuple[RunStatus, str]:
    """The verdict once the run's failed writes are taken into account: a run whose results are incomplete
    did not succeed (an aborted or failed run keeps its status); the reason gains the failed paths."""
    lost = results.writes.describe()
    if not lost:
        return status, reason
    new_status = RunStatus.FAILURE if status is RunStatus.SUCCESS else status
    return new_status, f"{reason}; {lost}" if reason else lost


def write_final_results(
    results: ResultsDir,
    status: RunStatus,
    reason: str,
    *,
    status_file: VerdictWriter,
    summary_file: VerdictWriter,
    files: Sequence[tuple[Path, Callable[[], object]]] = (),
    metadata_extra: dict[str, Any] | None = None,
) -> tuple[RunStatus, str]:
    """Write every end-of-run file (see the module docstring); returns the final verdict, which the caller
    shows and turns into the exit code. Never raises for a write failure."""
    results.check_present()
    results.stamp_end()
    writes = results.writes
    writes.attempt(results.status_path, lambda: status_file(status, reason))
    writes.attempt(results.summary_path, lambda: summary_file(status, reason))
    for path, write in files:
        writes.attempt(path, write)
    written = (status, reason)
    final = written
    for _ in range(2):  # a second round only when metadata.json itself failed after the verdict was rewritten
        final = with_write_failures(results, status, reason)
        if final != written:
            writes.attempt(results.status_path, lambda f=final: status_file(*f))
            writes.attempt(results.summary_path, lambda f=final: summary_file(*f))
            written = final
        before = len(writes.failures)
        results.finalize(final[0].value, **{**(metadata_extra or {}), "reason": final[1]})
        if len(writes.failures) == before:
            break
    return final
