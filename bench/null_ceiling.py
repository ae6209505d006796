"""The client's ceiling: how many ops/s `sbench run` drives against null:// (no storage at all), per process
and with `processes: N`.

Run:  scripts/netns-run .venv/bin/python bench/null_ceiling.py [--seconds 5] [--rounds 1] [--processes 1,2]
      [--sizes 1KiB,4KiB] [--ops get,put] [--loads closed,open] [--workers threads,asyncio]
      [--thread-concurrency 2] [--async-concurrency 16] [--open-rate 2000000] [--markdown]

(through scripts/netns-run because `processes: 2` starts a local Ray instance, which must never bind a
non-loopback address.)

Every figure comes from the full path a user runs: a config file, `python -m sbench run CONFIG --results-dir
TMP` in a fresh process, and the execute stage's ops/s from summary.json (its measured window: Ray's start-up
and prepare are not in it). The workload is one op: GET of 1,000 prepared objects of the size, or PUT of new
objects of the size, on a null:// target without service time, so what is measured is sbench itself: the
engine's loop, op choice, key, timing and recording, plus the null backend's dict lookup or insert.

- `threads`: `driver: auto`, thread workers (`--thread-concurrency` per process, default 2);
- `asyncio`: `driver: native`, asyncio tasks on one event loop (`--async-concurrency` per process, default
  16); each null call suspends once, as a real store's call does;
- `closed`: as fast as possible; `open`: `io_rate` far above what is reached (`--open-rate`, aggregate over
  the processes), so the rate achieved and the ops that started late (> 1 ms after their slot) show the
  generator's own saturation;
- `processes: 1` runs on the in-process fleet (no Ray), `processes: N` on N Ray agent processes with
  `concurrency` = N x the per-process value (sbench splits it back per process).

Baseline, in the same invocation: a bare Python loop that makes the same null calls (`NullBackend.get` of the
same 1,000 keys, `NullBackend.put` of new keys of the same form; asyncio: the same number of tasks awaiting
`NullAsyncBackend.get_async` / `put_async`) with nothing else, one thread. `sbench/bare` is the share of the
bare loop's rate the whole `sbench run` keeps; the per-op time difference is what the engine adds.

`--breakdown` also times, one call at a time on one thread (timeit, best of 5), what one op costs in the
parts the engine runs per op: the null call itself, the closed loop's record (an append), and the open
loop's schedule claim, record and late record, which is where an open loop's time goes.

Goals (issue 16): one process >= 300,000 closed-loop 1 KiB GET/s with thread workers; the asyncio path
>= 100,000 ops/s. The exit status is 1 when a run fails or a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engine_overhead import _wait_for_ray_exit  # noqa: E402
from sbench.config.units import parse_size  # noqa: E402
from sbench.engine.ratecontrol import OpenLoopSchedule  # noqa: E402
from sbench.layout.naming import new_run_id, prepared_key, put_key_prefix  # noqa: E402
from sbench.metrics.recorder import Recorder  # noqa: E402
from sbench.storage.options import BackendOptions, Driver  # noqa: E402
from sbench.storage.registry import open_backend  # noqa: E402

PREPARED = 1000
GOALS = {("get", "1KiB", "closed", "threads", 1): 300_000}
ASYNC_GOAL = 100_000


@dataclass(frozen=True)
class Case:
    op: str
    size: str
    load: str
    workers: str
    processes: int

    @property
    def key(self) -> tuple[str, str, str, str, int]:
        return (self.op, self.size, self.load, self.workers, self.processes)


@dataclass
class Outcome:
    rates: list[float] = field(default_factory=list)
    late: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return statistics.median(self.rates) if self.rates else 0.0


def config_text(case: Case, args: argparse.Namespace) -> str:
    per_process = args.thread_concurrency if case.workers == "threads" else args.async_concurrency
    lines = [
        f'target: "null:///ceiling-{case.op}/"',
        f"duration: {args.seconds:g}s",
        f"concurrency: {per_process * case.processes}",
        f"driver: {'native' if case.workers == 'asyncio' else 'auto'}",
    ]
    if case.processes > 1:
        lines.append(f"processes: {case.processes}")
    if case.load == "open":
        lines.append(f"io_rate: {{iops: {args.open_rate}, distribution: exponential}}")
    if case.op == "get":
        lines += [
            "prepare:",
            "  ensure_objects:",
            f"    - {{count: {PREPARED}, size_spec: {case.size}}}",
            "workload:",
            '  - {op: get, path: "", weight: 1}',
        ]
    else:
        lines += ["workload:", f'  - {{op: put, path: "out/", object_size: {case.size}, weight: 1}}']
    return "\n".join(lines) + "\n"


def run_case(case: Case, args: argparse.Namespace, work: Path, n: int) -> tuple[float, float]:
    """(execute ops/s, share of ops that started late) of one `sbench run` in a fresh process."""
    config = work / f"run-{n}.yaml"
    config.write_text(config_text(case, args))
    results = work / f"results-{n}"
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "sbench", "run", str(config), "--results-dir", str(results)],
        env=env, capture_output=True, text=True, check=False,
    )
    if case.processes > 1:
        _wait_for_ray_exit()
    if done.returncode != 0:
        raise RuntimeError(f"exit {done.returncode}: {(done.stdout + done.stderr)[-1500:]}")
    summary = json.loads((results / "summary.json").read_text())
    execute = next(s for s in summary["stages"] if s["type"] == "execute")
    ops = execute["totals"]["ops"]
    late = (execute.get("open_loop") or {}).get("late_ops", 0)
    return float(execute["totals"]["ops_per_sec"]), (late / ops if ops else 0.0)


# -- the bare loops ----------------------------------------------------------------------------------------


def _bare_sync(case: Case, seconds: float) -> float:
    size = parse_size(case.size)
    backend = open_backend(f"null:///bare-{new_run_id()}/")
    keys = [prepared_key("prepared", i) for i in range(PREPARED)]
    for key in keys:
        backend.put(key, bytes(size))
    payload = memoryview(bytes(size))
    head = put_key_prefix(new_run_id(), "standalone") + "0_"
    n, deadline = 0, time.monotonic() + seconds
    t0 = time.monotonic()
    if case.op == "get":
        get = backend.get
        while time.monotonic() < deadline:
            for i in range(1024):
                len(get(keys[(n + i * 7919) % PREPARED]))
            n += 1024
    else:
        put = backend.put
        while time.monotonic() < deadline:
            for i in range(n, n + 1024):
                put(f"out/{head}{i}.dat", payload)
            n += 1024
    return n / (time.monotonic() - t0)


def _bare_async(case: Case, seconds: float, tasks: int) -> float:
    size = parse_size(case.size)
    backend = open_backend(f"null:///bare-{new_run_id()}/", BackendOptions(driver=Driver.NATIVE))
    keys = [prepared_key("prepared", i) for i in range(PREPARED)]
    for key in keys:
        backend.put(key, bytes(size))
    payload = memoryview(bytes(size))
    head = put_key_prefix(new_run_id(), "standalone")
    counts = [0] * tasks

    async def task(t: int, deadline: float) -> None:
        n = 0
        if case.op == "get":
            get = backend.get_async  # type: ignore[attr-defined]
            while time.monotonic() < deadline:
                for i in range(256):
                    len(await get(keys[(n + i * 7919) % PREPARED]))
                n += 256
        else:
            put = backend.put_async  # type: ignore[attr-defined]
            while time.monotonic() < deadline:
                for i in range(n, n + 256):
                    await put(f"out/{head}{t}_{i}.dat", payload)
                n += 256
        counts[t] = n

    async def main() -> float:
        t0 = time.monotonic()
        await asyncio.gather(*(task(t, t0 + seconds) for t in range(tasks)))
        return sum(counts) / (time.monotonic() - t0)

    return asyncio.run(main())


def bare_rate(case: Case, args: argparse.Namespace) -> float:
    if case.workers == "threads":
        return _bare_sync(case, args.seconds)
    return _bare_async(case, args.seconds, args.async_concurrency)


# -- main --------------------------------------------------------------------------------------------------


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _table(rows: list[list[str]], markdown: bool) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if markdown:
        out = ["| " + " | ".join(rows[0]) + " |", "|" + "|".join("---" for _ in rows[0]) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
        return "\n".join(out)
    return "\n".join(
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=5.0, help="duration of each run (default 5)")
    parser.add_argument("--rounds", type=int, default=1, help="runs per case; the median is shown")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--sizes", default="1KiB,4KiB")
    parser.add_argument("--ops", default="get,put")
    parser.add_argument("--loads", default="closed,open")
    parser.add_argument("--workers", default="threads,asyncio")
    parser.add_argument("--thread-concurrency", type=int, default=2, help="thread workers per process")
    parser.add_argument("--async-concurrency", type=int, default=16, help="asyncio tasks per process")
    parser.add_argument("--open-rate", type=int, default=2_000_000, help="open-loop io_rate.iops (aggregate)")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--breakdown", action="store_true", help="also time the per-op parts (see above)")
    args = parser.parse_args()
    cases = [
        Case(op, size, load, workers, int(p))
        for op, size, load, workers, p in itertools.product(
            _split(args.ops), _split(args.sizes), _split(args.loads), _split(args.workers),
            _split(args.processes),
        )
    ]
    load_before = os.getloadavg()[0]
    outcomes = {case.key: Outcome() for case in cases}
    bare: dict[tuple[str, str, str], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="sbench-null-ceiling-") as tmp:
        n = 0
        for _ in range(args.rounds):
            for case in cases:
                n += 1
                try:
                    rate, late = run_case(case, args, Path(tmp), n)
                    outcomes[case.key].rates.append(rate)
                    outcomes[case.key].late.append(late)
                except RuntimeError as exc:
                    outcomes[case.key].errors.append(str(exc))
                print(f"  {case.op} {case.size} {case.load} {case.workers} processes={case.processes}: "
                      f"{outcomes[case.key].rates[-1:] or outcomes[case.key].errors[-1:]}", file=sys.stderr)
                bare_key = (case.op, case.size, case.workers)
                if case.load == "closed" and case.processes == 1:
                    bare.setdefault(bare_key, []).append(bare_rate(case, args))
    rows = [["op", "size", "load", "workers", "processes", "conc./proc", "ops/s", "ops/s per process",
             "runs (ops/s)", "late ops", "bare loop ops/s", "sbench/bare", "engine µs/op"]]
    failed = False
    for case in cases:
        out = outcomes[case.key]
        if out.errors:
            failed = True
            print(f"FAILED {case}: {out.errors[0]}", file=sys.stderr)
        conc = args.thread_concurrency if case.workers == "threads" else args.async_concurrency
        base = statistics.median(bare[(case.op, case.size, case.workers)]) if (
            case.load == "closed" and case.processes == 1 and (case.op, case.size, case.workers) in bare
        ) else None
        rate = out.rate
        rows.append([
            case.op.upper(), case.size, case.load, case.workers, str(case.processes), str(conc),
            f"{rate:,.0f}", f"{rate / case.processes:,.0f}",
            ", ".join(f"{r:,.0f}" for r in out.rates) or "failed",
            f"{statistics.median(out.late):.1%}" if case.load == "open" and out.late else "-",
            f"{base:,.0f}" if base else "-",
            f"{rate / base:.2f}" if base and rate else "-",
            f"{1e6 / rate - 1e6 / base:.2f}" if base and rate else "-",
        ])
    print(f"null:// ceiling, {args.seconds:g} s runs, {args.rounds} round(s); load average {load_before:.2f} "
          f"before, {os.getloadavg()[0]:.2f} after, on {os.cpu_count()} CPUs; open loop at "
          f"{args.open_rate:,} ops/s aggregate")
    print(_table(rows, args.markdown))
    goal_rate = outcomes.get(("get", "1KiB", "closed", "threads", 1))
    async_rates = [
        o.rate for k, o in outcomes.items() if k[3] == "asyncio" and k[2] == "closed" and k[4] == 1
    ]
    verdicts = []
    if goal_rate is not None:
        ok = goal_rate.rate >= GOALS[("get", "1KiB", "closed", "threads", 1)]
        verdicts.append(f"one process, closed-loop 1 KiB GET, threads: {goal_rate.rate:,.0f} ops/s "
                        f"(goal >= 300,000): {'met' if ok else 'NOT met'}")
        failed |= not ok
    if async_rates:
        ok = min(async_rates) >= ASYNC_GOAL
        verdicts.append(f"asyncio workers, one process, closed loop: {min(async_rates):,.0f} ops/s at the "
                        f"lowest (goal >= 100,000): {'met' if ok else 'NOT met'}")
        failed |= not ok
    for line in verdicts:
        print(line)
    if args.breakdown:
        print(_table(breakdown(), args.markdown))
    return 1 if failed else 0


def breakdown() -> list[list[str]]:
    """µs per call of each part the engine runs per op (one thread, best of 5 timeit runs)."""
    backend = open_backend(f"null:///breakdown-{new_run_id()}/")
    abackend = open_backend(f"null:///breakdown-{new_run_id()}/", BackendOptions(driver=Driver.NATIVE))
    key = prepared_key("prepared", 1)
    backend.put(key, bytes(1024))
    abackend.put(key, bytes(1024))
    recorder = Recorder()
    append, _ = recorder.sink()
    names = {
        "b": backend, "key": key, "data": memoryview(bytes(1024)), "append": append,
        "recorder": recorder, "schedule": OpenLoopSchedule(2_000_000, seed=1), "clock": time.monotonic_ns,
        "seq": itertools.count(),
    }
    parts = [
        ("null GET, threads (`len(backend.get(key))`)", "len(b.get(key))"),
        ("null PUT, threads (a new key each time, its f-string included)",
         "b.put(f'out/put_r_a_0_{next(seq)}.dat', data)"),
        ("clock read (`time.monotonic_ns()`, twice per op)", "clock()"),
        ("prepared key from its index (`f'{head}{i:08d}.dat'`, GET of a prepared pool)",
         "f'data/prepared-{next(seq):08d}.dat'"),
        ("closed loop: record one op (sink append)", "append(123 << 5 | 1)"),
        ("open loop: `schedule.claim()` (shared lock, exponential gap)", "schedule.claim()"),
        ("open loop: `recorder.record()` (lock, response + service histograms)",
         "recorder.record(0, 1024, 123, 45)"),
        ("open loop: `recorder.record_late()` (lock, lag histogram)", "recorder.record_late(1500)"),
    ]
    rows = [["part of one op", "µs per call"]]
    for label, stmt in parts:
        best = min(timeit.repeat(stmt, globals=names, number=100_000, repeat=5)) / 100_000
        rows.append([label, f"{best * 1e6:.3f}"])

    async def async_gets(n: int) -> float:
        get = abackend.get_async  # type: ignore[attr-defined]
        t0 = time.perf_counter()
        for _ in range(n):
            len(await get(key))
        return time.perf_counter() - t0

    best = min(asyncio.run(async_gets(100_000)) for _ in range(5)) / 100_000
    rows.append(["null GET, asyncio (`await get_async(key)`, one suspension)", f"{best * 1e6:.3f}"])
    return rows


if __name__ == "__main__":
    raise SystemExit(main())
