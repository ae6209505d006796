"""Small stage functions with the engine's `run_stage` signature, for coordinator/agent tests.

They record real measurements through the real Recorder (so merges are exercised), and their behaviour is
chosen by the agent id, because each agent runs in its own Ray worker process:
`stuck-*` records nothing (a hung backend), `fail-*` raises, `hang-*` ignores stop requests, anything else
records `OPS_PER_TICK` GETs every tick until the duration ends or it is stopped; `flaky-*` also records one
throttled GET per tick whose message quotes a signed URL (`FLAKY_SIGNATURE` must never reach a result).
"""

from __future__ import annotations

import time

from sbench.engine.stage import StageOutcome
from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import SnapshotAccumulator
from sbench.status import StageStatus
from sbench.storage.base import ErrorClass

OPS_PER_TICK = 50
TICK_S = 0.05
FLAKY_SIGNATURE = "f1a4c0ffee5167"


def fake_stage(plan, config, identity, control, on_interval, **_kw) -> StageOutcome:
    agent = identity.agent_id
    if agent.startswith("fail-"):
        raise RuntimeError(f"{agent} cannot reach its storage")
    interval_s = config.perf_log.interval
    rec = Recorder()
    total = SnapshotAccumulator()
    start = time.monotonic()
    next_interval = start + interval_s
    duration = plan.duration or plan.max_duration or 1.0
    while time.monotonic() - start < duration:
        if agent.startswith("hang-"):
            time.sleep(TICK_S)
        elif control.wait(TICK_S):
            break
        if not agent.startswith(("stuck-", "hang-")):
            for i in range(OPS_PER_TICK):
                rec.record(OpClass.GET, 4096, 100 + (i * 37) % 900)
        if agent.startswith("flaky-"):
            url = f"https://store.example/b/k.dat?X-Amz-Signature={FLAKY_SIGNATURE}"
            message = f"GET k.dat: throttled ({agent}): 503 SlowDown {url}"
            rec.record_error(OpClass.GET, ErrorClass.THROTTLED, message)
        if time.monotonic() >= next_interval:
            next_interval += interval_s
            snap = rec.take_interval()
            total.add(snap)
            on_interval(snap)
    snap = rec.take_interval()
    total.add(snap)
    on_interval(snap)
    status = StageStatus.ABORTED if control.aborted else StageStatus.OK  # a stop ends a stage cleanly
    elapsed = time.monotonic() - start
    snapshot, progress = total.snapshot(), ProgressCounters(stage=plan.name)
    return StageOutcome(plan.name, plan.type.value, status, control.reason, snapshot, progress, elapsed)
