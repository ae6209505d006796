"""The native S3 path against the bare libraries (issue 16 §3): full `sbench run` vs bare obstore vs s3dlio.

What it does, in one invocation: starts its own SeaweedFS (tests/servers.py) on 127.0.0.1 (or uses
`--endpoint`), prepares the GET objects once with `sbench run --prepare-only` (256 x 4 KiB, 32 x 1 MiB
and 8 x 16 MiB), then for every case (4 KiB GET, PUT and a 50/50 mix; 1 and 16 MiB GET and PUT; 16 in
flight unless `--concurrency` says otherwise) runs every client in turn, `--rounds` interleaved rounds
(the order rotates each round, so drifting background load falls on every client alike):

- `sbench ...`: the full `sbench run` of a YAML workload in a child process (`python -m sbench run`, native
  driver, closed loop, `--skip-prepare --no-report`, 1 s warm-up then `--seconds` measured), in the
  `--variants` asked for: the default (`workers.mode: auto`), asyncio tasks pinned (`mode: asyncio`), uvloop
  and threads (`mode: threads`). Its client
  CPU is that child's own user + system time (psutil, polled every 20 ms, interpolated at the measured
  window's start and end from summary.json); its ops and bytes are the run's own totals;
- `obstore asyncio` / `obstore uvloop`: a bare loop of 16 asyncio tasks on one event loop (`get_async` then
  `bytes_async`, `put_async`), the way obstore documents it, the second with uvloop's event loop;
- `obstore threads`: a bare loop of 16 threads calling obstore's sync `get(...).bytes()` / `put`;
- `s3dlio threads`: a bare loop of 16 threads calling `s3dlio.get` / `s3dlio.put_bytes` (the Rust library
  under sai3-bench; skipped when not installed: `pip install s3dlio==0.10.0`, the `bench` extra).

The bare loops run in this process, between a warm-up pass and the measured window; their client CPU is
this process's user + system time over the window (getrusage; the server is another process). Bare
PUTs overwrite 32 keys per worker, sbench's PUTs create new keys (cleaned up after each case).

Printed per case: each client's median ops/s, MiB/s and client CPU µs per op over the rounds, every
round's CPU per op, then the ratios (medians of per-round ratios, each round measuring the clients back to
back): each sbench variant's CPU per op over bare obstore asyncio, s3dlio and obstore threads, and its
throughput over the best bare loop (the one with the highest median throughput). The load average is
printed with every round.

    scripts/netns-run .venv/bin/python bench/native_path.py [--seconds 4] [--rounds 3] [--cases get4k,put4k]
        [--clients sbench,obstore] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests import servers  # noqa: E402

BUCKET = "sbench-native"
#: requests in flight per client (`--concurrency`)
CONCURRENCY = 16
KEYS_PER_WORKER = 32
KiB, MiB = 1024, 1024 * 1024
#: (objects prepared for GET, size) per object size
GET_OBJECTS = {4 * KiB: 256, 1 * MiB: 32, 16 * MiB: 8}
#: where the GET objects of each size live
PREFIXES = {4 * KiB: "get4k", 1 * MiB: "get1m", 16 * MiB: "get16m"}
POLL_S = 0.02
WARMUP_S = 1.0


@dataclass(frozen=True)
class Case:
    """One workload: its object size and op mix (fractions of GET and PUT)."""

    name: str
    size: int
    get: float
    put: float


CASES = {
    "get4k": Case("4 KiB GET", 4 * KiB, 1.0, 0.0),
    "put4k": Case("4 KiB PUT", 4 * KiB, 0.0, 1.0),
    "mix4k": Case("4 KiB 50/50 GET/PUT", 4 * KiB, 0.5, 0.5),
    "get1m": Case("1 MiB GET", 1 * MiB, 1.0, 0.0),
    "put1m": Case("1 MiB PUT", 1 * MiB, 0.0, 1.0),
    "get16m": Case("16 MiB GET", 16 * MiB, 1.0, 0.0),
    "put16m": Case("16 MiB PUT", 16 * MiB, 0.0, 1.0),
}


@dataclass
class Round:
    ops: int
    nbytes: int
    wall_s: float
    cpu_s: float
    load: float

    @property
    def cpu_us(self) -> float:
        return 1e6 * self.cpu_s / max(1, self.ops)

    @property
    def mib_s(self) -> float:
        return self.nbytes / MiB / self.wall_s

    @property
    def ops_s(self) -> float:
        return self.ops / self.wall_s


@dataclass
class Result:
    client: str
    rounds: list[Round] = field(default_factory=list)


def _cpu_self() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _prefix(case: Case) -> str:
    return PREFIXES[case.size] + "/"


# -- bare loops: each returns run(deadline) -> (ops, bytes); set up once per case, outside the window --------

Runner = Callable[[float], tuple[int, int]]


def _thread_loop(one: Callable[[int, int], int]) -> Runner:
    pool = ThreadPoolExecutor(max_workers=CONCURRENCY, thread_name_prefix="bare")

    def worker(w: int, deadline: float) -> tuple[int, int]:
        i = moved = 0
        clock = time.perf_counter
        while clock() < deadline:
            moved += one(w, i)
            i += 1
        return i, moved

    def run(deadline: float) -> tuple[int, int]:
        tallies = list(pool.map(worker, range(CONCURRENCY), [deadline] * CONCURRENCY))
        return sum(t[0] for t in tallies), sum(t[1] for t in tallies)

    return run


def _task_loop(one: Callable[[int, int], Any], loop: str) -> Runner:
    async def main(deadline: float) -> tuple[int, int]:
        async def worker(w: int) -> tuple[int, int]:
            i = moved = 0
            clock = time.perf_counter
            while clock() < deadline:
                moved += await one(w, i)
                i += 1
            return i, moved

        tallies = await asyncio.gather(*(worker(w) for w in range(CONCURRENCY)))
        return sum(t[0] for t in tallies), sum(t[1] for t in tallies)

    if loop == "uvloop":
        import uvloop

        return lambda deadline: uvloop.run(main(deadline))
    return lambda deadline: asyncio.run(main(deadline))


class Keys:
    """GET keys (the prepared objects) and PUT keys (32 per worker, overwritten) of one case."""

    def __init__(self, case: Case, label: str, get_keys: list[str]) -> None:
        self.get_keys = get_keys
        self.puts = [[f"bare/{label}/w{w}/k{i}" for i in range(KEYS_PER_WORKER)] for w in range(CONCURRENCY)]
        # which of 64 consecutive ops are PUTs: evenly spread, the case's exact fraction, no RNG per op
        self.is_put = [int((i + 1) * case.put) > int(i * case.put) for i in range(64)]

    def get(self, w: int, i: int) -> str:
        return self.get_keys[(w * 7 + i) % len(self.get_keys)]

    def put(self, w: int, i: int) -> str:
        return self.puts[w][i % KEYS_PER_WORKER]


def obstore_store(endpoint: str) -> Any:
    """One S3Store with the native driver's settings (http allowed, 120 s timeout, retries off)."""
    from obstore.store import S3Store

    return S3Store(BUCKET, endpoint=endpoint, region="us-east-1", virtual_hosted_style_request=False,
                   access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                   secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                   client_options={"allow_http": True, "timeout": datetime.timedelta(seconds=120),
                                   "pool_max_idle_per_host": str(CONCURRENCY)},
                   retry_config={"max_retries": 0})


