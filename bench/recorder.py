"""Per-op metrics cost: Recorder.record against a bare HdrHistogram.record_value loop.

Run:  .venv/bin/python bench/recorder.py [--ops 1000000]

The bare loop is the floor any HDR-based recorder pays for one latency value. Recorder.record adds size
bucketing, op/byte counters and a lock, but records through an inline index computation, so it can come out
at or below the bare hdrh call. Also shown: the open-loop form (response + service time), two threads with one
Recorder each, and the cost of take_interval() with data in several buckets.
"""

from __future__ import annotations

import argparse
import threading
import time

from hdrh.histogram import HdrHistogram

from sbench.metrics.buckets import OpClass
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from sbench.metrics.recorder import Recorder


def latencies(n: int) -> list[int]:
    # A spread of values so indexes vary like real latencies (cheap LCG, no random() in the timed loops).
    out, x = [], 12345
    for _ in range(n):
        x = (x * 1103515245 + 12345) & 0x7FFFFFFF
        out.append(50 + x % 20_000)
    return out


def bare_hdrh(values: list[int]) -> float:
    h = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    record = h.record_value
    t0 = time.perf_counter()
    for v in values:
        record(v)
    return time.perf_counter() - t0


def recorder_closed(values: list[int]) -> float:
    rec = Recorder()
    record, get = rec.record, OpClass.GET
    t0 = time.perf_counter()
    for v in values:
        record(get, 4096, v)
    return time.perf_counter() - t0


def recorder_open(values: list[int]) -> float:
    rec = Recorder()
    record, get = rec.record, OpClass.GET
    t0 = time.perf_counter()
    for v in values:
        record(get, 4096, v + 10, v)
    return time.perf_counter() - t0


def recorder_two_threads(values: list[int]) -> float:
    """Wall time of two threads each recording all values into its own Recorder (one GIL: no speed-up)."""

    def run() -> None:
        rec = Recorder()
        for v in values:
            rec.record(OpClass.PUT, 65536, v)

    threads = [threading.Thread(target=run) for _ in range(2)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return (time.perf_counter() - t0) / 2


def take_interval_cost(values: list[int]) -> float:
    rec = Recorder()
    for i, v in enumerate(values[:100_000]):
        rec.record(OpClass(i % 3), (i * 7919) % (8 << 20), v)
    t0 = time.perf_counter()
    snap = rec.take_interval()
    dt = time.perf_counter() - t0
    assert snap.total_ops() == 100_000
    return dt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--ops", type=int, default=1_000_000)
    args = parser.parse_args()
    values = latencies(args.ops)
    print("# machine shared with other jobs: absolute figures are noisy, ratios are the result")
    bare = min(bare_hdrh(values) for _ in range(3)) / args.ops
    rows = [
        ("bare HdrHistogram.record_value", bare),
        ("Recorder.record (closed loop)", min(recorder_closed(values) for _ in range(3)) / args.ops),
        ("Recorder.record (open loop, + service)", min(recorder_open(values) for _ in range(3)) / args.ops),
        ("Recorder.record, 2 threads x 1 recorder", recorder_two_threads(values) / args.ops),
    ]
    print("variant\tns_per_op\tratio_to_bare_hdrh")
    for name, seconds in rows:
        print(f"{name}\t{seconds * 1e9:.0f}\t{seconds / bare:.2f}")
    interval_ms = take_interval_cost(values) * 1e3
    print(f"take_interval() with 100k ops over 3 classes and several buckets: {interval_ms:.2f} ms")


if __name__ == "__main__":
    main()
