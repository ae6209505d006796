"""`sbench` CLI: sai3 flag conflicts, exit codes, error reporting, and the hand-over to the runner."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from sbench.cli import EXIT_INTERRUPTED, main
from sbench.commands.run import CONFLICTS
from sbench.config.runoptions import RunOptions
from sbench.errors import RunFailed
from sbench.plan.stages import flagged_stages
from sbench.run import launch
from sbench.run.launch import is_distributed
from sbench.storage.base import ErrorClass, StorageError

CONFIG = """\
target: "file://{root}/"
duration: 2s
prepare:
  ensure_objects:
    - {{base_uri: "file://{root}/data/", count: 5, size_spec: 1KiB}}
  cleanup: true
workload:
  - {{op: get, path: "data/", weight: 1}}
"""


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "w.yaml"
    path.write_text(CONFIG.format(root=tmp_path / "store"))
    return path


@pytest.fixture
def fake_runner(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Stands in for the run launcher to check what the CLI hands over."""
    seen: dict[str, Any] = {"result": 0}

    def run(loaded: Any, options: RunOptions, config_path: Path) -> int:
        seen.update(loaded=loaded, options=options, config_path=config_path)
        if "raise" in seen:
            raise seen["raise"]
        return seen["result"]

    monkeypatch.setattr(launch, "run", run)
    return seen


@pytest.mark.parametrize(("first", "second"), [(a, b) for a, b, _ in CONFLICTS])
def test_flag_conflicts_are_usage_errors(
    first: str, second: str, config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    flags = [f"--{first.replace('_', '-')}", f"--{second.replace('_', '-')}"]
    assert main(["run", str(config_file), *flags]) == 2
    err = capsys.readouterr().err
    assert f"{flags[0]} and {flags[1]} cannot be combined" in err and "Traceback" not in err


def test_sai3_conflict_list_is_complete() -> None:
    pairs = {frozenset((a, b)) for a, b, _ in CONFLICTS}
    for pair in (
        ("prepare_only", "verify"),
        ("prepare_only", "skip_prepare"),
        ("prepare_only", "cleanup_only"),
        ("cleanup_only", "skip_prepare"),
        ("cleanup_only", "verify"),
        ("cleanup_only", "no_cleanup"),
        ("verify", "skip_prepare"),
    ):
        assert frozenset(pair) in pairs


def test_config_given_once(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run"]) == 2
    assert "no workload file given" in capsys.readouterr().err
    assert main(["run", str(config_file), "--config", str(config_file)]) == 2
    assert "given twice" in capsys.readouterr().err
    assert main(["run", "--config", str(config_file), "--dry-run"]) == 0


def test_unknown_flag_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "x.yaml", "--dry-runn"])
    assert info.value.code == 2
    assert "unrecognized arguments: --dry-runn" in capsys.readouterr().err


def test_real_run_hands_over_to_the_runner(
    config_file: Path, fake_runner: dict[str, Any], tmp_path: Path
) -> None:
    fake_runner["result"] = 1
    rc = main(
        [
            "run",
            str(config_file),
            "--results-dir",
            str(tmp_path / "res"),
            "--skip-prepare",
            "--no-cleanup",
            "--op-log",
            str(tmp_path / "ops.tsv"),
            "-v",
        ]
    )
    assert rc == 1
    options: RunOptions = fake_runner["options"]
    assert options == RunOptions(
        results_dir=tmp_path / "res",
        skip_prepare=True,
        no_cleanup=True,
        op_log=tmp_path / "ops.tsv",
        verbose=1,
    )
    assert fake_runner["config_path"] == config_file
    loaded = fake_runner["loaded"]
    assert loaded.config.prepare.cleanup is False  # --no-cleanup forces prepare.cleanup=false (sai3)
    assert [p.name for p in flagged_stages(loaded.config, options)] == ["preflight", "execute"]