def obstore_tasks(endpoint: str, case: Case, keys: Keys, payload: bytes, loop: str) -> Runner:
    import obstore

    store = obstore_store(endpoint)
    get_async, put_async = obstore.get_async, obstore.put_async
    is_put, size = keys.is_put, len(payload)

    async def one(w: int, i: int) -> int:
        if is_put[i % 64]:
            await put_async(store, keys.put(w, i), payload)
            return size
        return len(await (await get_async(store, keys.get(w, i))).bytes_async())

    return _task_loop(one, loop)


def obstore_threads(endpoint: str, case: Case, keys: Keys, payload: bytes) -> Runner:
    import obstore

    store = obstore_store(endpoint)
    get, put = obstore.get, obstore.put
    is_put, size = keys.is_put, len(payload)

    def one(w: int, i: int) -> int:
        if is_put[i % 64]:
            put(store, keys.put(w, i), payload)
            return size
        return len(get(store, keys.get(w, i)).bytes())

    return _thread_loop(one)


def s3dlio_threads(endpoint: str, case: Case, keys: Keys, payload: bytes) -> Runner:
    import s3dlio

    os.environ["AWS_ENDPOINT_URL"] = endpoint
    s3dlio.configure_s3(endpoint_url=endpoint, region="us-east-1")
    get, put = s3dlio.get, s3dlio.put_bytes
    is_put, size = keys.is_put, len(payload)
    base = f"s3://{BUCKET}/"

    def one(w: int, i: int) -> int:
        if is_put[i % 64]:
            put(base + keys.put(w, i), payload)
            return size
        return len(get(base + keys.get(w, i)))

    return _thread_loop(one)


