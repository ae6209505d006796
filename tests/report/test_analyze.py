"""`sbench analyze` (sai3-analyze's flags): the workbook read back with openpyxl has one sheet per TSV with
the same rows and values (numbers as numbers, header frozen), a first sheet with the runs side by side, and
reads sai3-bench's own directories."""

from __future__ import annotations

from pathlib import Path

import pytest
from openpyxl import load_workbook

from sbench.cli import main
from sbench.report.tsvfile import cell


def _expected(path: Path) -> list[tuple[object, ...]]:
    """The TSV's lines as spreadsheet rows: numbers converted, empty lines left out."""
    return [
        tuple(cell(part) for part in line.split("\t"))
        for line in path.read_text().splitlines()
        if line.strip()
    ]


def _header_row(path: Path) -> int:
    """1-based line number of the first table's header (after `#` lines and blank lines)."""
    lines = path.read_text().splitlines()
    return next(i for i, line in enumerate(lines, start=1) if line.strip() and not line.startswith("#"))


def _rows(sheet: object) -> list[tuple[object, ...]]:
    out = []
    for row in sheet.iter_rows(values_only=True):  # type: ignore[attr-defined]
        values = list(row)
        while values and values[-1] is None:
            values.pop()
        if values:
            out.append(tuple(values))
    return out


def test_one_sheet_per_tsv_with_the_same_rows_and_values(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "book.xlsx"
    base = runs["a"].parent
    assert main(["analyze", "-b", str(base), "-d", "a,b", "-o", str(out)]) == 0
    assert f"workbook: {out} (2 runs," in capsys.readouterr().out
    book = load_workbook(out)
    names = book.sheetnames
    assert names[0] == "runs"
    tsvs = {run: sorted((base / run).glob("*.tsv")) for run in ("a", "b")}
    assert len(names) == 1 + sum(len(files) for files in tsvs.values())
    assert all(len(n) <= 31 for n in names) and len(set(names)) == len(names)
    for run, files in tsvs.items():
        for path in files:
            name = f"{run}-{path.stem.removesuffix('_results')}"[:31]
            sheet = book[name]
            assert _rows(sheet) == _expected(path), name
            header = _header_row(path)
            assert sheet.freeze_panes == f"A{header + 1}"  # the header stays in view
            assert sheet.cell(header, 1).font.b and not sheet.cell(header + 1, 1).font.b
    perf = book["a-perf_log"]
    elapsed = [perf.cell(r, 3).value for r in range(2, perf.max_row + 1)]
    assert all(isinstance(v, int | float) for v in elapsed) and any(isinstance(v, float) for v in elapsed)
    assert isinstance(perf.cell(perf.max_row, 2).value, int)  # the epoch ms
    assert perf.freeze_panes == "A2"
    side = {r[0]: r[1:] for r in _rows(book["runs"])}
    assert side["run"] == ("a", "b") and side["status"] == ("SUCCESS", "SUCCESS")
    assert side["written by"] == ("sbench", "sbench")
    ops = side["execute ALL ops/s"]
    assert all(isinstance(v, float) and 500 < v < 700 for v in ops), ops


def test_sai3_bench_directories_by_pattern_with_agents(
    sai3_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = sai3_dirs["single"].parent
    out = tmp_path / "sai3.xlsx"
    assert (
        main(
            [
                "analyze",
                "--pattern",
                "sai3-*",
                "--base-dir",
                str(base),
                "--output",
                str(out),
                "--include-agents",
            ]
        )
        == 0
    )
    book = load_workbook(out)
    names = book.sheetnames
    # sai3-analyze's tab names: MMDD-HHMM-<config>, then the file; the run part cut to fit 31 characters
    assert names == [
        "runs",
        "1222-1744-resnet50_1ho-perf_log",
        "1222-1744-resnet50_1hos-prepare",
        "1222-1744-resnet50_1ho-workload",
        "1222-1914-resnet50_8-03_execute",
        "1222-1914-resnet50_8ho-perf_log",
        "1222-1914-resn-agent-1-perf_log",
        "1222-1914-resne-agent-1-results",
        "1222-1914-resn-agent-2-perf_log",
        "1222-1914-resne-agent-2-results",
    ]
    dist = [n for n in names if n.startswith("1222-1914-")]
    stage = next(n for n in dist if n.endswith("03_execute"))
    assert _rows(book[stage]) == _expected(sai3_dirs["distributed"] / "03_execute_results.tsv")
    assert book[stage].freeze_panes == "A6"  # the stage preamble, a blank line and the table's header
    agent = next(n for n in dist if n.endswith("agent-2-perf_log"))
    assert _rows(book[agent]) == _expected(sai3_dirs["distributed"] / "agents" / "agent-2" / "perf_log.tsv")
    side = {r[0]: r[1:] for r in _rows(book["runs"])}
    assert side["written by"] == ("sai3", "sai3")
    assert side["execute GET ops/s"] == (1000, 2000)
    assert side["prepare PUT ops/s"][0] == 400


def test_output_is_not_overwritten_without_the_flag(
    sai3_dirs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "x.xlsx"
    out.write_text("keep me")
    args = ["analyze", "-d", str(sai3_dirs["single"]), "-o", str(out)]
    assert main(args) == 2
    assert "exists; give --overwrite to replace it" in capsys.readouterr().err
    assert out.read_text() == "keep me"
    assert main([*args, "--overwrite"]) == 0
    assert load_workbook(out).sheetnames[0] == "runs"
    assert main(["analyze", "-o", str(tmp_path / "y.xlsx")]) == 2
    assert "give --pattern 'sbench-*' (or 'sai3-*') or --dirs a,b" in capsys.readouterr().err
    assert main(["analyze", "-p", "nothing-*", "-b", str(tmp_path), "-o", str(tmp_path / "y.xlsx")]) == 2
    assert "no results directories matching 'nothing-*'" in capsys.readouterr().err
