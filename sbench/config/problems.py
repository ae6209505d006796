"""One problem in a workload file, located by key path and line, and the ConfigError that carries them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sbench.errors import ConfigError

KeyPath = tuple[str | int, ...]


def format_path(path: KeyPath) -> str:
    """`('workload', 2, 'weight')` -> `workload[2].weight`: the spelling users see in every message."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


@dataclass(frozen=True, slots=True)
class Problem:
    """A single error or warning: where (key path and YAML line) and what to do."""

    path: KeyPath
    line: int | None
    message: str

    def render(self, source: Path | None) -> str:
        where = format_path(self.path)
        place = (
            f"{source}:{self.line}"
            if source is not None and self.line
            else (f"line {self.line}" if self.line else str(source or "config"))
        )
        return f"{place}: {where}: {self.message}"


#: Problems listed in one message; a generated file can have thousands, and the first ones show the pattern.
MAX_LISTED_PROBLEMS = 20


def config_error(
    problems: Sequence[Problem], source: Path | None, *, what: str = "workload file"
) -> ConfigError:
    """A ConfigError whose message is one paragraph per problem (the first MAX_LISTED_PROBLEMS), by line."""
    ordered = sorted(problems, key=lambda p: (p.line or 0, format_path(p.path)))
    head = f"{source}: the {what} is invalid" if source else "the workload config is invalid"
    if len(ordered) > 1:
        head += f" ({len(ordered):,} problems)"
    lines = [p.render(source) for p in ordered[:MAX_LISTED_PROBLEMS]]
    if len(ordered) > MAX_LISTED_PROBLEMS:
        lines.append(f"... and {len(ordered) - MAX_LISTED_PROBLEMS:,} more; fix these first")
    body = "\n".join(lines)
    return ConfigError(f"{head}:\n{body}")
