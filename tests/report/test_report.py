"""report.html: written by `sbench run` at the end (and by `sbench report`), self-contained, built from the
results files; a report that fails costs a warning, never the run's verdict. The .hlog files agree with
summary.json exactly."""

from __future__ import annotations

import json
import os
import re
import signal
from pathlib import Path

import pytest
from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogReader

from sbench.cli import main
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from sbench.report import htmlreport
from sbench.report.latency import SPECTRUM
from sbench.report.plotting import plotly_js
from sbench.report.rundir import load_run
from sbench.report.stages import run_stages
from tests.report.conftest import CONFIG
from tests.report.synth import synthesise


def _charts(html: str) -> list[str]:
    """The titles of the charts in a page (plotly.js draws them from the page's own data)."""
    return re.findall(r'"title":\{"text":"([^"]+)"', html)


def test_run_writes_report_html_at_the_end_and_prints_its_path(runs: dict[str, Path]) -> None:
    report = runs["a"] / "report.html"
    html = report.read_text()
    console = (runs["a"] / "console_log.txt").read_text()
    assert f"report: {report}" in console
    assert console.index(f"results: {runs['a']}") < console.index("report: ")  # after every other file
    assert not (runs["b"] / "report.html").exists()  # --no-report
    # self-contained: plotly.js inline, nothing else loaded from anywhere
    assert plotly_js() in html and "Plotly.newPlot" in html
    assert not re.search(r"""(src|href)=["']?https?:""", html.replace(plotly_js(), ""))
    for section in (
        "Run",
        "Stages",
        "Agents",
        "Preflight",
        "STATUS.txt",
        "Stage timeline",
        "Throughput",
        "Latency over time",
        "Percentile spectrum",
        "Latency by size bucket",
        "Errors",
        "CPU",
        "Open-loop schedule lag",
    ):
        assert f"<h2>{section}</h2>" in html, section
    titles = _charts(html)
    for title in (
        "Throughput per op class",
        "Percentile spectrum: stage execute",
        "CPU over time",
        "Latency by size bucket: stage execute",
        "Stage timeline (grey: waiting at the barrier for the slowest agent)",
    ):
        assert title in titles, titles
    assert "open loop: 600 ops/s aggregate, deterministic arrivals" in html
    assert "SUCCESS" in html and "fs.write" in html  # status and the preflight checks


def test_the_report_plots_the_files_figures(runs: dict[str, Path]) -> None:
    """The throughput chart's points are perf_log.tsv's ops/s per interval; the spectrum of the execute
    stage's GETs has summary.json's count and p50."""
    run = load_run(runs["a"])
    execute = next(s for s in run_stages(run) if s.name == "execute")
    html = (runs["a"] / "report.html").read_text()
    gets = [float(row["get_iops"]) for row in execute.perf]
    assert any(gets) and all(json.dumps(v) in html for v in gets)
    summary = json.loads((runs["a"] / "summary.json").read_text())
    stage = next(s for s in summary["stages"] if s["name"] == "execute")
    latency = stage["operations"]["GET"]["latency_us"]
    spectrum = re.search(rf'"y":\[([^\]]*)\],"name":"GET \({latency["count"]:,} ops\)"', html)
    assert spectrum is not None
    values = [int(v) for v in spectrum.group(1).split(",")]
    assert values[SPECTRUM.index(50.0)] == latency["p50_us"]


def test_hlog_files_read_back_with_hdrhistogram_match_summary_json(runs: dict[str, Path]) -> None:
    """Item 1's promise on a real run: per stage and op class, counts and percentiles of the merged
    intervals of NN_<stage>.hlog read with hdrh's own reader equal summary.json's."""
    summary = json.loads((runs["a"] / "summary.json").read_text())
    checked = 0
    for stage in summary["stages"]:
        hlog = next(runs["a"].glob(f"{stage['number']:02d}_*.hlog"), None)
        if not stage["totals"]["ops"]:
            assert hlog is None
            continue
        assert hlog is not None, stage["name"]
        reader = HistogramLogReader(str(hlog), HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS))
        merged: dict[str, HdrHistogram] = {}
        while (hist := reader.get_next_interval_histogram()) is not None:
            tag = hist.get_tag()
            merged.setdefault(tag, HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)).add(hist)
        for op, figures in stage["operations"].items():
            hist = merged[op]
            latency = figures["latency_us"]
            assert hist.get_total_count() == figures["ops"] == latency["count"], (stage["name"], op)
            for key, pct in (("p50_us", 50), ("p90_us", 90), ("p99_us", 99), ("p999_us", 99.9)):
                assert hist.get_value_at_percentile(pct) == latency[key], (stage["name"], op, key)
            assert hist.get_max_value() == latency["max_us"]
            if stage["type"] == "execute":  # open loop: service time too
                service = merged[f"{op}-service"]
                assert service.get_value_at_percentile(99) == figures["service_time_us"]["p99_us"]
            checked += 1
    assert checked >= 3  # prepare PUT, execute GET and PUT, cleanup META


