"""Preflight: checks that every storage root is usable before any benchmark I/O, with a typed result.

- `run_preflight(config, identity)`: one agent's checks (filesystem for file:// and direct://, real API calls
  for s3://, az://, gs://); run on the agent's own host.
- `controller_checks(config)`: config consistency across agents; run once on the driver.
- `planned_checks(config)`: what would run, for `--dry-run`.

Any check at level error means the run must stop before I/O (`PreflightResult.raise_if_failed()` raises
RunFailed, exit 1); warnings are shown and the run goes on.
"""

from sbench.preflight.distributed import controller_checks
from sbench.preflight.result import Check, CheckList, ErrorType, Level, PreflightResult
from sbench.preflight.suite import planned_checks, run_preflight

__all__ = [
    "Check",
    "CheckList",
    "ErrorType",
    "Level",
    "PreflightResult",
    "controller_checks",
    "planned_checks",
    "run_preflight",
]
