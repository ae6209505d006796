"""report.html at the end of `sbench run`: written after every other result file, and never able to change
the run's verdict or exit code (a report that cannot be made costs a warning, not the run)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)


def report_after_run(results: Path, say: Callable[[str], None]) -> Path | None:
    """Write `results`/report.html and say where; on any failure say why instead and return None."""
    try:
        from sbench.report.htmlreport import write_report  # plotly is imported only here

        written = write_report(results)
    except Exception as exc:  # whatever went wrong in the report, the run's results stand as written
        log.debug("report.html failed", exc_info=True)
        say(
            f"warning: report.html was not written ({type(exc).__name__}: {exc}); the run's results are "
            f"complete and its status stands; retry with `sbench report {results}` (-vv shows the traceback)"
        )
        return None
    say(f"report: {written}")
    return written