def measure_bare(runner: Runner) -> Round:
    runner(time.perf_counter() + 0.5)  # warm-up: connections, first-call paths
    load = os.getloadavg()[0]
    cpu0, wall0 = _cpu_self(), time.perf_counter()
    ops, moved = runner(wall0 + ARGS.seconds)
    return Round(ops, moved, time.perf_counter() - wall0, _cpu_self() - cpu0, load)


# -- the full sbench run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SbenchVariant:
    """A `sbench run` of the case's workload with these extra top-level YAML lines."""

    label: str
    yaml: str = ""


#: by `--variants` key: the default (`mode: auto`, whatever it picks), then each mode pinned
SBENCH_VARIANTS = {
    "default": SbenchVariant("sbench default (auto)"),
    "asyncio": SbenchVariant("sbench asyncio", "workers: {mode: asyncio}\n"),
    "uvloop": SbenchVariant("sbench uvloop", "workers: {event_loop: uvloop}\n"),
    "threads": SbenchVariant("sbench threads", "workers: {mode: threads}\n"),
}


def _workload_yaml(case: Case, endpoint: str, variant: SbenchVariant, run: int) -> str:
    host = endpoint.split("://", 1)[1]
    ops = []
    if case.get:
        ops.append(f"  - {{op: get, path: '{_prefix(case)}', weight: {round(100 * case.get)}}}")
    if case.put:
        ops.append(f"  - {{op: put, path: 'sbput/{run}/', object_size: {case.size}, "
                   f"weight: {round(100 * case.put)}}}")
    return (f"target: 's3://{host}/{BUCKET}/'\nduration: {ARGS.seconds}s\nwarmup_period: {WARMUP_S}s\n"
            f"concurrency: {CONCURRENCY}\ndriver: native\nperf_log: {{interval: 1s}}\n{variant.yaml}"
            "workload:\n" + "\n".join(ops) + "\n")


def _prepare_yaml(endpoint: str) -> str:
    host = endpoint.split("://", 1)[1]
    lines = "".join(f"    - {{base_uri: 's3://{host}/{BUCKET}/{PREFIXES[size]}/', "
                    f"count: {count}, size_spec: {size}}}\n" for size, count in GET_OBJECTS.items())
    return (f"target: 's3://{host}/{BUCKET}/'\nduration: 1s\nconcurrency: 8\ndriver: native\n"
            f"prepare:\n  ensure_objects:\n{lines}  cleanup: false\n"
            "workload:\n  - {op: get, path: 'get4k/', weight: 1}\n")


def _sbench(args: list[str], work: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "sbench", "run", *args], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _cpu_at(samples: list[tuple[float, float]], at: float) -> float:
    """The child's CPU seconds at wall time `at`, interpolated between the two samples around it."""
    for (t0, c0), (t1, c1) in itertools.pairwise(samples):
        if t0 <= at <= t1:
            return c0 + (c1 - c0) * (at - t0) / max(t1 - t0, 1e-9)
    raise RuntimeError(f"no CPU sample around {at} ({samples[0][0]}..{samples[-1][0]})")


def measure_sbench(case: Case, endpoint: str, variant: SbenchVariant, work: Path, run: int) -> Round:
    import psutil

    tag = f"{case.size}-{case.put}-{run}"
    cfg = work / f"run-{tag}.yaml"
    cfg.write_text(_workload_yaml(case, endpoint, variant, run))
    results = work / f"res-{tag}"
    load = os.getloadavg()[0]
    proc = _sbench([str(cfg), "--results-dir", str(results), "--skip-prepare", "--no-report", "--no-cleanup"],
                   work)
    ps = psutil.Process(proc.pid)
    samples: list[tuple[float, float]] = []
    out: list[bytes] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.read() if proc.stdout else b""))
    reader.start()
    while proc.poll() is None:
        try:
            t = ps.cpu_times()
        except psutil.NoSuchProcess:
            break
        samples.append((time.time(), t.user + t.system))
        time.sleep(POLL_S)
    reader.join()
    if proc.wait() != 0:
        raise RuntimeError(f"sbench run failed ({proc.returncode}):\n{b''.join(out).decode()[-3000:]}")
    summary = json.loads((results / "summary.json").read_text())["workload"]
    start, end = summary["start_ms"] / 1000, summary["end_ms"] / 1000
    cpu = _cpu_at(samples, end) - _cpu_at(samples, start)
    totals = summary["totals"]
    if totals["errors"]:
        raise RuntimeError(f"sbench run had {totals['errors']} errors: {summary['errors']}")
    return Round(totals["ops"], totals["bytes"], end - start, cpu, load)


