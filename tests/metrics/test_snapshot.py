"""Snapshot merge exactness, JSON round trip, endpoint and progress merging."""

from __future__ import annotations

import json
import pickle
import random

from sbench.metrics.buckets import OpClass
from sbench.metrics.counters import ProgressCounters
from sbench.metrics.histogram import LatencyHistogram
from sbench.metrics.recorder import Recorder
from sbench.metrics.snapshot import Snapshot, SnapshotAccumulator, endpoint_entry
from sbench.storage.base import ErrorClass


def _workers(n: int, ops: int, seed: int = 1) -> tuple[list[Snapshot], dict[OpClass, LatencyHistogram]]:
    rng = random.Random(seed)
    reference = {op: LatencyHistogram() for op in OpClass}
    snaps = []
    for _ in range(n):
        rec = Recorder()
        for _ in range(ops):
            op = rng.choice(list(OpClass))
            value = int(rng.lognormvariate(7, 1.5)) + 1
            rec.record(op, rng.choice([0, 100, 10_000, 1_000_000]), value)
            reference[op].record_us(value)
        rec.record_error(OpClass.GET, ErrorClass.TIMEOUT)
        snaps.append(rec.take_interval())
    return snaps, reference


def test_merge_gives_the_percentiles_of_one_histogram_with_all_values() -> None:
    snaps, reference = _workers(4, 3000)
    merged = Snapshot.merge_all(snaps)
    for op in OpClass:
        ref = reference[op]
        stats = merged.latency(op)
        assert stats.count == ref.count
        assert (stats.p50, stats.p90, stats.p99, stats.p999, stats.max) == (
            ref.percentile(50),
            ref.percentile(90),
            ref.percentile(99),
            ref.percentile(99.9),
            ref.max,
        )
        assert merged.service_latency(op).p99 == ref.percentile(99)
    assert merged.total_ops() == sum(s.total_ops() for s in snaps) == 12_000
    assert merged.errors_total() == 4
    pair = Snapshot.merge(snaps[0], snaps[1])
    assert pair.total_ops() == snaps[0].total_ops() + snaps[1].total_ops()


def test_json_round_trip_is_lossless() -> None:
    snaps, _ = _workers(2, 500)
    snap = Snapshot.merge_all(snaps)
    snap.late_ops = 3
    snap.lag_hist = _hist(5, 6, 7).encode()
    snap.set_progress("agent-1", ProgressCounters(10, 100, 2, 1000, 2000, "prepare"))
    snap.set_cpu("agent-1", 10.0, 5.5, 1.25)
    snap.set_endpoints([{"uri": "s3://a", "requests": 4, "bytes_read": 10, "latency": _hist(1, 2).encode()}])
    text = json.dumps(snap.to_dict())
    back = Snapshot.from_dict(json.loads(text))
    assert back.to_dict() == snap.to_dict()
    for op in OpClass:
        assert back.latency(op) == snap.latency(op)
    assert back.errors == snap.errors
    assert back.progress_for("agent-1").objects_done == 10
    assert back.cpu_pct() == (10.0, 5.5, 1.25)
    assert pickle.loads(pickle.dumps(back)).to_dict() == snap.to_dict()


def _hist(*values: int) -> LatencyHistogram:
    h = LatencyHistogram()
    for v in values:
        h.record_us(v)
    return h


def test_endpoints_merge_by_uri() -> None:
    a, b = Snapshot(), Snapshot()
    a.set_endpoints(
        [
            {"uri": "s3://e1", "requests": 3, "bytes_read": 30, "errors": 1, "latency": _hist(10).encode()},
            {"uri": "s3://e2", "requests": 1, "bytes_written": 5, "in_flight": 2},
        ]
    )
    b.set_endpoints([{"uri": "s3://e1", "requests": 2, "bytes_read": 20, "latency": _hist(1000).encode()}])
    merged = Snapshot.merge(a, b)
    by_uri = {e["uri"]: e for e in merged.endpoints}
    assert by_uri["s3://e1"]["requests"] == 5
    assert by_uri["s3://e1"]["bytes_read"] == 50
    assert by_uri["s3://e1"]["errors"] == 1
    assert by_uri["s3://e2"]["in_flight"] == 2
    assert merged.endpoint_latency("s3://e1").count == 2


