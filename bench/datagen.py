"""Payload generation cost: sbench's PayloadGenerator against os.urandom and a bare memoryview slice.

Run:  .venv/bin/python bench/datagen.py [--seconds 0.5]

For each object size and data mode it prints ns per payload and GB/s of payload produced, with the ratio to
os.urandom (what a naive generator would do per op) and to a bare slice of a pre-made bytes object (the
floor: what any zero-copy scheme costs). One-time buffer builds (and growth for large objects) are reported
separately and left out of the per-op figures.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable

from sbench.data.payload import DEFAULT_BUFFER_SIZE, PayloadGenerator

SIZES = (4096, 65536, 1 << 20, 16 << 20, 64 << 20)
MODES = (("zero", 1, 1), ("random", 1, 1), ("random", 4, 1), ("random", 1, 3), ("random", 4, 3))


def per_call(fn: Callable[[int], object], seconds: float) -> float:
    """Seconds per call, running `fn(i)` with a fresh i each time for about `seconds`."""
    n, i = 1, 0
    while True:
        t0 = time.perf_counter()
        for _ in range(n):
            fn(i)
            i += 1
        dt = time.perf_counter() - t0
        if dt >= seconds:
            return dt / n
        n *= 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=0.5, help="time per measurement")
    args = parser.parse_args()

    print(f"# buffer size {DEFAULT_BUFFER_SIZE >> 20} MiB; machine shared with other jobs, figures are noisy")
    for fill, dedup, compress in MODES:
        t0 = time.perf_counter()
        PayloadGenerator(fill, dedup, compress, seed=1).payload(1, 0)
        print(f"# build {fill} dedup={dedup} compress={compress}: {time.perf_counter() - t0:.3f} s (once)")

    base = os.urandom(DEFAULT_BUFFER_SIZE)
    view = memoryview(base)
    header = "size\tmode\tns_per_op\tGB_per_s\tvs_urandom\tvs_bare_slice"
    print(header)
    for size in SIZES:
        urandom_s = per_call(lambda _i, size=size: os.urandom(size), args.seconds)
        span = DEFAULT_BUFFER_SIZE - size + 1

        def bare(i: int, size: int = size, span: int = span) -> memoryview:
            off = (i * 2654435761) % span
            return view[off : off + size]

        slice_s = per_call(bare, args.seconds)
        print(f"{size}\tos.urandom\t{urandom_s * 1e9:.0f}\t{size / urandom_s / 1e9:.2f}\t1.00\t-")
        print(f"{size}\tbare slice\t{slice_s * 1e9:.0f}\t{size / slice_s / 1e9:.2f}\t-\t1.00")
        for fill, dedup, compress in MODES:
            gen = PayloadGenerator(fill, dedup, compress, seed=1)
            t0 = time.perf_counter()
            gen.payload(size, 0)  # a size above half the buffer grows it once: not a per-op cost
            first = time.perf_counter() - t0
            if first > 0.01:
                print(f"# {size} {fill} d{dedup} c{compress}: first call {first:.3f} s (with any growth)")
            gen_s = per_call(lambda i, gen=gen, size=size: gen.payload(size, i), args.seconds)
            label = f"{fill} d{dedup} c{compress}"
            print(
                f"{size}\t{label}\t{gen_s * 1e9:.0f}\t{size / gen_s / 1e9:.2f}\t"
                f"{urandom_s / gen_s:.1f}x faster\t{gen_s / slice_s:.2f}x cost"
            )


if __name__ == "__main__":
    main()
