"""The workload loop on real file:// storage: open-loop rates, coordinated omission, per-op concurrency,
DELETE without replacement, per-PUT sizes, and stopping."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sbench.control import RunControl
from sbench.data.payload import PayloadGenerator
from sbench.engine.workload import WorkloadResult, run_workload
from sbench.engine.workload import _seed as workload_seed
from sbench.layout.naming import parse_put_key
from sbench.metrics.buckets import OpClass
from sbench.metrics.snapshot import Snapshot
from sbench.plan.agents import AgentIdentity
from sbench.storage.base import ErrorClass, StorageError
from tests.engine.helpers import ProbeBackend, backends_with, config_from, make_files

NAMES = [f"obj-{i:04d}.dat" for i in range(50)]


def _cfg(root: Path, body: str, concurrency: int = 4, extra: str = "") -> object:
    return config_from(
        f"duration: 5s\nconcurrency: {concurrency}\ntarget: file://{root}/\n{extra}workload:\n{body}"
    )


def _run_probed(
    cfg: object,
    root: Path,
    probe: ProbeBackend,
    run_id: str,
    *,
    duration_s: float,
    control: RunControl | None = None,
    on_interval: Callable[[Snapshot], None] | None = None,
) -> WorkloadResult:
    """run_workload with `probe` standing in for file://root/ (it records calls, stalls or fails ops)."""
    backends = backends_with(cfg, f"file://{root}/", probe)
    return run_workload(
        cfg, AgentIdentity(run_id=run_id), control or RunControl(), on_interval, duration_s=duration_s,
        backends=backends,
    )


@pytest.mark.slow
@pytest.mark.parametrize("dist", ["exponential", "uniform", "deterministic"])
def test_open_loop_delivers_aggregate_rate(tmp_path: Path, dist: str) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        '  - {op: stat, path: "d/*", weight: 1}\n',
        concurrency=4,
        extra=f"io_rate: {{iops: 500, distribution: {dist}}}\n",
    )
    res = run_workload(cfg, AgentIdentity(run_id="rate"), RunControl(), duration_s=5.0)
    rate = res.snapshot.total_ops() / 5.0
    assert res.open_loop and res.ended_by == "duration"
    assert 475 <= rate <= 525, rate
    assert res.snapshot.errors_total() == 0


def test_stall_shows_in_response_time_not_service_time(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        '  - {op: stat, path: "d/*", weight: 1}\n',
        concurrency=4,
        extra="io_rate: {iops: 400, distribution: deterministic}\n",
    )
    probe = ProbeBackend(f"file://{tmp_path}/")
    probe.stall(1.0, 1.0)
    res = _run_probed(cfg, tmp_path, probe, "stall", duration_s=3.0)
    snap = res.snapshot
    response = snap.latency(OpClass.META)
    service = snap.service_latency(OpClass.META)
    assert response.count == service.count > 1000
    assert response.p99 >= 900_000, response
    assert service.p99 < 100_000, service
    assert snap.late_ops > 300


def test_closed_loop_service_equals_response(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, '  - {op: get, path: "d/*", weight: 1}\n', concurrency=2)
    res = run_workload(cfg, AgentIdentity(run_id="closed"), RunControl(), duration_s=0.5)
    snap = res.snapshot
    assert not res.open_loop and snap.total_ops(OpClass.GET) > 100
    assert snap.latency(OpClass.GET).count == snap.service_latency(OpClass.GET).count
    assert snap.total_bytes(OpClass.GET) == 1024 * snap.total_ops(OpClass.GET)


def test_static_get_buckets_each_op_by_its_own_size(tmp_path: Path) -> None:
    """The inline GET works a size bucket out again only when the size differs from the op before: with
    objects of three sizes in two buckets, every op still lands in its own bucket with its own bytes."""
    sizes = {"a": 100, "b": 5000, "c": 20_000}  # buckets 1, 1 and 2
    for prefix, size in sizes.items():
        make_files(tmp_path / "d", [f"{prefix}{name}" for name in NAMES[:10]], size=size)
    cfg = _cfg(tmp_path, '  - {op: get, path: "d/*", weight: 1}\n', concurrency=2)
    probe = ProbeBackend(f"file://{tmp_path}/")
    sizes_read: list[int] = []
    get = probe.get
    probe.get = lambda key: sizes_read.append(len(data := get(key))) or data  # type: ignore[method-assign]
    res = _run_probed(cfg, tmp_path, probe, "buckets", duration_s=0.5)
    small = [n for n in sizes_read if n <= 8192]
    large = [n for n in sizes_read if n > 8192]
    assert small and large and len(set(small)) == 2
    buckets = [(1, len(small), sum(small)), (2, len(large), sum(large))]
    assert res.snapshot.bucket_counts(OpClass.GET) == buckets


