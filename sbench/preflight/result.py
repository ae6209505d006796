"""The typed outcome of preflight: a flat list of checks, each classified, mergeable across agents.

sai3 v0.8.60 carried its validation summary as JSON inside a LiveStats error string; here the result is a
pydantic model that pickles through Ray, dumps straight into `preflight.json` and `summary.json`, and renders
as one table, so nothing downstream has to parse text to learn whether the run may start.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator
from rich.console import Console
from rich.table import Table
from rich.text import Text

from sbench.errors import RunFailed


class Level(StrEnum):
    """How a check ended. Only ERROR stops a run; WARNING is shown and the run goes on."""

    SUCCESS = "success"
    INFO = "info"
    WARNING = "warning"
    ERROR = "error"


class ErrorType(StrEnum):
    """What kind of problem a failed check points at, so the user knows which knob to turn."""

    AUTHENTICATION = "authentication"
    PERMISSION = "permission"
    NETWORK = "network"
    CONFIGURATION = "configuration"
    RESOURCE = "resource"
    SYSTEM = "system"


class Check(BaseModel):
    """One preflight probe and what it found."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Level = Field(description="success, info, warning or error; any error stops the run")
    error_type: ErrorType | None = Field(
        default=None,
        description="Category of the problem for warnings and errors; None when nothing is wrong",
    )
    name: str = Field(description="Dotted check id, e.g. 'fs.write', 's3.list', 'config.agent_ids'")
    message: str = Field(description="What was found, in one sentence")
    suggestion: str | None = Field(
        default=None, description="What to change (the variable, key, path or resource to fix)"
    )
    details: dict[str, Any] = Field(
        default_factory=dict, description="Measured facts behind the message (JSON-safe, never secrets)"
    )
    agent_id: str | None = Field(
        default=None, description="Agent that ran the check; None for controller checks"
    )
    endpoint: str | None = Field(default=None, description="Target URI or path the check was about")


_LEVEL_STYLE = {
    Level.SUCCESS: ("ok", "green"),
    Level.INFO: ("info", "cyan"),
    Level.WARNING: ("warn", "yellow"),
    Level.ERROR: ("ERROR", "bold red"),
}
_DERIVED_KEYS = ("passed", "counts")


class PreflightResult(BaseModel):
    """All checks of one agent, of the controller, or of a whole run once merged."""

    model_config = ConfigDict(extra="forbid")

    checks: list[Check] = Field(default_factory=list, description="Every check that ran, in order")

    @model_validator(mode="before")
    @classmethod
    def _drop_derived(cls, data: Any) -> Any:
        # `passed` and `counts` are written for readers of preflight.json; they are recomputed, not stored.
        if isinstance(data, dict) and any(k in data for k in _DERIVED_KEYS):
            return {k: v for k, v in data.items() if k not in _DERIVED_KEYS}
        return data

    @computed_field(description="True when no check ended in error")  # type: ignore[prop-decorator]
    @property
    def passed(self) -> bool:
        return not any(c.level is Level.ERROR for c in self.checks)

    @computed_field(description="Number of checks per level")  # type: ignore[prop-decorator]
    @property
    def counts(self) -> dict[str, int]:
        out = {level.value: 0 for level in Level}
        for check in self.checks:
            out[check.level.value] += 1
        return out

    @property
    def errors(self) -> list[Check]:
        return [c for c in self.checks if c.level is Level.ERROR]

    @property
    def warnings(self) -> list[Check]:
        return [c for c in self.checks if c.level is Level.WARNING]

    def merge(self, *others: PreflightResult) -> PreflightResult:
        """A new result with this one's checks followed by the others' (agents keep their agent_id)."""
        return PreflightResult(checks=[*self.checks, *(c for o in others for c in o.checks)])

    @classmethod
    def merge_all(cls, results: Iterable[PreflightResult]) -> PreflightResult:
        return cls(checks=[c for r in results for c in r.checks])

    def to_json(self, indent: int | None = 2) -> str:
        return self.model_dump_json(indent=indent)

    @classmethod
    def from_json(cls, text: str) -> PreflightResult:
        return cls.model_validate_json(text)

    def find(self, name: str) -> list[Check]:
        """Checks with exactly this name (tests and callers looking for one probe)."""
        return [c for c in self.checks if c.name == name]

    def summary_line(self) -> str:
        counts = self.counts
        verdict = "passed" if self.passed else "FAILED"
        return (
            f"Preflight {verdict}: {counts['success']} ok, {counts['info']} info, "
            f"{counts['warning']} warning(s), {counts['error']} error(s)"
        )

    def render(self, console: Console, *, show_success: bool = True) -> None:
        """Print the checks as one table and a verdict line; the run prints it before it stops or starts."""
        show_agent = len({c.agent_id for c in self.checks}) > 1
        table = Table(title="Preflight checks", show_lines=False, expand=False)
        table.add_column("Level", no_wrap=True)
        if show_agent:
            table.add_column("Agent", no_wrap=True)
        table.add_column("Check", no_wrap=True)
        table.add_column("Where", overflow="fold")
        table.add_column("Result", overflow="fold")
        for check in self.checks:
            if not show_success and check.level is Level.SUCCESS:
                continue
            label, style = _LEVEL_STYLE[check.level]
            kind = f" ({check.error_type.value})" if check.error_type else ""
            result = Text(check.message)
            if check.suggestion:
                result.append(f"\n→ {check.suggestion}", style="italic")
            row: list[Text | str] = [Text(label + kind, style=style)]
            if show_agent:
                row.append(check.agent_id or "controller")
            row.extend([check.name, check.endpoint or "", result])
            table.add_row(*row)
        console.print(table)
        console.print(Text(self.summary_line(), style="green" if self.passed else "bold red"))

    def failure_message(self) -> str:
        """One paragraph naming every error and its fix, for RunFailed and plain logs."""
        parts = []
        for c in self.errors:
            who = f"[{c.agent_id}] " if c.agent_id else ""
            where = f" ({c.endpoint})" if c.endpoint else ""
            fix = f" Fix: {c.suggestion}" if c.suggestion else ""
            parts.append(f"{who}{c.name}{where}: {c.message}{fix}")
        return "Preflight found {} error(s), nothing was run: {}".format(len(parts), " | ".join(parts))

    def raise_if_failed(self) -> None:
        """Raise RunFailed (exit 1) when any check ended in error; warnings never stop a run."""
        if not self.passed:
            raise RunFailed(
                self.failure_message(),
                hint="Fix the items above and run again; `sbench run --preflight-only CONFIG` repeats only "
                "these checks.",
            )