def test_endpoint_entry_reads_dataclass_attributes() -> None:
    class Stats:
        uri = "az://acct/c"
        requests = 7
        bytes_read = 1
        bytes_written = 2
        errors = 0
        in_flight = 0
        latency = _hist(3).encode()

    entry = endpoint_entry(Stats())
    assert entry["requests"] == 7
    assert LatencyHistogram.decode(entry["latency"]).count == 1


def test_progress_keeps_latest_per_source_and_sums_sources() -> None:
    early, late = Snapshot(), Snapshot()
    early.set_progress("a1", ProgressCounters(objects_done=5, objects_total=10, at_ms=1000))
    late.set_progress("a1", ProgressCounters(objects_done=8, objects_total=10, at_ms=2000))
    late.set_progress("a2", ProgressCounters(objects_done=1, objects_total=10, at_ms=2000))
    # Order of merging must not matter for the gauge: the newest report wins.
    merged = Snapshot.merge(late, early)
    assert merged.progress_for("a1").objects_done == 8
    total = merged.progress_for()
    assert (total.objects_done, total.objects_total) == (9, 20)


def test_accumulator_spans_the_time_range() -> None:
    acc = SnapshotAccumulator()
    acc.add(Snapshot(start_ms=2000, end_ms=3000))
    acc.add(Snapshot(start_ms=1000, end_ms=2000))
    snap = acc.snapshot()
    assert (snap.start_ms, snap.end_ms, snap.duration_s) == (1000, 3000, 2.0)


def test_first_error_of_each_class_keeps_the_earliest_over_merges_json_and_pickle() -> None:
    """Each recorder keeps its interval's first message per class; merging (workers, intervals, agents)
    keeps the earliest one, and the messages survive JSON and pickling (Ray) unchanged."""
    early, late = Recorder(), Recorder()
    late.record_error(OpClass.GET, ErrorClass.THROTTLED, "GET a: throttled (late agent)")
    early.record_error(OpClass.PUT, ErrorClass.NO_SPACE, "PUT b: no_space")
    early.record_error(OpClass.PUT, ErrorClass.NO_SPACE, "PUT c: no_space again")  # not the first
    early.record_error(OpClass.GET, ErrorClass.THROTTLED, "GET d: throttled (early agent)")
    a, b = late.take_interval(), early.take_interval()
    a.first_errors[ErrorClass.THROTTLED] = (2000, a.first_errors[ErrorClass.THROTTLED][1])
    b.first_errors[ErrorClass.THROTTLED] = (1000, b.first_errors[ErrorClass.THROTTLED][1])
    b.first_errors[ErrorClass.NO_SPACE] = (1500, b.first_errors[ErrorClass.NO_SPACE][1])
    merged = Snapshot.merge_all([a, b])
    assert merged.first_errors == {
        ErrorClass.THROTTLED: (1000, "GET d: throttled (early agent)"),
        ErrorClass.NO_SPACE: (1500, "PUT b: no_space"),
    }
    assert [k for k, _, _ in merged.first_error_list()] == [ErrorClass.THROTTLED, ErrorClass.NO_SPACE]
    assert Snapshot.from_dict(json.loads(json.dumps(merged.to_dict()))).first_errors == merged.first_errors
    assert pickle.loads(pickle.dumps(merged)).first_errors == merged.first_errors


def test_first_error_messages_are_scrubbed_and_one_line() -> None:
    rec = Recorder()
    rec.record_error(
        OpClass.GET,
        ErrorClass.NETWORK,
        "GET k: error sending request for url (https://h/b/k?X-Amz-Signature=0123abcd&X-Amz-Credential=AKIA1)\n"
        "  <Error>\n  </Error>",
    )
    [(_kind, _at, message)] = rec.take_interval().first_error_list()
    assert "0123abcd" not in message and "AKIA1" not in message and "\n" not in message
    assert message.startswith("GET k: error sending request for url (https://h/b/k?REDACTED)")