def test_fixed_size_puts_are_counted_named_and_written_exactly(tmp_path: Path) -> None:
    """The fixed-size PUT fast path: every op reported is a file on disk with a parseable key, the size
    bucket and bytes are right, and no two objects carry the same bytes."""
    cfg = _cfg(tmp_path, '  - {op: put, path: "up/", object_size: 3000, weight: 1}\n', concurrency=3)
    intervals: list[Snapshot] = []
    res = run_workload(
        cfg, AgentIdentity(run_id="fixed-put", agent_id="a1"), RunControl(), intervals.append,
        duration_s=0.6, interval_s=0.1,
    )
    snap = res.snapshot
    files = sorted((tmp_path / "up").iterdir())
    assert snap.ops == {(OpClass.PUT, 1): len(files)} and len(files) > 100
    assert snap.total_bytes(OpClass.PUT) == 3000 * len(files)
    assert sum(i.total_ops() for i in intervals) == len(files)  # intervals add up to the total
    parsed = [parse_put_key(f.name) for f in files]
    assert all(p is not None and p.run_id == "fixed-put" and p.agent_id == "a1" for p in parsed)
    assert {p.worker for p in parsed if p} == {0, 1, 2}
    assert {f.stat().st_size for f in files} == {3000}
    assert len({f.read_bytes() for f in files}) == len(files)
    # the bytes are the payload generator's for each object id, (worker << 40) | seq
    gen = PayloadGenerator("random", seed=workload_seed(AgentIdentity(run_id="fixed-put", agent_id="a1")))
    for f, key in list(zip(files, parsed, strict=True))[:: max(1, len(files) // 200)]:
        assert key is not None
        assert f.read_bytes() == bytes(gen.payload(3000, (key.worker << 40) | key.seq)), f.name


def test_per_op_concurrency_caps_and_raises_in_flight(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    body = (
        '  - {op: stat, path: "d/*", weight: 50, concurrency: 1}\n'
        '  - {op: get, path: "d/*", weight: 50, concurrency: 6}\n'
    )
    cfg = _cfg(tmp_path, body, concurrency=3)
    probe = ProbeBackend(f"file://{tmp_path}/", op_sleep_s=0.002)
    res = _run_probed(cfg, tmp_path, probe, "limits", duration_s=1.0)
    assert res.workers == 6  # 3 mixed + 3 dedicated to the GET whose limit (6) exceeds concurrency (3)
    assert probe.max_in_flight["stat"] == 1
    assert probe.max_in_flight["get"] == 6
    assert res.snapshot.total_ops(OpClass.META) > 50


def test_delete_never_deletes_a_key_twice_and_stops_when_empty(tmp_path: Path) -> None:
    names = [f"k-{i:04d}.dat" for i in range(300)]
    make_files(tmp_path / "d", names, size=10)
    cfg = _cfg(tmp_path, '  - {op: delete, path: "d/*", weight: 1}\n', concurrency=4)
    probe = ProbeBackend(f"file://{tmp_path}/")
    t0 = time.monotonic()
    res = _run_probed(cfg, tmp_path, probe, "del", duration_s=30.0)
    assert time.monotonic() - t0 < 10
    deleted = probe.calls["delete"]
    assert len(deleted) == len(set(deleted)) == 300
    assert res.ended_by == "exhausted" and res.deleted == 300
    assert res.snapshot.errors_total() == 0 and res.snapshot.total_ops(OpClass.META) == 300
    assert not list((tmp_path / "d").iterdir())


@pytest.mark.slow
def test_every_put_draws_its_own_lognormal_size(tmp_path: Path) -> None:
    body = (
        '  - {op: put, path: "out/", weight: 1,\n'
        "     size_spec: {type: lognormal, mean: 4096, std_dev: 2048}}\n"
    )
    cfg = _cfg(tmp_path, body, concurrency=2)
    res = run_workload(cfg, AgentIdentity(run_id="sizes"), RunControl(), duration_s=60.0, max_ops=10_000)
    sizes = [p.stat().st_size for p in (tmp_path / "out").iterdir()]
    assert res.ended_by == "tasks"
    assert len(sizes) >= 10_000
    assert abs(statistics.fmean(sizes) - 4096) < 0.05 * 4096
    assert len(set(sizes)) > 1000
    assert res.snapshot.total_bytes(OpClass.PUT) == sum(sizes)
    assert all(p.name.startswith("put_sizes_standalone_") for p in (tmp_path / "out").iterdir())


def test_stop_mid_stage_returns_quickly_with_partial_results(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, '  - {op: get, path: "d/*", weight: 1}\n', concurrency=2)
    control = RunControl()
    threading.Timer(0.5, control.abort, args=("test abort",)).start()
    t0 = time.monotonic()
    res = run_workload(cfg, AgentIdentity(run_id="abort"), control, duration_s=30.0)
    assert time.monotonic() - t0 < 2.0
    assert res.ended_by == "aborted" and res.reason == "test abort"
    assert res.snapshot.total_ops() > 0


class _FailingGets(ProbeBackend):
    """Every GET fails with a network error after really reading the file."""

    def get(self, key: str):  # type: ignore[no-untyped-def]
        super().get(key)
        raise StorageError(ErrorClass.NETWORK, "injected failure", uri=self.uri_of(key))


def test_error_budget_aborts_the_stage_with_reason(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        '  - {op: get, path: "d/*", weight: 1}\n',
        concurrency=2,
        extra="error_handling: {max_total_errors: 5, error_rate_threshold: 0}\n",
    )
    control = RunControl()
    probe = _FailingGets(f"file://{tmp_path}/")
    res = _run_probed(cfg, tmp_path, probe, "budget", duration_s=30.0, control=control)
    assert res.ended_by == "aborted"
    assert "max_total_errors=5" in res.reason and "network=" in res.reason
    assert not control.stopping  # the stage failed; the run decides what comes next
    assert res.snapshot.errors_total() >= 5 and res.snapshot.total_ops() == 0
    assert "injected failure" in res.first_error


def test_retries_repeat_the_same_call(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(
        tmp_path,
        '  - {op: get, path: "d/*", weight: 1}\n',
        concurrency=1,
        extra="error_handling: {retry_on_error: true, max_retries: 2, initial_retry_delay_ms: 1,\n"
        "  max_total_errors: 3, error_rate_threshold: 0}\n",
    )
    probe = _FailingGets(f"file://{tmp_path}/")
    res = _run_probed(cfg, tmp_path, probe, "retry", duration_s=30.0)
    gets = probe.calls["get"]
    assert len(gets) == 9  # 3 failed ops x (1 try + 2 retries)
    assert all(gets[i] == gets[i - i % 3] for i in range(9))  # each retry repeats its op's key
    assert res.snapshot.retries_total() == 6 and res.snapshot.errors_total() == 3


class _FirstPutFails(ProbeBackend):
    """Every op's first PUT try fails (odd calls), its retry succeeds."""

    def put(self, key: str, data) -> None:  # type: ignore[no-untyped-def]
        super().put(key, data)
        if len(self.calls["put"]) % 2:
            raise StorageError(ErrorClass.THROTTLED, "injected throttle", uri=self.uri_of(key))


def test_fixed_size_put_retries_repeat_the_same_key_and_bytes(tmp_path: Path) -> None:
    cfg = _cfg(
        tmp_path,
        '  - {op: put, path: "up/", object_size: 2048, weight: 1}\n',
        concurrency=1,
        extra="error_handling: {retry_on_error: true, max_retries: 2, initial_retry_delay_ms: 1,\n"
        "  error_rate_threshold: 0}\n",
    )
    probe = _FirstPutFails(f"file://{tmp_path}/")
    res = _run_probed(cfg, tmp_path, probe, "put-retry", duration_s=0.5)
    puts = probe.calls["put"]
    # the op whose first try failed after the duration ended is not retried: it is unfinished, not failed
    cut = res.snapshot.unfinished_ops
    assert cut == len(puts) % 2 and res.extra["unfinished_ops"] == cut
    done = puts[: len(puts) - cut]
    assert len(done) >= 20
    assert all(done[i] == done[i + 1] for i in range(0, len(done), 2))  # each retry repeats its key
    assert len(set(done)) == len(done) // 2 == res.snapshot.total_ops()
    ops = res.snapshot.total_ops()
    assert ops <= res.snapshot.retries_total() <= ops + cut  # a retry cut in its wait was counted
    assert res.snapshot.errors_total() == 0
    files = list((tmp_path / "up").iterdir())
    assert len(files) == len(set(puts)) and {f.stat().st_size for f in files} == {2048}


def test_warmup_is_run_but_not_reported(tmp_path: Path) -> None:
    make_files(tmp_path / "d", NAMES)
    body = '  - {op: get, path: "d/*", weight: 1}\n'
    cfg = _cfg(tmp_path, body, concurrency=1, extra="warmup_period: 1s\n")
    probe = ProbeBackend(f"file://{tmp_path}/")
    seen: list[int] = []
    res = _run_probed(
        cfg, tmp_path, probe, "warm", duration_s=0.5, on_interval=lambda s: seen.append(s.total_ops())
    )
    reported = res.snapshot.total_ops()
    assert sum(seen) == reported > 0
    assert len(probe.calls["get"]) > reported * 2  # the warm-up second ran ops that are not in the results
    assert 0.4 < res.elapsed_s < 1.0


def test_abort_during_drain_does_not_wait_the_drain_window(tmp_path: Path) -> None:
    """Ops that hang past the duration keep the loop in its 10 s drain; an abort then ends it in ~1 s."""
    make_files(tmp_path / "d", NAMES)
    cfg = _cfg(tmp_path, '  - {op: stat, path: "d/*", weight: 1}\n', concurrency=2)
    probe = ProbeBackend(f"file://{tmp_path}/")
    probe.stall(0.3, 30.0)  # every op from 0.3 s on hangs for the rest of the test
    control = RunControl()
    threading.Timer(1.5, control.abort, args=("test abort while draining",)).start()
    t0 = time.monotonic()
    res = _run_probed(cfg, tmp_path, probe, "drain", duration_s=0.5, control=control)
    elapsed = time.monotonic() - t0
    assert res.ended_by == "aborted" and res.reason == "test abort while draining"
    assert elapsed < 4.0, elapsed  # without the fix the loop waits out DRAIN_S (10 s) after the duration