def unfinished_check(why: str, *, agent_id: str | None, endpoint: str | None) -> Check:
    """Stands for the check that was still running when the preflight was stopped or lost, so
    preflight.json of an interrupted run lists what finished and says where it stopped."""
    where = f"a check of {endpoint}" if endpoint else "a check"
    return Check(
        level=Level.ERROR,
        error_type=ErrorType.NETWORK,
        name="preflight.unfinished",
        message=f"preflight did not finish ({why}) while {where} was still waiting for an answer",
        suggestion="Check that the endpoint answers (the checks listed before this one finished).",
        agent_id=agent_id,
        endpoint=endpoint,
    )


class CheckList:
    """Collects checks for one agent and one endpoint without repeating agent_id/endpoint on every call."""

    def __init__(self, agent_id: str | None = None, endpoint: str | None = None) -> None:
        self.agent_id = agent_id
        self.endpoint = endpoint
        self.checks: list[Check] = []

    def add(
        self,
        level: Level,
        name: str,
        message: str,
        *,
        error_type: ErrorType | None = None,
        suggestion: str | None = None,
        details: dict[str, Any] | None = None,
        endpoint: str | None = None,
    ) -> Check:
        check = Check(
            level=level,
            error_type=error_type,
            name=name,
            message=message,
            suggestion=suggestion,
            details=details or {},
            agent_id=self.agent_id,
            endpoint=endpoint if endpoint is not None else self.endpoint,
        )
        self.checks.append(check)
        return check

    def success(self, name: str, message: str, **kw: Any) -> Check:
        return self.add(Level.SUCCESS, name, message, **kw)

    def info(self, name: str, message: str, **kw: Any) -> Check:
        return self.add(Level.INFO, name, message, **kw)

    def warning(self, name: str, message: str, error_type: ErrorType, suggestion: str, **kw: Any) -> Check:
        return self.add(Level.WARNING, name, message, error_type=error_type, suggestion=suggestion, **kw)

    def error(self, name: str, message: str, error_type: ErrorType, suggestion: str, **kw: Any) -> Check:
        return self.add(Level.ERROR, name, message, error_type=error_type, suggestion=suggestion, **kw)

    def result(self) -> PreflightResult:
        return PreflightResult(checks=list(self.checks))
