"""The one result check every fault scenario ends with: what sbench promises about a run, whatever happened.

A run, failed or aborted or not, must (README "Results"): exit with the code its verdict implies, finish in
bounded time, print no traceback, write every promised file, keep its files consistent with each other (the
op counts of summary.json, the ALL rows of the results tables and the perf-log rows are the same numbers,
and on the Ray path the merged figures are the sums of the agents'), and leave on the storage either nothing
or exactly the number of objects it reports as left behind.

`check_run` gathers every problem before it fails, so one look at a failing scenario shows all that is wrong,
and it fills the scenario's Outcome (status, exit code, objects left, time) for the table in docs/faults.md
before asserting anything.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.cluster.conftest import stage_tables
from tests.faults.sbenchrun import Finished, SbenchProcess
from tests.faults.table import Outcome

#: Every file of a results directory, whatever the verdict (README "Results").
PROMISED_FILES = (
    "config.yaml",
    "console_log.txt",
    "metadata.json",
    "STATUS.txt",
    "summary.json",
    "workload_results.tsv",
    "prepare_results.tsv",
    "perf_log.tsv",
    "preflight.json",
)
#: Phases with a results table: summary.json section, perf_log.tsv `stage` label, table file.
PHASES = (("prepare", "Prepare", "prepare_results.tsv"), ("workload", "Workload", "workload_results.tsv"))
OP_COLUMNS = {"GET": "get_ops", "PUT": "put_ops", "META": "meta_ops"}
#: Issue 10: every stage stops within 2 s of the first Ctrl-C or SIGTERM, whatever the storage does. Measured
#: to the stage's end line on the console, which comes a moment after the stage returned.
STOP_WITHIN_S = 2.5
#: From the signal to the exit: the stop, then writing the results; on the Ray path also shutting down the
#: local Ray instance sbench started (5.2 s seen once with the suite's two workers beside other load: the
#: Ray bound has a second of margin; the stop itself keeps STOP_WITHIN_S).
EXIT_WITHIN_S = {False: 3.0, True: 6.0}
#: How long a test waits for an interrupted run before killing it: well past the bounds, so the table shows
#: how late a slow abort was without letting a hung one hold the suite for minutes.
ABORT_WAIT_S = 15.0
#: Ray helper processes of the instance sbench started must be gone this long after sbench exited.
RAY_GONE_WITHIN_S = 5.0


@dataclass(frozen=True)
class Expect:
    """What a scenario demands. `left`: objects that must remain on the storage (None: any number, as long
    as the run reports exactly that many); `left_slack`: how many more than reported may be there (PUTs a
    frozen server had accepted land after the run ended, and no client can know of them). `reason`: texts
    STATUS.txt must contain (case-insensitive)."""

    code: int
    status: str
    within_s: float
    reason: tuple[str, ...] = ()
    left: int | None = 0
    left_slack: int = 0
    interrupted: bool = False
    distributed: bool = False


def aborted(*, distributed: bool = False, left_slack: int = 0) -> Expect:
    """What an interrupted run must show: ABORTED, exit 1, the stage stopped and the run exited in time,
    and the objects it leaves behind reported (they stay after an abort)."""
    return Expect(
        code=1,
        status="ABORTED",
        within_s=120,
        left=None,
        left_slack=left_slack,
        interrupted=True,
        distributed=distributed,
    )


def check_run(
    run: SbenchProcess, done: Finished, expect: Expect, outcome: Outcome, count_left: Callable[[], int] | None
) -> None:
    """Record the run in `outcome`, then assert everything `expect` and the README promise."""
    results = run.results
    status, status_text = read_status(results)
    left = count_left() if count_left else None
    reported, exact = reported_left(results)
    outcome.record(status=status, code=done.code, seconds=done.seconds, left=left, reported_left=reported)

    problems = exit_problems(done, expect.code, expect.within_s)
    if expect.interrupted:
        problems += stop_problems(done, EXIT_WITHIN_S[expect.distributed])
    missing = [name for name in PROMISED_FILES if not (results / name).is_file()]
    if missing:
        problems.append(f"missing result files: {', '.join(missing)}")
    if status != expect.status:
        problems.append(f"STATUS {status}, expected {expect.status}")
    if (status == "SUCCESS") != (done.code == 0):
        problems.append(f"exit code {done.code} contradicts STATUS {status}")
    problems += [
        f"STATUS.txt does not mention {text!r}"
        for text in expect.reason
        if text.lower() not in status_text.lower()
    ]
    if not missing:
        problems += verdicts_agree(results, status) + counts_agree(results, expect.distributed)
    problems += _left_problems(left, reported, exact, expect)
    if reported:
        said = f"objects left: {reported:,}" if exact else f"objects left: at least {reported:,}"
        if said not in status_text.lower():
            problems.append(f"STATUS.txt does not say `{said}`")
    if expect.distributed:
        lingering = run.lingering(RAY_GONE_WITHIN_S)
        if lingering:
            problems.append(f"Ray processes alive {RAY_GONE_WITHIN_S:.0f} s after sbench exited: {lingering}")
    assert_none(problems, done, status_text)


def exit_problems(done: Finished, code: int, within_s: float) -> list[str]:
    """The exit code, the time bound from the start, and no traceback."""
    problems = []
    if done.code is None:
        problems.append(f"did not exit within {done.seconds:.0f} s (killed)")
    elif done.code != code:
        problems.append(f"exit code {done.code}, expected {code}")
    if done.seconds > within_s:
        problems.append(f"took {done.seconds:.1f} s, bound {within_s:.1f} s")
    if "Traceback (most recent call last)" in done.output:
        problems.append("a traceback was printed")
    return problems


def stop_problems(done: Finished, exit_within_s: float) -> list[str]:
    """The stage stopped within STOP_WITHIN_S of the signal, and the run exited within `exit_within_s`."""
    problems = []
    if done.stopped_after is None:
        problems.append("no stage ended after the signal")
    elif done.stopped_after > STOP_WITHIN_S:
        problems.append(
            f"the stage ended {done.stopped_after:.1f} s after the signal, bound {STOP_WITHIN_S} s"
        )
    if done.after_signal is not None and done.after_signal > exit_within_s:
        problems.append(f"exited {done.after_signal:.1f} s after the signal, bound {exit_within_s} s")
    return problems


def assert_none(problems: list[str], done: Finished, status_text: str = "") -> None:
    """Fail with every problem, one per line (the table keeps them), then STATUS.txt and the output's tail."""
    assert not problems, (
        "\n".join(problems)
        + f"\n--- STATUS.txt:\n{status_text[:3000]}"
        + f"\n--- output (tail):\n{done.output[-3000:]}"
    )


