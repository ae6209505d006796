"""Engine overhead: sbench's workload loop against a bare Python loop making the same storage calls.

Run:  scripts/netns-run .venv/bin/python bench/engine_overhead.py [--seconds 3] [--rounds 5] [--dir DIR]
      [--workers 2] [--no-processes] [--metrics] [--json FILE]

(through scripts/netns-run because the `processes` side starts a local Ray instance, which must never bind a
non-loopback address.)

Both sides call the same file:// backend methods from `--workers` threads (sbench with `workers:
{native_file_io: false}`, its Python loop; bench/real_fs.py measures the default, native batches):
`FileBackend.put` of a new 4 KiB object, `FileBackend.get` of one of 2,000 existing 4 KiB objects. The bare
loop does nothing else, and makes the same calls sbench makes: PUT keys of the same form and length
(`put_<run>_<agent>_<worker>_<seq>.dat`) and payloads that are distinct slices of the same kind of buffer
(taken from a list made before the clock starts, so the bare loop pays no Python for them). sbench adds
everything a real run does per op: op choice, key and payload generation, timing, recording, stop checks, and
the interval thread that folds records into HDR histograms. The ratio sbench/bare is the share of the client's
rate the engine keeps (the issue asks for >= 85 %).

Three sides per op, measured back to back in each round (the order rotates, and every other round runs it
backwards, so a metrics-on side does not always run right after its metrics-off side; ratios are medians of
the per-round ratios, since a shared machine's load drifts):
- bare: the loop above, `--workers` threads in this process;
- sbench threads: `run_workload` in this process, `concurrency: --workers` (one process, one GIL);
- sbench processes: `sbench run` of the same workload with `processes: --workers` and `concurrency:
  --workers`, i.e. the same number of workers, one per agent process (sai3's `processes`, through a local
  Ray instance; the rate is the execute stage's own, so Ray's start-up is not counted).

With two threads, every GIL hand-off after a syscall (open, write, close) costs a futex wake-up, and the
more Python a thread runs between syscalls, the more often the other thread finds the GIL taken: on tmpfs,
where a 4 KiB create costs only ~6 µs of kernel time, a fraction of a microsecond of engine work per op
shows up several times over in the two-thread rate. The one-worker ratio (`--workers 1`) has no hand-offs
and shows the engine's cost alone; the processes side shows what sbench does about the GIL.

`--metrics` measures the live metrics (sbench.metrics.live) on and off, which only `sbench run` has:
- run / run+metrics: `sbench run` of the workload in process (one agent, `concurrency: --workers`), without
  and with `--metrics-port`, scraped once a second by this process as Prometheus would (harsher: Prometheus
  scrapes every 15 s by default);
- processes runs with `--no-ray-metrics` and processes+metrics without it (Ray's metrics export on).
It prints the ratio of each metrics-on side to its metrics-off side (median of the per-round ratios).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil

from sbench.config import load_config_text
from sbench.data.payload import PayloadGenerator
from sbench.engine.backends import BackendSet
from sbench.engine.workload import run_workload
from sbench.layout.naming import new_run_id, put_key_prefix

try:  # where these live since the plan layer; compare_trees.py also runs this against older trees
    from sbench.control import RunControl
    from sbench.plan.agents import AgentIdentity
except ImportError:
    from sbench.engine.context import AgentIdentity, RunControl  # type: ignore[no-redef]
from sbench.storage.file import FileBackend
from sbench.storage.options import BackendOptions
from sbench.storage.registry import open_backend
from sbench.storage.uri import parse_uri

SIZE = 4096
GET_OBJECTS = 2000
#: distinct payload views the bare PUT loop cycles through
PAYLOAD_RING = 1 << 16
SIDES = ("bare", "threads", "processes")
METRICS_SIDES = ("run", "run+metrics", "processes+metrics")
#: metrics-on side -> its metrics-off side
METRICS_PAIRS = {"run+metrics": "run", "processes+metrics": "processes"}


def _threads(workers: int, loop: Callable[[int], int]) -> float:
    """Run `loop(t)` on `workers` threads; ops/s of all of them together."""
    counts = [0] * workers

    def run(t: int) -> None:
        counts[t] = loop(t)

    t0 = time.monotonic()
    threads = [threading.Thread(target=run, args=(t,)) for t in range(workers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return sum(counts) / (time.monotonic() - t0)


def bare_put(root: Path, seconds: float, workers: int) -> float:
    backend = open_backend(f"file://{root}/")
    make = PayloadGenerator("random", seed=7).maker(SIZE)
    ring = [make(i) for i in range(PAYLOAD_RING)]
    mask = PAYLOAD_RING - 1
    head = "bare/" + put_key_prefix(new_run_id(), "standalone")
    deadline = time.monotonic() + seconds

    def loop(t: int) -> int:
        put, n, worker_head = backend.put, 0, f"{head}{t}_"
        while time.monotonic() < deadline:
            put(f"{worker_head}{n}.dat", ring[n & mask])
            n += 1
        return n

    return _threads(workers, loop)


def bare_get(root: Path, seconds: float, workers: int) -> float:
    backend = open_backend(f"file://{root}/")
    keys = [f"getdata/obj-{i:05d}.dat" for i in range(GET_OBJECTS)]
    deadline = time.monotonic() + seconds

    def loop(t: int) -> int:
        get, n, i, k = backend.get, 0, t * 7919, len(keys)
        while time.monotonic() < deadline:
            get(keys[i % k])
            i += 104729  # a large prime stride: spread over the keys without a random() call
            n += 1
        return n

    return _threads(workers, loop)


def _workload(root: Path, op: str, seconds: float, concurrency: int, processes: int = 1) -> str:
    body = (
        "  - {op: put, path: 'sb/', weight: 1, object_size: 4096}\n"
        if op == "PUT"
        else "  - {op: get, path: 'getdata/', weight: 1}\n"
    )
    extra = f"processes: {processes}\n" if processes > 1 else ""
    # the Python loop, which calls FileBackend as the bare loop does (the default native batches make the
    # calls in C: bench/real_fs.py compares those)
    head = f"target: file://{root}/\nconcurrency: {concurrency}\nduration: {seconds}s\n"
    head += "workers: {native_file_io: false}\n"
    return f"{head}{extra}workload:\n{body}"


def sbench_threads(root: Path, op: str, seconds: float, workers: int) -> float:
    cfg = load_config_text(_workload(root, op, seconds, workers)).config
    res = run_workload(cfg, AgentIdentity(run_id=new_run_id()), RunControl(), duration_s=seconds)
    return res.snapshot.total_ops() / res.elapsed_s


def sbench_processes(root: Path, op: str, seconds: float, workers: int, metrics: bool = False) -> float:
    """`sbench run` with one worker per agent process; the execute stage's ops/s from summary.json.
    Ray's metrics export is on only with `metrics` (the processes side of the other sides' tables is off)."""
    return _sbench_run(root, op, seconds, workers, workers, [] if metrics else ["--no-ray-metrics"])


def sbench_run(root: Path, op: str, seconds: float, workers: int, metrics: bool = False) -> float:
    """`sbench run` in process (one agent, `workers` threads); with `metrics`, `--metrics-port` scraped
    once a second while it runs."""
    if not metrics:
        return _sbench_run(root, op, seconds, workers, 1, [])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return _sbench_run(root, op, seconds, workers, 1, ["--metrics-port", str(port)], scrape_port=port)


def _scrape_every_second(port: int, stop: threading.Event) -> None:
    while not stop.wait(1.0):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as response:
                response.read()
        except OSError:  # not listening yet, or already closed
            continue


def _sbench_run(
    root: Path,
    op: str,
    seconds: float,
    workers: int,
    processes: int,
    flags: list[str],
    scrape_port: int | None = None,
) -> float:
    """`sbench run` of the workload as a child process; the execute stage's ops/s from summary.json."""
    work = Path(tempfile.mkdtemp(prefix="sbench-overhead-run-"))
    stop = threading.Event()
    try:
        config = work / "w.yaml"
        config.write_text(_workload(root, op, seconds, workers, processes=processes))
        results = work / "results"
        env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
        if scrape_port is not None:
            threading.Thread(target=_scrape_every_second, args=(scrape_port, stop), daemon=True).start()
        argv = [sys.executable, "-m", "sbench", "run", str(config), "--results-dir", str(results)]
        done = subprocess.run(
            [*argv, "--no-report", *flags], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            tail = done.stdout[-3000:] + done.stderr[-3000:]
            raise SystemExit(f"sbench run failed (exit {done.returncode}):\n{tail}")
        summary = json.loads((results / "summary.json").read_text())
        execute = next(s for s in summary["stages"] if s["type"] == "execute")
        return float(execute["totals"]["ops_per_sec"])
    finally:
        stop.set()
        shutil.rmtree(work, ignore_errors=True)
        if processes > 1:
            _wait_for_ray_exit()


def _wait_for_ray_exit(timeout_s: float = 30.0) -> None:
    """Ray's processes outlive `sbench run` by a few seconds while they shut down; measuring the next side
    before they are gone would charge their CPU to it."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        names = {p.info["name"] or "" for p in psutil.process_iter(["name"])}
        if not any(n.startswith(("raylet", "gcs_server", "ray::")) for n in names):
            return
        time.sleep(0.2)


class _InstantGet(FileBackend):
    """file:// backend whose GET returns at once: what is left of an op is the caller's own cost."""

    def get(self, key: str) -> memoryview:
        return _BLOCK


_BLOCK = memoryview(bytes(SIZE))


def engine_cost_us(root: Path, seconds: float) -> tuple[float, float]:
    """(bare loop µs/op, sbench µs/op) with a GET that costs nothing, one worker each: the difference is
    the engine's own time per op (choice, key, timing, recording, checks)."""
    backend = _InstantGet(parse_uri(f"file://{root}/"), BackendOptions())
    keys = [f"getdata/obj-{i:05d}.dat" for i in range(GET_OBJECTS)]
    get, n, i = backend.get, 0, 0
    deadline = time.monotonic() + seconds
    t0 = time.monotonic()
    while time.monotonic() < deadline:
        get(keys[i % GET_OBJECTS])
        i += 104729
        n += 1
    bare_us = (time.monotonic() - t0) / n * 1e6
    cfg = load_config_text(_workload(root, "GET", seconds, 1)).config
    backends = BackendSet(cfg)
    backends.adopt(f"file://{root}/", backend)
    res = run_workload(
        cfg, AgentIdentity(run_id="bench"), RunControl(), duration_s=seconds, backends=backends
    )
    return bare_us, res.elapsed_s / res.snapshot.total_ops() * 1e6


def metrics_cost_us(root: Path, updates: int = 200) -> tuple[float, float]:
    """(CPU µs per interval update of one agent, CPU µs per scrape) of the live metrics, measured directly:
    the update is all the metrics path adds to a run (the driver thread, once per agent per interval),
    and it does not depend on the op rate. The snapshot is a real GET+PUT stage's (wider histograms than
    one interval's, so an upper bound)."""
    from prometheus_client import generate_latest

    from sbench.metrics.live.openmetrics import LiveCollector
    from sbench.metrics.live.state import LiveMetrics

    put = "  - {op: put, path: 'sb/', weight: 1, object_size: 4096}\n"
    cfg = load_config_text(_workload(root, "GET", 1.0, 2) + put).config
    snap = run_workload(cfg, AgentIdentity(run_id="bench"), RunControl(), duration_s=1.0).snapshot
    live = LiveMetrics("bench")
    t0 = time.thread_time()
    for _ in range(updates):
        snap._cache.clear()  # decode the histograms every time, as a fresh interval needs
        live.intervals("execute", {"a1": [snap]})
    update_us = (time.thread_time() - t0) / updates * 1e6
    collector = LiveCollector(live)
    t0 = time.thread_time()
    for _ in range(updates):
        generate_latest(collector)  # type: ignore[arg-type]
    return update_us, (time.thread_time() - t0) / updates * 1e6


def _ratio_of_means(pairs: list[tuple[float, float]], draws: int = 10_000) -> tuple[float, float, float]:
    """Ratio of the mean rates of two sides, with a 95 % paired-bootstrap interval over the rounds.

    The median of per-round ratios alone hides how little a few rounds can resolve: two threads handing
    the GIL to each other run a whole round in a fast or a slow state, so single rounds of the same side
    differ by up to 2x. The interval says whether a 3 % difference is resolved at all."""
    rng = random.Random(15)
    on_mean = statistics.fmean(a for a, _ in pairs)
    off_mean = statistics.fmean(b for _, b in pairs)
    draws_sorted = sorted(
        statistics.fmean(a for a, _ in sample) / statistics.fmean(b for _, b in sample)
        for sample in (rng.choices(pairs, k=len(pairs)) for _ in range(draws))
    )
    return on_mean / off_mean, draws_sorted[int(0.025 * draws)], draws_sorted[int(0.975 * draws) - 1]


def _reset(root: Path) -> None:
    for name in ("bare", "sb"):
        shutil.rmtree(root / name, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--dir", type=Path, default=None, help="where to create files (default: tmpfs)")
    parser.add_argument(
        "--no-processes", action="store_true", help="skip the `processes` side (no Ray instance)"
    )
    parser.add_argument(
        "--metrics",
        action="store_true",
        help="also measure `sbench run` with the live metrics on and off (in process and on Ray)",
    )
    parser.add_argument(
        "--ops",
        default="PUT,GET",
        help="which ops to measure (PUT,GET); on a disk file system, measure GET alone: the write-back of "
        "the PUT phase's files would otherwise run during the GET rounds",
    )
    parser.add_argument(
        "--json", type=Path, default=None, help="also write the figures to this file (bench/compare_trees.py)"
    )
    args = parser.parse_args()
    ops = [op.strip().upper() for op in args.ops.split(",") if op.strip()]
    if not ops or set(ops) - {"PUT", "GET"}:
        parser.error("--ops takes PUT, GET or PUT,GET")
    sides = SIDES[:2] if args.no_processes or args.workers < 2 else SIDES
    if args.metrics:
        sides += METRICS_SIDES[:2] if "processes" not in sides else METRICS_SIDES
    base = args.dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir()))
    root = Path(tempfile.mkdtemp(prefix="sbench-overhead-", dir=base))
    runners: dict[str, Callable[[Path, str, float, int], float]] = {
        "bare": lambda r, op, s, w: bare_put(r, s, w) if op == "PUT" else bare_get(r, s, w),
        "threads": sbench_threads,
        "processes": sbench_processes,
        "run": sbench_run,
        "run+metrics": lambda r, op, s, w: sbench_run(r, op, s, w, metrics=True),
        "processes+metrics": lambda r, op, s, w: sbench_processes(r, op, s, w, metrics=True),
    }
    try:
        (root / "getdata").mkdir()
        for i in range(GET_OBJECTS):
            (root / "getdata" / f"obj-{i:05d}.dat").write_bytes(os.urandom(SIZE))
        rates: dict[str, dict[str, list[float]]] = {op: {side: [] for side in sides} for op in ops}
        figures: dict[str, Any] = {"load": os.getloadavg()[0], "ratios": {}, "rates": rates}
        for n in range(args.rounds):
            order = sides[n % len(sides) :] + sides[: n % len(sides)]  # rotate which side goes first
            if n % 2:  # and reverse every other round: no side always follows the same other side
                order = order[::-1]
            for op in ops:
                for side in order:
                    _reset(root)
                    rates[op][side].append(runners[side](root, op, args.seconds, args.workers))
        _reset(root)
        print(
            f"file:// under {base}, 4 KiB objects, {args.workers} workers, {args.rounds} rounds x "
            f"{args.seconds:g} s (load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
        )
        width = max(len(side) for side in sides) + 2
        print(f"{'op':<5}{'side':<{width}}{'ops/s (median)':>16}{'ratio to bare':>15}   per round (ops/s)")
        for op in ops:
            bare = rates[op]["bare"]
            for side in sides:
                ratio = statistics.median(s / b for s, b in zip(rates[op][side], bare, strict=True))
                per_round = ", ".join(f"{r:,.0f}" for r in rates[op][side])
                median = statistics.median(rates[op][side])
                figures["ratios"][f"{op} {side}"] = ratio
                print(f"{op:<5}{side:<{width}}{median:>16,.0f}{ratio:>15.1%}   {per_round}")
        print("ratio: median of the per-round ratios (each side against the bare loop of the same round)")
        if args.metrics:
            update_us, scrape_us = metrics_cost_us(root)
            print(
                f"live metrics CPU: {update_us:,.0f} µs per agent interval update (GET+PUT, "
                f"{update_us / 1e4:.3f} % of a core at 1 s intervals), {scrape_us:,.0f} µs per scrape"
            )
            figures["metrics_update_us"], figures["metrics_scrape_us"] = update_us, scrape_us
        for op in ops:
            for on, off in METRICS_PAIRS.items():
                if on in sides:
                    pairs = list(zip(rates[op][on], rates[op][off], strict=True))
                    ratio = statistics.median(a / b for a, b in pairs)
                    of_means, low, high = _ratio_of_means(pairs)
                    figures["ratios"][f"{op} {on} / {off}"] = ratio
                    figures["ratios"][f"{op} {on} / {off} of means"] = [of_means, low, high]
                    print(
                        f"{op:<5}metrics on / off: {on} / {off} = {ratio:.1%} (median of per-round "
                        f"ratios); ratio of the means {of_means:.1%}, 95 % interval {low:.1%}–{high:.1%}"
                    )
        costs = [engine_cost_us(root, 1.0) for _ in range(3)]
        bare_us = statistics.median(c[0] for c in costs)
        sb_us = statistics.median(c[1] for c in costs)
        print(
            f"engine cost per op (GET that returns at once, 1 worker): bare loop {bare_us:.2f} µs, "
            f"sbench {sb_us:.2f} µs -> the engine adds {sb_us - bare_us:.2f} µs per op"
        )
        if args.json is not None:
            figures["engine_cost_us"] = sb_us - bare_us
            args.json.write_text(json.dumps(figures))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