# -- the comparison --------------------------------------------------------------------------------------


def _list_keys(endpoint: str, prefix: str) -> list[str]:
    import obstore

    keys = [meta["path"] for chunk in obstore.list(obstore_store(endpoint), prefix) for meta in chunk]
    if not keys:
        raise RuntimeError(f"nothing prepared under {prefix}")
    return keys


def _cleanup_puts(endpoint: str) -> None:
    import obstore

    store = obstore_store(endpoint)
    for prefix in ("sbput", "bare"):
        for chunk in obstore.list(store, prefix):
            obstore.delete(store, [meta["path"] for meta in chunk])


def run_case(case: Case, endpoint: str, clients: list[str], work: Path) -> dict[str, Result]:
    payload = os.urandom(case.size)
    get_keys = _list_keys(endpoint, _prefix(case).rstrip("/"))
    bare: dict[str, Callable[[], Runner]] = {}
    if "obstore" in clients:
        bare["obstore asyncio"] = lambda: obstore_tasks(endpoint, case, Keys(case, "oa", get_keys), payload,
                                                        "asyncio")
        bare["obstore threads"] = lambda: obstore_threads(endpoint, case, Keys(case, "ot", get_keys), payload)
        if ARGS.uvloop:
            bare["obstore uvloop"] = lambda: obstore_tasks(endpoint, case, Keys(case, "ou", get_keys),
                                                           payload, "uvloop")
    if "s3dlio" in clients and HAVE_S3DLIO:
        bare["s3dlio threads"] = lambda: s3dlio_threads(endpoint, case, Keys(case, "s3", get_keys), payload)
    runners = {name: make() for name, make in bare.items()}
    variants = [SBENCH_VARIANTS[k] for k in ARGS.variants.split(",")] if "sbench" in clients else []
    names = [v.label for v in variants] + list(runners)
    results = {n: Result(n) for n in names}
    run = 0
    for rnd in range(ARGS.rounds):
        shift = rnd % len(names)
        for name in names[shift:] + names[:shift]:
            if name in runners:
                r = measure_bare(runners[name])
            else:
                run += 1
                variant = next(v for v in variants if v.label == name)
                r = measure_sbench(case, endpoint, variant, work, run)
            results[name].rounds.append(r)
            print(f"  round {rnd + 1}/{ARGS.rounds} {name:28s} {r.ops_s:8,.0f} ops/s {r.mib_s:8,.1f} MiB/s "
                  f"{r.cpu_us:8,.1f} µs CPU/op  load {r.load:.1f}", flush=True)
        _cleanup_puts(endpoint)
    return results


