"""CPU per 4 KiB GET and PUT on one thread: the raw `os` loop, `FileBackend`, and the engine's whole loops.

Run (under the shared quiet lock; no Ray, so no network namespace needed):

    flock /tmp/sbench-quiet.lock .venv/bin/python bench/file_op_cost.py [--dir /tmp] [--put-dir /dev/shm]
        [--rounds 5] [--ops 100000] [--seconds 1.5] [--only GET,PUT]

Issue 16 §1: two sbench workers on a page-cache GET are CPU bound, so every microsecond sbench adds to an
op on top of the syscalls is lost rate. This script measures that cost without the GIL hand-offs of two
threads, as CPU time of the one thread doing the ops (`getrusage(RUSAGE_THREAD)`: user and system separately;
Linux splits a thread's exact run time into the two by its tick samples, so the split is an estimate over
a few hundred ticks, the sum is exact). Four sides per op, in interleaved rounds (the order rotates):

- os: `os.open/os.lseek(SEEK_END)/os.pread/os.close` of one of 2,000 existing 4 KiB files (a large prime
  stride over a list of absolute paths; `os.fstat/os.read` before the native batches), or
  `os.open/os.write/os.close` of a new 4 KiB file (file.py's flags, a distinct slice of one random buffer
  per op): what `bench/real_fs.py` calls the bare loop;
- driver: the same loop calling `FileBackend.get(key)` / `FileBackend.put(key, data)` with relative keys;
- engine: `run_workload` of one `get` (the same 2,000 files) or one 4 KiB `put` op, `concurrency: 1`,
  `workers: {native_file_io: false}`, for `--seconds`: the worker's CPU over its whole Python loop (key
  choice, clock reads, the driver call, the record, the stop checks), divided by the ops the stage counted.
  The loop is wrapped (engine.workload's `loop_for` and `batch_loop`) only to read the worker thread's CPU
  at its start and end;
- native: the same with the default `native_file_io: true`, i.e. the native batches of
  storage/filebatch.c (the worker's Python makes keys and paths, the C loop the calls and records).

Printed per op and side: µs of user, system and total CPU (median over the rounds) and what the driver and
the engine add to the os loop. GETs read files under `--dir`; PUTs create theirs under `--put-dir` (tmpfs by
default), in a new directory per side and round, deleted only at the end: on a journal-less ext4 (this
machine's /tmp) a create after a bulk delete costs up to 10x more kernel CPU for a few minutes, for every
user of the disk (README, "Real file systems"), which buries the microseconds measured here.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sbench.engine.workload as workload_module
from sbench.config import load_config_text
from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.workload import run_workload
from sbench.layout.naming import new_run_id, put_key_prefix
from sbench.plan.agents import AgentIdentity
from sbench.storage.registry import open_backend

SIZE = 4096
GET_OBJECTS = 2000
#: distinct payload slices the os and driver PUT loops cycle through
PAYLOAD_RING = 1024
SIDES = ("os", "driver", "engine", "native")
#: file.py's flags
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW

#: (user s, system s) of the calling thread
Cpu = tuple[float, float]


def thread_cpu() -> Cpu:
    usage = resource.getrusage(resource.RUSAGE_THREAD)
    return usage.ru_utime, usage.ru_stime


def per_op_us(before: Cpu, after: Cpu, ops: int) -> Cpu:
    return (after[0] - before[0]) / ops * 1e6, (after[1] - before[1]) / ops * 1e6


# -- the three sides ------------------------------------------------------------------------------------


def os_get(root: Path, ops: int) -> Cpu:
    paths = [f"{root}/getdata/obj-{i:05d}.dat" for i in range(GET_OBJECTS)]
    open_, lseek, pread, close, i = os.open, os.lseek, os.pread, os.close, 0
    before = thread_cpu()
    for _ in range(ops):
        fd = open_(paths[i % GET_OBJECTS], READ_FLAGS)
        pread(fd, lseek(fd, 0, os.SEEK_END), 0)
        close(fd)
        i += 104729
    return per_op_us(before, thread_cpu(), ops)


def driver_get(root: Path, ops: int) -> Cpu:
    keys = [f"getdata/obj-{i:05d}.dat" for i in range(GET_OBJECTS)]
    get, i = open_backend(f"file://{root}/").get, 0
    before = thread_cpu()
    for _ in range(ops):
        get(keys[i % GET_OBJECTS])
        i += 104729
    return per_op_us(before, thread_cpu(), ops)


def _ring() -> list[Any]:
    make = PayloadGenerator("random", seed=7).maker(SIZE)
    return [make(i) for i in range(PAYLOAD_RING)]


def os_put(root: Path, ops: int) -> Cpu:
    ring, mask = _ring(), PAYLOAD_RING - 1
    directory = Path(tempfile.mkdtemp(prefix="os-", dir=root))
    head = f"{directory}/{put_key_prefix(new_run_id(), 'standalone')}0_"
    open_, write, close = os.open, os.write, os.close
    before = thread_cpu()
    for n in range(ops):
        fd = open_(f"{head}{n}.dat", WRITE_FLAGS, 0o644)
        write(fd, ring[n & mask])
        close(fd)
    return per_op_us(before, thread_cpu(), ops)


def driver_put(root: Path, ops: int) -> Cpu:
    ring, mask = _ring(), PAYLOAD_RING - 1
    directory = Path(tempfile.mkdtemp(prefix="driver-", dir=root))
    head = f"{directory.name}/{put_key_prefix(new_run_id(), 'standalone')}0_"
    put = open_backend(f"file://{root}/").put
    before = thread_cpu()
    for n in range(ops):
        put(f"{head}{n}.dat", ring[n & mask])
    return per_op_us(before, thread_cpu(), ops)


class WorkerCpu:
    """engine.workload's `loop_for` and `batch_loop`, wrapped to read the worker thread's CPU around its
    loop."""

    def __init__(self) -> None:
        self.spans: list[tuple[Cpu, Cpu]] = []
        self._loop_for = workload_module.loop_for
        self._batch_loop = workload_module.batch_loop

    def __enter__(self) -> WorkerCpu:
        workload_module.loop_for = lambda shape: self._timed(self._loop_for(shape))  # type: ignore[assignment]
        workload_module.batch_loop = lambda shape: self._timed(self._batch_loop(shape))  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        workload_module.loop_for = self._loop_for  # type: ignore[assignment]
        workload_module.batch_loop = self._batch_loop  # type: ignore[assignment]

    def _timed(self, loop: Callable[..., Any]) -> Callable[..., Any]:
        def timed(run: Any, w: Any) -> Any:
            before = thread_cpu()
            try:
                return loop(run, w)
            finally:
                self.spans.append((before, thread_cpu()))

        return timed


def engine_side(root: Path, op: str, seconds: float, native_io: bool) -> Cpu:
    if op == "GET":
        body = "  - {op: get, path: 'getdata/', weight: 1}\n"
    else:
        directory = Path(tempfile.mkdtemp(prefix="engine-", dir=root)).name
        body = f"  - {{op: put, path: '{directory}/', weight: 1, object_size: {SIZE}}}\n"
    loop = "" if native_io else "workers: {native_file_io: false}\n"
    text = f"target: file://{root}/\nconcurrency: 1\nduration: {seconds}s\n{loop}workload:\n{body}"
    cfg = load_config_text(text).config
    with WorkerCpu() as cpu:
        res = run_workload(cfg, AgentIdentity(run_id=new_run_id()), RunControl(), duration_s=seconds)
    ((before, after),) = cpu.spans
    return per_op_us(before, after, res.snapshot.total_ops())


# -- rounds ---------------------------------------------------------------------------------------------


def measure(root: Path, op: str, side: str, ops: int, seconds: float) -> Cpu:
    """One side's CPU per op; `root` holds getdata/ for a GET and the PUT directories for a PUT."""
    if side in ("engine", "native"):
        return engine_side(root, op, seconds, native_io=side == "native")
    runners = {"GET": {"os": os_get, "driver": driver_get}, "PUT": {"os": os_put, "driver": driver_put}}
    return runners[op][side](root, ops)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dir", type=Path, default=Path("/tmp"), help="file system for the GETs")
    parser.add_argument("--put-dir", type=Path, default=Path("/dev/shm"), help="file system for the PUTs")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--ops", type=int, default=100_000, help="ops per os/driver side and round")
    parser.add_argument("--seconds", type=float, default=1.5, help="length of an engine side")
    parser.add_argument("--only", default="GET,PUT", help="which ops (GET, PUT)")
    args = parser.parse_args()
    ops = [op.strip().upper() for op in args.only.split(",") if op.strip()]
    if not ops or set(ops) - {"GET", "PUT"}:
        parser.error("--only takes GET, PUT or GET,PUT")
    root = Path(tempfile.mkdtemp(prefix="sbench-opcost-", dir=args.dir))
    put_root = Path(tempfile.mkdtemp(prefix="sbench-opcost-", dir=args.put_dir))
    try:
        (root / "getdata").mkdir()
        for i in range(GET_OBJECTS):
            (root / "getdata" / f"obj-{i:05d}.dat").write_bytes(os.urandom(SIZE))
        load = os.getloadavg()[0]
        cost: dict[tuple[str, str], list[Cpu]] = {(op, s): [] for op in ops for s in SIDES}
        for n in range(args.rounds):
            order = SIDES[n % len(SIDES) :] + SIDES[: n % len(SIDES)]
            for op in ops:
                for side in order:
                    where = root if op == "GET" else put_root
                    cost[op, side].append(measure(where, op, side, args.ops, args.seconds))
        print(
            f"{args.dir} (GET), {args.put_dir} (PUT): 4 KiB, one thread, {args.rounds} rounds (load "
            f"average {load:.2f} at the start, {os.getloadavg()[0]:.2f} at the end); CPU µs per op, median"
        )
        print(f"{'op':<5}{'side':<8}{'user':>7}{'system':>8}{'total':>8}{'adds':>7}   total per round")
        for op in ops:
            base = statistics.median(u + s for u, s in cost[op, "os"])
            for side in SIDES:
                rows = cost[op, side]
                user = statistics.median(u for u, _ in rows)
                system = statistics.median(s for _, s in rows)
                total = statistics.median(u + s for u, s in rows)
                rounds = " ".join(f"{u + s:.2f}" for u, s in rows)
                print(
                    f"{op:<5}{side:<8}{user:>7.2f}{system:>8.2f}{total:>8.2f}{total - base:>7.2f}   {rounds}"
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(put_root, ignore_errors=True)


if __name__ == "__main__":
    main()