def test_report_command_writes_and_refuses_what_is_no_results_directory(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(runs["b"])]) == 0
    assert (runs["b"] / "report.html").is_file()
    assert f"report: {runs['b'] / 'report.html'}" in capsys.readouterr().out
    (runs["b"] / "report.html").unlink()  # the --no-report check above reads b
    (tmp_path / "copy").mkdir()
    for name in ("summary.json", "perf_log.tsv"):
        (tmp_path / "copy" / name).write_bytes((runs["b"] / name).read_bytes())
    (tmp_path / "copy" / "report.html").mkdir()  # cannot be replaced by a file
    assert main(["report", str(tmp_path / "copy")]) == 1
    err = capsys.readouterr().err
    assert f"sbench report: {tmp_path / 'copy'}: Is a directory" in err and "Traceback" not in err
    assert not list((tmp_path / "copy").glob("*.tmp"))
    (tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert "is not a results directory" in err and "Traceback" not in err
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "no such results directory" in capsys.readouterr().err


def test_report_of_a_distributed_run_stacks_agents_and_shows_barrier_waits(tmp_path: Path) -> None:
    path = synthesise(tmp_path / "dist", agents=3, seconds=12)
    html = (htmlreport.write_report(path)).read_text()
    titles = _charts(html)
    assert "Throughput per agent (stacked)" in titles
    assert "Agents side by side: stage execute" in titles
    assert "Errors over time by error class" in titles  # the synthetic run is throttled once
    assert "Open-loop schedule lag" in titles
    assert "waiting at the barrier" in html and "agent-1: 0.40 s waiting at the barrier" in html
    assert '"stackgroup":"ops"' in html and html.count('"name":"agent-') >= 6


def test_report_of_a_sai3_bench_directory(sai3_dirs: dict[str, Path]) -> None:
    for path in sai3_dirs.values():
        html = htmlreport.write_report(path).read_text()
        assert "sai3-bench (TSV files only)" in html
        assert "Throughput per op class" in _charts(html)
    assert "Throughput per agent (stacked)" in _charts((sai3_dirs["distributed"] / "report.html").read_text())


def test_a_report_that_fails_is_a_warning_and_leaves_the_verdict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def broken(run: object) -> str:
        raise RuntimeError("cannot draw")

    monkeypatch.setattr(htmlreport, "build_report", broken)
    (tmp_path / "store").mkdir()
    config = tmp_path / "quick.yaml"
    text = CONFIG.format(root=tmp_path / "store", iops=400).replace("1500ms", "300ms")
    config.write_text(text)
    assert main(["run", str(config), "--results-dir", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "warning: report.html was not written (RuntimeError: cannot draw)" in out
    assert f"`sbench report {tmp_path / 'out'}` draws it later" in out
    assert (tmp_path / "out" / "STATUS.txt").read_text().startswith("TEST STATUS: SUCCESS")
    assert not (tmp_path / "out" / "report.html").exists()


def test_ctrl_c_while_the_report_is_drawn_skips_it_and_leaves_the_run_as_it_ended(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Two Ctrl-C during the report: the run's own handler would take the second as "exit at once" and
    rewrite STATUS.txt as ABORTED; the report is skipped instead and the run keeps its verdict and exit."""

    def interrupted(run: object) -> str:
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("not reached: the first SIGINT interrupts the report")

    monkeypatch.setattr(htmlreport, "build_report", interrupted)
    (tmp_path / "store").mkdir()
    config = tmp_path / "quick.yaml"
    config.write_text(CONFIG.format(root=tmp_path / "store", iops=400).replace("1500ms", "300ms"))
    before = signal.getsignal(signal.SIGINT)
    assert main(["run", str(config), "--results-dir", str(tmp_path / "out")]) == 0
    assert "report.html skipped: interrupted by SIGINT" in capsys.readouterr().out
    assert (tmp_path / "out" / "STATUS.txt").read_text().startswith("TEST STATUS: SUCCESS")
    assert signal.getsignal(signal.SIGINT) is before
