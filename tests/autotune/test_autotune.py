"""`sbench autotune` on file://: the sweep plan, a 3 x 3 sweep with 2 trials, and bad `autotune:` blocks."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from sbench.autotune.sweep import points
from sbench.cli import main
from sbench.config import load_config_text

MIB = 1024 * 1024


def _block(tmp_path: Path, body: str) -> str:
    return f"""
target: "file://{tmp_path}/"
workload:
  - {{op: get, path: "nothing-here/*", weight: 100}}
autotune:
{body}
"""


def _spec(tmp_path: Path, body: str):
    return load_config_text(_block(tmp_path, body), workload_used=False).config.autotune


def test_size_range_is_log_spaced_and_thresholds_vary_only_with_ranged_gets(tmp_path: Path) -> None:
    spec = _spec(
        tmp_path,
        f"""  uri: "file://{tmp_path}/tune/obj*.dat"
  size_range: "32MiB-64MiB"
  size_steps: 3
  threads: "16,32"
  range_enabled: "false,true"
  range_thresholds_mb: "8,32"
""",
    )
    # sai3-bench's documented example: 32, 45.3 and 64 MiB (rounded to whole KiB)
    assert spec.size_points() == [32 * MIB, round(32 * MIB * 2**0.5 / 1024) * 1024, 64 * MIB]
    plan = points(spec)
    assert len(plan) == 3 * 2 * (1 + 2)  # range off: one point; range on: one per threshold
    assert [(p.range_enabled, p.range_threshold_mb) for p in plan[:3]] == [(False, 0), (True, 8), (True, 32)]
    assert [p.number for p in plan] == list(range(1, len(plan) + 1))


@pytest.mark.parametrize(
    ("body", "wanted"),
    [
        ("  uri: file:///x/\n  sizes: 4KiB\n  thread: 4\n", ["autotune.thread", "Did you mean `threads`"]),
        (
            "  uri: file:///x/\n  sizes: 4KiB\n  channels_per_thread: '1,2'\n",
            ["autotune.channels_per_thread", "gRPC"],
        ),
        ("  uri: file:///x/\n  sizes: 4KiB\n  size_range: 1KiB-2KiB\n", ["autotune", "not both"]),
        ("  uri: file:///x/\n  size_range: 64KiB\n", ["autotune", "LO-HI"]),
        ("  uri: file:///x/\n  sizes: 4KiB\n  threads: '4,0'\n", ["autotune.threads"]),
        ("  uri: file:///x/\n  sizes: 4KiB\n  gcs_rapid_mode: on\n", ["autotune.gcs_rapid_mode", "RAPID"]),
    ],
)
def test_a_bad_block_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, wanted: list[str]
) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(_block(tmp_path, body))
    assert main(["autotune", str(path)]) == 2
    err = capsys.readouterr().err
    for text in [f"{path}:", *wanted]:
        assert text in err, err


def test_a_config_without_a_block_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "plain.yaml"
    path.write_text(
        f'target: "file://{tmp_path}/"\nworkload:\n  - {{op: get, path: "nothing/*", weight: 1}}\n'
    )
    assert main(["autotune", str(path), "--dry-run"]) == 2
    assert "has no `autotune:` block" in capsys.readouterr().err


def test_dry_run_prints_the_plan_and_touches_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "tune.yaml"
    path.write_text(
        _block(tmp_path, f'  uri: "file://{tmp_path}/tune/"\n  sizes: "4KiB,1MiB"\n  threads: "1,8"\n')
    )
    assert main(["autotune", str(path), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "4 points x 1 trials = 4 runs" in out and "1.00 MiB x 8 threads, no-range" in out
    assert not (tmp_path / "tune").exists()


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_a_3x3_sweep_with_2_trials_writes_its_tables_and_plot_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tune").mkdir()
    path = tmp_path / "tune.yaml"
    path.write_text(
        _block(
            tmp_path,
            f"""  uri: "file://{tmp_path}/tune/obj*.dat"
  sizes: "1KiB,8KiB,64KiB"
  threads: "1,2,3"
  objects: 6
  trials: 2
  ops: get
  duration: 0.2s
""",
        )
    )
    out_dir = tmp_path / "out"
    assert main(["autotune", str(path), "--results-dir", str(out_dir)]) == 0, capsys.readouterr()
    trials = _rows(out_dir / "autotune.tsv")
    assert len(trials) == 9 * 2
    assert {r["status"] for r in trials} == {"success"}
    assert all(float(r["ops_per_s"]) > 0 and int(r["ops"]) > 0 for r in trials)
    summary = _rows(out_dir / "autotune_summary.tsv")
    assert len(summary) == 9 and all(r["trials_ok"] == "2" for r in summary)
    best = _rows(out_dir / "autotune_best.tsv")
    assert [r["size_bytes"] for r in best] == ["1024", "8192", "65536"]
    for row in best:  # the best of its size by median MiB/s
        same = [float(r["median_mib_per_s"]) for r in summary if r["size_bytes"] == row["size_bytes"]]
        assert float(row["median_mib_per_s"]) == max(same)
    html = (out_dir / "autotune.html").read_text()
    assert "Plotly.newPlot" in html and "GET: median MiB" in html
    # each run's own results directory, and nothing left under the sweep's directory
    assert len(list((out_dir / "points").iterdir())) == 18
    assert list((tmp_path / "tune").iterdir()) == []
    out = capsys.readouterr().out
    assert out.count("best GET for") == 3
