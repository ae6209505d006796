"""`report.html` of one results directory: the run's header (config, load model, agents, preflight, STATUS
and reason), then its charts (see timefigs and stagefigs), in one self-contained file."""

from __future__ import annotations

from datetime import datetime
from html import escape
from pathlib import Path
from typing import Any

from sbench.report.latency import stage_latency
from sbench.report.page import Page
from sbench.report.rundir import RunDir, load_run
from sbench.report.stagefigs import (
    agents_compare_figure,
    buckets_figure,
    endpoints_figure,
    spectrum_figure,
    timeline_figure,
)
from sbench.report.stages import Stage, run_stages
from sbench.report.timefigs import (
    agents_figure,
    cpu_figure,
    errors_figure,
    lag_figure,
    latency_figure,
    stage_spans,
    throughput_figure,
)
from sbench.results.atomic import write_text_atomic
from sbench.ui.tables import describe_load

REPORT_FILE = "report.html"


def run_status(run: RunDir) -> tuple[str, str]:
    """(status word, reason) from summary.json, else STATUS.txt's first line (sai3-bench)."""
    if run.summary is not None:
        return str(run.summary.get("status", "UNKNOWN")), str(run.summary.get("reason", ""))
    first = run.status_text.splitlines()[0] if run.status_text else ""
    word = first.removeprefix("TEST STATUS:").strip() if first.startswith("TEST STATUS:") else ""
    reason = next(
        (
            ln.removeprefix("Reason:").strip()
            for ln in run.status_text.splitlines()
            if ln.startswith("Reason:")
        ),
        "",
    )
    return word or "UNKNOWN", reason


def run_start_ms(run: RunDir) -> int:
    text = ((run.summary or {}).get("run") or {}).get("start_time") or run.metadata.get("start_time")
    try:
        return int(datetime.fromisoformat(str(text)).timestamp() * 1000) if text else 0
    except ValueError:
        return 0


def _header(page: Page, run: RunDir, stages: list[Stage]) -> None:
    status, reason = run_status(run)
    meta = {**run.metadata, **((run.summary or {}).get("run") or {})}
    page.raw(
        f"<h1>{escape(str(meta.get('test_name') or run.name))} "
        f'<span class="badge {escape(status if status in ("SUCCESS", "FAILURE", "ABORTED") else "UNKNOWN")}">'
        f"{escape(status)}</span></h1>"
    )
    if reason:
        page.paragraph(f"Reason: {reason}")
    model = run.load_model
    facts: list[tuple[str, Any]] = [
        ("results directory", str(run.path.resolve())),
        ("written by", "sbench" if run.kind == "sbench" else "sai3-bench (TSV files only)"),
        ("run id", meta.get("run_id") or ""),
        ("config", meta.get("config_path") or ""),
        ("started", meta.get("start_time") or ""),
        ("ended", meta.get("end_time") or ""),
        ("duration (s)", meta.get("duration_secs") or ""),
        ("host", meta.get("hostname") or ""),
        ("version", meta.get("version") or ""),
        ("load model", describe_load(model) if model else ""),
        ("agents", ", ".join(str(a) for a in meta.get("agents") or []) or ""),
    ]
    page.heading("Run")
    page.table(("", ""), [f for f in facts if f[1] != ""])
    page.heading("Stages")
    rows = []
    for s in stages:
        every = s.classes.get("ALL")
        rows.append(
            [s.number, s.name, s.type, s.status, round(s.wall_s, 2)]
            + ([every.ops, every.ops_per_sec, every.mib_per_sec] if every else ["", "", ""])
            + [
                _opt(every.p50 if every else None),
                _opt(every.p99 if every else None),
                _opt(every.p999 if every else None),
                _opt(every.errors if every else None),
                s.reason,
            ]
        )
    page.table(
        (
            "#",
            "stage",
            "type",
            "status",
            "wall s",
            "ops",
            "ops/s",
            "MiB/s",
            "p50 µs",
            "p99 µs",
            "p99.9 µs",
            "errors",
            "reason",
        ),
        rows,
    )
    agents = (run.summary or {}).get("agents") or []
    if agents:
        page.heading("Agents")
        page.table(
            ("agent", "state", "operations", "errors", "stuck", "reason"),
            [
                [
                    a.get("agent_id", ""),
                    a.get("state", ""),
                    a.get("operations", 0),
                    a.get("errors", 0),
                    a.get("stuck_reason", "") if a.get("stuck") else "",
                    a.get("reason", ""),
                ]
                for a in agents
            ],
        )
    _preflight(page, run)
    if run.status_text:
        page.heading("STATUS.txt")
        page.pre(run.status_text)
    if run.config_text:
        page.pre(run.config_text, "config.yaml")


