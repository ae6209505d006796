"""`sbench run` on real file systems (ext4, xfs, ...) against a bare Python loop making the same syscalls.

Run (as root for the xfs image; every measurement under the shared quiet lock):

    flock /tmp/sbench-quiet.lock .venv/bin/python bench/real_fs.py --fs ext4=/tmp [--fs xfs=/mnt/xfs]
        [--rounds 7] [--seconds 6] [--workers 2] [--ops PUT,GET] [--counters] [--json FILE]
    .venv/bin/python bench/real_fs.py --make-xfs /work/exp/xfs   # a 4 GiB loop-mounted xfs image, then
                                                                 # pass --fs xfs=/work/exp/xfs/mnt

Per file system and op, interleaved rounds of two sides, each a fresh child process with `--workers` threads
for `--seconds`:

- bare: a Python loop calling os.open/os.write/os.close (PUT: create a new 4 KiB file, the flags
  sbench's file:// driver uses) or os.open/os.lseek(SEEK_END)/os.pread/os.close (GET of one of 2,000
  existing 4 KiB files, a large prime stride over them; the calls file.py makes since branch realfs3, which
  cost ~0.9 µs less per GET than os.fstat/os.read), nothing else: keys of the same form and length as sbench's
  (`<dir>/put_<run>_standalone_<worker>_<seq>.dat`), payloads that are distinct slices of one random
  buffer made before the clock starts, the interpreter's default GIL switch interval;
- sbench: `python -m sbench run` of `target: file://ROOT/`, `concurrency: --workers`, `duration:
  --seconds`, one `put` (4 KiB) or `get` (the same 2,000 files) op; its rate is the execute stage's own
  (summary.json), so start-up and the results writing are not counted.

Every PUT side writes into a new directory of its own (`pNNb/` or `pNNs/`), and nothing is deleted until
all rounds are done: on ext4 without a journal (this machine's /tmp), the inode allocator skips inodes freed
in the last 60 s (360 s while their inode table block is dirty) with a linear scan per create, so a create
after a bulk delete costs up to 10x more CPU, whoever makes it (README, "Real file systems"). Before every
side the file system is synced (`os.sync()`), so no side pays for the write-back of the other's files; which
side goes first alternates per round.
The ratio is sbench/bare per round (the two are measured back to back), and the figure is the median of the
per-round ratios. `--counters` attaches `perf stat -p` to each side's process for the middle of its window
(`--seconds` minus 1.5 s, from 0.5 s after its start) and prints per op: CPU time, context switches, CPU
migrations and the syscalls made (openat, write, read, close, fstat, futex, everything), which shows
whether both sides do the same work and where the time goes. Per-op counters divide by the side's mean rate
over its whole run times the window, so they are estimates (±10 % on a disk whose rate varies).
`--threads` (implies `--counters`) also prints them per thread of each side, for every round: user and
system CPU (from /proc/PID/task/TID/stat), voluntary and involuntary context switches (its status) and the
futex calls (`perf stat --per-thread`), so a GIL hand-off shows which thread waits and which one holds it
(the main thread, tid = pid, is `main`: sbench's interval fold and driver; the others are the workers).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SIZE = 4096
GET_OBJECTS = 2000
#: distinct payload slices the bare PUT loop cycles through (a 4 MiB random buffer, 4 KiB apart)
PAYLOAD_RING = 1024
#: the sides `--sides` may name: `bare` and `sbench` (threads in one process), `bare-procs` and
#: `sbench-procs` (`--workers` processes of one thread each: bare children, or `sbench run` with
#: `processes: --workers` through a local Ray instance, so under scripts/netns-run); `SIDE@S` sets the GIL
#: switch interval: `bare@5e-5` (the bare loop with 50 µs), `sbench@0.005` (sbench's workers with 5 ms);
#: `sbench-py` is sbench with `workers: {native_file_io: false}`, its Python loop (the only one before the
#: native batches of storage/filebatch.c)
SIDES = ("bare", "sbench", "sbench-py", "bare-procs", "sbench-procs")
#: sbench run with its worker switch interval replaced (a diagnostic: argv follows the -c program)
SBENCH_WITH_INTERVAL = (
    "import sys, sbench.engine.gil as g; g.WORKER_SWITCH_INTERVAL_S = float(sys.argv.pop(1)); "
    "from sbench.cli import main; raise SystemExit(main(sys.argv[1:]))"
)
#: perf events per side: (name in the output, perf event)
EVENTS = (
    ("cpu_ms", "task-clock"),
    ("ctx_switches", "context-switches"),
    ("migrations", "cpu-migrations"),
    ("page_faults", "page-faults"),
    ("syscalls", "raw_syscalls:sys_enter"),
    ("openat", "syscalls:sys_enter_openat"),
    ("write", "syscalls:sys_enter_write"),
    ("read", "syscalls:sys_enter_read"),
    ("close", "syscalls:sys_enter_close"),
    ("fstat", "syscalls:sys_enter_newfstat"),
    ("lseek", "syscalls:sys_enter_lseek"),
    ("pread", "syscalls:sys_enter_pread64"),
    ("futex", "syscalls:sys_enter_futex"),
)
#: the line `sbench run` prints when the measured stage starts
SBENCH_START = "== stage execute (execute) started"
BARE_START = "bare: measuring"
#: what file.py opens with (a PUT creates or truncates, never follows a final symlink)
WRITE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC | os.O_NOFOLLOW
READ_FLAGS = os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW


# -- the bare side (runs in its own child process) -------------------------------------------------------


def bare_child(
    root: Path,
    op: str,
    put_dir: str,
    seconds: float,
    workers: int,
    switch_interval: float | None,
    first: int = 0,
) -> None:
    """The bare loop: print BARE_START, run `workers` threads for `seconds`, print {"ops", "elapsed"}. The
    threads are numbered from `first` (one child per process of `bare-procs`: each starts its GETs elsewhere
    and names its PUT keys apart)."""
    if switch_interval is not None:
        sys.setswitchinterval(switch_interval)
    if op == "PUT":
        buffer = memoryview(os.urandom(PAYLOAD_RING * SIZE))
        ring = [buffer[i * SIZE : (i + 1) * SIZE] for i in range(PAYLOAD_RING)]
        run_id = time.strftime("%Y%m%d-%H%M%S-") + os.urandom(2).hex()  # sbench's run id form and length
        (root / put_dir).mkdir(exist_ok=True)
        head = f"{root}/{put_dir}/put_{run_id}_standalone_"
    keys = [f"{root}/getdata/obj-{i:05d}.dat" for i in range(GET_OBJECTS)]
    deadline = 0.0

    def put_loop(t: int) -> None:
        n, prefix, mask = 0, f"{head}{t}_", PAYLOAD_RING - 1
        open_, write, close, now = os.open, os.write, os.close, time.monotonic
        while now() < deadline:
            fd = open_(f"{prefix}{n}.dat", WRITE_FLAGS, 0o644)
            write(fd, ring[n & mask])
            close(fd)
            n += 1
        counts[t] = n

    def get_loop(t: int) -> None:
        n, i, k = 0, t * 7919, len(keys)
        open_, lseek, pread, close, now = os.open, os.lseek, os.pread, os.close, time.monotonic
        while now() < deadline:
            fd = open_(keys[i % k], READ_FLAGS)
            pread(fd, lseek(fd, 0, os.SEEK_END), 0)
            close(fd)
            i += 104729
            n += 1
        counts[t] = n

    loop = put_loop if op == "PUT" else get_loop
    counts = [0] * (first + workers)
    threads = [threading.Thread(target=loop, args=(t,)) for t in range(first, first + workers)]
    print(BARE_START, flush=True)
    t0 = time.monotonic()
    deadline = t0 + seconds
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    print(json.dumps({"ops": sum(counts), "elapsed": time.monotonic() - t0}), flush=True)


# -- the parent: sides as child processes, counters, rounds ------------------------------------------------


def _workload(
    root: Path,
    op: str,
    put_dir: str,
    seconds: float,
    workers: int,
    processes: int = 1,
    native_io: bool = True,
) -> str:
    body = (
        f"  - {{op: put, path: '{put_dir}/', weight: 1, object_size: {SIZE}}}\n"
        if op == "PUT"
        else "  - {op: get, path: 'getdata/', weight: 1}\n"
    )
    head = f"target: file://{root}/\nconcurrency: {workers}\nduration: {seconds}s\n"
    extra = f"processes: {processes}\n" if processes > 1 else ""
    extra += "" if native_io else "workers: {native_file_io: false}\n"
    return f"{head}{extra}workload:\n{body}"


def _perf_window(pid: int, seconds: float, out: Path, per_thread: bool) -> subprocess.Popen[bytes]:
    """perf stat attached to `pid` (all its threads; one row per thread with `per_thread`) for `seconds`, CSV
    into `out`."""
    events = ",".join(event for _, event in EVENTS)
    argv = ["perf", "stat", "-x,", "-o", str(out), "-e", events, "-p", str(pid)]
    argv += ["--per-thread"] if per_thread else []
    return subprocess.Popen(
        [*argv, "--", "sleep", f"{seconds}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def _thread_times(pid: int) -> dict[int, tuple[int, int, int, int]]:
    """Per thread of `pid`: (user ticks, system ticks, voluntary, involuntary context switches)."""
    tick = os.sysconf("SC_CLK_TCK")
    found: dict[int, tuple[int, int, int, int]] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
            status = Path(f"/proc/{pid}/task/{tid}/status").read_text()
        except OSError:  # the thread ended between listdir and read
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        switches = dict(line.split(":", 1) for line in status.splitlines() if "ctxt_switches" in line)
        found[int(tid)] = (
            int(fields[11]) * 1000 // tick,
            int(fields[12]) * 1000 // tick,
            int(switches["voluntary_ctxt_switches"]),
            int(switches["nonvoluntary_ctxt_switches"]),
        )
    return found


def _thread_deltas(
    pid: int,
    before: dict[int, tuple[int, int, int, int]],
    after: dict[int, tuple[int, int, int, int]],
    perf: dict[int, dict[str, float]],
) -> dict[str, dict[str, float]]:
    """Per thread over the window: user_ms, sys_ms, voluntary, involuntary, futex, ctx_switches (totals)."""
    rows: dict[str, dict[str, float]] = {}
    workers = 0
    for tid in sorted(after):
        if tid not in before:
            continue
        if tid == pid:
            name = "main"
        else:
            workers += 1
            name = f"thread{workers}"
        b, a = before[tid], after[tid]
        row = {
            key: float(a[i] - b[i]) for i, key in enumerate(("user_ms", "sys_ms", "voluntary", "involuntary"))
        }
        row["futex"] = perf.get(tid, {}).get("futex", 0.0)
        row["ctx_switches"] = perf.get(tid, {}).get("ctx_switches", 0.0)
        rows[name] = row
    return rows


def _perf_record(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """perf record (kernel and user samples, 499 Hz) of `pid` for `seconds`: where the CPU goes."""
    argv = ["perf", "record", "-q", "-F", "499", "-o", str(out), "-p", str(pid), "--", "sleep", f"{seconds}"]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _top_symbols(path: Path, count: int = 3) -> list[tuple[str, float]]:
    """The `count` symbols with the most samples in a perf.data file, with their share in %."""
    done = subprocess.run(
        ["perf", "report", "-i", str(path), "--sort", "sym", "--stdio", "-q"],
        capture_output=True,
        text=True,
        check=False,
    )
    top: list[tuple[str, float]] = []
    for line in done.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0].endswith("%") and parts[1] in ("[k]", "[.]"):
            top.append((parts[2], float(parts[0].rstrip("%"))))
        if len(top) == count:
            break
    return top


def _read_perf(path: Path) -> tuple[dict[str, float], dict[int, dict[str, float]]]:
    """(totals by event name, and with `--per-thread` output the same per thread id)."""
    by_event = {event: name for name, event in EVENTS}
    values: dict[str, float] = {}
    threads: dict[int, dict[str, float]] = {}
    for line in path.read_text().splitlines():
        parts = line.split(",")
        per_thread = len(parts) > 3 and parts[3] in by_event and parts[0].rpartition("-")[2].isdigit()
        value, event = (parts[1], parts[3]) if per_thread else (parts[0], parts[2] if len(parts) > 2 else "")
        if event not in by_event or value in ("<not counted>", "<not supported>"):
            continue
        name = by_event[event]
        values[name] = values.get(name, 0.0) + float(value)
        if per_thread:
            threads.setdefault(int(parts[0].rpartition("-")[2]), {})[name] = float(value)
    return values, threads


def run_side(
    side: str, root: Path, op: str, put_dir: str, args: argparse.Namespace, work: Path
) -> tuple[float, dict[str, float]]:
    """One side as a child process: (ops/s, perf counters over the middle of its window or {})."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}
    results = work / "results"
    shutil.rmtree(results, ignore_errors=True)
    kind, _, interval = side.partition("@")
    if kind == "bare-procs":
        return _bare_processes(root, op, put_dir, args, env), {}
    if kind == "bare":
        argv = [sys.executable, __file__, "--bare-child", str(root), "--op", op, "--put-dir", put_dir]
        argv += ["--seconds", str(args.seconds), "--workers", str(args.workers)]
        if interval:
            argv += ["--bare-switch-interval", interval]
        start_line = BARE_START
    else:
        config = work / "w.yaml"
        processes = args.workers if kind == "sbench-procs" else 1
        native_io = kind != "sbench-py"
        config.write_text(_workload(root, op, put_dir, args.seconds, args.workers, processes, native_io))
        head = (
            [sys.executable, "-c", SBENCH_WITH_INTERVAL, interval]
            if interval
            else [sys.executable, "-m", "sbench"]
        )
        argv = [*head, "run", str(config), "--results-dir", str(results), "--no-report"]
        start_line = SBENCH_START
    child = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert child.stdout is not None
    output: list[str] = []
    perf: subprocess.Popen[bytes] | None = None
    record: subprocess.Popen[bytes] | None = None
    perf_out, record_out = work / "perf.csv", work / "perf.data"
    window = max(args.seconds - 1.5, 0.5)
    times: list[dict[int, tuple[int, int, int, int]]] = []
    timer: threading.Timer | None = None
    for line in child.stdout:
        output.append(line)
        if (args.counters or args.profile) and perf is None and line.startswith(start_line):
            time.sleep(0.5)
            if args.threads:
                times.append(_thread_times(child.pid))
                timer = threading.Timer(window, lambda: times.append(_thread_times(child.pid)))
                timer.start()
            perf = _perf_window(child.pid, window, perf_out, args.threads)
            if args.profile:
                record = _perf_record(child.pid, window, record_out)
    if child.wait() != 0:
        raise SystemExit(f"{side} side failed (exit {child.returncode}):\n{''.join(output)[-3000:]}")
    if kind == "sbench-procs":
        _wait_for_ray_exit()
    counters: dict[str, Any] = {}
    per_thread: dict[int, dict[str, float]] = {}
    if perf is not None:
        perf.wait()
        counters, per_thread = _read_perf(perf_out)
    if timer is not None:
        timer.join()
    top = []
    if record is not None:
        record.wait()
        top = _top_symbols(record_out)
    if kind == "bare":
        done = json.loads(output[-1])
        rate = done["ops"] / done["elapsed"]
    else:
        summary = json.loads((results / "summary.json").read_text())
        execute = next(s for s in summary["stages"] if s["type"] == "execute")
        rate = float(execute["totals"]["ops_per_sec"])
    if counters:
        ops = rate * window
        counters = {k: (v * 1000 if k == "cpu_ms" else v) / ops for k, v in counters.items()}
        counters["cpu_us"] = counters.pop("cpu_ms")
        if len(times) == 2:  # per op: µs of CPU, switches and futex calls
            rows = _thread_deltas(child.pid, times[0], times[1], per_thread)
            counters["threads"] = {
                name: {k: (v * 1000 if k.endswith("_ms") else v) / ops for k, v in row.items()}
                for name, row in rows.items()
            }
    if top:
        counters["top"] = top
    return rate, counters