def _med(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def report(case: Case, results: dict[str, Result]) -> tuple[str, dict[str, Any]]:
    lines = [f"### {case.name}, {CONCURRENCY} in flight, {ARGS.rounds} rounds x {ARGS.seconds:g} s", "",
             "| client | ops/s | MiB/s | client CPU µs/op (median) | per round |", "|---|---|---|---|---|"]
    for r in results.values():
        per = ", ".join(f"{x.cpu_us:,.0f}" for x in r.rounds)
        ops_s, mib_s = _med([x.ops_s for x in r.rounds]), _med([x.mib_s for x in r.rounds])
        cpu_us = _med([x.cpu_us for x in r.rounds])
        lines.append(f"| {r.client} | {ops_s:,.0f} | {mib_s:,.1f} | {cpu_us:,.1f} | {per} |")
    bare = [n for n in results if not n.startswith("sbench")]
    figures: dict[str, Any] = {"clients": {n: [vars(x) for x in r.rounds] for n, r in results.items()}}
    lines.append("")
    for name in [n for n in results if n.startswith("sbench")]:
        ours = results[name].rounds
        ratios: dict[str, float] = {}
        for other in ("obstore asyncio", "s3dlio threads", "obstore threads"):
            if other in results:
                ratios[f"cpu/{other}"] = _med([o.cpu_us / b.cpu_us for o, b in
                                               zip(ours, results[other].rounds, strict=True)])
        if bare:
            # the best bare loop is the one with the highest median throughput; compared round by round
            best = max(bare, key=lambda b: _med([x.mib_s for x in results[b].rounds]))
            ratios[f"MiB/s / {best} (best bare)"] = _med([o.mib_s / b.mib_s for o, b in
                                                         zip(ours, results[best].rounds, strict=True)])
        figures[name] = ratios
        lines.append(f"- {name}: " + ", ".join(f"{k} x{v:.3f}" for k, v in ratios.items()))
    return "\n".join(lines), figures


def main(argv: list[str] | None = None) -> int:
    global ARGS, HAVE_S3DLIO, CONCURRENCY
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=4.0, help="measured seconds per client per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, of {','.join(CASES)}")
    parser.add_argument("--clients", default="sbench,obstore,s3dlio", help="sbench, obstore, s3dlio")
    parser.add_argument("--variants", default=",".join(SBENCH_VARIANTS),
                        help=f"sbench variants, comma-separated, of {','.join(SBENCH_VARIANTS)}")
    parser.add_argument("--concurrency", type=int, default=CONCURRENCY, help="requests in flight per client")
    parser.add_argument("--endpoint", help="use this running S3 endpoint instead of starting SeaweedFS")
    parser.add_argument("--no-uvloop", dest="uvloop", action="store_false", help="skip the uvloop bare loop")
    parser.add_argument("--json", type=Path, help="also write every figure to this file")
    ARGS = parser.parse_args(argv)
    CONCURRENCY = ARGS.concurrency
    if os.environ.get("SBENCH_IN_NETNS") != "1" and os.environ.get("SBENCH_NETNS_OFF") != "1":
        print("bench/native_path.py starts a server: run it through scripts/netns-run", file=sys.stderr)
        return 2
    try:
        import s3dlio  # noqa: F401

        HAVE_S3DLIO = True
    except ImportError:
        print("s3dlio is not installed (pip install s3dlio==0.10.0, the `bench` extra): its loop is skipped")
        HAVE_S3DLIO = False
    if ARGS.uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            print("uvloop is not installed (the `uvloop` extra): its loop is skipped")
            ARGS.uvloop = False
    os.environ["AWS_ACCESS_KEY_ID"] = servers.S3_ACCESS_KEY
    os.environ["AWS_SECRET_ACCESS_KEY"] = servers.S3_SECRET_KEY
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    os.environ.setdefault("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        os.environ.pop(name, None)
    clients = ARGS.clients.split(",")
    out: dict[str, Any] = {"load_start": os.getloadavg()}
    with tempfile.TemporaryDirectory(prefix="sbench-native-") as tmp:
        work = Path(tmp)
        server = None
        endpoint = ARGS.endpoint
        if endpoint is None:
            server = servers.start_seaweedfs(work / "weed")
            endpoint = server.endpoint
        try:
            import boto3

            admin = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
            with contextlib.suppress(admin.exceptions.BucketAlreadyOwnedByYou):
                admin.create_bucket(Bucket=BUCKET)
            (work / "prepare.yaml").write_text(_prepare_yaml(endpoint))
            prep = _sbench([str(work / "prepare.yaml"), "--results-dir", str(work / "prep"), "--prepare-only",
                            "--no-report"], work)
            if prep.wait() != 0:
                raise RuntimeError(f"prepare failed: {prep.stdout.read().decode() if prep.stdout else ''}")
            tables = []
            for key in ARGS.cases.split(","):
                case = CASES[key]
                print(f"== {case.name}", flush=True)
                results = run_case(case, endpoint, clients, work)
                table, figures = report(case, results)
                out[key] = figures
                tables.append(table)
        finally:
            if server is not None:
                server.stop()
    out["load_end"] = os.getloadavg()
    print()
    print(f"SeaweedFS on the same {os.cpu_count()} cores; client CPU = the client process's own user + "
          f"system time; load average at start {out['load_start'][0]:.1f}, at end {out['load_end'][0]:.1f}")
    print()
    print("\n\n".join(tables))
    if ARGS.json:
        ARGS.json.write_text(json.dumps(out, indent=1))
    return 0


ARGS: argparse.Namespace
HAVE_S3DLIO = False

if __name__ == "__main__":
    sys.exit(main())
