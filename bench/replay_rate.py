"""What a replay sustains against what `sbench run` reaches, and what a dry-run of a huge log costs.

Run:  scripts/netns-run .venv/bin/python bench/replay_rate.py [--part rate,dryrun] [--seconds 4]
      [--rounds 3] [--lines 10000000] [--json FILE]

- `rate`: `sbench run` (in process, closed loop, 2 worker threads) of a 4 KiB GET 60 / PUT 20 / STAT 20 mix
  over 2,000 prepared objects on tmpfs (/dev/shm), with an op-log; its workload rows (the prepare PUTs and
  gap-fill LIST left out) are then replayed against the same target and objects (the logged URIs) at
  `--speed 1e6` with `max_concurrent: 2` (the run's 2 workers): everything is due at once, so the replay
  goes as fast as its 2 workers can, as the run's closed loop did. Figures: the run's workload ops/s
  (summary.json) and the replay's ops/s over its active time (epoch to the last op's end, summary.json
  `load_model.ops_per_s_active`); the ratio per round, and its median. tmpfs makes each op a few
  microseconds, the hardest case for per-op overhead.
- `speed`: a 10 s log (500 PUTs of 4 KiB, evenly spread) replayed at `--speed 2` against null://, with the
  replay's own op-log: the schedule's span (first to last op start) must be 5 s +-10%, and the wall time of
  the whole command is reported beside it.
- `dryrun`: a `--lines` log (zstd, rows out of order so the replay sorts it first through a temporary
  file) and `sbench replay --dry-run` of it in a child process; peak RSS growth is the child's VmHWM minus
  its RSS after start-up, and its wall time.
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

from sbench.cli import main as sbench_main
from sbench.oplog.format import TimeFormat
from sbench.oplog.reader import iter_lines
from sbench.oplog.writer import LogWriter

REPO = Path(__file__).resolve().parent.parent


def _run_config(target: str, seconds: float, concurrency: int, objects: int) -> str:
    return f"""
target: "{target}"
duration: {seconds}s
concurrency: {concurrency}
prepare:
  cleanup: false
  ensure_objects:
    - {{base_uri: "{target}data/", count: {objects}, size_spec: 4KiB, fill: zero}}
workload:
  - {{op: get, path: "data/", weight: 60}}
  - {{op: put, path: "out/", object_size: 4KiB, weight: 20}}
  - {{op: stat, path: "data/", weight: 20}}
