"""The results directory under faults, in-process: on a file system that fills up (deleted during the run:
tests/faults/test_disk_faults.py). The verdict still lands (STATUS.txt first, each file on its own), the
summary still reaches the console, no traceback, no `.tmp` left behind, exit 1 naming the paths and the OS
errors. And summary.json's `run.end_time` / `run.duration_secs` are set, equal to metadata.json's."""

from __future__ import annotations

import json
from pathlib import Path

from sbench.cli import main
from tests.preflight import mountns
from tests.test_verdict_runs import _needs_mounts, _reason

_WORKLOAD = (
    "duration: DURATION\nconcurrency: 2\n"
    "prepare:\n  ensure_objects:\n    - {base_uri: 'file://ROOT/data/', count: 20, size_spec: 1024}\n"
    "  cleanup: CLEANUP\n"
    "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    "  - {op: put, path: 'w/', object_size: OBJ, weight: 1}\n"
)

#: the workload's own ENOSPC failures are not what these tests judge (no budget, no backoff, no ratio rule);
#: short perf-log intervals make the perf log grow past the page it started in once the disk is full
_NO_RULES = (
    "error_handling: {max_total_errors: 0, error_rate_threshold: 0, min_success_ratio: 0}\n"
    "perf_log: {interval: 0.1s}\n"
)


def _config(
    tmp_path: Path,
    root: Path,
    *,
    cleanup: bool = True,
    obj: str = "1KiB",
    extra: str = "",
    duration: str = "1s",
) -> Path:
    cfg = tmp_path / "run.yaml"
    body = _WORKLOAD.replace("ROOT", str(root)).replace("CLEANUP", str(cleanup).lower()).replace("OBJ", obj)
    body = body.replace("DURATION", duration)
    cfg.write_text(f"target: file://{root}/\n{extra or 'perf_log: {interval: 0.25s}'}\n{body}")
    return cfg


def test_summary_end_time_and_duration_are_set_and_agree_with_metadata(tmp_path: Path) -> None:
    root = tmp_path / "store"
    root.mkdir()
    out = tmp_path / "r"
    assert main(["run", str(_config(tmp_path, root)), "--results-dir", str(out)]) == 0
    run = json.loads((out / "summary.json").read_text())["run"]
    meta = json.loads((out / "metadata.json").read_text())
    assert run["end_time"] is not None and run["duration_secs"] is not None
    assert (run["start_time"], run["end_time"], run["duration_secs"]) == (
        meta["start_time"],
        meta["end_time"],
        meta["duration_secs"],
    )
    assert 1.0 <= run["duration_secs"] < 30


def test_results_on_a_file_system_that_fills_up_during_the_run(tmp_path: Path) -> None:
    """Results and target share a 1 MiB tmpfs; the workload's PUTs fill it, so perf-log and transcript writes
    fail mid-run. Cleanup then frees the space: the end-of-run files are written and name what was lost."""
    _needs_mounts()
    mount = tmp_path / "mnt"
    mount.mkdir()
    # 3 s of 100 ms intervals: the perf log outgrows the page it started in after the disk filled
    cfg = _config(tmp_path, mount, obj="96KiB", extra=_NO_RULES, duration="3s")
    out = mount / "results"
    keep = tmp_path / "kept"
    argv = ["run", str(cfg), "--results-dir", str(out)]
    proc = mountns.run_in_tmpfs("1m", mount, argv, after=f"cp -r {out} {keep}")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert (keep / "STATUS.txt").read_text().startswith("TEST STATUS: FAILURE")
    reason = _reason(keep)
    assert "results incomplete" in reason and "No space left on device [ENOSPC]" in reason, reason
    assert f"{out}/perf_log.tsv" in reason or f"{out}/console_log.txt" in reason
    summary = json.loads((keep / "summary.json").read_text())
    assert summary["status"] == "FAILURE" and summary["reason"] == reason.removeprefix("Reason: ")
    assert not list(keep.glob("*.tmp"))
    assert "STATUS: FAILURE" in proc.stdout and "results incomplete" in proc.stdout


def test_results_on_a_full_file_system_at_the_end(tmp_path: Path) -> None:
    """Nothing can be written at the end (no cleanup frees the space): no traceback, no `.tmp` files, the
    summary on the terminal, exit 1 naming STATUS.txt and summary.json with ENOSPC."""
    _needs_mounts()
    mount = tmp_path / "mnt"
    mount.mkdir()
    cfg = _config(tmp_path, mount, cleanup=False, obj="96KiB", extra=_NO_RULES)
    out = mount / "results"
    listing = tmp_path / "listing.txt"
    argv = ["run", str(cfg), "--results-dir", str(out)]
    proc = mountns.run_in_tmpfs("1m", mount, argv, after=f"ls -a {out} > {listing}")
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr + proc.stdout
    assert "Workload" in proc.stdout and "STATUS: FAILURE" in proc.stdout  # the summary table and verdict
    assert f"{out}/STATUS.txt: No space left on device [ENOSPC]" in proc.stdout
    assert f"{out}/summary.json: No space left on device [ENOSPC]" in proc.stdout
    assert not [name for name in listing.read_text().split() if name.endswith(".tmp")]
