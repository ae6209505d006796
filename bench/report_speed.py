"""How long `sbench report` takes, and how big report.html gets, for a one-hour run of 8 agents.

The results directory is synthesised with sbench's own writers (tests/report/synth.py): an open-loop run
with a short prepare stage and a one-hour execute stage, 1 s intervals, 8 agents (perf_log.tsv, 8 per-agent
perf logs, .hlog files with response and service time, summary.json). Then report.html is written ROUNDS
times and the time of each is measured (in this process; the first includes importing plotly). The bars:
under 10 s and under 10 MB.

    .venv/bin/python bench/report_speed.py [--agents 8] [--seconds 3600] [--rounds 3] [--keep DIR]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.report.synth import synthesise

LIMIT_S = 10.0
LIMIT_MB = 10.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agents", type=int, default=8)
    parser.add_argument("--seconds", type=int, default=3600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep", type=Path, metavar="DIR", help="synthesise into DIR (new) and keep it")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sbench-report-speed-") as tmp:
        t0 = time.perf_counter()
        path = synthesise(args.keep or Path(tmp) / "run", agents=args.agents, seconds=args.seconds)
        made = time.perf_counter() - t0
        inputs = sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
        rows = sum(1 for _ in (path / "perf_log.tsv").open()) - 1
        print(
            f"synthesised {args.agents} agents x {args.seconds} s ({rows:,} merged intervals, "
            f"{inputs / 1e6:.1f} MB of result files) in {made:.1f} s"
        )
        times = []
        t0 = time.perf_counter()
        from sbench.report.htmlreport import write_report

        imported = time.perf_counter() - t0
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            report = write_report(path)
            times.append(time.perf_counter() - t0)
        size_mb = report.stat().st_size / 1e6
    first = times[0] + imported
    print(
        f"report.html: {size_mb:.2f} MB; generation {', '.join(f'{t:.2f}' for t in times)} s "
        f"(median {statistics.median(times):.2f} s; the first with the import of plotly: {first:.2f} s)"
    )
    ok = first < LIMIT_S and size_mb < LIMIT_MB
    print(f"verdict: {'PASS' if ok else 'FAIL'} (bars: {LIMIT_S:.0f} s, {LIMIT_MB:.0f} MB)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
