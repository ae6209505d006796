"""A target directory with a sibling "victim" whose files must survive every escape attempt (issue 10 item 1).

Import the `layout` fixture into a test module (`from tests.victim import layout`) and check the victim with
`assert_untouched` at the end of the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

VICTIM = {"a.txt": b"keep me", "b.txt": b"keep me too"}


@pytest.fixture
def layout(tmp_path: Path) -> tuple[Path, Path]:
    """(target dir, victim dir): siblings under tmp_path; the victim holds files that must survive."""
    bench, victim = tmp_path / "bench", tmp_path / "victim"
    bench.mkdir()
    victim.mkdir()
    for name, data in VICTIM.items():
        (victim / name).write_bytes(data)
    return bench, victim


def assert_untouched(victim: Path) -> None:
    """Every victim file is still there with its bytes, and nothing was added."""
    assert {p.name: p.read_bytes() for p in victim.iterdir()} == VICTIM
