"""The coordinator's live aggregate, summed report by report as reports arrive, equals the batch merge of
the same per-agent intervals (what the monitor did before), histograms included, down to every count."""

from __future__ import annotations

import random

from hdrh.histogram import HdrHistogram

from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.histogram import HIGHEST_US, LOWEST_US, SIGNIFICANT_DIGITS
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot
from sbench.plan.stages import PhaseBarrier
from sbench.run.monitor import AgentReport, StageMonitor
from sbench.storage.base import ErrorClass

AGENTS = [f"a{i}" for i in range(6)]


def _interval(rng: random.Random, agent: str, k: int) -> Snapshot:
    """One agent's interval k: GETs in one or two size buckets, PUTs, the odd error, progress and CPU."""
    rec = Recorder()
    for _ in range(rng.randrange(1, 300)):
        rec.record(OpClass.GET, rng.choice([4096, 4096, 1 << 20]), int(rng.lognormvariate(6, 1.2)) + 1)
    for _ in range(rng.randrange(0, 80)):
        rec.record(OpClass.PUT, 65536, int(rng.lognormvariate(7, 1.0)) + 1)
    if rng.random() < 0.3:
        rec.record_error(OpClass.GET, ErrorClass.TIMEOUT)
    snap = rec.take_interval()
    snap.start_ms, snap.end_ms = 1000 * k, 1000 * (k + 1)
    snap.set_progress(agent, ProgressCounters(objects_done=k, stage="execute"))
    snap.set_cpu(agent, 10.0 + k, 2.0, 0.0)
    return snap


def _hdrh_counts(datas: list[bytes]) -> list[int]:
    """hdrh's own decode_and_add over the encoded histograms: the reference for every count."""
    ref = HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT_DIGITS)
    for data in datas:
        ref.decode_and_add(data)
    return list(ref.counts)


def test_the_aggregate_summed_on_arrival_equals_the_batch_merge() -> None:
    rng = random.Random(5)
    mon = StageMonitor(
        1, "execute", PhaseBarrier(), AGENTS, interval_s=1, stuck_intervals=5, watch_progress=True, now_s=0
    )
    sent: dict[int, list[Snapshot]] = {}  # aggregate slot -> the intervals it must hold, in arrival order
    now = 0.0
    for k in range(4):
        order = AGENTS[:] if k != 1 else AGENTS[:-1]  # the last agent misses interval 1's merge...
        rng.shuffle(order)
        for agent in order:
            snap = _interval(rng, agent, k)
            sent.setdefault(k, []).append(snap)
            now += 0.01
            mon.on_report(AgentReport(agent, 1, [snap], started_ms=1), now, int(now * 1000))
        if k == 1:
            now += 2.5  # ...which is written without it after two intervals
            mon.tick(now, int(now * 1000))
        if k == 2:  # its interval 1 comes late: it joins the oldest open slot, 2, as its interval 2 did
            late = _interval(rng, AGENTS[-1], 1)
            sent[2].append(late)
            mon.on_report(AgentReport(AGENTS[-1], 1, [late], started_ms=1), now, int(now * 1000))
    mon.flush(now, int(now * 1000))
    aggregate = mon.drain(now).aggregate
    assert [len(s.progress) for s in aggregate] == [6, 5, 6, 6]
    assert len(aggregate) == len(sent)
    for got, parts in zip(aggregate, [sent[k] for k in sorted(sent)], strict=True):
        want = Snapshot.merge_all(parts)
        assert got.to_dict() == want.to_dict()
        for key in {key for p in parts for key in p.hists}:
            datas = [p.hists[key] for p in parts if key in p.hists]
            assert list(got.histogram(*key)._h.counts) == _hdrh_counts(datas)
        for op in {op for p in parts for op in p.service}:
            datas = [p.service[op] for p in parts if op in p.service]
            assert list(got.service_histogram(op)._h.counts) == _hdrh_counts(datas)
