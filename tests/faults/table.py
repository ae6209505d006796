"""The fault-scenario table (docs/faults.md): run the fault suite, record each scenario's outcome, write it.

`python -m tests.faults.table [OUT.md] [-- PYTEST ARGS]` (or `make fault-table`, which runs it inside the
loopback-only namespace) runs `pytest tests/faults` with SBENCH_FAULT_TABLE pointing at a scratch file;
every scenario appends one JSON line there (its Outcome, filled by checks.check_run, plus whether the test
passed), and the table is written from those lines. The table states what was observed, passing or not,
and the command exits with pytest's code.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE_ENV = "SBENCH_FAULT_TABLE"
DEFAULT_OUT = ROOT / "docs" / "faults.md"


@dataclass
class Outcome:
    """What one scenario observed: verdict, exit code, time to finish, objects left on the storage and the
    number the run reported as left, and (set after the test) whether every check held."""

    scenario: str
    demand: str
    status: str = "-"
    code: int | None = None
    seconds: float | None = None
    left: int | None = None
    reported_left: int | None = None
    passed: bool | None = None
    #: what did not hold (the failed assertion's problem lines), empty when everything held
    problem: str = ""

    def record(
        self,
        *,
        status: str,
        code: int | None,
        seconds: float,
        left: int | None = None,
        reported_left: int | None = None,
    ) -> None:
        self.status, self.code, self.seconds = status, code, round(seconds, 1)
        self.left, self.reported_left = left, reported_left

    def note_problem(self, message: str) -> None:
        """Keep the problem lines of a failed check (check_run lists them before `--- STATUS.txt`)."""
        text = message.split("\n---", 1)[0].removeprefix("AssertionError: ")
        self.problem = "; ".join(line.strip() for line in text.splitlines() if line.strip())[:240]

    def append_to(self, path: Path) -> None:
        with path.open("a") as handle:
            handle.write(json.dumps(asdict(self)) + "\n")


def _cell(value: object) -> str:
    return "-" if value is None else str(value).replace("|", "\\|")


def render(rows: list[Outcome], pytest_code: int) -> str:
    """The Markdown page."""
    commit = (
        subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        or "unknown"
    )
    held = sum(1 for r in rows if r.passed)
    lines = [
        "# Fault-injection scenarios",
        "",
        "Each row is one scenario of `tests/faults/` (run with `pytest tests/faults`): a fault injected",
        "into a real run against real SeaweedFS or Azurite (through the loopback fault proxy",
        "`tests/faults/proxy.py`), a killed or frozen server, a tiny tmpfs, a killed Ray agent, a Ctrl-C, or",
        "hostile input. Every scenario checks the exit code, STATUS.txt, that every result file exists and",
        "agrees with the others, the objects left on the storage (none, or exactly the number the run",
        "reports) and a time bound.",
        "",
        f"Regenerate with `make fault-table` (generated {datetime.date.today().isoformat()} at commit "
        f"`{commit}`: {held} of {len(rows)} scenarios hold, pytest exit code {pytest_code}).",
        "",
        "`exit` is `killed` where the run had not ended when the scenario gave up on it; `objects left` is",
        "what the storage holds afterwards, with the number the run reported in brackets.",
        "",
        "| scenario | demand | holds | status | exit | objects left (reported) | time (s) | what failed |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        left = "-" if r.left is None else f"{r.left} ({_cell(r.reported_left)})"
        holds = "yes" if r.passed else "**no**"
        code = "killed" if r.code is None and r.seconds is not None else _cell(r.code)
        lines.append(
            f"| `{r.scenario}` | {r.demand} | {holds} | {r.status} | {code} | {left} | "
            f"{_cell(r.seconds)} | {_cell(r.problem)} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv and argv[0] != "--" else DEFAULT_OUT
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    with tempfile.TemporaryDirectory() as tmp:
        rows_file = Path(tmp) / "rows.jsonl"
        code = subprocess.call(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/faults", *extra],
            cwd=ROOT,
            env={**os.environ, TABLE_ENV: str(rows_file)},
        )
        text = rows_file.read_text() if rows_file.exists() else ""
    rows = [Outcome(**json.loads(line)) for line in text.splitlines() if line.strip()]
    if not rows:
        print(
            f"no scenario recorded an outcome (pytest exit code {code}); {out} left as it was",
            file=sys.stderr,
        )
        return code or 1
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(rows, code))
    print(
        f"{out}: {sum(1 for r in rows if r.passed)} of {len(rows)} scenarios hold (pytest exit code {code})"
    )
    return code


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