def read_status(results: Path) -> tuple[str, str]:
    """(verdict, whole text) of STATUS.txt; ("-", "") when there is none."""
    text = _read(results / "STATUS.txt")
    return (text.splitlines()[0].split(":", 1)[1].strip() if text else "-"), text


def _left_problems(left: int | None, reported: int | None, exact: bool, expect: Expect) -> list[str]:
    """Objects on the storage against the expectation and against the run's own report (a lower bound
    when the run says it is not exact)."""
    if left is None:
        return []
    problems = []
    if expect.left is not None and left != expect.left:
        problems.append(f"{left} object(s) left on the storage, expected {expect.left}")
    most = (reported or 0) + expect.left_slack if exact else left
    if left and (reported is None or not reported <= left <= most):
        problems.append(f"{left} object(s) left on the storage, but the run reports {reported}")
    if not left and reported:
        problems.append(f"the run reports {reported} object(s) left, the storage has none")
    return problems


def reported_left(results: Path) -> tuple[int | None, bool]:
    """(objects the run says it left behind, whether that count is exact) from summary.json `left_behind`
    (`total`, `exact`: false when a listing did not finish and the count is a lower bound); (None, True) when
    the run says nothing."""
    left_behind = _json(results / "summary.json").get("left_behind")
    if isinstance(left_behind, dict) and "total" in left_behind:
        return int(left_behind["total"]), bool(left_behind.get("exact", True))
    return None, True


