"""Every public sai3-bench config dry-runs, except the two that are invalid for v0.8.60 (reference §4)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from sbench.cli import main

INVALID = {"custom_stage_test.yaml", "multi_stage_test.yaml"}  # nonexistent keys `backend:` / `objects:`


def _rewrite(src: Path, tmp: Path) -> Path:
    """Point the /mnt paths at a temp dir, as reference §4 says a test must."""
    text = (
        src.read_text()
        .replace("/mnt/test", str(tmp / "mnt-test"))
        .replace("/mnt/scratch", str(tmp / "scratch"))
    )
    out = tmp / src.name
    out.write_text(text)
    return out


def _configs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.yaml"))


def test_valid_configs_dry_run(
    shared_configs: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    checked = 0
    for src in _configs(shared_configs):
        if src.name in INVALID:
            continue
        rc = main(["run", str(_rewrite(src, tmp_path)), "--dry-run"])
        out, err = capsys.readouterr()
        assert rc == 0, f"{src.name}: rc={rc}\n{err}"
        assert "Config is valid" in out and "Traceback" not in err
        checked += 1
    assert checked >= 19


@pytest.mark.parametrize("name", sorted(INVALID))
def test_invalid_configs_name_the_bad_key(
    shared_configs: Path, tmp_path: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = _rewrite(shared_configs / name, tmp_path)
    assert main(["run", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:4: backend: unknown key `backend`" in err
    assert f"{path}:10: objects: unknown key `objects`" in err
    assert "Traceback" not in err


def test_dry_run_in_a_subprocess(shared_configs: Path, tmp_path: Path) -> None:
    good = _rewrite(shared_configs / "test_barriers_local.yaml", tmp_path)
    bad = _rewrite(shared_configs / "custom_stage_test.yaml", tmp_path)
    ok = subprocess.run(
        [sys.executable, "-m", "sbench", "run", str(good), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ok.returncode == 0, ok.stderr
    assert "majority (barrier_sync.execute)" in ok.stdout
    failed = subprocess.run(
        [sys.executable, "-m", "sbench", "run", str(bad), "--dry-run"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode == 2 and "unknown key `backend`" in failed.stderr
    assert "Traceback" not in failed.stderr