def _wait_for_ray_exit() -> None:
    """Ray's processes outlive `sbench run` for a few seconds; the next side must not pay for them (imported
    here, not at the top: the bare child must not load sbench)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.engine_overhead import _wait_for_ray_exit as wait

    wait()


def _bare_processes(
    root: Path, op: str, put_dir: str, args: argparse.Namespace, env: dict[str, str]
) -> float:
    """`--workers` bare children of one thread each, at once: the sum of their rates. No counters (they
    attach to one process)."""
    argv = [sys.executable, __file__, "--bare-child", str(root), "--op", op, "--put-dir", put_dir]
    argv += ["--seconds", str(args.seconds), "--workers", "1"]
    children = [
        subprocess.Popen([*argv, "--bare-first", str(t)], env=env, stdout=subprocess.PIPE, text=True)
        for t in range(args.workers)
    ]
    rate = 0.0
    for child in children:
        out, _ = child.communicate()
        if child.returncode != 0:
            raise SystemExit(f"bare-procs child failed (exit {child.returncode}):\n{out[-3000:]}")
        done = json.loads(out.splitlines()[-1])
        rate += done["ops"] / done["elapsed"]
    return rate


def _fs_type(path: Path) -> str:
    done = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", str(path)], capture_output=True, text=True)
    return done.stdout.strip() or "?"


def measure_fs(
    label: str, base: Path, args: argparse.Namespace, ops: list[str], sides: list[str]
) -> dict[str, Any]:
    """Every round of every op on one file system; prints each round as it ends."""
    root = Path(tempfile.mkdtemp(prefix="sbench-realfs-", dir=base))
    work = Path(tempfile.mkdtemp(prefix="sbench-realfs-run-"))
    figures: dict[str, Any] = {"fs": label, "dir": str(base), "type": _fs_type(base), "ops": {}}
    print(f"\n## {label}: {base} ({figures['type']}), load average {_load()}", flush=True)
    try:
        if "GET" in ops:
            (root / "getdata").mkdir()
            for i in range(GET_OBJECTS):
                (root / "getdata" / f"obj-{i:05d}.dat").write_bytes(os.urandom(SIZE))
        for op in ops:
            rounds: list[dict[str, Any]] = []
            for n in range(args.rounds):
                order = sides[n % len(sides) :] + sides[: n % len(sides)]  # who goes first rotates
                if len(sides) == 2 and n % 2:
                    order = sides[::-1]
                got: dict[str, Any] = {}
                for side in order:
                    os.sync()  # nothing dirty left from the side before
                    put_dir = f"p{n:02d}{sides.index(side)}"  # a new directory per side: nothing is deleted
                    rate, counters = run_side(side, root, op, put_dir, args, work)
                    got[side] = {"rate": rate, "counters": counters}
                got["ratio"] = {side: got[side]["rate"] / got[sides[0]]["rate"] for side in sides[1:]}
                got["load"] = os.getloadavg()[0]
                rounds.append(got)
                rates = "  ".join(f"{side} {got[side]['rate']:>8,.0f}" for side in sides)
                ratios = "  ".join(f"{r:.2f}" for r in got["ratio"].values())
                print(
                    f"{label} {op} round {n + 1}: {rates} ops/s  ratio {ratios}  "
                    f"(first {order[0]}, load {got['load']:.2f})",
                    flush=True,
                )
                for side in sides if args.profile else ():
                    top = ", ".join(
                        f"{sym} {share:.0f}%" for sym, share in got[side]["counters"].get("top", [])
                    )
                    print(f"    {side} hottest: {top}", flush=True)
                for side in sides if args.threads else ():
                    for name, row in got[side]["counters"].get("threads", {}).items():
                        print(
                            f"    {side:<10} {name:<8} per op: user {row['user_ms']:6.2f} µs  sys "
                            f"{row['sys_ms']:6.2f} µs  voluntary {row['voluntary']:.3f}  involuntary "
                            f"{row['involuntary']:.3f}  futex {row['futex']:.3f}",
                            flush=True,
                        )
            medians = {side: statistics.median(r["ratio"][side] for r in rounds) for side in sides[1:]}
            figures["ops"][op] = {"rounds": rounds, "median_ratio": medians}
            for side, median in medians.items():
                print(f"{label} {op}: median {side}/{sides[0]} {median:.2f} over {args.rounds} rounds")
            if args.counters:
                _print_counters(label, op, rounds, sides)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)
    return figures


def _print_counters(label: str, op: str, rounds: list[dict[str, Any]], sides: list[str]) -> None:
    names = ["cpu_us"] + [name for name, _ in EVENTS if name != "cpu_ms"]
    names = [n for n in names if n not in ("read", "fstat", "lseek", "pread") or op == "GET"]
    names = [n for n in names if n != "write" or op == "PUT"]
    print(f"{label} {op} per op, median over the rounds:")
    width = max(len(side) for side in sides) + 2
    print(f"  {'side':<{width}}" + "".join(f"{n:>13}" for n in names))
    for side in sides:
        values = []
        for name in names:
            got = [r[side]["counters"][name] for r in rounds if name in r[side]["counters"]]
            values.append(f"{statistics.median(got):>13.3f}" if got else f"{'-':>13}")
        print(f"  {side:<{width}}" + "".join(values))


def _load() -> str:
    return "/".join(f"{v:.2f}" for v in os.getloadavg())


def make_xfs(where: Path, size: str = "32G") -> Path:
    """A loop-mounted xfs image (sparse, `size` is its limit) under `where` (needs mkfs.xfs and root);
    returns the mount point. Seven rounds of 6 s PUTs write about 10 GB."""
    where.mkdir(parents=True, exist_ok=True)
    image, mount = where / "xfs.img", where / "mnt"
    mount.mkdir(exist_ok=True)
    subprocess.run(["truncate", "-s", size, str(image)], check=True)
    subprocess.run(["mkfs.xfs", "-q", "-f", str(image)], check=True)
    subprocess.run(["mount", "-o", "loop", str(image), str(mount)], check=True)
    return mount


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--fs", action="append", default=[], help="LABEL=DIR, a directory on the file system")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--ops", default="PUT,GET")
    parser.add_argument("--counters", action="store_true", help="perf stat counters per op for each side")
    parser.add_argument(
        "--threads", action="store_true", help="--counters, and CPU, switches and futex calls per thread"
    )
    parser.add_argument(
        "--sides",
        default="bare,sbench",
        help="bare first, then the sides to compare with it; SIDE@S sets the GIL switch interval to S s "
        "(bare: sys.setswitchinterval, default 5 ms; sbench: its worker interval, default 50 µs)",
    )
    parser.add_argument("--bare-switch-interval", type=float, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--bare-first", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument(
        "--profile", action="store_true", help="each side's three hottest symbols (perf record)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure to this file")
    parser.add_argument("--make-xfs", type=Path, default=None, help="create and mount an xfs image here")
    parser.add_argument("--bare-child", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--op", default="PUT", help=argparse.SUPPRESS)
    parser.add_argument("--put-dir", default="p00b", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_child is not None:
        bare_child(
            args.bare_child,
            args.op,
            args.put_dir,
            args.seconds,
            args.workers,
            args.bare_switch_interval,
            args.bare_first,
        )
        return
    if args.make_xfs is not None:
        print(f"xfs mounted at {make_xfs(args.make_xfs)}")
        return
    args.counters = args.counters or args.threads
    ops = [op.strip().upper() for op in args.ops.split(",") if op.strip()]
    if not ops or set(ops) - {"PUT", "GET"}:
        parser.error("--ops takes PUT, GET or PUT,GET")
    targets = [spec.partition("=") for spec in args.fs or [f"default={tempfile.gettempdir()}"]]
    print(
        f"4 KiB {'/'.join(ops)}, {args.workers} workers, {args.rounds} interleaved rounds x "
        f"{args.seconds:g} s, {os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    sides = [side.strip() for side in args.sides.split(",") if side.strip()]
    if len(sides) < 2 or sides[0] != "bare" or any(s.partition("@")[0] not in SIDES for s in sides):
        parser.error(
            "--sides: `bare` first, then one or more of bare@INTERVAL, sbench, sbench@INTERVAL, sbench-py, "
            "bare-procs, sbench-procs"
        )
    figures = [measure_fs(label, Path(path), args, ops, sides) for label, _, path in targets]
    print(f"\nsummary (load average {_load()}):")
    for fs in figures:
        for op, got in fs["ops"].items():
            for side, median in got["median_ratio"].items():
                per_round = ", ".join(f"{r['ratio'][side]:.2f}" for r in got["rounds"])
                print(f"  {fs['fs']:<8} {op:<4} {side}/bare median {median:.2f}   rounds: {per_round}")
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=1))


if __name__ == "__main__":
    main()
