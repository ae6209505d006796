"""Hostile workload files: an alias bomb, a huge document, absurd values and an op path that climbs out of
the target. Each is refused as a config error (exit 2, the key named, no traceback) about as fast as a
plain typo is, and nothing is run: a victim directory next to the target stays untouched."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.checks import assert_none, exit_problems
from tests.faults.conftest import write_config
from tests.faults.sbenchrun import SbenchProcess
from tests.faults.table import Outcome
from tests.faults.workloads import workload

#: Beyond the time sbench takes to refuse a one-line typo: the limit issue 10 sets for hostile input.
REFUSE_WITHIN_S = 1.0
#: Where a refusal is missing, the child is killed this long after the typo time, and its address space is
#: capped (2 GiB), so an alias bomb or 10^9 workers cannot take the shared machine's memory meanwhile.
GIVE_UP_AFTER_S = 10.0
MEMORY_CAP = ["prlimit", f"--as={2 << 30}", "--"]


def _billion_laughs(_: Path) -> str:
    """Nine levels of nine aliases each: 9^9 (387 million) strings once expanded."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    return "\n".join(lines) + "\n"


def _huge_list(target: Path) -> str:
    """A workload list of 1.7 million entries."""
    return f'target: "file://{target}/"\nduration: 1s\nworkload:\n' + "  - {op: get, path: x}\n" * 1_700_000


def _config(**replace: str) -> Callable[[Path], str]:
    def build(target: Path) -> str:
        text = workload(f"file://{target}/", duration="2s", objects=10)
        for old, new in replace.items():
            text = text.replace(old, new)
        return text

    return build


#: name -> (config builder taking the target directory, what the message must name: a regular expression
#: searched case-insensitively; the file itself where no single key is at fault)
HOSTILE: dict[str, tuple[Callable[[Path], str], str]] = {
    "billion-laughs": (_billion_laughs, "alias"),
    "1.7M-entry-list": (_huge_list, r"fault\.yaml"),
    "concurrency-1e9": (_config(**{"concurrency: 4": "concurrency: 1000000000"}), "concurrency"),
    "object-size-1000000TiB": (
        _config(**{"size_spec: 2KiB, weight: 40": "object_size: 1000000TiB, weight: 40"}),
        "object_size",
    ),
    "perf-log-interval-1ns": (_config(**{"workload:": "perf_log: {interval: 1ns}\nworkload:"}), "interval"),
    "processes-1e6": (_config(**{"workload:": "processes: 1000000\nworkload:"}), "processes"),
    "op-path-escapes-target": (
        _config(
            **{'path: "up/"': 'path: "../victim/"', '{op: get, path: ""': '{op: delete, path: "../victim/"'}
        ),
        r"workload\[\d+\]\.path",
    ),
}


def refuse_typo_seconds(tmp: Path) -> float:
    """How long sbench takes to refuse a config with one unknown key: interpreter start and imports."""
    config = write_config(tmp, 'target: "file:///tmp/x/"\nduration: 1s\nwrokload: []\n')
    with SbenchProcess(config, tmp / "results", wrapper=MEMORY_CAP) as run:
        done = run.wait(60)
    assert done.code == 2, done.output
    return done.seconds


@pytest.fixture(scope="module")
def typo_seconds(tmp_path_factory: pytest.TempPathFactory) -> float:
    return refuse_typo_seconds(tmp_path_factory.mktemp("typo"))


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_input_is_refused_fast_and_touches_nothing(
    name: str, typo_seconds: float, tmp_path: Path, outcome: Outcome
) -> None:
    """Hostile input is refused with exit 2 within about a second, naming the key, with no traceback and
    nothing run."""
    build, named = HOSTILE[name]
    target, victim = tmp_path / "bench", tmp_path / "victim"
    target.mkdir()
    victim.mkdir()
    for i in range(5):
        (victim / f"keep-{i}.txt").write_text(f"victim {i}")
    config = write_config(tmp_path, build(target))
    started = time.monotonic()
    with SbenchProcess(config, tmp_path / "results", wrapper=MEMORY_CAP) as run:
        done = run.wait(typo_seconds + GIVE_UP_AFTER_S)
    outcome.record(status="-", code=done.code, seconds=time.monotonic() - started)
    within = typo_seconds + REFUSE_WITHIN_S
    if done.seconds > within:  # the machine may have slowed since the module's typo run: time one now
        (tmp_path / "typo").mkdir()
        within = max(typo_seconds, refuse_typo_seconds(tmp_path / "typo")) + REFUSE_WITHIN_S
    problems = exit_problems(done, 2, within)
    if not re.search(named, done.output, re.IGNORECASE):
        problems.append(f"the message does not name {named!r}")
    if sorted(p.name for p in victim.iterdir()) != [f"keep-{i}.txt" for i in range(5)] or any(
        (victim / f"keep-{i}.txt").read_text() != f"victim {i}" for i in range(5)
    ):
        problems.append("the victim directory next to the target was changed")
    if any(target.iterdir()):
        problems.append("something was written to the target")
    assert_none(problems, done)