"""


def _workload_rows(log: Path, out: Path) -> int:
    """The run's workload rows only: not prepare's PUTs into data/ nor its gap-fill LIST."""
    with LogWriter(out) as writer:
        for _lineno, line in iter_lines(log):
            cells = line.split("\t")
            if cells[2] == "LIST" or (cells[2] == "PUT" and "/data/" in cells[7]):
                continue
            writer.add(line[line.index("\t") + 1 :] + "\n")
    return writer.rows


def _one_round(work: Path, target: str, seconds: float, concurrency: int, objects: int) -> dict[str, Any]:
    cfg = work / "run.yaml"
    cfg.write_text(_run_config(target, seconds, concurrency, objects))
    ran = work / "ran"
    code = sbench_main(["run", str(cfg), "--results-dir", str(ran), "--op-log", "ops.tsv", "--no-report"])
    assert code == 0
    run_rate = json.loads((ran / "summary.json").read_text())["workload"]["totals"]["ops_per_sec"]
    rows = _workload_rows(ran / "ops.tsv", work / "workload.tsv")
    (work / "bp.yaml").write_text(f"max_concurrent: {concurrency}\nlag_threshold: 1000s\n")
    replayed = work / "replayed"
    code = sbench_main(["replay", "--op-log", str(work / "workload.tsv"), "--speed", "1e6", "--config",
                        str(work / "bp.yaml"), "--results-dir", str(replayed)])
    figures = json.loads((replayed / "summary.json").read_text())["load_model"]
    return {"exit": code, "rows": rows, "run_ops_per_s": run_rate,
            "replay_ops_per_s": figures["ops_per_s_active"], "replay_ok": figures["ops_succeeded"],
            "ratio": round(figures["ops_per_s_active"] / run_rate, 3)}


def _rounds(rounds: int, target_of: Any, seconds: float, concurrency: int, objects: int) -> dict[str, Any]:
    out = []
    for i in range(rounds):
        work = Path(tempfile.mkdtemp(prefix="sbench-replay-rate-", dir="/dev/shm"))
        try:
            out.append(_one_round(work, target_of(work, i), seconds, concurrency, objects))
        finally:
            shutil.rmtree(work, ignore_errors=True)
        print("round:", json.dumps(out[-1]), flush=True)
    return {"rounds": out, "ratio_median": statistics.median(r["ratio"] for r in out)}


def part_rate(seconds: float, rounds: int) -> dict[str, Any]:
    def target_of(work: Path, _i: int) -> str:
        (work / "t").mkdir()
        return f"file://{work}/t/"

    return _rounds(rounds, target_of, seconds, 2, 2000)


def part_s3(seconds: float, rounds: int) -> dict[str, Any]:
    """The same mix on SeaweedFS through the native S3 driver, 16 in flight (run: asyncio tasks;
    replay: 16 worker threads on the same driver's calls)."""
    sys.path.insert(0, str(REPO))
    from tests import servers
    from tests.storage.fixtures_s3 import ready_bucket

    work = Path(tempfile.mkdtemp(prefix="sbench-replay-s3-"))
    server = servers.start_seaweedfs(work / "weed")
    try:
        os.environ.update(AWS_ACCESS_KEY_ID=servers.S3_ACCESS_KEY,
                          AWS_SECRET_ACCESS_KEY=servers.S3_SECRET_KEY,
                          AWS_REGION="us-east-1", AWS_EC2_METADATA_DISABLED="true")
        ready_bucket(server, "replaybench")
        port = server.port
        return _rounds(rounds, lambda _w, i: f"s3://127.0.0.1:{port}/replaybench/r{i}/", seconds, 16, 300)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


def _write_log(path: Path, lines: int) -> None:
    """`lines` rows of a GET/PUT/HEAD mix over 1M keys, 100k ops/s, every 1,000th row moved 5 ms early."""
    rng = random.Random(7)
    times = TimeFormat()
    base = 1_790_000_000 * 10**9
    ops = ("GET", "GET", "PUT", "HEAD")
    with LogWriter(path) as writer:
        for i in range(lines):
            start = base + i * 10_000 - (5_000_000 if i % 1000 == 999 else 0)
            op = ops[rng.randrange(4)]
            st, en = times.text(start), times.text(start + 250_000)
            first = en if op != "HEAD" else ""
            name = f"prod/d/{i % 1_000_000:07d}"
            writer.add(f"{i % 16}\t{op}\tprod\t1\t4096\ts3://prod\t{name}\t\t{st}\t{first}\t{en}\t250000\n")


def part_speed() -> dict[str, Any]:
    sys.path.insert(0, str(REPO))
    from sbench.oplog.format import NS
    from sbench.oplog.reader import read_rows
    from tests.replay.logs import write_log

    work = Path(tempfile.mkdtemp(prefix="sbench-replay-speed-"))
    try:
        log = write_log(work / "ten.tsv", [(i * 0.02, "PUT", f"bench/k{i}", 4096) for i in range(501)])
        began = time.monotonic()
        code = sbench_main(["replay", "--op-log", str(log), "--target", "null:///speed/", "--speed", "2",
                            "--results-dir", str(work / "r"), "--capture", "own.tsv"])
        wall = time.monotonic() - began
        own = list(read_rows(work / "r" / "own.tsv"))
        return {"exit": code, "log_span_s": 10.0, "speed": 2, "replay_span_s": round(
            (own[-1].start_ns - own[0].start_ns) / NS, 3), "command_wall_s": round(wall, 2)}
    finally:
        shutil.rmtree(work, ignore_errors=True)


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
code = main(["replay", "--op-log", sys.argv[1], "--target", "null:///replayed/", "--dry-run"])
print(f"RESULT {code} {start_rss} {hwm()} {time.monotonic() - t0:.2f}")
"""


def part_dryrun(lines: int) -> dict[str, Any]:
    work = Path(tempfile.mkdtemp(prefix="sbench-replay-dry-", dir=os.environ.get("SORT_DIR")))
    try:
        log = work / "big.tsv.zst"
        _write_log(log, lines)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TMPDIR": str(work)}
        out = subprocess.run([sys.executable, "-c", _CHILD, str(log)], capture_output=True, text=True,
                             check=False, env=env)
        result = next((x for x in out.stdout.splitlines() if x.startswith("RESULT")), None)
        if result is None:
            raise RuntimeError(f"dry-run child failed: {out.stderr[-2000:]}")
        _, code, start_rss, peak, wall = result.split()
        return {"lines": lines, "log_bytes": log.stat().st_size, "exit": int(code), "dry_run_s": float(wall),
                "rss_at_start_mb": round(int(start_rss) / 2**20, 1),
                "peak_rss_mb": round(int(peak) / 2**20, 1),
                "peak_rss_growth_mb": round((int(peak) - int(start_rss)) / 2**20, 1),
                "plan": [x for x in out.stdout.splitlines() if x.startswith("  ops to replay")]}
    finally:
        shutil.rmtree(work, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", default="rate,s3,speed,dryrun")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {"load_average": os.getloadavg()}
    parts = args.part.split(",")
    if "rate" in parts:
        out["rate"] = part_rate(args.seconds, args.rounds)
        print("tmpfs: replay / run ops/s, median:", out["rate"]["ratio_median"], flush=True)
    if "s3" in parts:
        out["s3"] = part_s3(args.seconds, args.rounds)
        print("SeaweedFS native: replay / run ops/s, median:", out["s3"]["ratio_median"], flush=True)
    if "speed" in parts:
        out["speed"] = part_speed()
        print("speed:", json.dumps(out["speed"]), flush=True)
    if "dryrun" in parts:
        out["dryrun"] = part_dryrun(args.lines)
        print("dry-run:", json.dumps(out["dryrun"]), flush=True)
    out["load_average_after"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