def _preflight(page: Page, run: RunDir) -> None:
    page.heading("Preflight")
    checks = (run.preflight or {}).get("checks") or []
    if not checks:
        page.paragraph("no preflight.json in this directory", "note")
        return
    order = {"error": 0, "warning": 1, "info": 2, "success": 3}
    checks = sorted(checks, key=lambda c: order.get(str(c.get("level")), 4))
    counts: dict[str, int] = {}
    for check in checks:
        counts[str(check.get("level"))] = counts.get(str(check.get("level")), 0) + 1
    page.paragraph(", ".join(f"{n} {level}" for level, n in counts.items()))
    page.table(
        ("level", "check", "agent", "endpoint", "message", "suggestion"),
        [
            [
                c.get("level", ""),
                c.get("name", ""),
                c.get("agent_id") or "",
                c.get("endpoint") or "",
                c.get("message", ""),
                c.get("suggestion") or "",
            ]
            for c in checks
        ],
    )


def build_report(run: RunDir) -> str:
    """The whole page for one results directory."""
    stages = run_stages(run)
    page = Page(f"sbench report: {run.name}")
    _header(page, run, stages)
    spans = stage_spans(stages)
    latencies = {s.number: stage_latency(s.hlog) for s in stages if s.hlog is not None}
    page.heading("Stage timeline")
    page.chart(timeline_figure(stages, run_start_ms(run)), "no stage start times in this directory")
    page.heading("Throughput")
    page.chart(throughput_figure(run.perf, spans), "no perf_log.tsv intervals with ops")
    if len(run.agent_perf) > 1:
        page.chart(agents_figure(run.agent_perf, spans), "no per-agent perf logs")
    page.heading("Latency over time")
    page.chart(latency_figure(list(latencies.values()), spans), "no .hlog files (HdrHistogram interval logs)")
    page.heading("Percentile spectrum")
    for stage in stages:
        if stage.number in latencies:
            page.chart(spectrum_figure(stage, latencies[stage.number]), f"stage {stage.name}: no ops")
    if not latencies:
        page.paragraph("no .hlog files (HdrHistogram interval logs)", "note")
    page.heading("Latency by size bucket")
    for stage in stages:
        if stage.did_io:
            page.chart(buckets_figure(stage), f"stage {stage.name}: no per-bucket figures (summary.json)")
    page.heading("Errors")
    page.chart(errors_figure(run.perf, spans), "no errors in any interval")
    page.heading("Agents and endpoints")
    shown = False
    for stage in stages:
        for fig in (agents_compare_figure(stage), endpoints_figure(stage)):
            if fig is not None:
                page.chart(fig, "")
                shown = True
    if not shown:
        page.paragraph("one agent and one endpoint per stage: nothing to set side by side", "note")
    page.heading("CPU")
    page.chart(cpu_figure(run.perf, run.agent_perf, spans), "no CPU figures in perf_log.tsv")
    page.heading("Open-loop schedule lag")
    if run.open_loop:
        page.chart(lag_figure(run.perf, spans), "no op started late: the schedule was kept")
    else:
        page.paragraph("closed loop: ops have no schedule to lag behind", "note")
    return page.html()


def write_report(path: Path) -> Path:
    """Write `report.html` into the results directory `path`; returns its path."""
    run = load_run(path)
    return write_text_atomic(path / REPORT_FILE, build_report(run))


def _opt(value: float | int | None) -> float | int | str:
    return "n/a" if value is None else value