def verdicts_agree(results: Path, status: str) -> list[str]:
    """STATUS.txt, summary.json and metadata.json tell the same verdict."""
    summary, metadata = _json(results / "summary.json"), _json(results / "metadata.json")
    found = {"summary.json": summary.get("status"), "metadata.json": metadata.get("status")}
    return [f"{name} says {value}, STATUS.txt {status}" for name, value in found.items() if value != status]


def counts_agree(results: Path, distributed: bool) -> list[str]:
    """Per phase and op class: summary.json ops == the table's ALL row == the sum of the perf-log rows
    (the controller's on the Ray path, which must also equal the sum over agents/<id>/perf_log.tsv)."""
    summary = _json(results / "summary.json")
    perf = perf_log_sums(results / "perf_log.tsv", "controller" if distributed else None)
    problems = []
    for section, label, table in PHASES:
        ops = {op: int(v["ops"]) for op, v in ((summary.get(section) or {}).get("operations") or {}).items()}
        rows = all_rows(results / table)
        for op in OP_COLUMNS:
            figures = {
                "summary.json": ops.get(op, 0),
                table: rows.get(op, 0),
                "perf_log.tsv": perf.get((label, op), 0),
            }
            if len(set(figures.values())) > 1:
                problems.append(f"{label} {op} counts disagree: {figures}")
    if distributed:
        agents = sorted((results / "agents").glob("*/perf_log.tsv"))
        if not agents:
            problems.append("no agents/<id>/perf_log.tsv")
        summed: dict[tuple[str, str], int] = {}
        for path in agents:
            for key, value in perf_log_sums(path, None).items():
                summed[key] = summed.get(key, 0) + value
        for key in sorted(set(summed) | set(perf)):
            if summed.get(key, 0) != perf.get(key, 0):
                problems.append(
                    f"{key[0]} {key[1]}: merged perf_log.tsv {perf.get(key, 0)} != sum of agents "
                    f"{summed.get(key, 0)}"
                )
        problems += stage_tables_agree(results)
    return problems


def stage_tables_agree(results: Path) -> list[str]:
    """In every NN_<stage>_results.tsv the merged ALL counts equal the sums of the per-agent rows."""
    problems = []
    for path in sorted(results.glob("[0-9][0-9]_*_results.tsv")):
        counts, agents = stage_tables(path)
        for op, column in OP_COLUMNS.items():
            merged, summed = counts.get(f"{op}/ALL", 0), sum(int(a[column]) for a in agents)
            if merged != summed:
                problems.append(f"{path.name} {op}: merged {merged} != sum of agents {summed}")
    return problems


def perf_log_sums(path: Path, agent: str | None) -> dict[tuple[str, str], int]:
    """(stage label, op class) -> summed op count over the rows (of `agent` only, when given)."""
    sums: dict[tuple[str, str], int] = {}
    with path.open(newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if agent is not None and row["agent_id"] != agent:
                continue
            for op, column in OP_COLUMNS.items():
                key = (row["stage"], op)
                sums[key] = sums.get(key, 0) + int(row[column])
    return sums


def all_rows(path: Path) -> dict[str, int]:
    """op class -> count of its `ALL` row in a results table."""
    with path.open(newline="") as handle:
        rows = [r for r in csv.reader(handle, delimiter="\t") if r and not r[0].startswith("#")]
    if not rows:
        return {}
    header = rows[0]
    at = header.index("count")
    return {r[0]: int(r[at]) for r in rows[1:] if len(r) > at and r[1] == "ALL"}


def _read(path: Path) -> str:
    return path.read_text(errors="replace") if path.is_file() else ""


def _json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
