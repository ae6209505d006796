"""What op-log capture costs, and how the log tools scale.

Run:  scripts/netns-run .venv/bin/python bench/oplog_cost.py [--part get,s3,sort] [--seconds 2] [--rounds 7]
      [--sort-lines 10000000] [--json FILE]

(through scripts/netns-run because the `s3` part starts SeaweedFS, which must bind loopback only.)

Three parts, each against its own baseline measured in the same invocation:
- `get`: sbench's workload loop (`run_workload`, closed loop, 2 worker threads) doing 4 KiB GETs of 2,000
  objects on tmpfs (/dev/shm), with and without a capture (the in-process fleet's AgentLog: wrapper, queue,
  writer thread, part file), in alternating rounds; the figure is the median of the per-round rate ratios
  (capture / none). tmpfs makes each GET a few microseconds, the hardest case for any per-op cost. The
  capture's end-of-run sort of its part into the TSV log is timed too (it runs after the stage).
- `s3`: the native S3 driver (obstore, asyncio tasks, 16 in flight) against SeaweedFS on 127.0.0.1, a 4 KiB
  GET/PUT mix of 50/50, with and without capture, alternating rounds; client CPU per op is
  `time.process_time()` of this process over the stage divided by its ops (the server is another
  process); the figure is the median of the per-round ratios.
- `sort`: a log of `--sort-lines` rows with shuffled starts, written zstd-compressed, then `sbench sort` of
  it in a child process; peak RSS growth is the child's peak RSS (VmHWM) minus its RSS right after
  start-up (the same child imports everything first and reports it), and the sort's wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sbench.config import load_config_text
from sbench.control import RunControl
from sbench.engine.workload import run_workload
from sbench.layout.naming import new_run_id
from sbench.oplog.agentlog import AgentLog
from sbench.oplog.format import TimeFormat
from sbench.oplog.writer import LogWriter
from sbench.plan.agents import AgentIdentity

SIZE = 4096
GET_OBJECTS = 2000


def _stage(config_text: str, seconds: float, log_dir: Path | None) -> tuple[float, float, dict[str, Any]]:
    """(ops/s, client CPU µs per op, capture figures) of one workload stage, captured when `log_dir`."""
    cfg = load_config_text(config_text).config
    log = AgentLog(log_dir / "ops.tsv.zst", "bench") if log_dir is not None else None
    cpu0 = time.process_time()
    res = run_workload(cfg, AgentIdentity(run_id=new_run_id()), RunControl(), duration_s=seconds)
    cpu = time.process_time() - cpu0
    figures: dict[str, Any] = {}
    if log is not None:
        summary = log.finish()
        figures = {"rows": summary.rows, "sort_s": summary.sort_s, "waits": summary.backpressure_waits}
    ops = res.snapshot.total_ops() + res.snapshot.errors_total()
    return ops / res.elapsed_s, cpu / max(1, ops) * 1e6, figures


def _rounds(text: str, seconds: float, rounds: int, work: Path) -> dict[str, Any]:
    per_round = []
    for i in range(rounds):
        order = [False, True] if i % 2 == 0 else [True, False]
        got: dict[bool, tuple[float, float, dict[str, Any]]] = {}
        for captured in order:
            log_dir = work / f"log-{i}" if captured else None
            if log_dir is not None:
                log_dir.mkdir()
            got[captured] = _stage(text, seconds, log_dir)
            if log_dir is not None:
                shutil.rmtree(log_dir)
        per_round.append(
            {
                "none_ops_s": round(got[False][0]),
                "capture_ops_s": round(got[True][0]),
                "rate_ratio": got[True][0] / got[False][0],
                "none_cpu_us": round(got[False][1], 1),
                "capture_cpu_us": round(got[True][1], 1),
                "cpu_ratio": got[True][1] / got[False][1],
                **got[True][2],
            }
        )
        print(json.dumps(per_round[-1]), flush=True)
    return {
        "rate_ratio_median": round(statistics.median(r["rate_ratio"] for r in per_round), 4),
        "cpu_ratio_median": round(statistics.median(r["cpu_ratio"] for r in per_round), 4),
        "rounds": per_round,
    }


def part_get(seconds: float, rounds: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="sbench-oplog-bench-", dir="/dev/shm"))
    try:
        data = root / "getdata"
        data.mkdir()
        payload = os.urandom(SIZE)
        for i in range(GET_OBJECTS):
            (data / f"obj-{i:05d}.dat").write_bytes(payload)
        text = (f"target: file://{root}/\nconcurrency: 2\nduration: {seconds}s\n"
                "workload:\n  - {op: get, path: 'getdata/', weight: 1}\n")
        return _rounds(text, seconds, rounds, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def part_s3(seconds: float, rounds: int) -> dict[str, Any]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from tests import servers
    from tests.storage.fixtures_s3 import ready_bucket

    work = Path(tempfile.mkdtemp(prefix="sbench-oplog-s3-"))
    server = servers.start_seaweedfs(work / "weed")
    try:
        os.environ.update(
            AWS_ACCESS_KEY_ID=servers.S3_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=servers.S3_SECRET_KEY,
            AWS_REGION="us-east-1",
            AWS_EC2_METADATA_DISABLED="true",
        )
        ready_bucket(server, "oplogbench")
        target = f"s3://127.0.0.1:{server.port}/oplogbench/b/"
        text = (f"target: {target}\nconcurrency: 16\nduration: {seconds}s\ndriver: native\n"
                "workload:\n  - {op: put, path: 'w/', weight: 1, object_size: 4096}\n"
                "  - {op: get, path: 'w/', weight: 1}\n")
        seed = (f"target: {target}\nconcurrency: 16\nduration: 2s\ndriver: native\n"
                "workload:\n  - {op: put, path: 'w/', weight: 1, object_size: 4096}\n")
        _stage(seed, 2.0, None)  # objects for the GETs to find
        return _rounds(text, seconds, rounds, work)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _write_unsorted(path: Path, lines: int) -> None:
    rng = random.Random(1)
    times = TimeFormat()
    base = 1_790_000_000 * 10**9
    span = lines * 10_000  # 100k ops/s worth of time
    with LogWriter(path) as writer:
        for i in range(lines):
            start = base + rng.randrange(span)
            st, en = times.text(start), times.text(start + 250_000)
            name = f"bench/data/obj-{i % 1_000_000:08d}.dat"
            writer.add(f"{i % 64}\tGET\tagent-{i % 8}\t1\t4096\ts3://bench\t{name}\t\t{st}\t{en}\t{en}\t250000\n")


#: the child's peak RSS is VmHWM of its own address space: ru_maxrss would include the parent's RSS at the
#: fork (Linux keeps the larger of the two across exec)
_CHILD = """
import sys, time
import psutil
from sbench.cli import main
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
start_rss = psutil.Process().memory_info().rss
t0 = time.monotonic()
code = main(["sort", "--files", sys.argv[1]])
wall = time.monotonic() - t0
print(f"RESULT {code} {start_rss} {hwm()} {wall:.2f}")
"""


def part_sort(lines: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sbench-oplog-sort-", dir=os.environ.get("SORT_DIR")))
    try:
        log = work / "big.tsv.zst"
        t0 = time.monotonic()
        _write_unsorted(log, lines)
        written = time.monotonic() - t0
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
        out = subprocess.run(
            [sys.executable, "-c", _CHILD, str(log)], capture_output=True, text=True, check=False, env=env
        )
        result = next(line for line in out.stdout.splitlines() if line.startswith("RESULT"))
        _, code, start_rss, peak, wall = result.split()
        growth = int(peak) - int(start_rss)
        return {
            "lines": lines,
            "log_bytes": log.stat().st_size,
            "write_s": round(written, 1),
            "exit": int(code),
            "sort_s": float(wall),
            "lines_per_s": round(lines / float(wall)),
            "rss_at_start_mb": round(int(start_rss) / 2**20, 1),
            "peak_rss_mb": round(int(peak) / 2**20, 1),
            "peak_rss_growth_mb": round(growth / 2**20, 1),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="get,s3,sort")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--sort-lines", type=int, default=10_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"load_average": os.getloadavg()}
    parts = args.part.split(",")
    if "get" in parts:
        out["tmpfs_get"] = part_get(args.seconds, args.rounds)
        print("tmpfs 4 KiB GET, capture / none:", out["tmpfs_get"]["rate_ratio_median"], flush=True)
    if "s3" in parts:
        out["s3_native"] = part_s3(args.seconds, args.rounds)
        print("S3 native CPU per op, capture / none:", out["s3_native"]["cpu_ratio_median"], flush=True)
    if "sort" in parts:
        out["sort"] = part_sort(args.sort_lines)
        print("sort:", json.dumps(out["sort"]), flush=True)
    out["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
