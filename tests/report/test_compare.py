"""`sbench compare`: two runs of one config are within noise, a run at half the rate trips a regression gate
(exit 1, the condition named), malformed gates are usage errors (exit 2); sai3-bench directories compare."""

from __future__ import annotations

from pathlib import Path

import pytest

from sbench.cli import main
from sbench.errors import UsageError
from sbench.report.compare import compare_runs, verdict
from sbench.report.gates import parse_gate
from sbench.report.rundir import load_run

STEADY = ("ops_per_sec", "mib_per_sec", "error_rate")


def test_two_runs_of_the_same_config_compare_as_within_noise(runs: dict[str, Path]) -> None:
    comparison = compare_runs(load_run(runs["a"]), [load_run(runs["b"])])
    rows = [r for r in comparison.rows if r.stage == "execute"]
    assert {r.cls for r in rows} == {"GET", "PUT", "ALL"}
    for row in rows:
        delta = row.others[0]
        if row.metric in STEADY:
            assert verdict(row.metric, delta) == "within noise", row
        if row.metric in ("ops_per_sec", "p50", "p99"):
            # the band comes from the runs' own intervals (6 intervals of 250 ms each)
            assert delta.band is not None and delta.band > 0, row
    every = comparison.row("execute", "ALL", "ops_per_sec")
    assert every is not None and every.base == pytest.approx(600, rel=0.1)


def test_a_slowed_target_trips_the_gate_and_names_it(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    gate = "ALL.ops_per_sec < -20%"
    assert (
        main(
            [
                "compare",
                str(runs["a"]),
                str(runs["slow"]),
                "--fail-if",
                gate,
                "--fail-if",
                "ALL.error_rate > 0.5",
            ]
        )
        == 1
    )
    out = capsys.readouterr().out
    assert f"FAIL --fail-if {gate}: holds for slow stage 'execute': ALL.ops_per_sec" in out
    assert "ALL.error_rate > 0.5" not in out.split("FAIL", 1)[1]  # only the conditions that hold
    line = next(x for x in out.splitlines() if x.startswith("FAIL"))
    change = float(line.split(", ")[1].rstrip("%"))
    assert -60 < change < -40  # half the rate


def test_same_config_passes_the_gate_and_writes_the_html(
    runs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cmp.html"
    args = [
        "compare",
        str(runs["a"]),
        str(runs["b"]),
        "--fail-if",
        "ALL.ops_per_sec < -20%",
        "--html",
        str(out),
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "passed: none of the 1 --fail-if condition(s) holds" in text
    assert f"comparison: {out}" in text and "within noise" in text
    html = out.read_text()
    assert "Change against the base (error bars: the noise band)" in html
    assert "Throughput and p99 over the stage, runs overlaid" in html


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("GET.p99 >> 10%", "cannot read the condition; expected [STAGE:]CLASS.METRIC OP VALUE[%]"),
        ("GET p99 > 10%", "cannot read the condition"),
        ("GET.p99 > ten", "cannot read the condition"),
        ("GTE.p99 > 10%", "unknown op class 'GTE'; one of GET, PUT, META, ALL"),
        (
            "GET.p98 > 10%",
            "unknown figure 'p98'; one of ops_per_sec, mib_per_sec, p50, p99, p999, error_rate",
        ),
        ("warmup:GET.p99 > 10%", "has no stage 'warmup' with I/O (prepare, execute, cleanup)"),
        (
            "META.p99 > 10%",
            "has no META p99 µs figure in the stages it applies to, so it would check nothing",
        ),
    ],
)
def test_malformed_or_empty_conditions_are_usage_errors(
    runs: dict[str, Path], capsys: pytest.CaptureFixture[str], expr: str, message: str
) -> None:
    assert main(["compare", str(runs["a"]), str(runs["b"]), "--fail-if", expr]) == 2
    err = capsys.readouterr().err
    assert f"--fail-if {expr!r}" in err and message in err and "Traceback" not in err


def test_gate_forms() -> None:
    relative = parse_gate("GET.p99 > +10%")
    assert (relative.cls, relative.metric, relative.op, relative.value, relative.relative) == (
        "GET",
        "p99",
        ">",
        10.0,
        True,
    )
    absolute = parse_gate(" execute : all.errors >= 0.01 ")
    assert (absolute.stage, absolute.cls, absolute.metric, absolute.relative) == (
        "execute",
        "ALL",
        "error_rate",
        False,
    )
    assert parse_gate("PUT.p99.9 <= -5.5%").metric == "p999"
    assert parse_gate("ALL.iops < -5%").holds(-6.0) and not parse_gate("ALL.iops < -5%").holds(-4.0)
    with pytest.raises(UsageError):
        parse_gate("")


def test_sai3_bench_directories_compare(
    sai3_dirs: dict[str, Path], runs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    single, dist = load_run(sai3_dirs["single"]), load_run(sai3_dirs["distributed"])
    comparison = compare_runs(single, [dist])
    ops = comparison.row("execute", "GET", "ops_per_sec")
    assert ops is not None and ops.base == 1000.0 and ops.others[0].value == 2000.0
    assert ops.others[0].change == pytest.approx(100.0)
    p99 = comparison.row("execute", "GET", "p99")
    assert p99 is not None and p99.others[0].change == 0.0
    assert p99.others[0].band is None  # sai3-bench's perf-log latencies are cumulative: no noise estimate
    assert ops.others[0].band is not None  # its per-interval ops/s are
    every = comparison.row("execute", "ALL", "p99")
    assert every is not None and every.base is None  # no percentile of all classes in sai3's TSVs
    # an sbench run against a sai3-bench one, through the command
    assert main(["compare", str(sai3_dirs["single"]), str(runs["a"]), "--fail-if", "GET.ops < -90%"]) == 0
    assert "stage execute (execute)" in capsys.readouterr().out
