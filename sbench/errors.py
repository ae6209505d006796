"""User-facing error types and the exit codes they map to.

The CLI turns these into one clear paragraph and an exit code; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_RUN_FAILED = 1
EXIT_USAGE = 2
#: a second Ctrl-C, or Ctrl-C outside a run (the shell's 128 + SIGINT); an aborted run exits 1 as a
#: failed one does
EXIT_INTERRUPTED = 130


class SbenchError(Exception):
    """Base of every error caused by the user's input or environment rather than by a bug in sbench."""

    exit_code = EXIT_RUN_FAILED

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message}\n  hint: {self.hint}"


class ConfigError(SbenchError):
    """The workload file or a CLI flag is wrong; nothing was run."""

    exit_code = EXIT_USAGE


class UsageError(ConfigError):
    """Command-line usage error (conflicting flags, missing arguments)."""


class RunFailed(SbenchError):
    """The run started but could not complete (unreachable endpoint, error budget exceeded, full disk...)."""

    exit_code = EXIT_RUN_FAILED
