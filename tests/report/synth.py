"""A results directory of a distributed open-loop run, synthesised with sbench's own writers (perf logs,
.hlog, summary.json, STATUS.txt, metadata.json): what `sbench run` would leave after N agents ran a prepare
stage and an execute stage of any length, without running it. Used by the report tests (a few agents, a few
seconds) and by bench/report_speed.py (8 agents, one hour).

Every figure is drawn from a seeded generator: GET, PUT and META latencies of a lognormal shape, one agent
slower than the others, a latency spike in the middle of the execute stage, throttled errors now and then,
CPU, late ops and schedule lag.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from pathlib import Path

from sbench.metrics.buckets import OpClass, bucket_index
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator
from sbench.results.hlog import HistogramLog
from sbench.results.perf_log import PerfLogWriter
from sbench.results.status import AgentStatus, write_status
from sbench.results.summary import build_summary, stage_entry, summary_section, write_summary
from sbench.results.tsv import AgentRow, StageFigures, stage_file_name
from sbench.status import AgentState, RunStatus, StageStatus
from sbench.storage.base import ErrorClass

BASE_MS = 1_790_000_000_000
OBJECT = 64 * 1024


def _hist(rng: random.Random, count: int, median_us: float, spread: float = 0.6) -> bytes:
    """`count` latencies of a lognormal shape, recorded as 40 weighted values (fast to make)."""
    hist = LatencyHistogram()
    if count <= 0:
        return b""
    parts = 40
    for i in range(parts):
        share = count // parts + (1 if i < count % parts else 0)
        if share:
            hist.record_us(max(1, int(rng.lognormvariate(0.0, spread) * median_us)), share)
    return hist.encode()


def _interval(
    rng: random.Random,
    agent: int,
    k: int,
    start_ms: int,
    interval_ms: int,
    *,
    ops: int,
    puts_only: bool,
    spike: bool,
) -> Snapshot:
    slow = 1.6 if agent == 1 else 1.0  # one agent lags
    snap = Snapshot(start_ms=start_ms, end_ms=start_ms + interval_ms)
    mix = (
        ((OpClass.PUT, 1.0),) if puts_only else ((OpClass.GET, 0.7), (OpClass.PUT, 0.2), (OpClass.META, 0.1))
    )
    for op, share in mix:
        count = max(0, int(rng.gauss(ops * share / slow, ops * share * 0.05)))
        size = 0 if op is OpClass.META else OBJECT
        key = (op, bucket_index(size))
        median = (
            {OpClass.GET: 800.0, OpClass.PUT: 1500.0, OpClass.META: 300.0}[op] * slow * (8 if spike else 1)
        )
        snap.ops[key] = count
        snap.nbytes[key] = count * size
        snap.hists[key] = _hist(rng, count, median)
        snap.service[op] = _hist(rng, count, median * 0.8)
    if k % 300 == 7 and not puts_only:  # throttling now and then
        snap.errors[(OpClass.GET, ErrorClass.THROTTLED)] = rng.randint(1, 20)
        snap.first_errors[ErrorClass.THROTTLED] = (start_ms, "503 SlowDown (synthetic)")
    snap.late_ops = rng.randint(0, 5)
    snap.lag_hist = _hist(rng, snap.late_ops, 1500.0)
    snap.set_cpu(f"agent-{agent}", rng.uniform(20, 40), rng.uniform(10, 20), rng.uniform(0, 3))
    snap.set_progress(f"agent-{agent}", ProgressCounters(at_ms=start_ms + interval_ms, stage="execute"))
    return snap


def _add_counts(total: Snapshot, snap: Snapshot) -> None:
    """An agent's stage total for the per-agent tables: counts without histograms (fast to add up, and no
    snapshot is kept: each caches its decoded histograms, 0.2 MB apiece)."""
    total.start_ms = total.start_ms or snap.start_ms
    total.end_ms = snap.end_ms
    for key, n in snap.ops.items():
        total.ops[key] = total.ops.get(key, 0) + n
    for key, n in snap.nbytes.items():
        total.nbytes[key] = total.nbytes.get(key, 0) + n
    for key, n in snap.errors.items():
        total.errors[key] = total.errors.get(key, 0) + n


def synthesise(
    path: Path,
    *,
    agents: int,
    seconds: int,
    prepare_seconds: int = 5,
    ops_per_agent: int = 400,
    seed: int = 7,
) -> Path:
    """Write the results directory `path` (created); returns it."""
    rng = random.Random(seed)
    path.mkdir(parents=True)
    ids = [f"agent-{i}" for i in range(1, agents + 1)]
    merged_log = PerfLogWriter(path / "perf_log.tsv", "controller")
    agent_logs = {a: PerfLogWriter(path / "agents" / a / "perf_log.tsv", a) for a in ids}
    entries, sections, totals = [], {}, {a: [0, 0] for a in ids}
    now_ms = BASE_MS + 200
    for number, (name, kind, length, label) in enumerate(
        (("prepare", "prepare", prepare_seconds, "Prepare"), ("execute", "execute", seconds, "Workload")),
        start=1,
    ):
        hlog = HistogramLog(
            path / stage_file_name(number, name, ".hlog"), BASE_MS, service_time=kind == "execute"
        )
        per_agent = {a: Snapshot() for a in ids}
        stage_total = SnapshotAccumulator()
        stage_start = now_ms
        for k in range(length):
            spike = kind == "execute" and length // 2 <= k < length // 2 + 3
            snaps = []
            for i, agent in enumerate(ids):
                snap = _interval(
                    rng, i, k, now_ms, 1000, ops=ops_per_agent, puts_only=kind == "prepare", spike=spike
                )
                _add_counts(per_agent[agent], snap)
                snaps.append(snap)
                agent_logs[agent].write(
                    snap, stage=label, elapsed_s=(snap.end_ms - BASE_MS) / 1000, timestamp_ms=snap.end_ms
                )
            merged = Snapshot.merge_all(snaps)
            merged_log.write(
                merged, stage=label, elapsed_s=(merged.end_ms - BASE_MS) / 1000, timestamp_ms=merged.end_ms
            )
            hlog.write(merged)
            stage_total.add(merged)
            now_ms += 1000
        hlog.close()
        merged_total = stage_total.snapshot()
        rows = [AgentRow(a, per_agent[a], length - (0.4 if a == "agent-1" else 0.0)) for a in ids]
        for row in rows:
            totals[row.agent_id][0] += row.snapshot.total_ops()
            totals[row.agent_id][1] += row.snapshot.errors_total()
        entry = stage_entry(StageFigures(number, name, kind, merged_total, rows), StageStatus.OK)
        entry.update({"start_ms": stage_start, "start_skew_ms": 4, "barrier": "all_or_nothing"})
        entries.append(entry)
        sections["workload" if kind == "execute" else "prepare"] = summary_section(
            merged_total, float(length)
        )
        now_ms += 300
    merged_log.close()
    for log in agent_logs.values():
        log.close()
    agents_status = [
        AgentStatus(a, AgentState.COMPLETED, operations=o, errors=e) for a, (o, e) in totals.items()
    ]
    load_model = {
        "kind": "open",
        "iops": ops_per_agent * agents,
        "distribution": "exponential",
        "concurrency": 16,
        "agents": agents,
    }
    metadata = {
        "version": "synthetic",
        "test_name": "synthetic",
        "run_id": "synthetic-run",
        "config_path": "synthetic.yaml",
        "start_time": datetime.fromtimestamp(BASE_MS / 1000, UTC).isoformat(timespec="milliseconds"),
        "end_time": None,
        "duration_secs": (now_ms - BASE_MS) / 1000,
        "hostname": "synth",
        "distributed": True,
        "agents": ids,
        "results_dir": str(path),
        "load_model": load_model,
    }
    summary = build_summary(
        RunStatus.SUCCESS,
        metadata=metadata,
        load_model=load_model,
        sections=sections,
        stages=entries,
        agents=agents_status,
    )
    write_summary(path / "summary.json", summary)
    (path / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")
    (path / "config.yaml").write_text("# synthetic run: no config\n")
    write_status(
        path / "STATUS.txt",
        RunStatus.SUCCESS,
        agents_status,
        total_operations=sum(o for o, _ in totals.values()),
        total_errors=sum(e for _, e in totals.values()),
    )
    return path
