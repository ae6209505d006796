"""Real results directories for the report, compare and analyze tests: short in-process file:// runs (no Ray)
of one open-loop config, made once per session, and sai3-bench-style directories written here with
sai3-bench's exact file names and columns (reference §2, §3)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sbench.cli import main

#: open loop at a fixed rate: two runs deliver the same ops/s, a run at half the rate is a slowed target
CONFIG = """
target: "file://{root}/"
duration: 1500ms
concurrency: 4
io_rate: {{iops: {iops}, distribution: deterministic}}
perf_log: {{interval: 250ms}}
prepare:
  cleanup: true
  ensure_objects:
    - {{count: 40, size_spec: 4KiB}}
workload:
  - {{op: get, path: "*", weight: 80}}
  - {{op: put, path: "up/", size_spec: 4KiB, weight: 20}}
"""
RATE = 600


def run_once(base: Path, name: str, iops: int, *flags: str) -> Path:
    store = base / f"{name}-store"
    store.mkdir()
    config = base / f"{name}.yaml"
    config.write_text(CONFIG.format(root=store, iops=iops))
    out = base / name
    assert main(["run", str(config), "--results-dir", str(out), *flags]) == 0, (
        out / "STATUS.txt"
    ).read_text()
    return out


@pytest.fixture(scope="session")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`a` (with the end-of-run report.html), `b` (same config, --no-report), `slow` (half the rate)."""
    base = tmp_path_factory.mktemp("report-runs")
    return {
        "a": run_once(base, "a", RATE),
        "b": run_once(base, "b", RATE, "--no-report"),
        "slow": run_once(base, "slow", RATE // 2, "--no-report"),
    }


# sai3-bench's headers, as its files have them (reference §2.1 and §2.2), spelled out here on purpose
SAI3_RESULTS_HEADER = (
    "operation\tsize_bucket\tbucket_idx\tmean_us\tp50_us\tp90_us\tp95_us\tp99_us\tmax_us\tavg_bytes\t"
    "ops_per_sec\tthroughput_mibps\tcount"
)
SAI3_PERF_HEADER = (
    "agent_id\ttimestamp_epoch_ms\telapsed_s\tstage\tget_ops\tget_bytes\tget_iops\tget_mbps\tget_mean_us\t"
    "get_p50_us\tget_p90_us\tget_p99_us\tput_ops\tput_bytes\tput_iops\tput_mbps\tput_mean_us\tput_p50_us\t"
    "put_p90_us\tput_p99_us\tmeta_ops\tmeta_iops\tmeta_mean_us\tmeta_p50_us\tmeta_p90_us\tmeta_p99_us\t"
    "cpu_user_pct\tcpu_system_pct\tcpu_iowait_pct\terrors"
)
SAI3_AGENTS_HEADER = "agent_id\tget_ops\tget_bytes\tput_ops\tput_bytes\tmeta_ops\tduration_s\terrors"


def _perf_rows(agent: str, ops: int, stage: str = "Workload") -> list[str]:
    rows = []
    for i in range(1, 7):
        get = ops + 10 * (i % 3)
        rows.append(
            f"{agent}\t{1766425440000 + 1000 * i}\t{i:.3f}\t{stage}\t"
            f"{get}\t{get * 1048576}\t{get:.1f}\t{get:.2f}\t"
            f"1520\t1400\t2100\t{3000 + 50 * i}\t0\t0\t0.0\t0.00\t0\t0\t0\t0\t{ops // 10}\t{ops / 10:.1f}\t"
            f"310\t300\t420\t650\t35.5\t12.0\t0.4\t0"
        )
    return rows


def _results_table(gets: int, ops_s: float) -> list[str]:
    return [
        SAI3_RESULTS_HEADER,
        f"META\tzero\t0\t312.40\t300.00\t420.00\t480.00\t650.00\t9000.00\t0\t{ops_s / 10:.2f}\t0.00\t"
        f"{gets // 10}",
        f"GET\t512KiB-4MiB\t4\t1520.55\t1400.00\t2100.00\t2500.00\t3100.00\t41000.00\t1048576\t{ops_s:.2f}\t"
        f"{ops_s:.2f}\t{gets}",
        f"META\tALL\t97\t312.40\t300.00\t420.00\t480.00\t650.00\t9000.00\t0\t{ops_s / 10:.2f}\t0.00\t"
        f"{gets // 10}",
        f"GET\tALL\t98\t1520.55\t1400.00\t2100.00\t2500.00\t3100.00\t41000.00\t1048576\t{ops_s:.2f}\t"
        f"{ops_s:.2f}\t{gets}",
    ]


def _write(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")


def _metadata(name: str, distributed: bool, agents: list[str]) -> str:
    return json.dumps(
        {
            "version": "0.8.60",
            "test_name": name,
            "config_path": f"{name}.yaml",
            "start_time": "2025-12-22T17:44:00+00:00",
            "end_time": "2025-12-22T17:45:00+00:00",
            "duration_secs": 60.0,
            "command_line": ["sai3-bench", "run", "--config", f"{name}.yaml"],
            "hostname": "gcp-1",
            "distributed": distributed,
            "agents": agents,
        }
    )


@pytest.fixture(scope="session")
def sai3_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """`single`: a `sai3-bench run` directory; `distributed`: a `sai3bench-ctl run` one (reference §3)."""
    base = tmp_path_factory.mktemp("sai3")
    single = base / "sai3-20251222-1744-sai3-resnet50_1hosts"
    _write(single / "config.yaml", ["duration: 60s"])
    _write(single / "console_log.txt", ["sai3-bench run"])
    (single / "metadata.json").write_text(_metadata("resnet50", False, []))
    _write(
        single / "prepare_results.tsv",
        [
            SAI3_RESULTS_HEADER,
            "PUT\t512KiB-4MiB\t4\t2210.00\t2000.00\t3000.00\t3500.00\t4200.00\t52000.00\t1048576\t400.00\t400.00\t4000",
            "PUT\tALL\t99\t2210.00\t2000.00\t3000.00\t3500.00\t4200.00\t52000.00\t1048576\t400.00\t400.00\t4000",
        ],
    )
    _write(single / "workload_results.tsv", _results_table(60000, 1000.0))
    _write(single / "perf_log.tsv", [SAI3_PERF_HEADER, *_perf_rows("standalone", 1000)])
    dist = base / "sai3-20251222-1914-sai3-resnet50_8hosts"
    _write(dist / "config.yaml", ["duration: 60s"])
    (dist / "metadata.json").write_text(_metadata("resnet50", True, ["agent-1", "agent-2"]))
    _write(dist / "STATUS.txt", ["TEST STATUS: SUCCESS", "Timestamp: 2025-12-22T19:15:00+00:00"])
    _write(dist / "perf_log.tsv", [SAI3_PERF_HEADER, *_perf_rows("controller", 2000)])
    _write(
        dist / "03_execute_results.tsv",
        [
            "# Stage 3 Results: execute (execute)",
            "# Agents: 2",
            "# Duration: 60.00s",
            "",
            *_results_table(120000, 2000.0),
            "",
            "# Per-Agent Details",
            SAI3_AGENTS_HEADER,
            "agent-1\t60000\t62914560000\t0\t0\t6000\t60.00\t0",
            "agent-2\t60000\t62914560000\t0\t0\t6000\t59.80\t0",
        ],
    )
    for agent in ("agent-1", "agent-2"):
        _write(dist / "agents" / agent / "perf_log.tsv", [SAI3_PERF_HEADER, *_perf_rows(agent, 1000)])
        _write(dist / "agents" / agent / "results.tsv", _results_table(60000, 1000.0))
    return {"single": single, "distributed": dist}