def test_ray_address_flag_reaches_the_runner_and_sends_a_single_agent_config_to_ray(
    config_file: Path, fake_runner: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    assert main(["run", str(config_file), "--ray-address", "10.0.0.10:6379"]) == 0
    options: RunOptions = fake_runner["options"]
    assert options.ray_address == "10.0.0.10:6379"
    loaded = fake_runner["loaded"]
    assert is_distributed(loaded, options.ray_address)
    assert not is_distributed(loaded, None)  # no named cluster: in process, no Ray at all


def test_mode_flags_reach_the_runner(config_file: Path, fake_runner: dict[str, Any]) -> None:
    assert main(["run", str(config_file), "--cleanup-only"]) == 0
    options: RunOptions = fake_runner["options"]
    assert options.mode == "cleanup-only"
    assert [p.name for p in flagged_stages(fake_runner["loaded"].config, options)] == ["cleanup"]
    assert main(["run", str(config_file), "--verify"]) == 0
    assert flagged_stages(fake_runner["loaded"].config, fake_runner["options"]) == []


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (RunFailed("endpoint http://127.0.0.1:1 refused the connection; start the server"), 1, "refused"),
        (StorageError(ErrorClass.AUTH, "access denied", uri="s3://b/k"), 1, "auth (s3://b/k): access denied"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
    ],
)
def test_runner_errors_map_to_exit_codes(
    exc: BaseException,
    code: int,
    words: str,
    config_file: Path,
    fake_runner: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    fake_runner["raise"] = exc
    assert main(["run", str(config_file)]) == code
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_mode_needing_prepare_without_one(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "np.yaml"
    path.write_text('target: "s3://b/"\nworkload: [{op: put, path: "", weight: 1}]\n')
    assert main(["run", str(path), "--prepare-only", "--dry-run"]) == 2
    assert "nothing to act on" in capsys.readouterr().err


def test_verbose_shows_the_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("workload: [{op: get, path: x, weight: -1}]\n")
    assert main(["run", str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert main(["-v", "run", str(path)]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_dry_run_prints_warnings_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "w.yaml"
    path.write_text(
        'target: "s3://b/"\nprocessing_mode: multi_process\nworkload: [{op: put, path: "", weight: 1}]\n'
    )
    assert main(["run", str(path), "--dry-run"]) == 0
    out, err = capsys.readouterr()
    assert f"warning: {path}:2: processing_mode: has no effect in sbench" in err
    assert "Config is valid" in out


def test_util_is_wired(capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("sbench.commands.util", reason="sbench util is built by the storage engineer")
    with pytest.raises(SystemExit) as info:
        main(["util", "--help"])
    assert info.value.code == 0
    assert "health" in capsys.readouterr().out


def _sbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sbench", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize(
    ("yaml_text", "words"),
    [
        (
            "target: file:///tmp/x/\nworkload:\n  - {op: put, path: a/, wieght: 1}\n",
            ":3: workload[0].wieght: unknown key `wieght`. Did you mean `weight`?",
        ),
        (
            "target: file:///tmp/x/\nduration: soon\nworkload:\n  - {op: put, path: a/, weight: 1}\n",
            ":2: duration: 'soon' is not a duration",
        ),
        ("target: file:///tmp/x/\nworkload: [\n", "is not valid YAML"),
    ],
)
def test_subprocess_user_errors(tmp_path: Path, yaml_text: str, words: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml_text)
    result = _sbench("run", str(path), "--dry-run")
    assert result.returncode == 2
    assert words in result.stderr and "Traceback" not in result.stderr
    assert result.stderr.startswith("error: ")


def test_subprocess_unreadable_and_version(tmp_path: Path) -> None:
    result = _sbench("run", str(tmp_path / "none.yaml"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr
    result = _sbench("run", str(tmp_path))
    assert result.returncode == 2 and "is a directory" in result.stderr
    version = _sbench("--version")
    assert version.returncode == 0 and version.stdout.startswith("sbench ")
