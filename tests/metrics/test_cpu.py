"""CPU sampler against a real /proc/stat and against crafted files."""

from __future__ import annotations

from pathlib import Path

from sbench.metrics.cpu import CpuSampler, ProcessCpuMeter


def test_real_proc_stat_gives_sane_shares() -> None:
    sampler = CpuSampler()
    assert sampler.available
    sum(i * i for i in range(200_000))
    user, system, iowait = sampler.sample()
    for value in (user, system, iowait):
        assert 0.0 <= value <= 100.0
    assert user + system + iowait <= 100.0 + 1e-9


def test_deltas_from_crafted_stat(tmp_path: Path) -> None:
    stat = tmp_path / "stat"
    stat.write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3\n")
    sampler = CpuSampler(stat)
    # +60 user, +10 nice, +20 system, +100 idle, +10 iowait, +5 irq, +5 softirq = 210 jiffies
    stat.write_text("cpu  160 10 70 900 60 5 5 0 0 0\n")
    user, system, iowait = sampler.sample()
    assert round(user, 6) == round(100 * 70 / 210, 6)
    assert round(system, 6) == round(100 * 30 / 210, 6)
    assert round(iowait, 6) == round(100 * 10 / 210, 6)
    assert sampler.sample() == (0.0, 0.0, 0.0)  # no time passed in the file


def test_missing_proc_stat(tmp_path: Path) -> None:
    sampler = CpuSampler(tmp_path / "absent")
    assert not sampler.available
    assert sampler.sample() == (0.0, 0.0, 0.0)


def test_process_cpu_meter_counts_own_work() -> None:
    meter = ProcessCpuMeter()
    meter.start()
    sum(i * i for i in range(600_000))
    usage = meter.stop()
    assert usage.cpu_s > 0
    assert usage.wall_s > 0
