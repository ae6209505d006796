"""CPU cost of sbench's file:// driver and multi-endpoint router against bare Python loops.

Two measurements, each in alternating rounds in one process (so background load hits all variants alike),
reporting the median CPU time per op and the ratio to the baseline of the same run:

1. 4 KiB PUT then GET of the same key (1,000 keys reused): a bare os.open/os.write/os.read loop vs
   FileBackend.put/get.
2. STAT through FileBackend directly vs through MultiEndpointBackend over three endpoints (one root, so
   every endpoint sees the same files): the router's own cost per call (counters, locks, histogram record).

    .venv/bin/python bench/local_storage.py [--pairs 5000] [--stats 50000] [--rounds 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable

from sbench.storage.multi import open_multi
from sbench.storage.registry import open_backend

DATA = os.urandom(4096)


def bare_pairs(root: str, n: int) -> None:
    for i in range(n):
        path = f"{root}/k{i % 1000}"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        os.write(fd, DATA)
        os.close(fd)
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        os.read(fd, os.fstat(fd).st_size)
        os.close(fd)


def backend_pairs(backend, n: int) -> None:
    for i in range(n):
        key = f"k{i % 1000}"
        backend.put(key, DATA)
        backend.get(key)


def stats(backend, n: int) -> None:
    for _ in range(n):
        backend.stat("k1")


def cpu_us_per_op(fn: Callable[[], None], n: int) -> float:
    start = time.process_time()
    fn()
    return (time.process_time() - start) / n * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pairs", type=int, default=5000)
    parser.add_argument("--stats", type=int, default=50000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--dir", default=None, help="where to write (default: a temp dir)")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="sbench-bench-", dir=args.dir)
    try:
        bare_root, file_root = f"{work}/bare", f"{work}/file"
        os.makedirs(bare_root)
        os.makedirs(file_root)
        file_backend = open_backend(f"file://{file_root}/")
        rr = open_multi([f"file://{file_root}/"] * 3, "round_robin")
        lc = open_multi([f"file://{file_root}/"] * 3, "least_connections")
        variants: dict[str, tuple[Callable[[], None], int]] = {
            "pairs: bare os loop": (lambda: bare_pairs(bare_root, args.pairs), args.pairs),
            "pairs: FileBackend": (lambda: backend_pairs(file_backend, args.pairs), args.pairs),
            "stat: FileBackend": (lambda: stats(file_backend, args.stats), args.stats),
            "stat: multi round_robin (3)": (lambda: stats(rr, args.stats), args.stats),
            "stat: multi least_connections (3)": (lambda: stats(lc, args.stats), args.stats),
        }
        for fn, _ in variants.values():  # warm-up: files exist, caches and code paths are hot
            fn()
        samples: dict[str, list[float]] = {name: [] for name in variants}
        for _ in range(args.rounds):
            for name, (fn, n) in variants.items():
                samples[name].append(cpu_us_per_op(fn, n))
        med = {name: statistics.median(v) for name, v in samples.items()}
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(f"{'variant':36} {'CPU us/op (median)':>19} {'vs baseline':>12}")
    for name, value in med.items():
        base = med["pairs: bare os loop"] if name.startswith("pairs") else med["stat: FileBackend"]
        print(f"{name:36} {value:19.2f} {value / base:11.2f}x")
    router = med["stat: multi round_robin (3)"] - med["stat: FileBackend"]
    least = med["stat: multi least_connections (3)"] - med["stat: FileBackend"]
    print(f"router overhead per call: round_robin {router:.2f} us, least_connections {least:.2f} us")


if __name__ == "__main__":
    main()
