"""Prepare memory: peak RSS growth while preparing 1,000,000 one-byte objects on file://.

Run:  .venv/bin/python bench/prepare_memory.py [--count 1000000] [--baseline 10000] [--dir /dev/shm/x]

Prepare streams indices from a counter and remembers existing/created objects in bitmaps (one bit each), so
its memory must not grow with the object count (the issue's bound: < 150 MB for 1M objects). The script
prepares a small baseline count first and then the large count, each into a fresh directory through the
prepare stage of the in-process fleet (the gap-fill LIST, then 10,000-object shards recorded in the object
book, as in `sbench run`), and prints the peak RSS growth of each and their ratio. Peak RSS is the
kernel's high-water mark (VmHWM), reset before each phase; where the reset is not allowed, a 20 ms
sampler thread tracks the peak instead.

The default directory is tmpfs (/dev/shm) so a million file creates finish in tens of seconds; pass --dir to
use another file system.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import threading
import time
from pathlib import Path

from sbench.config import load_config_text
from sbench.config.models import Completion, StageType
from sbench.plan.stages import PhaseBarrier, StagePlan
from sbench.run.fleet import StageCall
from sbench.run.inprocess import InProcessFleet

MB = 1024 * 1024


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


class PeakRss:
    """Peak RSS (bytes) over a `with` block."""

    def __enter__(self) -> PeakRss:
        self.start = _status_kb("VmRSS") * 1024
        self.hwm_reset = _reset_peak()
        self.sampled = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.sampled = max(self.sampled, _status_kb("VmRSS") * 1024)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        peak = max(self.sampled, _status_kb("VmRSS") * 1024)
        if self.hwm_reset:
            peak = max(peak, _status_kb("VmHWM") * 1024)
        self.growth = peak - self.start


def prepare(root: Path, count: int, concurrency: int) -> tuple[float, int, float]:
    """(peak RSS growth bytes, objects created, seconds) of preparing `count` one-byte objects."""
    cfg = load_config_text(
        f"target: file://{root}/\nconcurrency: {concurrency}\n"
        "prepare:\n  ensure_objects:\n"
        f"    - {{base_uri: 'file://{root}/data/', count: {count}, size_spec: 1, fill: zero}}\n"
        "workload:\n  - {op: get, path: 'data/', weight: 1}\n"
    ).config
    fleet = InProcessFleet(cfg, "bench")
    plan = StagePlan("prepare", 1, StageType.PREPARE, Completion.TASKS_DONE, PhaseBarrier())
    call = StageCall(plan, [fleet.identity.agent_id], lambda aggregate, per_agent: None, lambda line: None)
    t0 = time.monotonic()
    with PeakRss() as rss:
        run = fleet.run_stage(call)
    (result,) = run.results.values()
    if not result.ok:
        raise SystemExit(f"prepare failed: {result.reason}")
    return rss.growth, int(result.extra["created"]), time.monotonic() - t0


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--dir", type=Path, default=None, help="where to create files (default: tmpfs)")
    args = parser.parse_args()
    base = args.dir or (Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir()))
    rows = []
    for count in (args.baseline, args.count):
        root = Path(tempfile.mkdtemp(prefix="sbench-prepmem-", dir=base))
        try:
            growth, created, seconds = prepare(root, count, args.concurrency)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        rows.append((count, growth, created, seconds))
    print(
        f"prepare of one-byte objects on file:// under {base}, {args.concurrency} threads (VmHWM reset: "
        f"{'yes' if _reset_peak() else 'no, sampled'})"
    )
    print(f"{'objects':>12}{'created':>12}{'seconds':>10}{'objects/s':>12}{'peak RSS growth':>18}")
    for count, growth, created, seconds in rows:
        print(f"{count:>12,}{created:>12,}{seconds:>10.1f}{created / seconds:>12,.0f}{growth / MB:>15.1f} MB")
    (small, g_small, *_), (large, g_large, *_) = rows
    print(
        f"{large // small}x the objects -> {g_large / max(g_small, 1):.2f}x the peak RSS growth; "
        f"{'OK' if g_large < 150 * MB else 'OVER'} against the 150 MB bound"
    )


if __name__ == "__main__":
    main()
