"""report.html at the end of `sbench run`: written after every other result file, and never able to change
the run's verdict or exit code. A report that cannot be made costs a warning; Ctrl-C (or SIGTERM) while it
is drawn skips it, instead of reaching the run's own signal handling, whose second Ctrl-C would rewrite
STATUS.txt of a run that had already ended."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

log = logging.getLogger(__name__)


def _interrupt(signum: int, _frame: FrameType | None) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


@contextmanager
def _signals_interrupt() -> Iterator[None]:
    """SIGINT and SIGTERM raise KeyboardInterrupt in here (main thread only), and are put back after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def report_after_run(results: Path, say: Callable[[str], None]) -> Path | None:
    """Write `results`/report.html and say where; on a failure or an interrupt say why instead and return
    None."""
    retry = f"`sbench report {results}` draws it later"
    try:
        with _signals_interrupt():
            from sbench.report.htmlreport import write_report  # plotly is imported only here

            written = write_report(results)
    except KeyboardInterrupt as exc:
        say(f"report.html skipped: interrupted by {exc or 'Ctrl-C'}; the run's results are complete; {retry}")
        return None
    except Exception as exc:  # whatever went wrong in the report, the run's results stand as written
        log.debug("report.html failed", exc_info=True)
        say(
            f"warning: report.html was not written ({type(exc).__name__}: {exc}); the run's results are "
            f"complete and its status stands; {retry} (-vv shows the traceback)"
        )
        return None
    say(f"report: {written}")
    return written
